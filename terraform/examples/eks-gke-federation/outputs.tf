output "federation_load_balancer" {
  description = "Point federation_hostname (DNS) at this address."
  value       = module.federation.federation_address
}

output "gateways" {
  description = "The member clusters: id, trust domain, east-west endpoint, the addresses its connections leave from, and the peers' addresses it admits."
  value = {
    (module.eks.cluster_id) = {
      trust_domain = module.eks.trust_domain
      endpoint     = module.eks.gateway_endpoint
      egress_cidrs = module.eks.egress_cidrs
      allowed_from = module.gke.egress_cidrs
    }
    (module.gke.cluster_id) = {
      trust_domain = module.gke.trust_domain
      endpoint     = module.gke.gateway_endpoint
      egress_cidrs = module.gke.egress_cidrs
      allowed_from = module.eks.egress_cidrs
    }
  }
}
