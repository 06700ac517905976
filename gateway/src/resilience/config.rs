//! Conversions from the `TrafficPolicy` model to the state machines' settings.

use std::sync::Arc;
use std::time::Duration;

use causeway_api::model::policy::{
    CircuitBreaker as BreakerSpec, OutlierDetection, RateLimit, RetryPolicy, RollbackGuard,
};

use super::breaker::BreakerConfig;
use super::outlier::{OutlierConfig, SuccessRateConfig};
use super::rate_limit::RateLimitConfig;
use super::retry::{RetryBudgetConfig, RetryConfig, RetryOn};
use super::rollback::RollbackConfig;

/// The longest single ejection when the policy does not say (Envoy's default).
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

impl From<&OutlierDetection> for OutlierConfig {
    fn from(o: &OutlierDetection) -> Self {
        Self {
            consecutive_errors: o.consecutive_errors,
            consecutive_gateway_errors: o.consecutive_gateway_errors,
            success_rate: o.success_rate.as_ref().map(|s| SuccessRateConfig {
                // A comparison needs two targets.
                minimum_hosts: s.minimum_hosts.max(2),
                request_volume: s.request_volume.max(1),
                stdev_factor: s.stdev_factor,
            }),
            interval: o.interval.max(Duration::from_millis(100)),
            base_ejection_time: o.base_ejection_time,
            max_ejection_time: MAX_EJECTION_TIME.max(o.base_ejection_time),
            max_ejection_percent: u8::try_from(o.max_ejection_percent.get()).unwrap_or(100),
        }
    }
}

impl From<&BreakerSpec> for BreakerConfig {
    fn from(b: &BreakerSpec) -> Self {
        Self {
            max_connections: b.max_connections,
            max_pending: b.max_pending_requests,
            max_requests: b.max_requests,
        }
    }
}

impl From<&RateLimit> for RateLimitConfig {
    fn from(r: &RateLimit) -> Self {
        Self {
            requests_per_second: f64::from(r.requests_per_second),
            burst: r.burst.unwrap_or(r.requests_per_second).max(1),
        }
    }
}

impl From<&RetryPolicy> for RetryConfig {
    fn from(r: &RetryPolicy) -> Self {
        // Every condition the API accepts is known here.
        let (retry_on, _unknown) = RetryOn::parse(r.retry_on.iter().map(|c| c.as_str()));
        Self {
            attempts: r.attempts,
            retry_on,
        }
    }
}

impl From<&RetryPolicy> for RetryBudgetConfig {
    fn from(r: &RetryPolicy) -> Self {
        Self {
            budget_percent: r.budget_percent.get(),
            ..Self::default()
        }
    }
}

impl From<&RollbackGuard> for RollbackConfig {
    fn from(g: &RollbackGuard) -> Self {
        Self {
            canary: Arc::from(g.canary.as_str()),
            max_error_rate: g.max_error_rate.get(),
            max_p99: g.max_p99,
            window: g.window,
            min_requests: g.min_requests,
        }
    }
}
