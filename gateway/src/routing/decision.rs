//! The result of a routing decision.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// Where a routed request goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// The destination cluster id.
    pub cluster: Arc<str>,
    /// Whether the destination is the local cluster (serve from local
    /// endpoints, not through an east-west gateway).
    pub local: bool,
    /// `host:port` addresses of the destination's east-west gateway (empty
    /// when `local`).
    pub gateway_endpoints: Arc<[String]>,
    /// The SPIFFE trust domain of the destination (verify the peer against
    /// this bundle).
    pub trust_domain: Arc<str>,
}

/// The locality tier a target was chosen from, best first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "label")]
pub enum Tier {
    /// The local cluster or a cluster in the same zone.
    Zone,
    /// A cluster in the same region.
    Region,
    /// A cluster sharing the given failover-priority label with the local
    /// cluster (`jurisdiction`: any shared jurisdiction).
    Priority(Arc<str>),
    /// Any other cluster.
    Rest,
}

impl Tier {
    /// A short machine-readable name (`zone`, `region`, `priority`, `rest`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::Zone => "zone",
            Tier::Region => "region",
            Tier::Priority(_) => "priority",
            Tier::Rest => "rest",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tier::Priority(label) => write!(f, "priority({label})"),
            other => f.write_str(other.as_str()),
        }
    }
}

/// Why a target was chosen: machine-readable, with a human rendering through
/// `Display`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteReason {
    /// The best tier with healthy capacity was not the best tier that has
    /// candidates (the request failed over).
    pub failover: bool,
    /// Panic routing: every allowed candidate was ejected by outlier
    /// detection, so the ejected ones were used (as Envoy's panic threshold).
    pub panic: bool,
    /// Healthy, weighted candidates in the chosen tier (including the chosen
    /// one).
    pub tier_candidates: u32,
    /// The chosen target's weight and the tier's total healthy weight.
    pub weight: u32,
    /// Sum of the weights of the healthy candidates of the tier.
    pub tier_weight: u64,
    /// The name of the first residency policy that governed the decision.
    pub residency_policy: Option<Arc<str>>,
    /// How many residency policies governed the decision.
    pub residency_policies: u32,
    /// The traffic policy that applied, if any.
    pub traffic_policy: Option<Arc<str>>,
}

impl RouteReason {
    /// Whether a residency policy governed the decision.
    pub fn residency_governed(&self) -> bool {
        self.residency_policies > 0
    }
}

impl fmt::Display for RouteReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "weighted pick ({}/{}) among {} healthy candidate(s)",
            self.weight, self.tier_weight, self.tier_candidates
        )?;
        if self.failover {
            f.write_str(" after failover from better tiers without healthy capacity")?;
        }
        if self.panic {
            f.write_str(" (panic: every allowed candidate is ejected, ejection ignored)")?;
        }
        if let Some(p) = &self.residency_policy {
            write!(f, "; residency restricted by {p}")?;
            if self.residency_policies > 1 {
                write!(f, " and {} more", self.residency_policies - 1)?;
            }
        }
        Ok(())
    }
}

/// A routed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Where to send it.
    pub target: Target,
    /// The tier the target was chosen from.
    pub tier: Tier,
    /// Why.
    pub reason: RouteReason,
    /// Healthy, residency-allowed candidates other than the target in the
    /// chosen tier: retries (which call [`super::decide`] again with the
    /// tried clusters in [`super::RouteRequest::exclude`]) have somewhere to
    /// go without leaving the tier. Retries never widen the residency set.
    pub alternatives: u32,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// The host is not `<svc>.<ns>.svc.clusterset.local[:port]` (400).
    InvalidHost,
    /// No cluster exports the service (404).
    UnknownService,
    /// No cluster exports the requested port of the service (404).
    UnknownPort,
    /// Residency policies removed every candidate (503).
    ResidencyNoAllowedCluster,
    /// Residency policies leave candidates, but none has healthy capacity;
    /// clusters outside the allowed set are never used instead (503).
    ResidencyNoHealthyAllowedCluster,
    /// No candidate has ready endpoints and is healthy (503).
    NoHealthyCluster,
    /// Healthy candidates exist but all have weight 0 (503).
    NoWeightedCluster,
}

impl DenyReason {
    /// The machine-readable reason (`residency_no_allowed_cluster`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            DenyReason::InvalidHost => "invalid_host",
            DenyReason::UnknownService => "unknown_service",
            DenyReason::UnknownPort => "unknown_port",
            DenyReason::ResidencyNoAllowedCluster => "residency_no_allowed_cluster",
            DenyReason::ResidencyNoHealthyAllowedCluster => "residency_no_healthy_allowed_cluster",
            DenyReason::NoHealthyCluster => "no_healthy_cluster",
            DenyReason::NoWeightedCluster => "no_weighted_cluster",
        }
    }

    /// The HTTP status the caller sees.
    pub fn status(&self) -> u16 {
        match self {
            DenyReason::InvalidHost => 400,
            DenyReason::UnknownService | DenyReason::UnknownPort => 404,
            DenyReason::ResidencyNoAllowedCluster
            | DenyReason::ResidencyNoHealthyAllowedCluster
            | DenyReason::NoHealthyCluster
            | DenyReason::NoWeightedCluster => 503,
        }
    }

    /// Whether the denial is caused by a residency policy (`residency` class).
    pub fn is_residency(&self) -> bool {
        matches!(
            self,
            DenyReason::ResidencyNoAllowedCluster | DenyReason::ResidencyNoHealthyAllowedCluster
        )
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deny {
    /// The HTTP status to answer with.
    pub status: u16,
    /// The machine-readable reason.
    pub reason: DenyReason,
    /// The residency policy responsible, for residency denials.
    pub policy: Option<Arc<str>>,
    /// A human-readable explanation.
    pub message: String,
}

impl Deny {
    pub(crate) fn new(reason: DenyReason, policy: Option<Arc<str>>, message: String) -> Self {
        Self {
            status: reason.status(),
            reason,
            policy,
            message,
        }
    }
}

/// The outcome of [`super::decide`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Decision {
    /// Send the request to a target.
    Route(Route),
    /// Refuse the request.
    Deny(Deny),
}

impl Decision {
    /// The route, if routed.
    pub fn route(&self) -> Option<&Route> {
        match self {
            Decision::Route(r) => Some(r),
            Decision::Deny(_) => None,
        }
    }

    /// The denial, if denied.
    pub fn deny(&self) -> Option<&Deny> {
        match self {
            Decision::Route(_) => None,
            Decision::Deny(d) => Some(d),
        }
    }
}
