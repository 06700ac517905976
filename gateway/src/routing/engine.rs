//! The decision: residency filter, locality tiers, health, weighted pick.

use std::sync::Arc;

use super::decision::{Decision, Deny, DenyReason, Route, RouteReason};
use super::health::{HealthView, TargetHealth};
use super::host::parse_host;
use super::request::{RouteRequest, ServiceTarget};
use super::snapshot::{Candidate, RoutingSnapshot, ServiceRoutes};

/// The residency policies that apply to one request of one service.
pub(crate) struct ActiveResidency {
    /// Bit `i`: `request_policies[i]` applies (i < 64).
    mask: u64,
    /// How many policies apply in total.
    pub(crate) count: u32,
    /// The first applying policy (service-level first).
    pub(crate) first: Option<u32>,
}

impl ActiveResidency {
    pub(crate) fn new(snap: &RoutingSnapshot, svc: &ServiceRoutes, req: &RouteRequest<'_>) -> Self {
        let mut mask = 0u64;
        let mut count = svc.static_policies.len() as u32;
        let mut first = svc.static_policies.first().copied();
        for (pos, r) in svc.request_policies.iter().enumerate() {
            let applies = snap.rules[*r as usize]
                .matcher
                .as_ref()
                .is_some_and(|m| m.matches(req));
            if applies {
                if pos < 64 {
                    mask |= 1 << pos;
                }
                count += 1;
                first = first.or(Some(*r));
            }
        }
        Self { mask, count, first }
    }

    /// The rule that forbids `c` for this request, if any.
    pub(crate) fn blocking_rule(
        &self,
        snap: &RoutingSnapshot,
        svc: &ServiceRoutes,
        c: &Candidate,
        req: &RouteRequest<'_>,
    ) -> Option<u32> {
        if let Some(r) = c.static_block {
            return Some(r);
        }
        let hit = c.request_block & self.mask;
        if hit != 0 {
            return Some(svc.request_policies[hit.trailing_zeros() as usize]);
        }
        c.request_block_overflow.iter().find_map(|pos| {
            let r = svc.request_policies[*pos as usize];
            snap.rules[r as usize]
                .matcher
                .as_ref()
                .is_some_and(|m| m.matches(req))
                .then_some(r)
        })
    }
}

/// What happens to one candidate for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Removed by this residency rule (hard filter).
    Residency(u32),
    /// Does not export the requested port.
    PortNotExported,
    /// Already tried by this request.
    Excluded,
    /// No ready endpoints.
    NoReadyEndpoints,
    /// Ejected, circuit open or probe failing.
    Unhealthy(TargetHealth),
    /// Healthy but weight 0 (configured or rolled back).
    ZeroWeight(TargetHealth),
    /// May receive traffic with this weight.
    Eligible(u32, TargetHealth),
}

pub(crate) fn verdict<H: HealthView + ?Sized>(
    snap: &RoutingSnapshot,
    svc: &ServiceRoutes,
    active: &ActiveResidency,
    c: &Candidate,
    port: Option<u16>,
    health: &H,
    req: &RouteRequest<'_>,
) -> Verdict {
    if let Some(r) = active.blocking_rule(snap, svc, c, req) {
        return Verdict::Residency(r);
    }
    if let Some(p) = port
        && !c.ports.contains(&p)
    {
        return Verdict::PortNotExported;
    }
    if req.exclude.iter().any(|e| **e == *c.target.cluster) {
        return Verdict::Excluded;
    }
    if c.ready == 0 {
        return Verdict::NoReadyEndpoints;
    }
    let h = health.target_health(&svc.namespace, &svc.name, &c.target.cluster);
    if !h.available() {
        return Verdict::Unhealthy(h);
    }
    if h.rolled_back || c.weight == 0 {
        return Verdict::ZeroWeight(h);
    }
    Verdict::Eligible(c.weight, h)
}

/// Resolves the request's service and port.
pub(crate) fn resolve<'s>(
    snap: &'s RoutingSnapshot,
    req: &RouteRequest<'_>,
) -> Result<(&'s ServiceRoutes, Option<u16>), Deny> {
    let (svc, port) = match req.service {
        ServiceTarget::Host(h) => {
            let parsed = parse_host(h).map_err(|e| {
                Deny::new(DenyReason::InvalidHost, None, format!("host {h:?}: {e}"))
            })?;
            (
                snap.service(&parsed.namespace, &parsed.name),
                req.port.or(parsed.port),
            )
        }
        ServiceTarget::Service { namespace, name } => (snap.service(namespace, name), req.port),
    };
    let Some(svc) = svc else {
        return Err(Deny::new(
            DenyReason::UnknownService,
            None,
            format!("no cluster exports {}", ServiceName(req.service)),
        ));
    };
    if let Some(p) = port
        && svc.ports.binary_search(&p).is_err()
    {
        return Err(Deny::new(
            DenyReason::UnknownPort,
            None,
            format!(
                "no cluster exports port {p} of {}/{}",
                svc.namespace, svc.name
            ),
        ));
    }
    Ok((svc, port))
}

struct ServiceName<'a>(ServiceTarget<'a>);

impl std::fmt::Display for ServiceName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            ServiceTarget::Host(h) => f.write_str(h),
            ServiceTarget::Service { namespace, name } => write!(f, "{namespace}/{name}"),
        }
    }
}

/// SplitMix64: a tiny deterministic generator for the weighted pick.
fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix(*state)
}

/// The SplitMix64 finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Decides where one request goes. Pure: reads the snapshot, the health view
/// and the request; allocates nothing on the routed path beyond the returned
/// value (reference-counted clones).
///
/// 1. Residency is a hard filter: every applicable policy (service-level,
///    and request-level whose classification matches) must allow the
///    cluster; nothing below widens the set.
/// 2. Tiers best first (zone, region, failover priority labels, rest); the
///    first tier with a healthy, weighted candidate is used.
/// 3. Inside that tier a weighted pick with `request.random`.
/// 4. When nothing is left only because outlier detection ejected it, the
///    same again with the ejected candidates back in (panic routing).
pub fn decide<H: HealthView + ?Sized>(
    snapshot: &RoutingSnapshot,
    health: &H,
    request: &RouteRequest<'_>,
) -> Decision {
    let (svc, port) = match resolve(snapshot, request) {
        Ok(x) => x,
        Err(d) => return Decision::Deny(d),
    };
    let active = ActiveResidency::new(snapshot, svc, request);
    let mut tally = match pick(snapshot, svc, &active, port, health, request, false) {
        Ok(route) => return Decision::Route(route),
        Err(tally) => tally,
    };
    if tally.only_ejected {
        // Panic routing, as Envoy's panic threshold: when outlier detection
        // has ejected every allowed candidate that is otherwise up, ejection
        // would turn a partly failing service into a fully failing one, so
        // the ejected candidates are used (residency still filters first).
        match pick(snapshot, svc, &active, port, health, request, true) {
            Ok(mut route) => {
                route.reason.panic = true;
                return Decision::Route(route);
            }
            Err(t) => tally = t,
        }
    }
    let Tally {
        residency_filtered,
        any_allowed,
        any_healthy,
        ..
    } = tally;
    let policy = active
        .first
        .map(|r| Arc::clone(&snapshot.rules[r as usize].name));
    let svc_name = format!("{}/{}", svc.namespace, svc.name);
    let deny = if !any_allowed && residency_filtered > 0 {
        Deny::new(
            DenyReason::ResidencyNoAllowedCluster,
            policy,
            format!(
                "residency: no cluster exporting {svc_name} is allowed by the {} applicable residency polic{}",
                active.count,
                if active.count == 1 { "y" } else { "ies" }
            ),
        )
    } else if residency_filtered > 0 && !any_healthy {
        Deny::new(
            DenyReason::ResidencyNoHealthyAllowedCluster,
            policy,
            format!(
                "residency: no allowed cluster exporting {svc_name} has healthy capacity; {residency_filtered} disallowed cluster(s) are never used"
            ),
        )
    } else if any_healthy {
        Deny::new(
            DenyReason::NoWeightedCluster,
            policy,
            format!("every healthy cluster exporting {svc_name} has weight 0"),
        )
    } else {
        Deny::new(
            DenyReason::NoHealthyCluster,
            policy,
            format!("no cluster exporting {svc_name} has healthy capacity"),
        )
    };
    Decision::Deny(deny)
}

/// What the tiers held when no candidate could be picked.
#[derive(Debug, Default)]
struct Tally {
    residency_filtered: u32,
    any_allowed: bool,
    any_healthy: bool,
    /// Some allowed candidate is out only because it is ejected.
    only_ejected: bool,
}

/// Picks a target in the best tier with healthy, weighted capacity; with
/// `use_ejected`, candidates out only by ejection count as healthy.
fn pick<H: HealthView + ?Sized>(
    snapshot: &RoutingSnapshot,
    svc: &ServiceRoutes,
    active: &ActiveResidency,
    port: Option<u16>,
    health: &H,
    request: &RouteRequest<'_>,
    use_ejected: bool,
) -> Result<Route, Tally> {
    let mut tally = Tally::default();
    // Scramble the seed so that callers passing counters (or seeds a fixed
    // step apart) do not get overlapping streams.
    let mut rng = mix(request.random ^ 0x5851_F42D_4C95_7F2D);
    let mut any_allowed_earlier = false;
    for span in &svc.tiers {
        let mut total = 0u64;
        let mut count = 0u32;
        let mut chosen: Option<(&Candidate, u32)> = None;
        let mut tier_allowed = false;
        for c in &svc.candidates[span.start as usize..span.end as usize] {
            let mut v = verdict(snapshot, svc, active, c, port, health, request);
            if let Verdict::Unhealthy(h) = v
                && h.ejected
                && !h.circuit_open
                && !h.probe_failed
            {
                tally.only_ejected = true;
                if use_ejected {
                    v = if h.rolled_back || c.weight == 0 {
                        Verdict::ZeroWeight(h)
                    } else {
                        Verdict::Eligible(c.weight, h)
                    };
                }
            }
            match v {
                Verdict::Residency(_) => tally.residency_filtered += 1,
                Verdict::PortNotExported => {}
                Verdict::Excluded | Verdict::NoReadyEndpoints | Verdict::Unhealthy(_) => {
                    tier_allowed = true;
                }
                Verdict::ZeroWeight(_) => {
                    tier_allowed = true;
                    tally.any_healthy = true;
                }
                Verdict::Eligible(w, _) => {
                    tier_allowed = true;
                    tally.any_healthy = true;
                    total += u64::from(w);
                    count += 1;
                    let r = next_random(&mut rng);
                    if ((u128::from(r) * u128::from(total)) >> 64) < u128::from(w) {
                        chosen = Some((c, w));
                    }
                }
            }
        }
        if let Some((c, w)) = chosen {
            return Ok(Route {
                target: c.target.clone(),
                tier: span.tier.clone(),
                reason: RouteReason {
                    failover: any_allowed_earlier,
                    panic: false,
                    tier_candidates: count,
                    weight: w,
                    tier_weight: total,
                    residency_policy: active
                        .first
                        .map(|r| Arc::clone(&snapshot.rules[r as usize].name)),
                    residency_policies: active.count,
                    traffic_policy: svc.traffic_policy.clone(),
                },
                alternatives: count - 1,
            });
        }
        tally.any_allowed |= tier_allowed;
        any_allowed_earlier |= tier_allowed;
    }
    Err(tally)
}
