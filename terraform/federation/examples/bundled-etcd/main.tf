# The federation API with a bundled 3-member etcd on the cluster of your
# current kubeconfig context.
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    helm       = { source = "hashicorp/helm", version = ">= 3.0.0, < 4.0.0" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 2.30.0, < 3.0.0" }
  }
}

variable "kubeconfig_context" {
  description = "kubeconfig context of the control-plane cluster."
  type        = string
}

variable "jwt_public_key_file" {
  description = "ES256 public key PEM that verifies tokens (`causewayctl token keygen`)."
  type        = string
}

provider "kubernetes" {
  config_path    = "~/.kube/config"
  config_context = var.kubeconfig_context
}

provider "helm" {
  kubernetes = {
    config_path    = "~/.kube/config"
    config_context = var.kubeconfig_context
  }
}

module "federation" {
  source = "../.."

  replicas              = 3
  etcd_mode             = "bundled"
  bundled_etcd_replicas = 3
  jwt_public_key_pem    = file(var.jwt_public_key_file)
  stale_after           = "5m"
}

output "federation_url" {
  description = "In-cluster URL of the federation API."
  value       = module.federation.federation_url
}
