# Causeway on an existing GKE cluster: the east-west gateway behind an
# external passthrough Network Load Balancer (backend-service based,
# `cloud.google.com/l4-rbs`), a static regional address, source ranges and a
# VPC firewall rule limited to the peer gateways; cluster identity from the
# GKE data source; the federation token from Secret Manager.

data "google_container_cluster" "this" {
  project  = var.project_id
  name     = var.gke_cluster_name
  location = var.gke_cluster_location
}

data "google_secret_manager_secret_version" "federation_token" {
  project = var.project_id
  secret  = var.federation_token_secret_id
  version = var.federation_token_secret_version
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
  federation_token             = data.google_secret_manager_secret_version.federation_token.secret_data
  gateway_identity_secret_name = var.gateway_identity_secret_name
  gateway_replicas             = var.gateway_identity_secret_name == null ? 1 : var.gateway_replicas

  east_west_service_annotations = merge(local.lb_annotations, var.east_west_service_annotations)
  east_west_source_ranges       = var.peer_gateway_cidrs
  east_west_load_balancer_ip    = var.reserve_static_ip ? google_compute_address.east_west[0].address : null
  advertised_endpoints          = var.reserve_static_ip ? ["${google_compute_address.east_west[0].address}:${local.east_west_port}"] : []
  service_account_annotations   = var.service_account_annotations
  extra_values                  = var.extra_values
}
