# The shared release module on any cluster of your kubeconfig (kind, k3s,
# on-premises): a gateway joining a federation, token passed directly.
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    helm       = { source = "hashicorp/helm", version = ">= 3.0.0, < 4.0.0" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 2.30.0, < 3.0.0" }
  }
}

variable "federation_token" {
  description = "This cluster's federation token (scope cluster:onprem-1)."
  type        = string
  sensitive   = true
}

provider "kubernetes" {
  config_path = "~/.kube/config"
}

provider "helm" {
  kubernetes = {
    config_path = "~/.kube/config"
  }
}

module "causeway" {
  source = "../.."

  cluster = {
    id            = "onprem-1"
    cloud         = "onprem"
    region        = "fra"
    zone          = "fra-dc1"
    jurisdictions = ["eu", "de"]
    trust_domain  = "onprem-1.causeway.example.com"
  }
  federation_endpoint     = "https://federation.causeway.example.com"
  federation_token        = var.federation_token
  east_west_source_ranges = ["203.0.113.0/24"]
}

output "gateway_address" {
  description = "East-west address of this cluster."
  value       = module.causeway.gateway_address
}
