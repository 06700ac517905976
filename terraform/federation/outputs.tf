output "federation_url" {
  description = "In-cluster URL of the federation API."
  value       = module.release.federation_url
}

output "federation_address" {
  description = "External address of the federation API when service_type is LoadBalancer."
  value       = module.release.federation_address
}

output "namespace" {
  description = "Namespace of the release."
  value       = module.release.namespace
}

output "release_name" {
  description = "Helm release name."
  value       = module.release.release_name
}
