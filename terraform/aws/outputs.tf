output "gateway_address" {
  description = "DNS name of the east-west NLB."
  value       = module.release.gateway_address
}

output "gateway_ips" {
  description = "Elastic IPs of the east-west NLB (empty without eip_allocation_ids)."
  value       = local.eip_addresses
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

output "security_group_id" {
  description = "Security group of the east-west NLB (admits the peer gateways on 15443)."
  value       = aws_security_group.east_west.id
}
