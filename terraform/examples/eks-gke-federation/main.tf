# Two clusters, two clouds, one federation:
#   - EKS in eu-west-1 hosts the federation API (3 replicas, bundled etcd) and
#     a gateway (cluster eks-eu-west-1, jurisdictions eu + ie);
#   - GKE in europe-west3 runs a gateway (cluster gke-europe-west3, eu + de).
# Each gateway admits on 15443 only the addresses the other gateway's
# connections leave from (its egress_cidrs: the EKS VPC's NAT gateways, the GKE
# Cloud NAT addresses), never the other's load balancer address.

provider "aws" {
  region = "eu-west-1"
}

provider "google" {
  project = var.gke_project_id
  region  = "europe-west3"
}

data "aws_eks_cluster" "eks" {
  name = var.eks_cluster_name
}

data "aws_eks_cluster_auth" "eks" {
  name = var.eks_cluster_name
}

data "google_container_cluster" "gke" {
  name     = var.gke_cluster_name
  location = "europe-west3"
}

data "google_client_config" "current" {}

provider "kubernetes" {
  alias                  = "eks"
  host                   = data.aws_eks_cluster.eks.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.eks.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.eks.token
}

provider "helm" {
  alias = "eks"
  kubernetes = {
    host                   = data.aws_eks_cluster.eks.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.eks.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.eks.token
  }
}

provider "kubernetes" {
  alias                  = "gke"
  host                   = "https://${data.google_container_cluster.gke.endpoint}"
  cluster_ca_certificate = base64decode(data.google_container_cluster.gke.master_auth[0].cluster_ca_certificate)
  token                  = data.google_client_config.current.access_token
}

provider "helm" {
  alias = "gke"
  kubernetes = {
    host                   = "https://${data.google_container_cluster.gke.endpoint}"
    cluster_ca_certificate = base64decode(data.google_container_cluster.gke.master_auth[0].cluster_ca_certificate)
    token                  = data.google_client_config.current.access_token
  }
}

# Static addresses of the EKS east-west NLB (one Elastic IP per subnet), so the
# endpoint the EKS gateway advertises survives re-creating the NLB. (They are
# where peers connect *to*; what peers admit is the other side's egress.)
resource "aws_eip" "eks_east_west" {
  count  = length(var.eks_public_subnet_ids)
  domain = "vpc"
  tags   = { Name = "causeway-eks-eu-west-1-east-west-${count.index}" }
}

module "federation" {
  source = "../../federation"
  providers = {
    helm       = helm.eks
    kubernetes = kubernetes.eks
  }

  replicas              = 3
  etcd_mode             = "bundled"
  bundled_etcd_replicas = 3
  jwt_public_key_pem    = var.federation_jwt_public_key_pem
  stale_after           = "5m"
  service_type          = "LoadBalancer"
  service_annotations = {
    "service.beta.kubernetes.io/aws-load-balancer-type"            = "external"
    "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type" = "ip"
    "service.beta.kubernetes.io/aws-load-balancer-scheme"          = "internet-facing"
    "service.beta.kubernetes.io/aws-load-balancer-ssl-cert"        = var.acm_certificate_arn
    "service.beta.kubernetes.io/aws-load-balancer-ssl-ports"       = "443"
  }
  extra_values = [yamlencode({ federationApi = { service = { port = 443 } } })]
}

# The federation API's name, pointed at its NLB when the zone is given. The
# gateways take their endpoint from this record, so they install after the
# API has an address (without a module-level depends_on, which would defer
# the modules' data sources and with them the egress addresses to apply time).
resource "aws_route53_record" "federation" {
  count = var.federation_route53_zone_id == null ? 0 : 1

  zone_id = var.federation_route53_zone_id
  name    = var.federation_hostname
  type    = "CNAME"
  ttl     = 60
  records = [module.federation.federation_address]
}

locals {
  federation_endpoint = "https://${var.federation_route53_zone_id == null ? var.federation_hostname : aws_route53_record.federation[0].fqdn}"
}

module "eks" {
  source = "../../aws"
  providers = {
    aws        = aws
    helm       = helm.eks
    kubernetes = kubernetes.eks
  }

  eks_cluster_name           = var.eks_cluster_name
  cluster_id                 = "eks-eu-west-1"
  trust_domain               = "eks-eu-west-1.causeway.example.com"
  jurisdictions              = ["eu", "ie"]
  federation_endpoint        = local.federation_endpoint
  federation_token_secret_id = var.eks_token_secret_id
  load_balancer_subnet_ids   = var.eks_public_subnet_ids
  eip_allocation_ids         = aws_eip.eks_east_west[*].id
  dns_record                 = var.eks_gateway_dns_record
  workload_identity          = var.workload_identity ? {} : null

  # Egress: the EKS VPC's NAT gateways (discovered) plus eks_egress_cidrs.
  egress_cidrs = var.eks_egress_cidrs
  # Admit what the GKE gateway's connections leave from.
  peer_gateway_cidrs = module.gke.egress_cidrs
}

module "gke" {
  source = "../../gcp"
  providers = {
    google     = google
    helm       = helm.gke
    kubernetes = kubernetes.gke
  }

  project_id                 = var.gke_project_id
  gke_cluster_name           = var.gke_cluster_name
  gke_cluster_location       = "europe-west3"
  cluster_id                 = "gke-europe-west3"
  trust_domain               = "gke-europe-west3.causeway.example.com"
  jurisdictions              = ["eu", "de"]
  federation_endpoint        = local.federation_endpoint
  federation_token_secret_id = var.gke_token_secret_id
  reserve_static_ip          = true
  dns_record                 = var.gke_gateway_dns_record
  workload_identity          = var.workload_identity ? {} : null

  # Egress: the Cloud NAT's static addresses.
  egress_nat_address_names = var.gke_nat_address_names
  # Admit what the EKS gateway's connections leave from.
  peer_gateway_cidrs = module.eks.egress_cidrs
}
