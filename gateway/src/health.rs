//! The proxy's side of resilience: wraps the routing engineer's
//! [`Resilience`] registry (outlier detection, breakers, rate limits, retry
//! budget and rollback guard per service, configured from `TrafficPolicy`),
//! feeds it upstream results and probe outcomes, and turns its events into
//! log lines and metrics.
//!
//! The registry is re-applied (keeping existing state) when a catalog is
//! installed; the request path only does short, uncontended reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::catalog::CatalogState;
use crate::config::GatewayConfig;
use crate::metrics::{Label, Metrics, ServiceLabels, TargetLabels};
use crate::resilience::{
    OutlierEvent, RateLimitConfig, RateLimited, RateLimiter, Resilience, ServiceResilience,
};
use crate::routing::{HealthView, TargetHealth};

/// Health state of one service as the proxy uses it.
#[derive(Debug)]
pub struct ServiceHealth {
    /// `namespace/name` as a metric label.
    pub label: Label,
    /// The registry's state of the service.
    pub res: Arc<ServiceResilience>,
    /// Gateway-wide default rate limit (`limits.rateLimitRps`), applied in
    /// addition to a `TrafficPolicy` rate limit.
    default_limiter: Option<RateLimiter>,
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

type ServiceMap = HashMap<Box<str>, HashMap<Box<str>, Arc<ServiceHealth>>>;

/// Health of every service and remote gateway.
#[derive(Debug)]
pub struct HealthRegistry {
    registry: Resilience,
    services: ArcSwap<ServiceMap>,
    default_rate: Option<RateLimitConfig>,
    metrics: Metrics,
}

impl HealthRegistry {
    /// A registry for the services of `catalog`.
    pub fn new(config: &GatewayConfig, catalog: &CatalogState, metrics: Metrics) -> Self {
        let default_rate = (config.limits.rate_limit_rps > 0.0).then(|| RateLimitConfig {
            requests_per_second: config.limits.rate_limit_rps,
            burst: config.limits.rate_limit_burst.max(1.0) as u32,
        });
        let r = Self {
            registry: Resilience::new(),
            services: ArcSwap::from_pointee(HashMap::new()),
            default_rate,
            metrics,
        };
        r.sync_targets(catalog);
        r
    }

    /// Applies `catalog` (traffic policies, target sets) to the registry;
    /// existing state (ejections, buckets) survives.
    pub fn sync_targets(&self, catalog: &CatalogState) {
        self.registry
            .apply(&catalog.catalog, &catalog.routing, Instant::now());
        let old = self.services.load();
        let mut next: ServiceMap = HashMap::new();
        for (ns, name) in catalog.routing.services() {
            let Some(res) = self.registry.service(ns, name) else {
                continue;
            };
            let svc = match old.get(ns).and_then(|m| m.get(name)) {
                Some(s) if Arc::ptr_eq(&s.res, &res) => s.clone(),
                Some(s) => Arc::new(ServiceHealth {
                    label: s.label.clone(),
                    res,
                    default_limiter: self.default_rate.map(RateLimiter::new),
                }),
                None => Arc::new(ServiceHealth {
                    label: Label(Arc::from(format!("{ns}/{name}"))),
                    res,
                    default_limiter: self.default_rate.map(RateLimiter::new),
                }),
            };
            next.entry(ns.into()).or_default().insert(name.into(), svc);
        }
        self.services.store(Arc::new(next));
    }

    /// The state of a service.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServiceHealth>> {
        self.services.load().get(namespace)?.get(name).cloned()
    }

    /// Records the outcome of one upstream try of `svc` served by `cluster`;
    /// logs and counts ejections and rollback-guard trips.
    pub fn record(
        &self,
        svc: &ServiceHealth,
        cluster: &Arc<str>,
        success: bool,
        latency: Duration,
    ) {
        let rec = svc.res.record(cluster, success, latency, Instant::now());
        match rec.outlier {
            Some(OutlierEvent::Ejected {
                cluster,
                duration,
                times,
            }) => {
                tracing::warn!(service = %svc.label.0, %cluster, ?duration, times, "target ejected");
                self.set_ejected(cluster, 1);
            }
            Some(OutlierEvent::Returned { cluster }) => {
                tracing::info!(service = %svc.label.0, %cluster, "target returned");
                self.set_ejected(cluster, 0);
            }
            Some(OutlierEvent::EjectionSkipped { cluster }) => {
                tracing::info!(service = %svc.label.0, %cluster, "ejection skipped, max share ejected");
            }
            None => {}
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

    fn set_ejected(&self, cluster: Arc<str>, v: i64) {
        self.metrics
            .ejected
            .get_or_create(&TargetLabels {
                destination_cluster: Label(cluster),
            })
            .set(v);
    }

    /// Records an active-probe outcome for a cluster's gateway.
    pub fn set_probe(&self, cluster: &str, failed: bool) {
        self.registry.set_probe(cluster, !failed);
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
