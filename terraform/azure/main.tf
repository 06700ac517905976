# Causeway on an existing AKS cluster: the east-west gateway behind the Azure
# Standard Load Balancer with a static public IP, source ranges (programmed
# into the AKS-managed NSG) and optionally a rule in your own NSG, limited to
# the peer gateways; cluster identity from the AKS data source; the federation
# token from Key Vault.

data "azurerm_kubernetes_cluster" "this" {
  name                = var.aks_cluster_name
  resource_group_name = var.resource_group_name
}

data "azurerm_key_vault_secret" "federation_token" {
  name         = var.federation_token_secret_name
  key_vault_id = var.federation_token_key_vault_id
}

locals {
  east_west_port = 15443
  region         = data.azurerm_kubernetes_cluster.this.location
  node_zones     = try(sort(data.azurerm_kubernetes_cluster.this.agent_pool_profile[0].zones), [])
  # AKS labels nodes topology.kubernetes.io/zone=<region>-<n>.
  zone = coalesce(var.zone, length(local.node_zones) > 0 ? "${local.region}-${local.node_zones[0]}" : "${local.region}-0")

  lb_annotations = merge(
    {
      "service.beta.kubernetes.io/azure-load-balancer-internal"              = "false"
      "service.beta.kubernetes.io/azure-load-balancer-health-probe-protocol" = "tcp"
    },
    var.reserve_public_ip ? {
      "service.beta.kubernetes.io/azure-pip-name"                     = azurerm_public_ip.east_west[0].name
      "service.beta.kubernetes.io/azure-load-balancer-resource-group" = data.azurerm_kubernetes_cluster.this.node_resource_group
    } : {},
  )
}

resource "azurerm_public_ip" "east_west" {
  count = var.reserve_public_ip ? 1 : 0

  name                = "causeway-${var.cluster_id}-east-west"
  resource_group_name = data.azurerm_kubernetes_cluster.this.node_resource_group
  location            = local.region
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = length(local.node_zones) > 0 ? local.node_zones : null
  tags                = merge(var.tags, { "causeway.dev/cluster" = var.cluster_id })
}

resource "azurerm_network_security_rule" "east_west" {
  count = var.network_security_group == null ? 0 : 1

  name                        = "causeway-${var.cluster_id}-east-west"
  resource_group_name         = var.network_security_group.resource_group_name
  network_security_group_name = var.network_security_group.name
  priority                    = var.network_security_group.priority
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_port_range           = "*"
  destination_port_range      = tostring(local.east_west_port)
  source_address_prefixes     = var.peer_gateway_cidrs
  destination_address_prefix  = var.reserve_public_ip ? azurerm_public_ip.east_west[0].ip_address : "*"
  description                 = "Causeway east-west mTLS from peer gateways"
}

module "release" {
  source = "../modules/causeway-release"

  release_name     = var.release_name
  namespace        = var.namespace
  chart_path       = var.chart_path
  chart_repository = var.chart_repository
  chart_version    = var.chart_version
  image_repository = var.image_repository
  image_tag        = var.image_tag

  cluster = {
    id            = var.cluster_id
    cloud         = "azure"
    region        = local.region
    zone          = local.zone
    jurisdictions = var.jurisdictions
    trust_domain  = var.trust_domain
  }

  federation_endpoint          = var.federation_endpoint
  federation_token             = data.azurerm_key_vault_secret.federation_token.value
  gateway_identity_secret_name = var.gateway_identity_secret_name
  gateway_replicas             = var.gateway_identity_secret_name == null ? 1 : var.gateway_replicas

  east_west_service_annotations = merge(local.lb_annotations, var.east_west_service_annotations)
  east_west_source_ranges       = var.peer_gateway_cidrs
  advertised_endpoints          = var.reserve_public_ip ? ["${azurerm_public_ip.east_west[0].ip_address}:${local.east_west_port}"] : []
  service_account_annotations   = var.service_account_annotations
  extra_values                  = var.extra_values
}
