variable "release_name" {
  description = "Helm release name."
  type        = string
  default     = "causeway-federation"
}

variable "namespace" {
  description = "Namespace to install into (created)."
  type        = string
  default     = "causeway-system"
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

variable "replicas" {
  description = "Federation API replicas (stateless over etcd)."
  type        = number
  default     = 3

  validation {
    condition     = var.replicas >= 1
    error_message = "replicas must be at least 1."
  }
}

variable "etcd_mode" {
  description = "`bundled`: a StatefulSet of bundled_etcd_replicas members in this release (small installs); `external`: your own etcd at etcd_endpoints."
  type        = string
  default     = "bundled"

  validation {
    condition     = contains(["bundled", "external"], var.etcd_mode)
    error_message = "etcd_mode must be bundled or external."
  }
}

variable "bundled_etcd_replicas" {
  description = "Members of the bundled etcd (1, 3 or 5)."
  type        = number
  default     = 3

  validation {
    condition     = contains([1, 3, 5], var.bundled_etcd_replicas)
    error_message = "bundled_etcd_replicas must be 1, 3 or 5."
  }
}

variable "etcd_endpoints" {
  description = "External etcd client URLs (etcd_mode = external), e.g. [\"https://etcd-0.example:2379\"]."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.etcd_endpoints : can(regex("^https?://[^\\s,]+$", e))])
    error_message = "etcd_endpoints must be http(s) URLs."
  }
}

variable "etcd_tls_secret_name" {
  description = "Kubernetes Secret with ca.crt, tls.crt and tls.key for the external etcd (mTLS); null: plain connection."
  type        = string
  default     = null
}

variable "jwt_algorithm" {
  description = "Token algorithm: ES256 (public key) or HS256 (shared secret)."
  type        = string
  default     = "ES256"

  validation {
    condition     = contains(["ES256", "HS256"], var.jwt_algorithm)
    error_message = "jwt_algorithm must be ES256 or HS256."
  }
}

variable "jwt_public_key_pem" {
  description = "ES256 public key PEM (or the HS256 secret) that verifies tokens; written into a Kubernetes Secret. Null: jwt_existing_secret_name."
  type        = string
  default     = null
  sensitive   = true
}

variable "jwt_existing_secret_name" {
  description = "Existing Kubernetes Secret with public.pem (ES256) or secret (HS256)."
  type        = string
  default     = null
}

variable "jwt_issuer" {
  description = "Required iss claim of tokens; null: not checked."
  type        = string
  default     = null
}

variable "stale_after" {
  description = "Withdraw exports of clusters silent for this long (e.g. 5m); null: never."
  type        = string
  default     = null
}

variable "service_type" {
  description = "Type of the federation API Service: LoadBalancer to reach it from member clusters directly, ClusterIP behind your ingress."
  type        = string
  default     = "ClusterIP"

  validation {
    condition     = contains(["ClusterIP", "LoadBalancer", "NodePort"], var.service_type)
    error_message = "service_type must be ClusterIP, LoadBalancer or NodePort."
  }
}

variable "service_annotations" {
  description = "Annotations of the federation API Service (cloud load balancer settings)."
  type        = map(string)
  default     = {}
}

variable "extra_values" {
  description = "Additional chart values documents (YAML), merged last."
  type        = list(string)
  default     = []
}
