output "gateway_address" {
  description = "DNS name of the east-west NLB."
  value       = module.release.gateway_address
}

output "gateway_ips" {
  description = "Elastic IPs of the east-west NLB (empty without eip_allocation_ids)."
  value       = local.eip_addresses
}

output "gateway_endpoint" {
  description = "host:port that peer gateways dial (the DNS record when dns_record is set)."
  value       = local.dns_name != null ? "${local.dns_name}:${local.east_west_port}" : module.release.gateway_endpoint
}

output "gateway_dns_name" {
  description = "Name of the Route 53 record pointing at the east-west NLB (null without dns_record)."
  value       = try(aws_route53_record.gateway[0].fqdn, null)
}

output "egress_cidrs" {
  description = "CIDRs this cluster's gateway connections leave from (egress_cidrs plus the VPC's NAT gateway addresses): put them in the other clusters' peer_gateway_cidrs."
  value       = local.egress_cidrs
}

output "gateway_service_account" {
  description = "Namespace and name of the gateway's ServiceAccount."
  value       = module.release.gateway_service_account
}

output "gateway_role_arn" {
  description = "IAM role of the gateway's ServiceAccount (null without workload_identity)."
  value       = try(aws_iam_role.gateway[0].arn, null)
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
