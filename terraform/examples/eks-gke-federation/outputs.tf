output "federation_load_balancer" {
  description = "Point federation_hostname (DNS) at this address."
  value       = module.federation.federation_address
}

output "gateways" {
  description = "The member clusters: id, trust domain and east-west address."
  value = {
    (module.eks.cluster_id) = {
      trust_domain = module.eks.trust_domain
      address      = module.eks.gateway_address
      allowed_from = ["${module.gke.gateway_address}/32"]
    }
    (module.gke.cluster_id) = {
      trust_domain = module.gke.trust_domain
      address      = module.gke.gateway_address
      allowed_from = [for ip in aws_eip.eks_east_west[*].public_ip : "${ip}/32"]
    }
  }
}
