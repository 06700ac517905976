output "gateway_address" {
  description = "Public IP of the east-west load balancer."
  value       = local.lb_address
}

output "gateway_endpoint" {
  description = "host:port that peer gateways dial (the DNS record when dns_record is set)."
  value       = local.dns_name != null ? "${local.dns_name}:${local.east_west_port}" : module.release.gateway_endpoint
}

output "gateway_dns_name" {
  description = "Name of the Azure DNS record pointing at the east-west address (null without dns_record)."
  value       = try(trimsuffix(azurerm_dns_a_record.gateway[0].fqdn, "."), null)
}

output "egress_cidrs" {
  description = "CIDRs this cluster's gateway connections leave from (egress_cidrs plus egress_public_ip_ids and egress_public_ip_prefix_ids): put them in the other clusters' peer_gateway_cidrs."
  value       = local.egress_cidrs
}

output "gateway_service_account" {
  description = "Namespace and name of the gateway's ServiceAccount."
  value       = module.release.gateway_service_account
}

output "gateway_identity_client_id" {
  description = "Client id of the user-assigned identity the gateway's ServiceAccount federates with (null without workload_identity)."
  value       = try(azurerm_user_assigned_identity.gateway[0].client_id, null)
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
