//! Outlier detection per target (a service in one cluster), as Envoy's:
//! consecutive failures, consecutive gateway failures and success-rate
//! outliers eject a target for a growing back-off, never more than a
//! configured share of a service's targets at once (but always one).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::retry::TryOutcome;

/// Outlier detection settings (Envoy's detectors, per service per cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutlierConfig {
    /// Consecutive failures that eject a target: 5xx, gRPC statuses that
    /// map to 5xx, connect failures, resets and timeouts (0 = off).
    pub consecutive_errors: u32,
    /// Consecutive gateway failures that eject a target: 502, 503, 504,
    /// gRPC `UNAVAILABLE`/`DEADLINE_EXCEEDED`, connect failures, resets and
    /// timeouts (0 = off).
    pub consecutive_gateway_errors: u32,
    /// Success-rate ejection, evaluated once per `interval`.
    pub success_rate: Option<SuccessRateConfig>,
    /// How often the success rates are compared.
    pub interval: Duration,
    /// Ejection time of the first ejection; the n-th lasts n times as long.
    /// The multiplier decays by one per base ejection time spent back in.
    pub base_ejection_time: Duration,
    /// Upper bound of one ejection.
    pub max_ejection_time: Duration,
    /// At most this share (0..=100) of the service's targets is ejected at
    /// once: with `n` targets, `max(1, floor(n * pct / 100))`. One ejection
    /// is always allowed (as Envoy's `always_eject_one_host`): with two or
    /// three clusters and the default 10 %, a failing one is still ejected.
    pub max_ejection_percent: u8,
}

/// Envoy's success-rate outlier detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SuccessRateConfig {
    /// Targets with enough requests needed for the comparison.
    pub minimum_hosts: u32,
    /// Requests a target needs in the interval to be compared.
    pub request_volume: u32,
    /// A target is ejected below `mean - stdev_factor / 1000 * stdev`.
    pub stdev_factor: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_errors: 5,
            consecutive_gateway_errors: 0,
            success_rate: None,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
}

/// Which detector ejected a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EjectionReason {
    /// `consecutiveErrors` failures in a row.
    ConsecutiveErrors,
    /// `consecutiveGatewayErrors` gateway failures in a row.
    ConsecutiveGatewayErrors,
    /// The success rate fell below the others' by the stdev factor.
    SuccessRate,
}

/// An ejection change, for the caller to log and count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum OutlierEvent {
    /// The target was ejected.
    Ejected {
        /// The target's cluster.
        cluster: Arc<str>,
        /// How long.
        duration: Duration,
        /// The how-many-th ejection (back-off multiplier).
        times: u32,
        /// Which detector.
        reason: EjectionReason,
    },
    /// Ejection would exceed the maximum share; the target stays in.
    EjectionSkipped {
        /// The target's cluster.
        cluster: Arc<str>,
    },
    /// The ejection time elapsed and the target is back.
    Returned {
        /// The target's cluster.
        cluster: Arc<str>,
    },
}

#[derive(Debug, Default, Clone)]
struct TargetState {
    consecutive: u32,
    consecutive_gateway: u32,
    /// Requests and successes in the current success-rate interval.
    requests: u64,
    successes: u64,
    times_ejected: u32,
    ejected_until: Option<Instant>,
    /// Since when the back-off multiplier last stayed unchanged while in.
    healthy_since: Option<Instant>,
    /// The current ejection was triggered by a connect failure or reset:
    /// the gateway could not be reached, which a passing probe disproves.
    unreachable: bool,
}

#[derive(Debug, Default)]
struct State {
    targets: HashMap<Arc<str>, TargetState>,
    /// Start of the current success-rate interval.
    interval_start: Option<Instant>,
}

impl State {
    /// Targets ejected at `now`, other than `except`.
    fn ejected_count(&self, except: &str, now: Instant) -> usize {
        self.targets
            .iter()
            .filter(|(k, t)| &***k != except && t.ejected_until.is_some_and(|u| u > now))
            .count()
    }
}

/// How many of `total` targets may be ejected at once.
fn allowed_ejections(total: usize, pct: u8) -> usize {
    (total * usize::from(pct.min(100)) / 100).max(1)
}

/// Ejects `t` (or reports that the share is exhausted).
fn eject(
    cfg: &OutlierConfig,
    key: &Arc<str>,
    t: &mut TargetState,
    others_ejected: usize,
    total: usize,
    reason: EjectionReason,
    now: Instant,
) -> OutlierEvent {
    t.consecutive = 0;
    t.consecutive_gateway = 0;
    if others_ejected >= allowed_ejections(total, cfg.max_ejection_percent) {
        return OutlierEvent::EjectionSkipped {
            cluster: Arc::clone(key),
        };
    }
    t.times_ejected = t.times_ejected.saturating_add(1);
    let d = cfg
        .base_ejection_time
        .saturating_mul(t.times_ejected)
        .min(cfg.max_ejection_time);
    t.ejected_until = Some(now + d);
    t.healthy_since = None;
    OutlierEvent::Ejected {
        cluster: Arc::clone(key),
        duration: d,
        times: t.times_ejected,
        reason,
    }
}

/// The outlier detector of one service (all of its targets).
#[derive(Debug)]
pub struct OutlierDetector {
    config: Mutex<OutlierConfig>,
    state: Mutex<State>,
}

impl OutlierDetector {
    /// A detector with no targets.
    pub fn new(config: OutlierConfig) -> Self {
        Self {
            config: Mutex::new(config),
            state: Mutex::default(),
        }
    }

    /// Changes the settings; current ejections keep their end time.
    pub fn set_config(&self, config: OutlierConfig) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    fn config(&self) -> OutlierConfig {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the service's targets (the denominator of the ejection share);
    /// state of targets that disappeared is dropped.
    pub fn set_targets<'a>(&self, clusters: impl IntoIterator<Item = &'a str>) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = HashMap::new();
        for c in clusters {
            let kept = st.targets.remove_entry(c);
            let (k, v) = kept.unwrap_or_else(|| (Arc::from(c), TargetState::default()));
            next.insert(k, v);
        }
        st.targets = next;
    }

    /// Records the outcome of one try to `cluster`. Unknown targets are
    /// added. Returns an event when the target is ejected by a consecutive
    /// detector (or would have been, but the share is exhausted) or
    /// returned. Success-rate ejections come from [`Self::evaluate`].
    pub fn record(&self, cluster: &str, outcome: TryOutcome, now: Instant) -> Option<OutlierEvent> {
        let cfg = self.config();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !st.targets.contains_key(cluster) {
            st.targets
                .insert(Arc::from(cluster), TargetState::default());
        }
        let total = st.targets.len();
        let others_ejected = st.ejected_count(cluster, now);
        let (key, mut t) = st
            .targets
            .get_key_value(cluster)
            .map(|(k, t)| (Arc::clone(k), t.clone()))?;
        let mut event = None;
        if let Some(until) = t.ejected_until {
            if until > now {
                // Still ejected (a request that was in flight): ignore.
                return None;
            }
            t.ejected_until = None;
            t.consecutive = 0;
            t.consecutive_gateway = 0;
            t.healthy_since = Some(until);
            event = Some(OutlierEvent::Returned {
                cluster: Arc::clone(&key),
            });
        }
        t.requests += 1;
        if outcome.is_success() {
            t.successes += 1;
            t.consecutive = 0;
            t.consecutive_gateway = 0;
            // The back-off decays: one step per base ejection time spent
            // back in without being ejected again.
            let since = *t.healthy_since.get_or_insert(now);
            if t.times_ejected > 0 && now.saturating_duration_since(since) >= cfg.base_ejection_time
            {
                t.times_ejected -= 1;
                t.healthy_since = Some(now);
            }
        } else {
            t.consecutive = t.consecutive.saturating_add(1);
            if outcome.is_gateway_failure() {
                t.consecutive_gateway = t.consecutive_gateway.saturating_add(1);
            } else {
                t.consecutive_gateway = 0;
            }
            let reason = if cfg.consecutive_errors > 0 && t.consecutive >= cfg.consecutive_errors {
                Some(EjectionReason::ConsecutiveErrors)
            } else if cfg.consecutive_gateway_errors > 0
                && t.consecutive_gateway >= cfg.consecutive_gateway_errors
            {
                Some(EjectionReason::ConsecutiveGatewayErrors)
            } else {
                None
            };
            if let Some(reason) = reason {
                t.unreachable = matches!(outcome, TryOutcome::ConnectFailed | TryOutcome::Reset);
                event = Some(eject(
                    &cfg,
                    &key,
                    &mut t,
                    others_ejected,
                    total,
                    reason,
                    now,
                ));
            }
        }
        st.targets.insert(key, t);
        event
    }

    /// Success-rate ejection: once per `interval` (checked on each call;
    /// the request path calls it after [`Self::record`]), targets with at
    /// least `request_volume` requests in the interval are compared when
    /// there are `minimum_hosts` of them; those below `mean - factor *
    /// stdev` are ejected, within the ejection share.
    pub fn evaluate(&self, now: Instant) -> Vec<OutlierEvent> {
        let cfg = self.config();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let start = *st.interval_start.get_or_insert(now);
        if now.saturating_duration_since(start) < cfg.interval {
            return Vec::new();
        }
        st.interval_start = Some(now);
        let rates: Vec<(Arc<str>, f64)> = st
            .targets
            .iter_mut()
            .filter_map(|(k, t)| {
                let (req, ok) = (t.requests, t.successes);
                t.requests = 0;
                t.successes = 0;
                let sr = cfg.success_rate?;
                let in_now = t.ejected_until.is_none_or(|u| u <= now);
                (in_now && req >= u64::from(sr.request_volume.max(1)))
                    .then(|| (Arc::clone(k), ok as f64 / req as f64))
            })
            .collect();
        let Some(sr) = cfg.success_rate else {
            return Vec::new();
        };
        if rates.is_empty() || rates.len() < sr.minimum_hosts as usize {
            return Vec::new();
        }
        let n = rates.len() as f64;
        let mean = rates.iter().map(|(_, r)| r).sum::<f64>() / n;
        let var = rates.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
        let threshold = mean - f64::from(sr.stdev_factor) / 1000.0 * var.sqrt();
        let total = st.targets.len();
        let mut events = Vec::new();
        for (k, rate) in rates {
            if rate >= threshold {
                continue;
            }
            let others = st.ejected_count(&k, now);
            if let Some(t) = st.targets.get_mut(&k) {
                t.unreachable = false;
                events.push(eject(
                    &cfg,
                    &k,
                    t,
                    others,
                    total,
                    EjectionReason::SuccessRate,
                    now,
                ));
            }
        }
        events
    }

    /// Ends an ejection of `cluster` early because its gateway's active
    /// probe passed (Envoy's `successful_active_health_check_uneject_host`):
    /// any ejection when the probe passed again after failing
    /// (`all = true`), otherwise only one a connect failure or reset
    /// triggered (a passing probe proves the gateway reachable, not the
    /// service healthy). The back-off multiplier is kept. Returns the event
    /// when it was ejected.
    pub fn uneject(&self, cluster: &str, all: bool, now: Instant) -> Option<OutlierEvent> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (key, t) = st.targets.get_key_value(cluster)?;
        if t.ejected_until.is_none_or(|u| u <= now) || !(all || t.unreachable) {
            return None;
        }
        let key = Arc::clone(key);
        let t = st.targets.get_mut(cluster)?;
        t.ejected_until = None;
        t.unreachable = false;
        t.consecutive = 0;
        t.consecutive_gateway = 0;
        t.healthy_since = Some(now);
        Some(OutlierEvent::Returned { cluster: key })
    }

    /// Whether `cluster` is ejected at `now`.
    pub fn is_ejected(&self, cluster: &str, now: Instant) -> bool {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.targets
            .get(cluster)
            .and_then(|t| t.ejected_until)
            .is_some_and(|u| u > now)
    }

    /// The clusters ejected at `now` and the remaining ejection time, sorted.
    pub fn ejected(&self, now: Instant) -> Vec<(Arc<str>, Duration)> {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = st
            .targets
            .iter()
            .filter_map(|(k, t)| {
                t.ejected_until
                    .filter(|u| *u > now)
                    .map(|u| (Arc::clone(k), u - now))
            })
            .collect();
        v.sort();
        v
    }

    /// How many times `cluster` has been ejected (the back-off multiplier).
    pub fn times_ejected(&self, cluster: &str) -> u32 {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.targets.get(cluster).map_or(0, |t| t.times_ejected)
    }
}
