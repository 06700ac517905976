//! The routing engine: a pure function from a catalog snapshot, health and a
//! request to a decision (DESIGN.md §4).
//!
//! - [`RoutingSnapshot::build`] precomputes, once per catalog revision,
//!   every service's candidates, locality tiers, weights and residency
//!   verdicts ([`RoutingSnapshot::with_changed_services`] redoes only the
//!   services whose exports changed);
//! - [`decide`] runs per request: residency as a hard filter, the best
//!   locality tier with healthy capacity, a weighted pick inside it;
//! - [`explain`] returns the full reasoning for `/debug/route`.

mod decision;
mod engine;
mod explain;
mod health;
mod host;
mod request;
mod residency;
mod snapshot;

pub use decision::{Decision, Deny, DenyReason, Route, RouteReason, Target, Tier};
pub use engine::decide;
pub use explain::{
    CandidateExplanation, CandidateStatus, Explanation, ResidencyExplanation, explain,
};
pub use health::{AllHealthy, HealthView, TargetHealth};
pub use host::{CLUSTERSET_SUFFIX, HostError, HostRef, parse_host};
pub use request::{ClaimSource, HeaderSource, Headers, NoHeaders, RouteRequest, ServiceTarget};
pub use residency::ResidencyVerdict;
pub use snapshot::{CatalogView, LocalCluster, RoutingSnapshot};

#[cfg(test)]
mod tests;
