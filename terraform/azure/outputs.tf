output "gateway_address" {
  description = "Public IP of the east-west load balancer."
  value       = var.reserve_public_ip ? azurerm_public_ip.east_west[0].ip_address : module.release.gateway_address
}

output "gateway_endpoint" {
  description = "host:port that peer gateways dial."
  value       = module.release.gateway_endpoint
}

output "cluster_id" {
  description = "The cluster id registered with the federation."
  value       = module.release.cluster_id
}

output "trust_domain" {
  description = "The cluster's SPIFFE trust domain."
  value       = module.release.trust_domain
}

output "region" {
  description = "Region reported for the cluster."
  value       = local.region
}

output "zone" {
  description = "Zone reported for the cluster."
  value       = local.zone
}

output "public_ip_id" {
  description = "Resource id of the east-west public IP (null when not reserved)."
  value       = try(azurerm_public_ip.east_west[0].id, null)
}
