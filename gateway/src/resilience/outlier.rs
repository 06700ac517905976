//! Outlier detection per target: consecutive errors eject a target for a
//! growing back-off, never more than a configured share of a service's
//! targets at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Outlier detection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutlierConfig {
    /// Consecutive errors (5xx, connect failures, resets) that eject a target.
    pub consecutive_errors: u32,
    /// Ejection time of the first ejection; the n-th lasts n times as long.
    /// The multiplier decays by one per base ejection time spent back in.
    pub base_ejection_time: Duration,
    /// Upper bound of one ejection.
    pub max_ejection_time: Duration,
    /// At most this share (0..=100) of the service's targets is ejected at
    /// once: with `n` targets, `floor(n * pct / 100)` (strict, so 2 targets
    /// and 10% never eject).
    pub max_ejection_percent: u8,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_errors: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
        }
    }
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
    times_ejected: u32,
    ejected_until: Option<Instant>,
    /// Since when the back-off multiplier last stayed unchanged while in.
    healthy_since: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    targets: HashMap<Arc<str>, TargetState>,
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

    /// Records the outcome of one request to `cluster`. Unknown targets are
    /// added. Returns an event when the target is ejected (or would have
    /// been, but the share is exhausted) or returned.
    pub fn record(&self, cluster: &str, success: bool, now: Instant) -> Option<OutlierEvent> {
        let cfg = self.config();
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let total = st.targets.len() + usize::from(!st.targets.contains_key(cluster));
        let ejected_now = st
            .targets
            .iter()
            .filter(|(k, t)| &***k != cluster && t.ejected_until.is_some_and(|u| u > now))
            .count();
        if !st.targets.contains_key(cluster) {
            st.targets
                .insert(Arc::from(cluster), TargetState::default());
        }
        let (key, t) = st
            .targets
            .get_key_value(cluster)
            .map(|(k, t)| (Arc::clone(k), t.clone()))?;
        let mut t = t;
        let mut event = None;
        if let Some(until) = t.ejected_until {
            if until > now {
                // Still ejected (a request that was in flight): ignore.
                return None;
            }
            t.ejected_until = None;
            t.consecutive = 0;
            t.healthy_since = Some(until);
            event = Some(OutlierEvent::Returned {
                cluster: Arc::clone(&key),
            });
        }
        if success {
            t.consecutive = 0;
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
            if cfg.consecutive_errors > 0 && t.consecutive >= cfg.consecutive_errors {
                let allowed = (total * usize::from(cfg.max_ejection_percent.min(100))) / 100;
                if ejected_now < allowed {
                    t.times_ejected = t.times_ejected.saturating_add(1);
                    let d = cfg
                        .base_ejection_time
                        .saturating_mul(t.times_ejected)
                        .min(cfg.max_ejection_time);
                    t.ejected_until = Some(now + d);
                    t.consecutive = 0;
                    event = Some(OutlierEvent::Ejected {
                        cluster: Arc::clone(&key),
                        duration: d,
                        times: t.times_ejected,
                    });
                } else {
                    event = Some(OutlierEvent::EjectionSkipped {
                        cluster: Arc::clone(&key),
                    });
                }
            }
        }
        st.targets.insert(key, t);
        event
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
