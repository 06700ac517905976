# The helm wiring shared by the per-cloud modules and the federation module:
# the CRDs chart, the causeway chart with values built from typed inputs, and
# the Kubernetes Secrets it references.

locals {
  chart_dir = coalesce(var.chart_path, "${path.module}/../../../charts/causeway")
  # Resource names as the chart builds them (causeway.fullname).
  fullname = strcontains(var.release_name, "causeway") ? var.release_name : "${var.release_name}-causeway"

  # causeway.gateway.fullname: truncated to 63 characters, no trailing '-'.
  gateway_fullname             = trimsuffix(substr("${local.fullname}-gateway", 0, 63), "-")
  gateway_service_name         = "${local.gateway_fullname}-east-west"
  gateway_service_account_name = local.gateway_fullname
  federation_service_name      = "${local.fullname}-federation"

  fed              = var.federation_api
  jwt_secret_name  = coalesce(local.fed.jwt_existing_secret_name, "${local.fullname}-federation-jwt")
  create_jwt       = local.fed.enabled && local.fed.jwt_public_key_pem != null && local.fed.jwt_existing_secret_name == null
  create_token     = var.gateway_enabled && var.federation_token != null
  identity_is_file = var.gateway_identity_secret_name != null

  # Every key below must exist in charts/causeway/values.schema.json
  # (e2e/tests/terraform.rs checks it). Nulls drop the chart default.
  chart_values = {
    image = {
      repository = var.image_repository
      tag        = var.image_tag
    }
    cluster = var.cluster == null ? null : {
      id            = var.cluster.id
      cloud         = var.cluster.cloud
      region        = var.cluster.region
      zone          = var.cluster.zone
      jurisdictions = var.cluster.jurisdictions
      trustDomain   = var.cluster.trust_domain
    }
    federation = {
      endpoint = var.federation_endpoint == null ? "" : var.federation_endpoint
      tokenSecret = {
        name = var.gateway_enabled ? var.federation_token_secret_name : null
        key  = "token"
      }
    }
    gateway = {
      enabled             = var.gateway_enabled
      replicas            = var.gateway_replicas
      advertisedEndpoints = var.advertised_endpoints
      identity = {
        mode       = local.identity_is_file ? "secret" : "authority"
        secretName = local.identity_is_file ? var.gateway_identity_secret_name : ""
      }
      autoscaling = {
        enabled     = var.gateway_autoscaling != null
        minReplicas = var.gateway_autoscaling == null ? 2 : var.gateway_autoscaling.min_replicas
        maxReplicas = var.gateway_autoscaling == null ? 10 : var.gateway_autoscaling.max_replicas
      }
      eastWestService = {
        type                     = "LoadBalancer"
        annotations              = var.east_west_service_annotations
        loadBalancerSourceRanges = var.east_west_source_ranges
        loadBalancerClass        = var.east_west_load_balancer_class == null ? "" : var.east_west_load_balancer_class
        loadBalancerIP           = var.east_west_load_balancer_ip == null ? "" : var.east_west_load_balancer_ip
      }
      # The load balancer's source ranges plus where its health checks come
      # from (AWS NLB with IP targets probes the pods from its own subnets).
      # No source ranges: any source, health checks included.
      networkPolicy = {
        eastWestFrom = length(var.east_west_source_ranges) == 0 ? [] : distinct(concat(var.east_west_source_ranges, var.east_west_health_check_cidrs))
      }
    }
    serviceAccount = {
      annotations = var.service_account_annotations
    }
    federationApi = {
      enabled  = local.fed.enabled
      replicas = local.fed.replicas
      service = {
        type        = local.fed.service_type
        annotations = local.fed.service_annotations
      }
      jwt = {
        algorithm      = local.fed.jwt_algorithm
        existingSecret = local.fed.enabled ? local.jwt_secret_name : ""
        issuer         = local.fed.jwt_issuer == null ? "" : local.fed.jwt_issuer
      }
      externalEtcd = {
        endpoints = local.fed.bundled_etcd ? [] : local.fed.etcd_endpoints
        tls = {
          enabled    = local.fed.etcd_tls_secret_name != null
          secretName = local.fed.etcd_tls_secret_name == null ? "" : local.fed.etcd_tls_secret_name
        }
      }
      staleAfter = local.fed.stale_after == null ? "" : local.fed.stale_after
    }
    etcd = {
      enabled  = local.fed.enabled && local.fed.bundled_etcd
      replicas = local.fed.bundled_etcd_replicas
    }
  }
}

resource "kubernetes_namespace_v1" "this" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "causeway"
    }
  }
}

# The cluster's federation token, copied from the cloud's secret store.
resource "kubernetes_secret_v1" "federation_token" {
  count = local.create_token ? 1 : 0

  metadata {
    name      = var.federation_token_secret_name
    namespace = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "causeway"
    }
  }

  data = {
    token = var.federation_token
  }

  depends_on = [kubernetes_namespace_v1.this]
}

# The federation API's JWT verification key.
resource "kubernetes_secret_v1" "federation_jwt" {
  count = local.create_jwt ? 1 : 0

  metadata {
    name      = local.jwt_secret_name
    namespace = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "causeway"
    }
  }

  data = local.fed.jwt_algorithm == "ES256" ? { "public.pem" = local.fed.jwt_public_key_pem } : { "secret" = local.fed.jwt_public_key_pem }

  depends_on = [kubernetes_namespace_v1.this]
}

resource "helm_release" "crds" {
  count = var.install_crds ? 1 : 0

  name       = "${var.release_name}-crds"
  namespace  = var.namespace
  repository = var.chart_repository
  chart      = var.chart_repository == null ? "${local.chart_dir}/../causeway-crds" : "causeway-crds"
  version    = var.chart_version

  depends_on = [kubernetes_namespace_v1.this]
}

resource "helm_release" "causeway" {
  name       = var.release_name
  namespace  = var.namespace
  repository = var.chart_repository
  chart      = var.chart_repository == null ? local.chart_dir : "causeway"
  version    = var.chart_version

  values = concat([yamlencode(local.chart_values)], var.extra_values)

  wait            = true
  timeout         = var.timeout
  atomic          = true
  cleanup_on_fail = true

  lifecycle {
    precondition {
      condition     = !var.gateway_enabled || var.cluster != null
      error_message = "cluster (id, region, zone, jurisdictions, trust_domain) is required when the gateway is enabled."
    }
    precondition {
      condition     = !var.gateway_enabled || var.federation_endpoint != null || var.federation_api.enabled
      error_message = "federation_endpoint is required when the gateway is enabled and the federation API is not in this release."
    }
  }

  depends_on = [
    kubernetes_namespace_v1.this,
    kubernetes_secret_v1.federation_token,
    kubernetes_secret_v1.federation_jwt,
    helm_release.crds,
  ]
}

# Read back after helm waited for the load balancer to get its address.
data "kubernetes_service_v1" "east_west" {
  count = var.gateway_enabled ? 1 : 0

  metadata {
    name      = local.gateway_service_name
    namespace = var.namespace
  }

  depends_on = [helm_release.causeway]
}

data "kubernetes_service_v1" "federation" {
  count = local.fed.enabled ? 1 : 0

  metadata {
    name      = local.federation_service_name
    namespace = var.namespace
  }

  depends_on = [helm_release.causeway]
}
