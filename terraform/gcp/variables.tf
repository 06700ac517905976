variable "cluster_id" {
  description = "Federation id of this cluster: an RFC 1123 label of at most 63 characters, e.g. eu-west-1-prod."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.cluster_id))
    error_message = "cluster_id must be an RFC 1123 label (lowercase alphanumerics and '-', at most 63 characters)."
  }
}

variable "trust_domain" {
  description = "SPIFFE trust domain of this cluster's gateway, e.g. eu-west-1.causeway.example.com."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9._-]+$", var.trust_domain)) && length(var.trust_domain) <= 255
    error_message = "trust_domain must be a SPIFFE trust domain name (lowercase letters, digits, '.', '-', '_')."
  }
}

variable "jurisdictions" {
  description = "Residency labels of this cluster used by ResidencyPolicy, e.g. [\"eu\", \"ie\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for j in var.jurisdictions : can(regex("^[a-z0-9-]{1,63}$", j))])
    error_message = "jurisdictions must be lowercase labels such as eu, de, us."
  }
}

variable "zone" {
  description = "Zone reported for this cluster; null: derived from the cluster's data source."
  type        = string
  default     = null
}

variable "federation_endpoint" {
  description = "URL of the federation API this cluster joins, e.g. https://federation.example.com."
  type        = string

  validation {
    condition     = can(regex("^https?://", var.federation_endpoint))
    error_message = "federation_endpoint must be an http(s) URL."
  }
}

variable "peer_gateway_cidrs" {
  description = "CIDRs of the other clusters' east-west gateways (their load balancers' egress addresses); only they may reach port 15443."
  type        = list(string)

  validation {
    condition     = length(var.peer_gateway_cidrs) > 0 && alltrue([for c in var.peer_gateway_cidrs : can(cidrhost(c, 0))])
    error_message = "peer_gateway_cidrs must be a non-empty list of CIDRs (0.0.0.0/0 is allowed but explicit)."
  }
}

variable "gateway_identity_secret_name" {
  description = "Kubernetes Secret with the gateway's svid.pem, key.pem and bundle.json (from SPIRE, cert-manager csi-driver-spiffe or your CA). Null: an in-process CA, single replica, for trials."
  type        = string
  default     = null
}

variable "gateway_replicas" {
  description = "Gateway replicas (1 when gateway_identity_secret_name is null)."
  type        = number
  default     = 2

  validation {
    condition     = var.gateway_replicas >= 1
    error_message = "gateway_replicas must be at least 1."
  }
}

variable "east_west_service_annotations" {
  description = "Extra annotations of the east-west Service, merged over the module's load balancer annotations."
  type        = map(string)
  default     = {}
}

variable "service_account_annotations" {
  description = "Annotations of the gateway ServiceAccount (workload identity)."
  type        = map(string)
  default     = {}
}

variable "release_name" {
  description = "Helm release name."
  type        = string
  default     = "causeway"
}

variable "namespace" {
  description = "Namespace to install into (created)."
  type        = string
  default     = "causeway"
}

variable "chart_path" {
  description = "Local path of charts/causeway; null: the copy in this repository."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository (or oci:// registry) with the causeway charts; null: chart_path."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version when installing from chart_repository."
  type        = string
  default     = null
}

variable "image_repository" {
  description = "Causeway image repository."
  type        = string
  default     = "ghcr.io/causeway-dev/causeway"
}

variable "image_tag" {
  description = "Pinned Causeway image tag."
  type        = string
  default     = "0.1.0"
}

variable "extra_values" {
  description = "Additional chart values documents (YAML), merged last."
  type        = list(string)
  default     = []
}

# --- GCP ---

variable "project_id" {
  description = "Project of the GKE cluster, its firewall rule, static address and secret."
  type        = string
}

variable "gke_cluster_name" {
  description = "Name of the existing GKE cluster (the kubernetes and helm providers must point at it)."
  type        = string
}

variable "gke_cluster_location" {
  description = "Location of the GKE cluster: a region (regional cluster) or a zone (zonal cluster)."
  type        = string
}

variable "federation_token_secret_id" {
  description = "Secret Manager secret id (name or projects/*/secrets/*) whose version holds this cluster's federation token."
  type        = string
}

variable "federation_token_secret_version" {
  description = "Version of the federation token secret."
  type        = string
  default     = "latest"
}

variable "reserve_static_ip" {
  description = "Reserve a regional static external address for the east-west load balancer, so peers' configuration survives re-creation."
  type        = bool
  default     = true
}

variable "node_network_tags" {
  description = "Network tags of the GKE nodes; when set, a VPC firewall rule admits 15443 from the peer gateways to them (GKE also programs its own rule from loadBalancerSourceRanges)."
  type        = list(string)
  default     = []
}

variable "labels" {
  description = "Labels for the GCP resources this module creates."
  type        = map(string)
  default     = {}
}
