variable "release_name" {
  description = "Helm release name of the causeway chart."
  type        = string
  default     = "causeway"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$", var.release_name))
    error_message = "release_name must be a DNS label of at most 53 characters."
  }
}

variable "namespace" {
  description = "Namespace to install into."
  type        = string
  default     = "causeway"
}

variable "create_namespace" {
  description = "Create the namespace."
  type        = bool
  default     = true
}

variable "chart_path" {
  description = "Local path of the causeway chart directory; its sibling causeway-crds is used for the CRDs. Ignored when chart_repository is set."
  type        = string
  default     = null
}

variable "chart_repository" {
  description = "Helm repository URL (or oci:// registry) holding the causeway and causeway-crds charts. Null: use chart_path."
  type        = string
  default     = null
}

variable "chart_version" {
  description = "Chart version when installing from chart_repository."
  type        = string
  default     = null
}

variable "install_crds" {
  description = "Also install the causeway-crds chart (MCS ServiceExport/ServiceImport CRDs)."
  type        = bool
  default     = true
}

variable "image_repository" {
  description = "Causeway image repository (all three binaries)."
  type        = string
  default     = "ghcr.io/causeway-dev/causeway"
}

variable "image_tag" {
  description = "Pinned Causeway image tag."
  type        = string
  default     = "0.1.0"

  validation {
    condition     = var.image_tag != "latest" && length(var.image_tag) > 0
    error_message = "image_tag must be a pinned version, not latest."
  }
}

variable "cluster" {
  description = "Identity and locality of this cluster. Required when the gateway is enabled."
  type = object({
    id            = string
    cloud         = string
    region        = string
    zone          = string
    jurisdictions = list(string)
    trust_domain  = string
  })
  default = null

  validation {
    condition     = var.cluster == null || can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.cluster.id))
    error_message = "cluster.id must be an RFC 1123 label of at most 63 characters."
  }

  validation {
    condition     = var.cluster == null || can(regex("^[a-z0-9._-]+$", var.cluster.trust_domain))
    error_message = "cluster.trust_domain must be a SPIFFE trust domain name (lowercase letters, digits, '.', '-', '_')."
  }
}

variable "gateway_enabled" {
  description = "Deploy the east-west gateway and its cluster agent."
  type        = bool
  default     = true
}

variable "gateway_replicas" {
  description = "Gateway replicas (ignored with gateway_autoscaling)."
  type        = number
  default     = 2
}

variable "gateway_autoscaling" {
  description = "Gateway HorizontalPodAutoscaler bounds; null disables autoscaling."
  type = object({
    min_replicas = number
    max_replicas = number
  })
  default = null
}

variable "gateway_identity_secret_name" {
  description = "Kubernetes Secret with the gateway's svid.pem, key.pem and bundle.json (SPIRE, cert-manager csi-driver-spiffe or your CA). Null: an in-process CA (single replica trial only)."
  type        = string
  default     = null
}

variable "federation_endpoint" {
  description = "URL of the federation API the gateway joins. Null with federation_api.enabled: the in-cluster Service."
  type        = string
  default     = null

  validation {
    condition     = var.federation_endpoint == null || can(regex("^https?://", var.federation_endpoint))
    error_message = "federation_endpoint must be an http(s) URL."
  }
}

variable "federation_token" {
  description = "This cluster's federation token (JWT with scope cluster:<id>), written into a Kubernetes Secret. Null: federation_token_secret_name must already exist."
  type        = string
  default     = null
  sensitive   = true
}

variable "federation_token_secret_name" {
  description = "Name of the Kubernetes Secret (key `token`) holding the federation token; created from federation_token when that is set."
  type        = string
  default     = "causeway-federation-token"
}

variable "east_west_service_annotations" {
  description = "Annotations of the east-west LoadBalancer Service (the cloud's load balancer settings)."
  type        = map(string)
  default     = {}
}

variable "east_west_source_ranges" {
  description = "CIDRs of the other clusters' gateways allowed to reach the east-west port (loadBalancerSourceRanges and NetworkPolicy)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.east_west_source_ranges : can(cidrhost(c, 0))])
    error_message = "east_west_source_ranges must be CIDRs."
  }
}

variable "east_west_health_check_cidrs" {
  description = "CIDRs the load balancer's health checks (and, without client IP preservation, its forwarded traffic) come from; the gateway NetworkPolicy admits them on the east-west port beside east_west_source_ranges, the load balancer's source ranges do not."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.east_west_health_check_cidrs : can(cidrhost(c, 0))])
    error_message = "east_west_health_check_cidrs must be CIDRs."
  }
}

variable "east_west_load_balancer_class" {
  description = "spec.loadBalancerClass of the east-west Service (e.g. service.k8s.aws/nlb); null: the cluster default."
  type        = string
  default     = null
}

variable "east_west_load_balancer_ip" {
  description = "Static address for the east-west load balancer where the cloud honours spec.loadBalancerIP; null: allocated."
  type        = string
  default     = null
}

variable "advertised_endpoints" {
  description = "host:port addresses peer gateways use to reach this one (the east-west load balancer), registered with the federation."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.advertised_endpoints : can(regex("^[^\\s:]+:[0-9]{1,5}$", e))])
    error_message = "advertised_endpoints must be host:port strings."
  }
}

variable "service_account_annotations" {
  description = "Annotations of the gateway ServiceAccount (cloud workload identity)."
  type        = map(string)
  default     = {}
}

variable "federation_api" {
  description = "The federation API in this release: replicas, etcd (bundled or external, with TLS) and the JWT verification key."
  type = object({
    enabled                  = optional(bool, false)
    replicas                 = optional(number, 2)
    bundled_etcd             = optional(bool, false)
    bundled_etcd_replicas    = optional(number, 3)
    etcd_endpoints           = optional(list(string), [])
    etcd_tls_secret_name     = optional(string)
    jwt_algorithm            = optional(string, "ES256")
    jwt_public_key_pem       = optional(string)
    jwt_existing_secret_name = optional(string)
    jwt_issuer               = optional(string)
    service_type             = optional(string, "ClusterIP")
    service_annotations      = optional(map(string), {})
    stale_after              = optional(string)
  })
  default = {}

  validation {
    condition     = contains([1, 3, 5], var.federation_api.bundled_etcd_replicas)
    error_message = "federation_api.bundled_etcd_replicas must be 1, 3 or 5."
  }

  validation {
    condition     = !var.federation_api.enabled || var.federation_api.jwt_public_key_pem != null || var.federation_api.jwt_existing_secret_name != null
    error_message = "federation_api needs jwt_public_key_pem or jwt_existing_secret_name when enabled."
  }

  validation {
    condition     = contains(["ES256", "HS256"], var.federation_api.jwt_algorithm)
    error_message = "federation_api.jwt_algorithm must be ES256 or HS256."
  }

  validation {
    condition     = contains(["ClusterIP", "LoadBalancer", "NodePort"], var.federation_api.service_type)
    error_message = "federation_api.service_type must be ClusterIP, LoadBalancer or NodePort."
  }
}

variable "extra_values" {
  description = "Additional values documents (YAML) merged after the module's own, for chart settings the module does not expose."
  type        = list(string)
  default     = []
}

variable "timeout" {
  description = "Seconds helm waits for the release to become ready."
  type        = number
  default     = 600
}
