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
  description = "DNS name you point at the federation API load balancer (TLS terminated there with acm_certificate_arn)."
  type        = string
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
