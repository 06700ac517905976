//! Local rate limits per (source, service): token buckets. Kept rather than
//! `governor`: a policy's rate changes at run time and the buckets keep
//! their tokens across the change (docs/libraries.md).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use serde::Serialize;

/// Token-bucket settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateLimitConfig {
    /// Sustained requests per second (> 0).
    pub requests_per_second: f64,
    /// Bucket size: requests allowed in a burst (>= 1).
    pub burst: u32,
}

/// A refused request: answer 429 with `Retry-After: retry_after_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limited, retry after {retry_after_secs}s")]
pub struct RateLimited {
    /// Whole seconds until a token is available (at least 1).
    pub retry_after_secs: u32,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// How many sources one limiter tracks before it forgets idle (full) buckets.
const MAX_SOURCES: usize = 10_000;

/// The rate limiter of one service, one bucket per source.
#[derive(Debug)]
pub struct RateLimiter {
    config: Mutex<RateLimitConfig>,
    buckets: Mutex<HashMap<Box<str>, Bucket>>,
}

impl RateLimiter {
    /// A limiter with the given settings.
    pub fn new(config: RateLimitConfig) -> Self {
        Self {
            config: Mutex::new(config),
            buckets: Mutex::default(),
        }
    }

    /// Changes the settings; buckets keep their tokens (capped to the burst).
    pub fn set_config(&self, config: RateLimitConfig) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// Takes one token for `source` at `now`, or says when to retry.
    pub fn check(&self, source: &str, now: Instant) -> Result<(), RateLimited> {
        let cfg = *self.config.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = if cfg.requests_per_second.is_finite() && cfg.requests_per_second > 0.0 {
            cfg.requests_per_second
        } else {
            f64::MIN_POSITIVE
        };
        let cap = f64::from(cfg.burst.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(source) {
            if buckets.len() >= MAX_SOURCES {
                // Full buckets carry no state a fresh bucket would not.
                buckets.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < cap
                });
            }
            buckets.insert(
                source.into(),
                Bucket {
                    tokens: cap,
                    last: now,
                },
            );
        }
        let Some(b) = buckets.get_mut(source) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(cap);
        if now > b.last {
            b.last = now;
        }
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - b.tokens) / rate).ceil();
            let secs = if wait.is_finite() && wait < f64::from(u32::MAX) {
                (wait as u32).max(1)
            } else {
                u32::MAX
            };
            Err(RateLimited {
                retry_after_secs: secs,
            })
        }
    }
}
