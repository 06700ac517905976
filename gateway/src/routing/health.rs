//! The health input of the routing engine.

use serde::Serialize;

/// The state of one target (a service in one cluster) as the request path
/// sees it right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TargetHealth {
    /// Ejected by outlier detection.
    pub ejected: bool,
    /// A circuit breaker threshold is reached.
    pub circuit_open: bool,
    /// The active probe of the cluster's gateway fails.
    pub probe_failed: bool,
    /// The rollback guard forced this target's weight to zero.
    pub rolled_back: bool,
}

impl TargetHealth {
    /// Whether the target may receive new requests (ignores weights).
    pub fn available(&self) -> bool {
        !(self.ejected || self.circuit_open || self.probe_failed)
    }
}

/// Health of targets, read on the request path. Implementations must be
/// cheap (no I/O, no blocking beyond short uncontended locks).
pub trait HealthView {
    /// The health of `namespace/name` served by `cluster`.
    fn target_health(&self, namespace: &str, name: &str, cluster: &str) -> TargetHealth;
}

/// A health view in which everything is healthy.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllHealthy;

impl HealthView for AllHealthy {
    fn target_health(&self, _namespace: &str, _name: &str, _cluster: &str) -> TargetHealth {
        TargetHealth::default()
    }
}

impl<H: HealthView + ?Sized> HealthView for &H {
    fn target_health(&self, namespace: &str, name: &str, cluster: &str) -> TargetHealth {
        (**self).target_health(namespace, name, cluster)
    }
}
