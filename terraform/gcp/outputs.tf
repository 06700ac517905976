output "gateway_address" {
  description = "External IP of the east-west passthrough load balancer."
  value       = var.reserve_static_ip ? google_compute_address.east_west[0].address : module.release.gateway_address
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

output "firewall_rule" {
  description = "Name of the VPC firewall rule admitting the peer gateways (null without node_network_tags)."
  value       = try(google_compute_firewall.east_west[0].name, null)
}
