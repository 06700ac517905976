# One GKE cluster joining an existing federation.
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    google     = { source = "hashicorp/google", version = ">= 5.0.0, < 7.0.0" }
    helm       = { source = "hashicorp/helm", version = ">= 3.0.0, < 4.0.0" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 2.30.0, < 3.0.0" }
  }
}

variable "project_id" {
  description = "Project of the GKE cluster."
  type        = string
}

variable "gke_cluster_name" {
  description = "Existing regional GKE cluster in europe-west3."
  type        = string
}

provider "google" {
  project = var.project_id
  region  = "europe-west3"
}

data "google_container_cluster" "this" {
  name     = var.gke_cluster_name
  location = "europe-west3"
}

data "google_client_config" "current" {}

provider "kubernetes" {
  host                   = "https://${data.google_container_cluster.this.endpoint}"
  cluster_ca_certificate = base64decode(data.google_container_cluster.this.master_auth[0].cluster_ca_certificate)
  token                  = data.google_client_config.current.access_token
}

provider "helm" {
  kubernetes = {
    host                   = "https://${data.google_container_cluster.this.endpoint}"
    cluster_ca_certificate = base64decode(data.google_container_cluster.this.master_auth[0].cluster_ca_certificate)
    token                  = data.google_client_config.current.access_token
  }
}

module "causeway" {
  source = "../.."

  project_id                   = var.project_id
  gke_cluster_name             = var.gke_cluster_name
  gke_cluster_location         = "europe-west3"
  cluster_id                   = "europe-west3-prod"
  trust_domain                 = "europe-west3-prod.causeway.example.com"
  jurisdictions                = ["eu", "de"]
  federation_endpoint          = "https://federation.causeway.example.com"
  federation_token_secret_id   = "causeway-europe-west3-prod-token"
  gateway_identity_secret_name = "causeway-gateway-svid"
  node_network_tags            = ["gke-europe-west3-prod-node"]
  # The peers' egress_cidrs outputs (their NAT addresses).
  peer_gateway_cidrs = ["203.0.113.10/32"]
  # The static addresses of the nodes' Cloud NAT.
  egress_nat_address_names = ["europe-west3-prod-nat-0", "europe-west3-prod-nat-1"]
  workload_identity        = {}
}

output "gateway_address" {
  description = "East-west load balancer address of this cluster."
  value       = module.causeway.gateway_address
}

output "egress_cidrs" {
  description = "Addresses this cluster's gateway connects from: give them to the peers' peer_gateway_cidrs."
  value       = module.causeway.egress_cidrs
}
