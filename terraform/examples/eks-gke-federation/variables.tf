variable "eks_cluster_name" {
  description = "Existing EKS cluster in eu-west-1; it also hosts the federation API."
  type        = string
}

variable "gke_project_id" {
  description = "Project of the existing GKE cluster."
  type        = string
}

variable "gke_cluster_name" {
  description = "Existing GKE cluster in europe-west3."
  type        = string
}

variable "federation_hostname" {
  description = "DNS name of the federation API (TLS terminated at its NLB with acm_certificate_arn)."
  type        = string
}

variable "federation_route53_zone_id" {
  description = "Route 53 zone holding federation_hostname; the example then points the name at the federation API's NLB. Null: you point it there yourself, before the gateways can become ready."
  type        = string
  default     = null
}

variable "acm_certificate_arn" {
  description = "ACM certificate for federation_hostname, used by the federation API's NLB TLS listener."
  type        = string
}

variable "federation_jwt_public_key_pem" {
  description = "ES256 public key that verifies federation tokens (`causewayctl token keygen`)."
  type        = string
  sensitive   = true
}

variable "eks_token_secret_id" {
  description = "Secrets Manager secret holding the EKS cluster's token (`causeway-federation token --scope cluster:eks-eu-west-1`)."
  type        = string
}

variable "gke_token_secret_id" {
  description = "Secret Manager secret holding the GKE cluster's token (`causeway-federation token --scope cluster:gke-europe-west3`)."
  type        = string
}

variable "eks_public_subnet_ids" {
  description = "Public subnets of the EKS VPC, one per zone, for the east-west NLB and its Elastic IPs."
  type        = list(string)
}

variable "eks_egress_cidrs" {
  description = "Addresses the EKS nodes leave from besides the VPC's NAT gateways (found by the aws module), e.g. secondary NAT addresses."
  type        = list(string)
  default     = []
}

variable "gke_nat_address_names" {
  description = "Names of the static addresses (europe-west3) the GKE nodes' Cloud NAT uses: the GKE gateway's egress addresses."
  type        = list(string)
}

variable "eks_gateway_dns_record" {
  description = "Route 53 record for the EKS east-west NLB ({ zone_id, name }); null: none, the Elastic IPs are advertised."
  type = object({
    zone_id = string
    name    = string
  })
  default = null
}

variable "gke_gateway_dns_record" {
  description = "Cloud DNS record for the GKE east-west address ({ managed_zone, name }); null: none, the static address is advertised."
  type = object({
    managed_zone = string
    name         = string
  })
  default = null
}

variable "workload_identity" {
  description = "Bind each gateway's ServiceAccount to a cloud identity that may read its federation token (IRSA on EKS, Workload Identity on GKE); needs the EKS IAM OIDC provider and GKE Workload Identity."
  type        = bool
  default     = false
}
