# One AKS cluster joining an existing federation.
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    azurerm    = { source = "hashicorp/azurerm", version = ">= 4.0.0, < 5.0.0" }
    helm       = { source = "hashicorp/helm", version = ">= 3.0.0, < 4.0.0" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 2.30.0, < 3.0.0" }
  }
}

variable "subscription_id" {
  description = "Azure subscription of the AKS cluster."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the AKS cluster."
  type        = string
}

variable "aks_cluster_name" {
  description = "Existing AKS cluster in westeurope."
  type        = string
}

variable "outbound_public_ip_ids" {
  description = "The cluster's outbound public IPs (load balancer outbound IPs or NAT gateway IPs)."
  type        = list(string)
}

variable "key_vault_id" {
  description = "Key Vault holding the federation token."
  type        = string
}

provider "azurerm" {
  features {}
  subscription_id = var.subscription_id
}

data "azurerm_kubernetes_cluster" "this" {
  name                = var.aks_cluster_name
  resource_group_name = var.resource_group_name
}

provider "kubernetes" {
  host                   = data.azurerm_kubernetes_cluster.this.kube_config[0].host
  client_certificate     = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].client_certificate)
  client_key             = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].client_key)
  cluster_ca_certificate = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)
}

provider "helm" {
  kubernetes = {
    host                   = data.azurerm_kubernetes_cluster.this.kube_config[0].host
    client_certificate     = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].client_certificate)
    client_key             = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].client_key)
    cluster_ca_certificate = base64decode(data.azurerm_kubernetes_cluster.this.kube_config[0].cluster_ca_certificate)
  }
}

module "causeway" {
  source = "../.."

  aks_cluster_name              = var.aks_cluster_name
  resource_group_name           = var.resource_group_name
  cluster_id                    = "westeurope-prod"
  trust_domain                  = "westeurope-prod.causeway.example.com"
  jurisdictions                 = ["eu", "nl"]
  federation_endpoint           = "https://federation.causeway.example.com"
  federation_token_key_vault_id = var.key_vault_id
  federation_token_secret_name  = "causeway-westeurope-prod-token"
  gateway_identity_secret_name  = "causeway-gateway-svid"
  # The peers' egress_cidrs outputs (their NAT addresses).
  peer_gateway_cidrs   = ["203.0.113.10/32", "198.51.100.20/32"]
  egress_public_ip_ids = var.outbound_public_ip_ids
  workload_identity    = {}
}

output "gateway_address" {
  description = "East-west public IP of this cluster."
  value       = module.causeway.gateway_address
}

output "egress_cidrs" {
  description = "Addresses this cluster's gateway connects from: give them to the peers' peer_gateway_cidrs."
  value       = module.causeway.egress_cidrs
}
