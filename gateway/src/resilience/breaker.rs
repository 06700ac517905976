//! Circuit breakers per target: limits on connections, pending and in-flight
//! requests, with RAII permits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::Serialize;

/// Circuit breaker thresholds (0 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreakerConfig {
    /// Maximum open connections to the target.
    pub max_connections: u32,
    /// Maximum requests waiting for a connection.
    pub max_pending: u32,
    /// Maximum requests in flight.
    pub max_requests: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending: 1024,
            max_requests: 1024,
        }
    }
}

/// Which limit a permit counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerLimit {
    /// Open connections.
    Connections,
    /// Requests waiting for a connection.
    Pending,
    /// Requests in flight.
    Requests,
}

/// A limit was reached: the caller should fail fast (503) or pick another
/// target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open: {limit:?} limit {max} reached")]
pub struct BreakerOpen {
    /// The limit that was reached.
    pub limit: BreakerLimit,
    /// Its configured value.
    pub max: u32,
}

/// The counters of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    /// Open connections.
    pub connections: u32,
    /// Pending requests.
    pub pending: u32,
    /// In-flight requests.
    pub requests: u32,
    /// Whether any limit is reached.
    pub open: bool,
}

/// A lock-free circuit breaker for one target.
#[derive(Debug, Default)]
pub struct CircuitBreaker {
    max: [AtomicU32; 3],
    count: [AtomicU32; 3],
}

fn slot(limit: BreakerLimit) -> usize {
    match limit {
        BreakerLimit::Connections => 0,
        BreakerLimit::Pending => 1,
        BreakerLimit::Requests => 2,
    }
}

impl CircuitBreaker {
    /// A breaker with the given thresholds.
    pub fn new(config: BreakerConfig) -> Self {
        let b = Self::default();
        b.set_config(config);
        b
    }

    /// Changes the thresholds; outstanding permits stay valid.
    pub fn set_config(&self, config: BreakerConfig) {
        self.max[0].store(config.max_connections, Ordering::Relaxed);
        self.max[1].store(config.max_pending, Ordering::Relaxed);
        self.max[2].store(config.max_requests, Ordering::Relaxed);
    }

    /// Takes one unit of `limit`, or refuses when the limit is reached. The
    /// unit is returned when the permit drops.
    pub fn try_acquire(
        self: &Arc<Self>,
        limit: BreakerLimit,
    ) -> Result<BreakerPermit, BreakerOpen> {
        let i = slot(limit);
        let max = self.max[i].load(Ordering::Relaxed);
        self.count[i]
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (max == 0 || c < max).then_some(c + 1)
            })
            .map_err(|_| BreakerOpen { limit, max })?;
        Ok(BreakerPermit {
            breaker: Arc::clone(self),
            limit,
        })
    }

    /// The current count of `limit`.
    pub fn count(&self, limit: BreakerLimit) -> u32 {
        self.count[slot(limit)].load(Ordering::Acquire)
    }

    /// Whether any limit is reached (new work would be refused).
    pub fn is_open(&self) -> bool {
        (0..3).any(|i| {
            let max = self.max[i].load(Ordering::Relaxed);
            max != 0 && self.count[i].load(Ordering::Acquire) >= max
        })
    }

    /// The counters, for reporting.
    pub fn status(&self) -> BreakerStatus {
        BreakerStatus {
            connections: self.count(BreakerLimit::Connections),
            pending: self.count(BreakerLimit::Pending),
            requests: self.count(BreakerLimit::Requests),
            open: self.is_open(),
        }
    }
}

/// One unit of a breaker limit; returned on drop.
#[derive(Debug)]
#[must_use = "the permit is released as soon as it is dropped"]
pub struct BreakerPermit {
    breaker: Arc<CircuitBreaker>,
    limit: BreakerLimit,
}

impl BreakerPermit {
    /// The limit this permit counts against.
    pub fn limit(&self) -> BreakerLimit {
        self.limit
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        self.breaker.count[slot(self.limit)].fetch_sub(1, Ordering::AcqRel);
    }
}
