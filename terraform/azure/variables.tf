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

# --- Azure ---

variable "aks_cluster_name" {
  description = "Name of the existing AKS cluster (the kubernetes and helm providers must point at it)."
  type        = string
}

variable "resource_group_name" {
  description = "Resource group of the AKS cluster."
  type        = string
}

variable "federation_token_key_vault_id" {
  description = "Resource id of the Azure Key Vault holding this cluster's federation token."
  type        = string
}

variable "federation_token_secret_name" {
  description = "Name of the Key Vault secret whose current version is the federation token."
  type        = string
}

variable "reserve_public_ip" {
  description = "Create a static Standard public IP for the east-west load balancer, in public_ip_resource_group_name."
  type        = bool
  default     = true
}

variable "public_ip_resource_group_name" {
  description = "Resource group of the east-west public IP; null: resource_group_name. Not the AKS node resource group, which AKS manages (and may lock)."
  type        = string
  default     = null
}

variable "assign_network_contributor" {
  description = "Grant the cluster's managed identity Network Contributor on the public IP's resource group, which the cloud provider needs to bind the IP to the cluster's load balancer. False: you grant it."
  type        = bool
  default     = true
}

variable "egress_public_ip_ids" {
  description = "Resource ids of the public IPs the cluster's outbound traffic leaves from (the load balancer's outbound IPs, or the NAT gateway's for outbound_type userAssignedNATGateway); added to egress_cidrs. AKS-managed outbound IPs can change: give your own."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.egress_public_ip_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Network/publicIPAddresses/[^/]+$", id))])
    error_message = "egress_public_ip_ids must be public IP resource ids (/subscriptions/.../resourceGroups/.../providers/Microsoft.Network/publicIPAddresses/...)."
  }
}

variable "egress_public_ip_prefix_ids" {
  description = "Resource ids of public IP prefixes the cluster's outbound traffic leaves from; added to egress_cidrs."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.egress_public_ip_prefix_ids : can(regex("(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.Network/publicIPPrefixes/[^/]+$", id))])
    error_message = "egress_public_ip_prefix_ids must be public IP prefix resource ids (/subscriptions/.../resourceGroups/.../providers/Microsoft.Network/publicIPPrefixes/...)."
  }
}

variable "dns_record" {
  description = "Azure DNS A record for the east-west address, e.g. { zone_name = \"gateways.example.com\", resource_group_name = \"dns\", name = \"aks-westeurope.gateways.example.com\" } (name is fully qualified, inside zone_name); an alias of the reserved public IP. The gateway then advertises this name to its peers. Null: no record, the public IP is advertised."
  type = object({
    zone_name           = string
    resource_group_name = string
    name                = string
    ttl                 = optional(number, 300)
  })
  default = null

  validation {
    condition     = var.dns_record == null ? true : (trimsuffix(var.dns_record.name, ".") == var.dns_record.zone_name || endswith(trimsuffix(var.dns_record.name, "."), ".${var.dns_record.zone_name}"))
    error_message = "dns_record.name must be a fully qualified name inside dns_record.zone_name."
  }
}

variable "workload_identity" {
  description = "Azure Workload Identity for the gateway's ServiceAccount: a user-assigned identity (identity_name, default causeway-CLUSTER_ID-gateway, in resource_group_name) federated with it and allowed to read the federation token and extra_secret_ids (Key Vault secret resource ids, e.g. an SVID source): Key Vault Secrets User on each secret (key_vault_authorization rbac) or a get-secrets access policy (access_policy). The ServiceAccount gets the azure.workload.identity client-id and tenant-id annotations that External Secrets Operator (SecretStore serviceAccountRef) and the Secrets Store CSI driver use. Needs the cluster's OIDC issuer and Workload Identity. Null: none."
  type = object({
    identity_name           = optional(string)
    resource_group_name     = optional(string)
    key_vault_authorization = optional(string, "rbac")
    extra_secret_ids        = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.workload_identity == null ? true : contains(["rbac", "access_policy"], var.workload_identity.key_vault_authorization)
    error_message = "workload_identity.key_vault_authorization must be rbac or access_policy."
  }
}

variable "network_security_group" {
  description = "A network security group of your own on the nodes' subnet that also needs a rule for 15443 from the peer gateways (AKS programs its managed NSG from loadBalancerSourceRanges by itself). Null: none."
  type = object({
    name                = string
    resource_group_name = string
    priority            = optional(number, 300)
  })
  default = null
}

variable "tags" {
  description = "Tags for the Azure resources this module creates."
  type        = map(string)
  default     = {}
}
