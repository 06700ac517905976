output "gateway_address" {
  description = "External IP of the east-west passthrough load balancer."
  value       = local.lb_address
}

output "gateway_endpoint" {
  description = "host:port that peer gateways dial (the DNS record when dns_record is set)."
  value       = local.dns_name != null ? "${local.dns_name}:${local.east_west_port}" : module.release.gateway_endpoint
}

output "gateway_dns_name" {
  description = "Name of the Cloud DNS record pointing at the east-west address (null without dns_record)."
  value       = try(trimsuffix(google_dns_record_set.gateway[0].name, "."), null)
}

output "egress_cidrs" {
  description = "CIDRs this cluster's gateway connections leave from (egress_cidrs plus the Cloud NAT addresses named in egress_nat_address_names): put them in the other clusters' peer_gateway_cidrs."
  value       = local.egress_cidrs
}

output "gateway_service_account" {
  description = "Namespace and name of the gateway's ServiceAccount."
  value       = module.release.gateway_service_account
}

output "gateway_google_service_account" {
  description = "Email of the Google service account the gateway's ServiceAccount acts as (null without workload_identity)."
  value       = try(google_service_account.gateway[0].email, null)
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
