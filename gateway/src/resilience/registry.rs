//! The gateway's resilience state per service and target, configured from
//! the catalog and read by the routing engine through [`HealthView`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use causeway_api::model::CatalogSnapshot;
use causeway_api::model::policy::{CircuitBreaker as BreakerSpec, OutlierDetection, RetryPolicy};
use serde::Serialize;

use super::breaker::{BreakerConfig, BreakerStatus, CircuitBreaker};
use super::outlier::{OutlierConfig, OutlierDetector, OutlierEvent};
use super::rate_limit::{RateLimitConfig, RateLimited, RateLimiter};
use super::retry::{RetryBudget, RetryBudgetConfig, RetryConfig, TryOutcome};
use super::rollback::{RollbackConfig, RollbackEvent, RollbackGuardState, RollbackStatus};
use crate::routing::{HealthView, RoutingSnapshot, TargetHealth};

type NameMap<T> = HashMap<Box<str>, HashMap<Box<str>, T>>;

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// What recording an outcome changed, for the caller to log and count.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recorded {
    /// Ejection changes.
    pub outlier: Vec<OutlierEvent>,
    /// The rollback guard tripped.
    pub rollback: Option<RollbackEvent>,
}

/// Settings of one service's state machines.
#[derive(Debug, Clone, PartialEq)]
struct ServiceConfig {
    outlier: OutlierConfig,
    breaker: BreakerConfig,
    rate_limit: Option<RateLimitConfig>,
    retry: RetryConfig,
    budget: RetryBudgetConfig,
    rollback: Option<RollbackConfig>,
}

/// The resilience state of one service: outlier detection over its targets,
/// a breaker per target, a rate limiter, a retry budget and a rollback guard.
#[derive(Debug)]
pub struct ServiceResilience {
    outlier: OutlierDetector,
    breaker_config: Mutex<BreakerConfig>,
    breakers: RwLock<HashMap<Box<str>, Arc<CircuitBreaker>>>,
    rate_limiter: RwLock<Option<Arc<RateLimiter>>>,
    retry: Mutex<RetryConfig>,
    budget: RetryBudget,
    rollback: RwLock<Option<Arc<RollbackGuardState>>>,
}

/// A service's state for `/debug` reporting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    /// Ejected clusters and the remaining ejection time.
    pub ejected: Vec<(String, Duration)>,
    /// Breaker counters per cluster, sorted.
    pub breakers: Vec<(String, BreakerStatus)>,
    /// The rollback guard, if configured.
    pub rollback: Option<RollbackStatus>,
}

impl ServiceResilience {
    fn new(cfg: &ServiceConfig, now: Instant) -> Self {
        Self {
            outlier: OutlierDetector::new(cfg.outlier),
            breaker_config: Mutex::new(cfg.breaker),
            breakers: RwLock::default(),
            rate_limiter: RwLock::new(cfg.rate_limit.map(|r| Arc::new(RateLimiter::new(r)))),
            retry: Mutex::new(cfg.retry),
            budget: RetryBudget::new(cfg.budget, now),
            rollback: RwLock::new(
                cfg.rollback
                    .clone()
                    .map(|r| Arc::new(RollbackGuardState::new(r, now))),
            ),
        }
    }

    fn configure(&self, cfg: &ServiceConfig, now: Instant) {
        self.outlier.set_config(cfg.outlier);
        *self
            .breaker_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = cfg.breaker;
        for b in read(&self.breakers).values() {
            b.set_config(cfg.breaker);
        }
        {
            let mut rl = write(&self.rate_limiter);
            match (&*rl, cfg.rate_limit) {
                (Some(l), Some(c)) => l.set_config(c),
                (None, Some(c)) => *rl = Some(Arc::new(RateLimiter::new(c))),
                (_, None) => *rl = None,
            }
        }
        *self.retry.lock().unwrap_or_else(PoisonError::into_inner) = cfg.retry;
        self.budget.set_config(cfg.budget, now);
        let mut rb = write(&self.rollback);
        match (&*rb, &cfg.rollback) {
            (Some(g), Some(c)) if g.set_config(c.clone(), now) => {}
            (_, Some(c)) => *rb = Some(Arc::new(RollbackGuardState::new(c.clone(), now))),
            (_, None) => *rb = None,
        }
    }

    /// The breaker of `cluster` (created on first use): take a
    /// [`super::BreakerLimit::Requests`] permit per request and hold it until
    /// the response ends.
    pub fn breaker(&self, cluster: &str) -> Arc<CircuitBreaker> {
        if let Some(b) = read(&self.breakers).get(cluster) {
            return Arc::clone(b);
        }
        let cfg = *self
            .breaker_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut w = write(&self.breakers);
        Arc::clone(
            w.entry(Box::from(cluster))
                .or_insert_with(|| Arc::new(CircuitBreaker::new(cfg))),
        )
    }

    /// Records the outcome of one try to `cluster`: feeds outlier detection
    /// and, for the canary, the rollback guard. A failure is a 5xx, a gRPC
    /// status that maps to one (`UNAVAILABLE`, `INTERNAL`, ...), a connect
    /// failure, reset or timeout ([`TryOutcome::is_success`]).
    pub fn record(
        &self,
        cluster: &str,
        outcome: TryOutcome,
        latency: Duration,
        now: Instant,
    ) -> Recorded {
        let success = outcome.is_success();
        let mut outlier: Vec<OutlierEvent> = self
            .outlier
            .record(cluster, outcome, now)
            .into_iter()
            .collect();
        outlier.extend(self.outlier.evaluate(now));
        let rollback = read(&self.rollback)
            .as_ref()
            .filter(|g| g.canary() == cluster)
            .and_then(|g| g.record(now, !success, latency));
        Recorded { outlier, rollback }
    }

    /// Takes a rate-limit token for `source` (429 + `Retry-After` on error).
    pub fn check_rate(&self, source: &str, now: Instant) -> Result<(), RateLimited> {
        match &*read(&self.rate_limiter) {
            Some(l) => l.check(source, now),
            None => Ok(()),
        }
    }

    /// The retry settings.
    pub fn retry_config(&self) -> RetryConfig {
        *self.retry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The retry budget: call `record_request` per original request and
    /// `try_retry` before each retry.
    pub fn retry_budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The service's state at `now`.
    pub fn status(&self, now: Instant) -> ServiceStatus {
        let mut breakers: Vec<(String, BreakerStatus)> = read(&self.breakers)
            .iter()
            .map(|(k, b)| (k.to_string(), b.status()))
            .collect();
        breakers.sort_by(|a, b| a.0.cmp(&b.0));
        ServiceStatus {
            ejected: self
                .outlier
                .ejected(now)
                .into_iter()
                .map(|(c, d)| (c.to_string(), d))
                .collect(),
            breakers,
            rollback: read(&self.rollback).as_ref().map(|g| g.status(now)),
        }
    }

    fn health(&self, cluster: &str, now: Instant) -> TargetHealth {
        TargetHealth {
            ejected: self.outlier.is_ejected(cluster, now),
            circuit_open: read(&self.breakers)
                .get(cluster)
                .is_some_and(|b| b.is_open()),
            probe_failed: false,
            rolled_back: read(&self.rollback)
                .as_ref()
                .is_some_and(|g| g.is_tripped() && g.canary() == cluster),
        }
    }
}

/// Every service's resilience state, plus active-probe results per cluster.
#[derive(Debug, Default)]
pub struct Resilience {
    services: RwLock<NameMap<Arc<ServiceResilience>>>,
    probes_failing: RwLock<HashMap<Box<str>, Arc<AtomicBool>>>,
}

impl Resilience {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Configures every service of `snapshot` from its traffic policy in
    /// `catalog` (gateway defaults where absent) and forgets services that
    /// are gone. Call after each snapshot build, off the request path.
    pub fn apply(&self, catalog: &CatalogSnapshot, snapshot: &RoutingSnapshot, now: Instant) {
        let mut next: NameMap<Arc<ServiceResilience>> = HashMap::new();
        let current = read(&self.services).clone();
        for (ns, name) in snapshot.services() {
            let policy = snapshot
                .traffic_policy(ns, name)
                .and_then(|p| catalog.policies.traffic.get(p))
                .map(|p| &p.spec);
            let cfg = ServiceConfig {
                outlier: policy
                    .and_then(|p| p.outlier_detection.as_ref())
                    .map_or_else(|| (&OutlierDetection::default()).into(), Into::into),
                breaker: policy
                    .and_then(|p| p.circuit_breaker.as_ref())
                    .map_or_else(|| (&BreakerSpec::default()).into(), Into::into),
                rate_limit: policy.and_then(|p| p.rate_limit.as_ref()).map(Into::into),
                retry: policy
                    .map_or_else(|| (&RetryPolicy::default()).into(), |p| (&p.retries).into()),
                budget: policy
                    .map_or_else(|| (&RetryPolicy::default()).into(), |p| (&p.retries).into()),
                rollback: policy
                    .and_then(|p| p.rollback_guard.as_ref())
                    .map(Into::into),
            };
            let svc = match current.get(ns).and_then(|m| m.get(name)) {
                Some(s) => {
                    s.configure(&cfg, now);
                    Arc::clone(s)
                }
                None => Arc::new(ServiceResilience::new(&cfg, now)),
            };
            if let Some(clusters) = snapshot.service_clusters(ns, name) {
                svc.outlier.set_targets(clusters);
            }
            next.entry(Box::from(ns))
                .or_default()
                .insert(Box::from(name), svc);
        }
        *write(&self.services) = next;
    }

    /// The state of `namespace/name`, if the service is known.
    pub fn service(&self, namespace: &str, name: &str) -> Option<Arc<ServiceResilience>> {
        read(&self.services)
            .get(namespace)
            .and_then(|m| m.get(name))
            .cloned()
    }

    /// Records an active-probe result for a cluster's gateway. When the
    /// probe passes again after failing, every service ejected in that
    /// cluster is let back in (a gateway that died and came back should not
    /// wait out ejections its death caused); when it passes, services
    /// ejected there by connect failures or resets are (the gateway came
    /// back before its probe was marked failing). Their `namespace/name`
    /// are returned.
    pub fn set_probe(&self, cluster: &str, healthy: bool, now: Instant) -> Vec<String> {
        // The read guard must be gone before the write lock is taken.
        let known = read(&self.probes_failing).get(cluster).cloned();
        let flag = known.unwrap_or_else(|| {
            Arc::clone(
                write(&self.probes_failing)
                    .entry(Box::from(cluster))
                    .or_default(),
            )
        });
        let was_failing = flag.swap(!healthy, Ordering::AcqRel);
        if !healthy {
            return Vec::new();
        }
        let mut back = Vec::new();
        for (ns, m) in read(&self.services).iter() {
            for (name, svc) in m {
                if svc.outlier.uneject(cluster, was_failing, now).is_some() {
                    back.push(format!("{ns}/{name}"));
                }
            }
        }
        back
    }

    /// A health view at `now`, for [`crate::routing::decide`].
    pub fn view(&self, now: Instant) -> HealthAt<'_> {
        HealthAt {
            registry: self,
            now,
        }
    }
}

/// The registry's health at one instant.
#[derive(Debug, Clone, Copy)]
pub struct HealthAt<'a> {
    registry: &'a Resilience,
    now: Instant,
}

impl HealthView for HealthAt<'_> {
    fn target_health(&self, namespace: &str, name: &str, cluster: &str) -> TargetHealth {
        let mut h = read(&self.registry.services)
            .get(namespace)
            .and_then(|m| m.get(name))
            .map(|s| s.health(cluster, self.now))
            .unwrap_or_default();
        h.probe_failed = read(&self.registry.probes_failing)
            .get(cluster)
            .is_some_and(|f| f.load(Ordering::Acquire));
        h
    }
}
