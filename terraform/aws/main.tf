# Causeway on an existing EKS cluster: the east-west gateway behind an NLB
# (AWS Load Balancer Controller, IP targets) whose security group admits port
# 15443 from the peer gateways only; cluster identity from the EKS data
# sources; the federation token from Secrets Manager.

data "aws_region" "current" {}

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

data "aws_secretsmanager_secret_version" "federation_token" {
  secret_id = var.federation_token_secret_id
}

data "aws_eip" "east_west" {
  for_each = toset(var.eip_allocation_ids)
  id       = each.value
}

locals {
  east_west_port = 15443
  eip_addresses  = [for id in var.eip_allocation_ids : data.aws_eip.east_west[id].public_ip]
  region         = data.aws_region.current.name
  zone           = coalesce(var.zone, data.aws_subnet.first.availability_zone)
  vpc_id         = data.aws_vpc.this.id

  nlb_annotations = merge(
    {
      "service.beta.kubernetes.io/aws-load-balancer-type"                                = "external"
      "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"                     = "ip"
      "service.beta.kubernetes.io/aws-load-balancer-scheme"                              = var.load_balancer_scheme
      "service.beta.kubernetes.io/aws-load-balancer-security-groups"                     = aws_security_group.east_west.id
      "service.beta.kubernetes.io/aws-load-balancer-manage-backend-security-group-rules" = "true"
      "service.beta.kubernetes.io/aws-load-balancer-attributes"                          = "load_balancing.cross_zone.enabled=true"
      "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags"            = join(",", [for k, v in merge(var.tags, { "causeway.dev/cluster" = var.cluster_id }) : "${k}=${v}"])
    },
    length(var.load_balancer_subnet_ids) > 0 ? { "service.beta.kubernetes.io/aws-load-balancer-subnets" = join(",", var.load_balancer_subnet_ids) } : {},
    length(var.eip_allocation_ids) > 0 ? { "service.beta.kubernetes.io/aws-load-balancer-eip-allocations" = join(",", var.eip_allocation_ids) } : {},
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
  federation_token             = data.aws_secretsmanager_secret_version.federation_token.secret_string
  gateway_identity_secret_name = var.gateway_identity_secret_name
  gateway_replicas             = var.gateway_identity_secret_name == null ? 1 : var.gateway_replicas

  east_west_service_annotations = merge(local.nlb_annotations, var.east_west_service_annotations)
  east_west_source_ranges       = var.peer_gateway_cidrs
  east_west_load_balancer_class = "service.k8s.aws/nlb"
  advertised_endpoints          = [for ip in local.eip_addresses : "${ip}:${local.east_west_port}"]
  service_account_annotations   = var.service_account_annotations
  extra_values                  = var.extra_values
}
