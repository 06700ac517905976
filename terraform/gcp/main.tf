# Causeway on an existing GKE cluster: the east-west gateway behind an
# external passthrough Network Load Balancer (backend-service based,
# `cloud.google.com/l4-rbs`), a static regional address, source ranges and a
# VPC firewall rule limited to the peer gateways; cluster identity from the
# GKE data source; the egress addresses peers must allow (Cloud NAT); the
# federation token from Secret Manager; optional Cloud DNS record and GKE
# Workload Identity.

data "google_container_cluster" "this" {
  project  = var.project_id
  name     = var.gke_cluster_name
  location = var.gke_cluster_location
}

# The value, only when Terraform copies it into the Kubernetes Secret.
data "google_secret_manager_secret_version" "federation_token" {
  count = var.copy_federation_token ? 1 : 0

  project = var.project_id
  secret  = var.federation_token_secret_id
  version = var.federation_token_secret_version
}

# Egress: private nodes leave through Cloud NAT; with manually allocated NAT
# addresses, these are the addresses peers see.
data "google_compute_address" "nat" {
  count = length(var.egress_nat_address_names)

  project = var.project_id
  region  = local.region
  name    = var.egress_nat_address_names[count.index]
}

locals {
  east_west_port = 15443
  # A zonal location (europe-west3-a) has three dash-separated parts.
  location_is_zone = length(split("-", var.gke_cluster_location)) == 3
  region           = local.location_is_zone ? join("-", slice(split("-", var.gke_cluster_location), 0, 2)) : var.gke_cluster_location
  zone = coalesce(
    var.zone,
    local.location_is_zone ? var.gke_cluster_location : try(sort(data.google_container_cluster.this.node_locations)[0], "${local.region}-a"),
  )
  network = data.google_container_cluster.this.network

  egress_cidrs = distinct(concat(var.egress_cidrs, [for a in data.google_compute_address.nat : "${a.address}/32"]))

  lb_address           = var.reserve_static_ip ? google_compute_address.east_west[0].address : module.release.gateway_address
  dns_name             = var.dns_record == null ? null : trimsuffix(var.dns_record.name, ".")
  advertised_endpoints = local.dns_name != null ? ["${local.dns_name}:${local.east_west_port}"] : var.reserve_static_ip ? ["${google_compute_address.east_west[0].address}:${local.east_west_port}"] : []

  wi            = var.workload_identity
  workload_pool = try(data.google_container_cluster.this.workload_identity_config[0].workload_pool, "")
  sa            = module.release.gateway_service_account
  sa_annotations = merge(
    local.wi != null ? { "iam.gke.io/gcp-service-account" = google_service_account.gateway[0].email } : {},
    var.service_account_annotations,
  )

  lb_annotations = {
    "cloud.google.com/l4-rbs"       = "enabled"
    "cloud.google.com/network-tier" = "Premium"
  }
}

resource "google_compute_address" "east_west" {
  count = var.reserve_static_ip ? 1 : 0

  project      = var.project_id
  region       = local.region
  name         = "causeway-${var.cluster_id}-east-west"
  address_type = "EXTERNAL"
  network_tier = "PREMIUM"
  description  = "Causeway east-west gateway of ${var.cluster_id}"
  labels       = var.labels
}

# Passthrough load balancing keeps client addresses, so the nodes' firewall
# sees the peer gateways' own addresses.
resource "google_compute_firewall" "east_west" {
  count = length(var.node_network_tags) > 0 ? 1 : 0

  project     = var.project_id
  name        = "causeway-${var.cluster_id}-east-west"
  network     = local.network
  description = "Causeway east-west mTLS from peer gateways"
  direction   = "INGRESS"
  priority    = 900

  source_ranges = var.peer_gateway_cidrs
  target_tags   = var.node_network_tags

  allow {
    protocol = "tcp"
    ports    = [tostring(local.east_west_port)]
  }
}

module "release" {
  source = "../modules/causeway-release"

  release_name     = var.release_name
  namespace        = var.namespace
  chart_path       = var.chart_path
  chart_repository = var.chart_repository
  chart_version    = var.chart_version
  image_repository = var.image_repository
  image_tag        = var.image_tag

  cluster = {
    id            = var.cluster_id
    cloud         = "gcp"
    region        = local.region
    zone          = local.zone
    jurisdictions = var.jurisdictions
    trust_domain  = var.trust_domain
  }

  federation_endpoint          = var.federation_endpoint
  federation_token             = var.copy_federation_token ? data.google_secret_manager_secret_version.federation_token[0].secret_data : null
  gateway_identity_secret_name = var.gateway_identity_secret_name
  gateway_replicas             = var.gateway_identity_secret_name == null ? 1 : var.gateway_replicas

  east_west_service_annotations = merge(local.lb_annotations, var.east_west_service_annotations)
  east_west_source_ranges       = var.peer_gateway_cidrs
  east_west_load_balancer_ip    = var.reserve_static_ip ? google_compute_address.east_west[0].address : null
  advertised_endpoints          = local.advertised_endpoints
  service_account_annotations   = local.sa_annotations
  extra_values                  = var.extra_values
}

# --- DNS -------------------------------------------------------------------

resource "google_dns_record_set" "gateway" {
  count = var.dns_record == null ? 0 : 1

  project      = coalesce(var.dns_record.project, var.project_id)
  managed_zone = var.dns_record.managed_zone
  name         = "${local.dns_name}."
  type         = "A"
  ttl          = var.dns_record.ttl
  rrdatas      = [local.lb_address]
}

# --- Workload identity -------------------------------------------------------

# A Google service account the gateway's Kubernetes ServiceAccount acts as
# (GKE Workload Identity), allowed to read the federation token and
# extra_secret_ids (e.g. an SVID source) from Secret Manager.
resource "google_service_account" "gateway" {
  count = local.wi == null ? 0 : 1

  project      = var.project_id
  account_id   = coalesce(local.wi.google_service_account_id, trimsuffix(substr("causeway-${var.cluster_id}", 0, 30), "-"))
  display_name = "Causeway gateway of ${var.cluster_id}"
  description  = "GKE Workload Identity of ${local.sa.namespace}/${local.sa.name}: reads its federation token and SVID source"

  lifecycle {
    precondition {
      condition     = local.workload_pool != ""
      error_message = "workload_identity needs GKE Workload Identity on cluster ${var.gke_cluster_name} (workload_identity_config.workload_pool)."
    }
  }
}

resource "google_service_account_iam_member" "gateway_workload_identity" {
  count = local.wi == null ? 0 : 1

  service_account_id = google_service_account.gateway[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.workload_pool}[${local.sa.namespace}/${local.sa.name}]"
}

resource "google_secret_manager_secret_iam_member" "gateway" {
  for_each = local.wi == null ? toset([]) : toset(concat([var.federation_token_secret_id], local.wi.extra_secret_ids))

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.gateway[0].email}"
}

# --- Checks ------------------------------------------------------------------

check "egress_known" {
  assert {
    condition     = length(local.egress_cidrs) > 0
    error_message = "No egress address for ${var.cluster_id}: set egress_nat_address_names (the Cloud NAT's static addresses) or egress_cidrs. Peers allow this cluster by its egress addresses."
  }
}
