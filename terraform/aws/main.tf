# Causeway on an existing EKS cluster: the east-west gateway behind an NLB
# (AWS Load Balancer Controller, IP targets, client IP preserved) whose
# security group admits port 15443 from the peer gateways only; cluster
# identity from the EKS data sources; the egress addresses peers must allow;
# the federation token from Secrets Manager; optional Route 53 record and
# workload identity (IRSA or EKS Pod Identity).

data "aws_eks_cluster" "this" {
  name = var.eks_cluster_name
}

# The zone reported for the cluster: the first (sorted) subnet's AZ unless given.
data "aws_subnet" "first" {
  id = sort(tolist(data.aws_eks_cluster.this.vpc_config[0].subnet_ids))[0]
}

data "aws_vpc" "this" {
  id = data.aws_eks_cluster.this.vpc_config[0].vpc_id
}

# The NLB's subnets: its health checks come from its addresses in them.
data "aws_subnet" "load_balancer" {
  count = length(var.load_balancer_subnet_ids)
  id    = var.load_balancer_subnet_ids[count.index]
}

# Metadata only: the secret's ARN for the workload identity policy.
data "aws_secretsmanager_secret" "federation_token" {
  arn  = startswith(var.federation_token_secret_id, "arn:") ? var.federation_token_secret_id : null
  name = startswith(var.federation_token_secret_id, "arn:") ? null : var.federation_token_secret_id
}

# The value, only when Terraform copies it into the Kubernetes Secret.
data "aws_secretsmanager_secret_version" "federation_token" {
  count     = var.copy_federation_token ? 1 : 0
  secret_id = data.aws_secretsmanager_secret.federation_token.arn
}

data "aws_eip" "east_west" {
  count = length(var.eip_allocation_ids)
  id    = var.eip_allocation_ids[count.index]
}

# Egress: nodes in private subnets leave the VPC through its NAT gateways, so
# peers see the gateways' connections coming from the NAT gateways' addresses.
data "aws_nat_gateways" "vpc" {
  count  = var.egress_from_vpc_nat_gateways ? 1 : 0
  vpc_id = local.vpc_id

  filter {
    name   = "state"
    values = ["available"]
  }
}

data "aws_nat_gateway" "egress" {
  count = var.egress_from_vpc_nat_gateways ? length(data.aws_nat_gateways.vpc[0].ids) : 0
  id    = sort(data.aws_nat_gateways.vpc[0].ids)[count.index]
}

locals {
  east_west_port = 15443
  # arn:<partition>:eks:<region>:<account>:cluster/<name>: the cluster's own
  # region (no aws_region data source, whose `name` is deprecated in v6).
  cluster_arn   = split(":", data.aws_eks_cluster.this.arn)
  region        = local.cluster_arn[3]
  account_id    = local.cluster_arn[4]
  zone          = coalesce(var.zone, data.aws_subnet.first.availability_zone)
  vpc_id        = data.aws_vpc.this.id
  eip_addresses = data.aws_eip.east_west[*].public_ip

  # Public NAT gateways only (a private one has no public address).
  nat_egress_cidrs = [for n in data.aws_nat_gateway.egress : "${n.public_ip}/32" if try(n.public_ip, "") != ""]
  egress_cidrs     = distinct(concat(var.egress_cidrs, local.nat_egress_cidrs))

  # With client IP preservation the pods see the peers' own addresses; the
  # NLB's health checks still come from its private addresses in its subnets.
  health_check_cidrs = length(var.load_balancer_subnet_ids) > 0 ? data.aws_subnet.load_balancer[*].cidr_block : data.aws_vpc.this.cidr_block_associations[*].cidr_block

  dns_name             = var.dns_record == null ? null : trimsuffix(var.dns_record.name, ".")
  advertised_endpoints = local.dns_name != null ? ["${local.dns_name}:${local.east_west_port}"] : [for ip in local.eip_addresses : "${ip}:${local.east_west_port}"]

  nlb_annotations = merge(
    {
      "service.beta.kubernetes.io/aws-load-balancer-type"                                = "external"
      "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"                     = "ip"
      "service.beta.kubernetes.io/aws-load-balancer-scheme"                              = var.load_balancer_scheme
      "service.beta.kubernetes.io/aws-load-balancer-security-groups"                     = aws_security_group.east_west.id
      "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules" = "true"
      "service.beta.kubernetes.io/aws-load-balancer-attributes"                          = "load_balancing.cross_zone.enabled=true"
      # Off by default for IP targets: without it the pods see the NLB's
      # private addresses and the NetworkPolicy (peer CIDRs) refuses them.
      "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"  = "preserve_client_ip.enabled=true"
      "service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol"     = "tcp"
      "service.beta.kubernetes.io/aws-load-balancer-healthcheck-port"         = "traffic-port"
      "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags" = join(",", [for k, v in merge(var.tags, { "causeway.dev/cluster" = var.cluster_id }) : "${k}=${v}"])
    },
    length(var.load_balancer_subnet_ids) > 0 ? { "service.beta.kubernetes.io/aws-load-balancer-subnets" = join(",", var.load_balancer_subnet_ids) } : {},
    length(var.eip_allocation_ids) > 0 ? { "service.beta.kubernetes.io/aws-load-balancer-eip-allocations" = join(",", var.eip_allocation_ids) } : {},
  )

  wi          = var.workload_identity
  irsa        = local.wi != null ? local.wi.mode == "irsa" : false
  oidc_issuer = trimprefix(data.aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://")
  sa          = module.release.gateway_service_account
  sa_annotations = merge(
    local.irsa ? { "eks.amazonaws.com/role-arn" = aws_iam_role.gateway[0].arn } : {},
    var.service_account_annotations,
  )
}

# Front-end security group of the NLB: mTLS from the peer gateways only.
resource "aws_security_group" "east_west" {
  name_prefix = "causeway-${var.cluster_id}-east-west-"
  description = "Causeway east-west NLB: port ${local.east_west_port} from peer gateways"
  vpc_id      = local.vpc_id
  tags        = merge(var.tags, { Name = "causeway-${var.cluster_id}-east-west" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "peer_gateways" {
  for_each = toset(var.peer_gateway_cidrs)

  security_group_id = aws_security_group.east_west.id
  description       = "causeway east-west from peer gateways ${each.value}"
  ip_protocol       = "tcp"
  from_port         = local.east_west_port
  to_port           = local.east_west_port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
  tags              = var.tags
}

# The NLB forwards to the gateway pods (IP targets) inside the VPC.
resource "aws_vpc_security_group_egress_rule" "to_gateway_pods" {
  security_group_id = aws_security_group.east_west.id
  description       = "causeway east-west to gateway pods"
  ip_protocol       = "tcp"
  from_port         = local.east_west_port
  to_port           = local.east_west_port
  cidr_ipv4         = data.aws_vpc.this.cidr_block
  tags              = var.tags
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
    cloud         = "aws"
    region        = local.region
    zone          = local.zone
    jurisdictions = var.jurisdictions
    trust_domain  = var.trust_domain
  }

  federation_endpoint          = var.federation_endpoint
  federation_token             = var.copy_federation_token ? data.aws_secretsmanager_secret_version.federation_token[0].secret_string : null
  gateway_identity_secret_name = var.gateway_identity_secret_name
  gateway_replicas             = var.gateway_identity_secret_name == null ? 1 : var.gateway_replicas

  east_west_service_annotations = merge(local.nlb_annotations, var.east_west_service_annotations)
  east_west_source_ranges       = var.peer_gateway_cidrs
  east_west_health_check_cidrs  = local.health_check_cidrs
  east_west_load_balancer_class = "service.k8s.aws/nlb"
  advertised_endpoints          = local.advertised_endpoints
  service_account_annotations   = local.sa_annotations
  extra_values                  = var.extra_values
}

# --- DNS -------------------------------------------------------------------

# Canonical hosted zone of NLBs in the cluster's region (alias target).
data "aws_lb_hosted_zone_id" "nlb" {
  count = var.dns_record == null ? 0 : 1

  region             = local.region
  load_balancer_type = "network"
}

resource "aws_route53_record" "gateway" {
  count = var.dns_record == null ? 0 : 1

  zone_id = var.dns_record.zone_id
  name    = local.dns_name
  type    = "A"

  alias {
    name                   = module.release.gateway_address
    zone_id                = data.aws_lb_hosted_zone_id.nlb[0].id
    evaluate_target_health = true
  }
}

# --- Workload identity -------------------------------------------------------

# IRSA needs the cluster's IAM OIDC provider; looking it up fails the plan
# clearly when it is missing.
data "aws_iam_openid_connect_provider" "cluster" {
  count = local.irsa ? 1 : 0
  url   = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

resource "aws_iam_role" "gateway" {
  count = local.wi == null ? 0 : 1

  name                 = coalesce(local.wi.role_name, substr("causeway-${var.cluster_id}-gateway", 0, 64))
  description          = "Causeway gateway ${local.sa.namespace}/${local.sa.name} of ${var.cluster_id}: reads its federation token and SVID source"
  permissions_boundary = local.wi.permissions_boundary
  tags                 = var.tags

  # IRSA: the cluster's OIDC provider vouches for the ServiceAccount; Pod
  # Identity: the EKS Pod Identity agent assumes the role for it.
  assume_role_policy = local.irsa ? jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = data.aws_iam_openid_connect_provider.cluster[0].arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = {
          "${local.oidc_issuer}:sub" = "system:serviceaccount:${local.sa.namespace}:${local.sa.name}"
          "${local.oidc_issuer}:aud" = "sts.amazonaws.com"
        }
      }
    }]
    }) : jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "pods.eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnEquals    = { "aws:SourceArn" = data.aws_eks_cluster.this.arn }
      }
    }]
  })
}

resource "aws_iam_role_policy" "gateway_secrets" {
  count = local.wi == null ? 0 : 1

  name = "causeway-gateway-secrets"
  role = aws_iam_role.gateway[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [{
        Sid      = "ReadFederationTokenAndSvidSource"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
        Resource = distinct(concat([data.aws_secretsmanager_secret.federation_token.arn], local.wi.extra_secret_arns))
      }],
      length(local.wi.kms_key_arns) > 0 ? [{
        Sid      = "DecryptSecrets"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = local.wi.kms_key_arns
        Condition = {
          StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
        }
      }] : [],
    )
  })
}

resource "aws_eks_pod_identity_association" "gateway" {
  count = local.wi != null && !local.irsa ? 1 : 0

  cluster_name    = var.eks_cluster_name
  namespace       = local.sa.namespace
  service_account = local.sa.name
  role_arn        = aws_iam_role.gateway[0].arn
  tags            = var.tags
}

# --- Checks ------------------------------------------------------------------

check "egress_known" {
  assert {
    condition     = length(local.egress_cidrs) > 0
    error_message = "No egress address found for ${var.cluster_id}: no public NAT gateway in VPC ${local.vpc_id} and egress_cidrs is empty. Peers allow this cluster by its egress addresses; set egress_cidrs."
  }
}
