//! The rollback guard of a canary split: a sliding window of the canary's
//! requests, errors and latencies; crossing a threshold pulls the canary's
//! weight to zero until the policy changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::window::Window;

/// Upper bounds (ms) of the latency histogram buckets; the last is open.
const BOUNDS_MS: [u64; 23] = [
    1, 2, 3, 5, 8, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000,
    5000, 10_000,
];
const NBUCKETS: usize = BOUNDS_MS.len() + 1;

/// Rollback guard settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackConfig {
    /// The canary cluster.
    pub canary: Arc<str>,
    /// Error-rate threshold, 0..=1 (trips when strictly above).
    pub max_error_rate: f64,
    /// p99 latency threshold (trips when the estimate is strictly above).
    pub max_p99: Duration,
    /// The sliding window.
    pub window: Duration,
    /// Requests in the window before the guard may trip.
    pub min_requests: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    requests: u64,
    errors: u64,
    hist: [u32; NBUCKETS],
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            hist: [0; NBUCKETS],
        }
    }
}

/// What tripped the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TripCause {
    /// The error rate crossed the threshold.
    ErrorRate,
    /// The p99 latency crossed the threshold.
    Latency,
}

/// Emitted once when the guard trips: log it and count it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackEvent {
    /// The canary cluster whose weight is now 0.
    pub canary: Arc<str>,
    /// What crossed its threshold.
    pub cause: TripCause,
    /// The window's figures at the time.
    pub stats: WindowStats,
}

/// Figures of the current window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowStats {
    /// Requests in the window.
    pub requests: u64,
    /// Errors in the window.
    pub errors: u64,
    /// Errors / requests (0 without requests).
    pub error_rate: f64,
    /// p99 estimate (upper bound of the histogram bucket holding the 99th
    /// percentile; `None` without requests or in the open last bucket).
    pub p99: Option<Duration>,
}

/// The guard's state, for `/debug` and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollbackStatus {
    /// The canary cluster.
    pub canary: Arc<str>,
    /// Whether the canary's weight is forced to 0.
    pub tripped: bool,
    /// The trip event, when tripped.
    pub trip: Option<RollbackEvent>,
    /// The current window.
    pub window: WindowStats,
}

#[derive(Debug)]
struct State {
    config: RollbackConfig,
    window: Window<Bucket>,
    trip: Option<RollbackEvent>,
}

/// The rollback guard of one canary target.
#[derive(Debug)]
pub struct RollbackGuardState {
    canary: Arc<str>,
    tripped: AtomicBool,
    state: Mutex<State>,
}

fn bucket_of(latency: Duration) -> usize {
    let ms = latency.as_millis();
    BOUNDS_MS
        .iter()
        .position(|b| ms <= u128::from(*b))
        .unwrap_or(NBUCKETS - 1)
}

impl RollbackGuardState {
    /// A guard with an empty window at `now`.
    pub fn new(config: RollbackConfig, now: Instant) -> Self {
        Self {
            canary: Arc::clone(&config.canary),
            tripped: AtomicBool::new(false),
            state: Mutex::new(State {
                window: Window::new(config.window, 12, now),
                config,
                trip: None,
            }),
        }
    }

    /// Applies a (possibly) new policy: a different policy resets the guard
    /// and clears a trip; the same policy keeps everything (sticky). A
    /// policy for another canary is refused (`false`): build a new guard.
    pub fn set_config(&self, config: RollbackConfig, now: Instant) -> bool {
        if config.canary != self.canary {
            return false;
        }
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.config != config {
            st.window = Window::new(config.window, 12, now);
            st.config = config;
            st.trip = None;
            self.tripped.store(false, Ordering::Release);
        }
        true
    }

    /// The canary cluster (fixed for the guard's life).
    pub fn canary(&self) -> &str {
        &self.canary
    }

    /// Whether the canary's weight is forced to 0 (lock-free).
    pub fn is_tripped(&self) -> bool {
        self.tripped.load(Ordering::Acquire)
    }

    /// Records one request to the canary. Returns the event when this
    /// request trips the guard.
    pub fn record(&self, now: Instant, error: bool, latency: Duration) -> Option<RollbackEvent> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let b = st.window.current(now);
        b.requests += 1;
        b.errors += u64::from(error);
        b.hist[bucket_of(latency)] += 1;
        if st.trip.is_some() {
            return None;
        }
        let stats = stats(&st.window, now);
        if stats.requests < u64::from(st.config.min_requests.max(1)) {
            return None;
        }
        let cause = if stats.error_rate > st.config.max_error_rate {
            TripCause::ErrorRate
        } else if p99_exceeds(&st.window, now, st.config.max_p99) {
            TripCause::Latency
        } else {
            return None;
        };
        let ev = RollbackEvent {
            canary: Arc::clone(&st.config.canary),
            cause,
            stats,
        };
        st.trip = Some(ev.clone());
        self.tripped.store(true, Ordering::Release);
        Some(ev)
    }

    /// The guard's state at `now`.
    pub fn status(&self, now: Instant) -> RollbackStatus {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        RollbackStatus {
            canary: Arc::clone(&st.config.canary),
            tripped: st.trip.is_some(),
            trip: st.trip.clone(),
            window: stats(&st.window, now),
        }
    }
}

fn merged(window: &Window<Bucket>, now: Instant) -> Bucket {
    let mut m = Bucket::default();
    for b in window.live(now) {
        m.requests += b.requests;
        m.errors += b.errors;
        for (a, x) in m.hist.iter_mut().zip(b.hist.iter()) {
            *a += *x;
        }
    }
    m
}

/// Index of the histogram bucket holding the 99th percentile.
fn p99_bucket(m: &Bucket) -> Option<usize> {
    let total: u64 = m.hist.iter().map(|c| u64::from(*c)).sum();
    if total == 0 {
        return None;
    }
    // The smallest bucket whose cumulative count reaches ceil(0.99 * total).
    let rank = (total * 99).div_ceil(100);
    let mut cum = 0u64;
    for (i, c) in m.hist.iter().enumerate() {
        cum += u64::from(*c);
        if cum >= rank {
            return Some(i);
        }
    }
    Some(NBUCKETS - 1)
}

fn p99_exceeds(window: &Window<Bucket>, now: Instant, max: Duration) -> bool {
    let m = merged(window, now);
    match p99_bucket(&m) {
        None => false,
        // A breach when the bucket's upper bound exceeds the threshold: a
        // bucket straddling the threshold trips (early by at most one bucket
        // width); thresholds on bucket bounds are exact.
        Some(i) if i == NBUCKETS - 1 => true,
        Some(i) => u128::from(BOUNDS_MS[i]) > max.as_millis(),
    }
}

fn stats(window: &Window<Bucket>, now: Instant) -> WindowStats {
    let m = merged(window, now);
    let p99 = p99_bucket(&m)
        .filter(|i| *i < NBUCKETS - 1)
        .map(|i| Duration::from_millis(BOUNDS_MS[i]));
    WindowStats {
        requests: m.requests,
        errors: m.errors,
        error_rate: if m.requests == 0 {
            0.0
        } else {
            m.errors as f64 / m.requests as f64
        },
        p99,
    }
}
