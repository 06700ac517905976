//! The proxy's side of resilience: wraps the routing engineer's
//! [`Resilience`] registry (outlier detection, breakers, rate limits, retry
//! budget and rollback guard per service, configured from `TrafficPolicy`),
//! feeds it upstream results and probe outcomes, and turns its events into
//! log lines and metrics.
//!
//! The registry is re-applied (keeping existing state) when a catalog is
//! installed; the request path only does short, uncontended reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::catalog::{CatalogState, Timeouts};
use crate::config::GatewayConfig;
use crate::metrics::{Label, Metrics, ServiceLabels, ServiceTargetLabels, TargetLabels};
use crate::resilience::{
    OutlierEvent, RateLimitConfig, RateLimited, RateLimiter, Resilience, RetryConfig,
    ServiceResilience, TryOutcome,
};
use crate::routing::{HealthView, TargetHealth};

/// What the request path knows about one service in one catalog revision:
/// its metric label, the settings its `TrafficPolicy` gives it, and handles
/// to its stateful health (shared across revisions).
#[derive(Debug)]
pub struct ServiceHealth {
    /// `namespace/name` as a metric label.
    pub label: Label,
    /// The registry's state of the service.
    pub res: Arc<ServiceResilience>,
    /// Retry settings of this revision.
    pub retry: RetryConfig,
    /// Upstream timeouts from the `TrafficPolicy` (None = gateway defaults).
    pub timeouts: Option<Timeouts>,
    /// Whether local endpoints are spoken to over h2c (an HTTP/2
    /// `appProtocol`); gRPC requests always are.
    pub h2: bool,
    /// Gateway-wide default rate limit (`limits.rateLimitRps`), applied in
    /// addition to a `TrafficPolicy` rate limit.
    default_limiter: Option<Arc<RateLimiter>>,
}

impl ServiceHealth {
    /// Takes a rate-limit token for `source` from the policy limiter and the
    /// gateway default limiter.
    pub fn check_rate(&self, source: &str, now: Instant) -> Result<(), RateLimited> {
        self.res.check_rate(source, now)?;
        match &self.default_limiter {
            Some(l) => l.check(source, now),
            None => Ok(()),
        }
    }
}

/// What a service keeps from one catalog revision to the next: its label
/// and its default rate limiter (with its buckets).
type Carried = (Label, Option<Arc<RateLimiter>>);

/// Services by `namespace/name`.
pub type ServiceMap = HashMap<Box<str>, Arc<ServiceHealth>>;

/// Health of every service and remote gateway.
#[derive(Debug)]
pub struct HealthRegistry {
    registry: Resilience,
    /// The stateful parts of the last revision's services, reused by the next.
    last: Mutex<HashMap<Box<str>, Carried>>,
    default_rate: Option<RateLimitConfig>,
    metrics: Metrics,
}

impl HealthRegistry {
    /// An empty registry.
    pub fn new(config: &GatewayConfig, metrics: Metrics) -> Self {
        let default_rate = (config.limits.rate_limit_rps > 0.0).then(|| RateLimitConfig {
            requests_per_second: config.limits.rate_limit_rps,
            burst: config.limits.rate_limit_burst.max(1.0) as u32,
        });
        Self {
            registry: Resilience::new(),
            last: Mutex::new(HashMap::new()),
            default_rate,
            metrics,
        }
    }

    /// Applies `catalog` (traffic policies, target sets) to the registry and
    /// returns the services of that revision; existing state (ejections,
    /// buckets) survives.
    pub fn sync_targets(&self, catalog: &CatalogState) -> Arc<ServiceMap> {
        self.registry
            .apply(&catalog.catalog, &catalog.routing, Instant::now());
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next: ServiceMap = HashMap::new();
        let mut kept = HashMap::new();
        for (ns, name) in catalog.routing.services() {
            let Some(res) = self.registry.service(ns, name) else {
                continue;
            };
            let key: Box<str> = format!("{ns}/{name}").into_boxed_str();
            let (label, limiter) = last.remove(&key).unwrap_or_else(|| {
                (
                    Label(Arc::from(&*key)),
                    self.default_rate.map(|r| Arc::new(RateLimiter::new(r))),
                )
            });
            let svc = ServiceHealth {
                label: label.clone(),
                retry: res.retry_config(),
                timeouts: catalog.timeouts.get(&*key).copied(),
                h2: catalog.h2_services.contains(&*key),
                res,
                default_limiter: limiter.clone(),
            };
            kept.insert(key.clone(), (label, limiter));
            next.insert(key, Arc::new(svc));
        }
        *last = kept;
        Arc::new(next)
    }

    /// Records the outcome of one upstream try of `svc` served by `cluster`;
    /// logs and counts ejections and rollback-guard trips.
    pub fn record(
        &self,
        svc: &ServiceHealth,
        cluster: &Arc<str>,
        outcome: TryOutcome,
        latency: Duration,
    ) {
        let rec = svc.res.record(cluster, outcome, latency, Instant::now());
        for ev in rec.outlier {
            match ev {
                OutlierEvent::Ejected {
                    cluster,
                    duration,
                    times,
                    reason,
                } => {
                    tracing::warn!(service = %svc.label.0, %cluster, ?duration, times, ?reason, "target ejected");
                    self.set_ejected(&svc.label, cluster, 1);
                }
                OutlierEvent::Returned { cluster } => {
                    tracing::info!(service = %svc.label.0, %cluster, "target returned");
                    self.set_ejected(&svc.label, cluster, 0);
                }
                OutlierEvent::EjectionSkipped { cluster } => {
                    tracing::info!(service = %svc.label.0, %cluster, "ejection skipped, max share ejected");
                }
            }
        }
        if let Some(rb) = rec.rollback {
            tracing::warn!(
                service = %svc.label.0,
                canary = %rb.canary,
                cause = ?rb.cause,
                stats = ?rb.stats,
                "rollback guard tripped, canary weight pulled to 0"
            );
            self.metrics
                .rollbacks
                .get_or_create(&ServiceLabels {
                    service: svc.label.clone(),
                })
                .inc();
        }
    }

    fn set_ejected(&self, service: &Label, cluster: Arc<str>, v: i64) {
        self.metrics
            .ejected
            .get_or_create(&ServiceTargetLabels {
                service: service.clone(),
                destination_cluster: Label(cluster),
            })
            .set(v);
    }

    /// Records an active-probe outcome for a cluster's gateway.
    pub fn set_probe(&self, cluster: &str, failed: bool) {
        for service in self.registry.set_probe(cluster, !failed, Instant::now()) {
            tracing::info!(%service, %cluster, "target returned, its gateway's probe passes again");
            self.set_ejected(&Label::from(service.as_str()), Arc::from(cluster), 0);
        }
        self.metrics
            .probe_failing
            .get_or_create(&TargetLabels {
                destination_cluster: Label::from(cluster),
            })
            .set(i64::from(failed));
    }

    /// Counts a rate-limited request.
    pub fn count_rate_limited(&self, svc: &ServiceHealth) {
        self.metrics
            .rate_limited
            .get_or_create(&ServiceLabels {
                service: svc.label.clone(),
            })
            .inc();
    }
}

impl HealthView for HealthRegistry {
    fn target_health(&self, namespace: &str, name: &str, cluster: &str) -> TargetHealth {
        self.registry
            .view(Instant::now())
            .target_health(namespace, name, cluster)
    }
}
