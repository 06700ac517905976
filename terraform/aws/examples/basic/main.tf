# One EKS cluster joining an existing federation.
terraform {
  required_version = ">= 1.6.0"
  required_providers {
    aws        = { source = "hashicorp/aws", version = ">= 5.40.0, < 7.0.0" }
    helm       = { source = "hashicorp/helm", version = ">= 3.0.0, < 4.0.0" }
    kubernetes = { source = "hashicorp/kubernetes", version = ">= 2.30.0, < 3.0.0" }
  }
}

variable "eks_cluster_name" {
  description = "Existing EKS cluster."
  type        = string
}

provider "aws" {
  region = "eu-west-1"
}

data "aws_eks_cluster" "this" {
  name = var.eks_cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.eks_cluster_name
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
}

provider "helm" {
  kubernetes = {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

module "causeway" {
  source = "../.."

  eks_cluster_name             = var.eks_cluster_name
  cluster_id                   = "eu-west-1-prod"
  trust_domain                 = "eu-west-1-prod.causeway.example.com"
  jurisdictions                = ["eu", "ie"]
  federation_endpoint          = "https://federation.causeway.example.com"
  federation_token_secret_id   = "causeway/eu-west-1-prod/federation-token"
  gateway_identity_secret_name = "causeway-gateway-svid"
  # The peers' egress_cidrs outputs (their NAT addresses).
  peer_gateway_cidrs = ["203.0.113.10/32", "198.51.100.20/32"]
  # IRSA role that may read the token (for External Secrets Operator).
  workload_identity = {}
}

output "gateway_address" {
  description = "East-west NLB of this cluster."
  value       = module.causeway.gateway_address
}

output "egress_cidrs" {
  description = "Addresses this cluster's gateway connects from: give them to the peers' peer_gateway_cidrs."
  value       = module.causeway.egress_cidrs
}
