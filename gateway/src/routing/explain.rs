//! `explain`: the full reasoning behind a decision, for `/debug/route` and
//! `causewayctl explain`.

use serde::Serialize;

use super::decision::{Decision, Tier};
use super::engine::{ActiveResidency, Verdict, decide, resolve};
use super::health::{HealthView, TargetHealth};
use super::request::RouteRequest;
use super::snapshot::RoutingSnapshot;

/// The reasoning behind one decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The catalog revision of the snapshot.
    pub revision: u64,
    /// The local cluster id.
    pub local_cluster: String,
    /// The resolved service (`namespace/name`), if it resolved.
    pub service: Option<String>,
    /// The requested port, if any.
    pub port: Option<u16>,
    /// The traffic policy of the service, if any.
    pub traffic_policy: Option<String>,
    /// Whether weights come from the traffic policy (else from the exports).
    pub weights_from_policy: bool,
    /// The failover priority labels in force.
    pub failover_priority: Vec<String>,
    /// Every residency policy selecting the service, and whether it applies
    /// to this request.
    pub residency: Vec<ResidencyExplanation>,
    /// Every cluster exporting the service, in tier order.
    pub candidates: Vec<CandidateExplanation>,
    /// The decision (from [`decide`], with the same inputs).
    pub decision: Decision,
}

/// One residency policy selecting the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResidencyExplanation {
    /// The policy name.
    pub policy: String,
    /// Whether it applies to this request.
    pub applies: bool,
    /// `service` (every request of the service) or `request` (matched by
    /// header or claim).
    pub scope: &'static str,
    /// The allowed jurisdictions.
    pub allowed_jurisdictions: Vec<String>,
    /// The allowed regions.
    pub allowed_regions: Vec<String>,
}

/// What happened to one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum CandidateStatus {
    /// Removed by a residency policy.
    ResidencyFiltered {
        /// The policy.
        policy: String,
    },
    /// Does not export the requested port.
    PortNotExported,
    /// Excluded by the request (already tried).
    Excluded,
    /// No ready endpoints.
    NoReadyEndpoints,
    /// Ejected, circuit open or probe failing.
    Unhealthy,
    /// Weight 0 (configured, or forced by the rollback guard).
    ZeroWeight,
    /// Could receive traffic.
    Eligible {
        /// Share of the tier's healthy weight, 0..=1, when the tier is the
        /// chosen one.
        share: Option<f64>,
    },
}

/// One candidate cluster.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateExplanation {
    /// The cluster id.
    pub cluster: String,
    /// Whether it is the local cluster.
    pub local: bool,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: String,
    /// Jurisdictions.
    pub jurisdictions: Vec<String>,
    /// Locality tier relative to the local cluster.
    pub tier: Tier,
    /// Ready endpoints.
    pub ready: u32,
    /// Configured weight.
    pub weight: u32,
    /// Exported ports.
    pub ports: Vec<u16>,
    /// The export is stale (its cluster stopped heartbeating).
    pub stale: bool,
    /// Health at the time of the explanation.
    pub health: Option<TargetHealth>,
    /// The verdict.
    #[serde(flatten)]
    pub status: CandidateStatus,
    /// Whether this is the chosen target.
    pub chosen: bool,
}

/// Explains the decision for `request`: every candidate, which rule filtered
/// it, the tiers, the weights, and the decision itself. Slow path; allocates.
pub fn explain<H: HealthView + ?Sized>(
    snapshot: &RoutingSnapshot,
    health: &H,
    request: &RouteRequest<'_>,
) -> Explanation {
    let decision = decide(snapshot, health, request);
    let mut ex = Explanation {
        revision: snapshot.revision,
        local_cluster: snapshot.local.id.clone(),
        service: None,
        port: request.port,
        traffic_policy: None,
        weights_from_policy: false,
        failover_priority: Vec::new(),
        residency: Vec::new(),
        candidates: Vec::new(),
        decision,
    };
    let Ok((svc, port)) = resolve(snapshot, request) else {
        return ex;
    };
    ex.service = Some(format!("{}/{}", svc.namespace, svc.name));
    ex.port = port;
    ex.traffic_policy = svc.traffic_policy.as_deref().map(str::to_owned);
    ex.weights_from_policy = svc.weights_from_policy;
    ex.failover_priority = svc.failover_priority.clone();
    let active = ActiveResidency::new(snapshot, svc, request);
    for (scope, list) in [
        ("service", &svc.static_policies),
        ("request", &svc.request_policies),
    ] {
        for r in list {
            let rule = &snapshot.rules[*r as usize];
            ex.residency.push(ResidencyExplanation {
                policy: rule.name.to_string(),
                applies: scope == "service"
                    || rule.matcher.as_ref().is_some_and(|m| m.matches(request)),
                scope,
                allowed_jurisdictions: rule.allowed_jurisdictions.clone(),
                allowed_regions: rule.allowed_regions.clone(),
            });
        }
    }
    let chosen_cluster = ex.decision.route().map(|r| r.target.cluster.clone());
    let chosen_tier = ex.decision.route().map(|r| r.tier.clone());
    let chosen_total = ex.decision.route().map(|r| r.reason.tier_weight);
    for span in &svc.tiers {
        let in_chosen = chosen_tier.as_ref() == Some(&span.tier);
        for c in &svc.candidates[span.start as usize..span.end as usize] {
            let v = super::engine::verdict(snapshot, svc, &active, c, port, health, request);
            let (status, h) = match v {
                Verdict::Residency(r) => (
                    CandidateStatus::ResidencyFiltered {
                        policy: snapshot.rules[r as usize].name.to_string(),
                    },
                    None,
                ),
                Verdict::PortNotExported => (CandidateStatus::PortNotExported, None),
                Verdict::Excluded => (CandidateStatus::Excluded, None),
                Verdict::NoReadyEndpoints => (CandidateStatus::NoReadyEndpoints, None),
                Verdict::Unhealthy(h) => (CandidateStatus::Unhealthy, Some(h)),
                Verdict::ZeroWeight(h) => (CandidateStatus::ZeroWeight, Some(h)),
                Verdict::Eligible(w, h) => (
                    CandidateStatus::Eligible {
                        share: chosen_total
                            .filter(|t| in_chosen && *t > 0)
                            .map(|t| f64::from(w) / t as f64),
                    },
                    Some(h),
                ),
            };
            let cl = &snapshot.clusters[c.cluster as usize];
            ex.candidates.push(CandidateExplanation {
                cluster: c.target.cluster.to_string(),
                local: c.target.local,
                region: cl.region.to_string(),
                zone: cl.zone.to_string(),
                jurisdictions: cl.jurisdictions.to_vec(),
                tier: span.tier.clone(),
                ready: c.ready,
                weight: c.weight,
                ports: c.ports.to_vec(),
                stale: c.stale,
                health: h,
                status,
                chosen: chosen_cluster.as_ref() == Some(&c.target.cluster),
            });
        }
    }
    ex
}
