locals {
  east_west_ingress  = try(data.kubernetes_service_v1.east_west[0].status[0].load_balancer[0].ingress[0], null)
  east_west_address  = try(coalesce(local.east_west_ingress.hostname, local.east_west_ingress.ip), null)
  east_west_port     = try(data.kubernetes_service_v1.east_west[0].spec[0].port[0].port, null)
  federation_ingress = try(data.kubernetes_service_v1.federation[0].status[0].load_balancer[0].ingress[0], null)
  federation_port    = try(data.kubernetes_service_v1.federation[0].spec[0].port[0].port, null)
}

output "gateway_address" {
  description = "Public address (hostname or IP) of the east-west load balancer; null until assigned or without the gateway."
  value       = local.east_west_address
}

output "gateway_endpoint" {
  description = "host:port that peer gateways dial (the cluster's gateway.endpoints entry)."
  value       = local.east_west_address == null ? null : "${local.east_west_address}:${local.east_west_port}"
}

output "cluster_id" {
  description = "The cluster id registered with the federation."
  value       = var.cluster == null ? null : var.cluster.id
}

output "trust_domain" {
  description = "The cluster's SPIFFE trust domain."
  value       = var.cluster == null ? null : var.cluster.trust_domain
}

output "gateway_service_account" {
  description = "Namespace and name of the gateway's Kubernetes ServiceAccount (the subject of cloud workload identity bindings)."
  value = {
    namespace = var.namespace
    name      = local.gateway_service_account_name
  }
}

output "federation_token_secret_name" {
  description = "Kubernetes Secret (key `token`) the gateway reads its federation token from."
  value       = var.federation_token_secret_name
}

output "federation_url" {
  description = "In-cluster URL of the federation API (when enabled)."
  value       = local.fed.enabled ? "http://${local.federation_service_name}.${var.namespace}.svc:${local.federation_port}" : null
}

output "federation_address" {
  description = "External address of the federation API Service when it is a LoadBalancer."
  value       = try(coalesce(local.federation_ingress.hostname, local.federation_ingress.ip), null)
}

output "namespace" {
  description = "Namespace of the release."
  value       = var.namespace
}

output "release_name" {
  description = "Helm release name."
  value       = helm_release.causeway.name
}
