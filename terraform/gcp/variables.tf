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
  description = "Egress CIDRs of the other clusters' gateways (their egress_cidrs outputs: NAT or outbound addresses, not their load balancers); only they may reach port 15443, through the load balancer's source ranges and the gateway NetworkPolicy."
  type        = list(string)

  validation {
    condition     = length(var.peer_gateway_cidrs) > 0 && alltrue([for c in var.peer_gateway_cidrs : can(cidrhost(c, 0))])
    error_message = "peer_gateway_cidrs must be a non-empty list of CIDRs (0.0.0.0/0 is allowed but explicit)."
  }
}

variable "egress_cidrs" {
  description = "CIDRs this cluster's gateway connections leave from as peers see them (NAT or outbound addresses), added to those the module discovers; the egress_cidrs output, which peers put in their peer_gateway_cidrs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.egress_cidrs : can(cidrhost(c, 0))])
    error_message = "egress_cidrs must be CIDRs, e.g. 203.0.113.7/32."
  }
}

variable "copy_federation_token" {
  description = "Read the federation token from the cloud's secret store at plan time and write it into the Kubernetes Secret the chart mounts (the value passes through Terraform state). False: Terraform never reads it; keep the Secret (causeway-federation-token, key token) in sync yourself, e.g. External Secrets Operator authenticating as the gateway's ServiceAccount (workload_identity)."
  type        = bool
  default     = true
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

variable "egress_nat_address_names" {
  description = "Names of the regional static external addresses (in project_id, the cluster's region) your Cloud NAT allocates to the nodes' subnet (manual NAT IP allocation); added to egress_cidrs. Automatically allocated NAT addresses can change: list them in egress_cidrs only if you accept that."
  type        = list(string)
  default     = []
}

variable "dns_record" {
  description = "Cloud DNS A record for the east-west address, e.g. { managed_zone = \"gateways\", name = \"gke-europe-west3.gateways.example.com\" }; the gateway then advertises this name to its peers. project defaults to project_id. Null: no record, the static address is advertised."
  type = object({
    managed_zone = string
    name         = string
    project      = optional(string)
    ttl          = optional(number, 300)
  })
  default = null

  validation {
    condition     = var.dns_record == null ? true : can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,63}\\.?$", var.dns_record.name))
    error_message = "dns_record.name must be a fully qualified lowercase DNS name."
  }
}

variable "workload_identity" {
  description = "GKE Workload Identity for the gateway's ServiceAccount: a Google service account (google_service_account_id, default causeway-CLUSTER_ID cut to 30 characters) it acts as, allowed to read the federation token and extra_secret_ids (e.g. an SVID source) from Secret Manager; the ServiceAccount gets the iam.gke.io/gcp-service-account annotation that External Secrets Operator (SecretStore serviceAccountRef) and the Secrets Store CSI driver use. Needs Workload Identity on the cluster. Null: none."
  type = object({
    google_service_account_id = optional(string)
    extra_secret_ids          = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.workload_identity == null ? true : (var.workload_identity.google_service_account_id == null ? true : can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.workload_identity.google_service_account_id)))
    error_message = "workload_identity.google_service_account_id must be 6-30 lowercase letters, digits and '-', starting with a letter."
  }
}

variable "labels" {
  description = "Labels for the GCP resources this module creates."
  type        = map(string)
  default     = {}
}
