# The federation API and its etcd, for whoever hosts the control plane: the
# causeway chart with the federation API on and the gateway off. Run the cloud
# module as well in the same cluster when it is also a member.

module "release" {
  source = "../modules/causeway-release"

  release_name     = var.release_name
  namespace        = var.namespace
  chart_path       = var.chart_path
  chart_repository = var.chart_repository
  chart_version    = var.chart_version
  image_repository = var.image_repository
  image_tag        = var.image_tag
  install_crds     = false

  gateway_enabled = false

  federation_api = {
    enabled                  = true
    replicas                 = var.replicas
    bundled_etcd             = var.etcd_mode == "bundled"
    bundled_etcd_replicas    = var.bundled_etcd_replicas
    etcd_endpoints           = var.etcd_mode == "external" ? var.etcd_endpoints : []
    etcd_tls_secret_name     = var.etcd_mode == "external" ? var.etcd_tls_secret_name : null
    jwt_algorithm            = var.jwt_algorithm
    jwt_public_key_pem       = var.jwt_public_key_pem
    jwt_existing_secret_name = var.jwt_existing_secret_name
    jwt_issuer               = var.jwt_issuer
    service_type             = var.service_type
    service_annotations      = var.service_annotations
    stale_after              = var.stale_after
  }

  extra_values = var.extra_values
}

check "etcd_endpoints_given" {
  assert {
    condition     = var.etcd_mode == "bundled" || length(var.etcd_endpoints) > 0
    error_message = "etcd_mode = external needs etcd_endpoints."
  }
}
