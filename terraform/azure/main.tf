# Causeway on an existing AKS cluster: the east-west gateway behind the Azure
# Standard Load Balancer with a static public IP (in a resource group of
# yours, not the AKS-managed node resource group), source ranges (programmed
# into the AKS-managed NSG) and optionally a rule in your own NSG, limited to
# the peer gateways; cluster identity from the AKS data source; the egress
# addresses peers must allow; the federation token from Key Vault; optional
# Azure DNS record and Azure Workload Identity.

data "azurerm_kubernetes_cluster" "this" {
  name                = var.aks_cluster_name
  resource_group_name = var.resource_group_name
}

# The value, only when Terraform copies it into the Kubernetes Secret.
data "azurerm_key_vault_secret" "federation_token" {
  count = var.copy_federation_token ? 1 : 0

  name         = var.federation_token_secret_name
  key_vault_id = var.federation_token_key_vault_id
}

# Egress: the cluster's outbound public IPs (load balancer outbound IPs or a
# NAT gateway's) and prefixes, by resource id.
data "azurerm_public_ip" "egress" {
  count = length(var.egress_public_ip_ids)

  resource_group_name = split("/", var.egress_public_ip_ids[count.index])[4]
  name                = split("/", var.egress_public_ip_ids[count.index])[8]
}

data "azurerm_public_ip_prefix" "egress" {
  count = length(var.egress_public_ip_prefix_ids)

  resource_group_name = split("/", var.egress_public_ip_prefix_ids[count.index])[4]
  name                = split("/", var.egress_public_ip_prefix_ids[count.index])[8]
}

locals {
  east_west_port = 15443
  region         = data.azurerm_kubernetes_cluster.this.location
  node_zones     = try(sort(data.azurerm_kubernetes_cluster.this.agent_pool_profile[0].zones), [])
  # AKS labels nodes topology.kubernetes.io/zone=<region>-<n>.
  zone = coalesce(var.zone, length(local.node_zones) > 0 ? "${local.region}-${local.node_zones[0]}" : "${local.region}-0")

  egress_cidrs = distinct(concat(
    var.egress_cidrs,
    [for ip in data.azurerm_public_ip.egress : "${ip.ip_address}/32"],
    data.azurerm_public_ip_prefix.egress[*].ip_prefix,
  ))

  # The east-west public IP lives outside the node resource group, which AKS
  # manages and may lock; the cluster identity gets Network Contributor there.
  public_ip_resource_group = coalesce(var.public_ip_resource_group_name, var.resource_group_name)
  cluster_identity         = try(data.azurerm_kubernetes_cluster.this.identity[0], null)
  cluster_identity_type    = try(local.cluster_identity.type, "")
  cluster_identity_id      = local.cluster_identity_type == "UserAssigned" ? tolist(local.cluster_identity.identity_ids)[0] : null
  grant_network            = var.reserve_public_ip && var.assign_network_contributor && contains(["SystemAssigned", "UserAssigned"], local.cluster_identity_type)

  lb_address           = var.reserve_public_ip ? azurerm_public_ip.east_west[0].ip_address : module.release.gateway_address
  dns_name             = var.dns_record == null ? null : trimsuffix(var.dns_record.name, ".")
  dns_relative_name    = local.dns_name == null ? null : (local.dns_name == var.dns_record.zone_name ? "@" : trimsuffix(local.dns_name, ".${var.dns_record.zone_name}"))
  advertised_endpoints = local.dns_name != null ? ["${local.dns_name}:${local.east_west_port}"] : var.reserve_public_ip ? ["${azurerm_public_ip.east_west[0].ip_address}:${local.east_west_port}"] : []

  wi = var.workload_identity
  sa = module.release.gateway_service_account
  sa_annotations = merge(
    local.wi != null ? {
      "azure.workload.identity/client-id" = azurerm_user_assigned_identity.gateway[0].client_id
      "azure.workload.identity/tenant-id" = azurerm_user_assigned_identity.gateway[0].tenant_id
    } : {},
    var.service_account_annotations,
  )
  # Key Vault RBAC scopes: the token secret and extra_secret_ids.
  key_vault_secret_scopes = local.wi == null ? [] : distinct(concat(
    ["${var.federation_token_key_vault_id}/secrets/${var.federation_token_secret_name}"],
    local.wi.extra_secret_ids,
  ))

  lb_annotations = merge(
    {
      "service.beta.kubernetes.io/azure-load-balancer-internal"              = "false"
      "service.beta.kubernetes.io/azure-load-balancer-health-probe-protocol" = "tcp"
    },
    var.reserve_public_ip ? {
      "service.beta.kubernetes.io/azure-pip-name"                     = azurerm_public_ip.east_west[0].name
      "service.beta.kubernetes.io/azure-load-balancer-resource-group" = azurerm_public_ip.east_west[0].resource_group_name
    } : {},
  )
}

resource "azurerm_public_ip" "east_west" {
  count = var.reserve_public_ip ? 1 : 0

  name                = "causeway-${var.cluster_id}-east-west"
  resource_group_name = local.public_ip_resource_group
  location            = local.region
  allocation_method   = "Static"
  sku                 = "Standard"
  zones               = length(local.node_zones) > 0 ? local.node_zones : null
  tags                = merge(var.tags, { "causeway.dev/cluster" = var.cluster_id })
}

data "azurerm_resource_group" "public_ip" {
  count = local.grant_network ? 1 : 0
  name  = local.public_ip_resource_group
}

data "azurerm_user_assigned_identity" "cluster" {
  count = local.grant_network && local.cluster_identity_type == "UserAssigned" ? 1 : 0

  resource_group_name = split("/", local.cluster_identity_id)[4]
  name                = split("/", local.cluster_identity_id)[8]
}

# The cloud provider (cluster identity) binds the public IP to the cluster's
# load balancer; outside the node resource group it needs this role there.
resource "azurerm_role_assignment" "cluster_network" {
  count = local.grant_network ? 1 : 0

  scope                = data.azurerm_resource_group.public_ip[0].id
  role_definition_name = "Network Contributor"
  principal_id         = local.cluster_identity_type == "UserAssigned" ? data.azurerm_user_assigned_identity.cluster[0].principal_id : local.cluster_identity.principal_id
  principal_type       = "ServicePrincipal"
  description          = "AKS ${var.aks_cluster_name}: bind the Causeway east-west public IP"
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
  federation_token             = var.copy_federation_token ? data.azurerm_key_vault_secret.federation_token[0].value : null
  gateway_identity_secret_name = var.gateway_identity_secret_name
  gateway_replicas             = var.gateway_identity_secret_name == null ? 1 : var.gateway_replicas

  east_west_service_annotations = merge(local.lb_annotations, var.east_west_service_annotations)
  east_west_source_ranges       = var.peer_gateway_cidrs
  advertised_endpoints          = local.advertised_endpoints
  service_account_annotations   = local.sa_annotations
  extra_values                  = var.extra_values
}

# --- DNS -------------------------------------------------------------------

resource "azurerm_dns_a_record" "gateway" {
  count = var.dns_record == null ? 0 : 1

  name                = local.dns_relative_name
  zone_name           = var.dns_record.zone_name
  resource_group_name = var.dns_record.resource_group_name
  ttl                 = var.dns_record.ttl
  # An alias of the reserved public IP follows it; otherwise the address.
  target_resource_id = var.reserve_public_ip ? azurerm_public_ip.east_west[0].id : null
  records            = var.reserve_public_ip ? null : [local.lb_address]
  tags               = var.tags
}

# --- Workload identity -------------------------------------------------------

# A user-assigned identity the gateway's ServiceAccount federates with (Azure
# Workload Identity), allowed to read the federation token and
# extra_secret_ids (e.g. an SVID source) from Key Vault.
resource "azurerm_user_assigned_identity" "gateway" {
  count = local.wi == null ? 0 : 1

  name                = coalesce(local.wi.identity_name, "causeway-${var.cluster_id}-gateway")
  resource_group_name = coalesce(local.wi.resource_group_name, var.resource_group_name)
  location            = local.region
  tags                = merge(var.tags, { "causeway.dev/cluster" = var.cluster_id })

  lifecycle {
    precondition {
      condition     = try(data.azurerm_kubernetes_cluster.this.oidc_issuer_url, "") != ""
      error_message = "workload_identity needs the OIDC issuer and Workload Identity enabled on AKS cluster ${var.aks_cluster_name}."
    }
  }
}

resource "azurerm_federated_identity_credential" "gateway" {
  count = local.wi == null ? 0 : 1

  name                = "causeway-gateway"
  resource_group_name = azurerm_user_assigned_identity.gateway[0].resource_group_name
  parent_id           = azurerm_user_assigned_identity.gateway[0].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = data.azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${local.sa.namespace}:${local.sa.name}"
}

# RBAC vaults: Key Vault Secrets User on each secret only.
resource "azurerm_role_assignment" "gateway_secrets" {
  count = local.wi != null && try(local.wi.key_vault_authorization, "") == "rbac" ? length(local.key_vault_secret_scopes) : 0

  scope                = local.key_vault_secret_scopes[count.index]
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.gateway[0].principal_id
  principal_type       = "ServicePrincipal"
}

# Access-policy vaults: get on secrets, vault-wide (access policies cannot be
# narrower).
resource "azurerm_key_vault_access_policy" "gateway" {
  count = local.wi != null && try(local.wi.key_vault_authorization, "") == "access_policy" ? 1 : 0

  key_vault_id       = var.federation_token_key_vault_id
  tenant_id          = azurerm_user_assigned_identity.gateway[0].tenant_id
  object_id          = azurerm_user_assigned_identity.gateway[0].principal_id
  secret_permissions = ["Get"]
}

# --- Checks ------------------------------------------------------------------

check "egress_known" {
  assert {
    condition     = length(local.egress_cidrs) > 0
    error_message = "No egress address for ${var.cluster_id}: set egress_public_ip_ids (the cluster's outbound or NAT gateway public IPs), egress_public_ip_prefix_ids or egress_cidrs. Peers allow this cluster by its egress addresses."
  }
}
