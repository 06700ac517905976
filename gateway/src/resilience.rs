//! Pure, clock-injected resilience state machines: outlier detection,
//! circuit breakers, local rate limits, retry budgets, the canary
//! rollback guard and active-probe thresholds. Time is always passed in (`now: Instant`); nothing here
//! reads a clock or sleeps. Handles are thread-safe: atomics, or short
//! non-async mutex sections never held across an await.

mod breaker;
mod config;
pub mod grpc;
mod outlier;
mod probe;
mod rate_limit;
mod registry;
mod retry;
mod rollback;
mod window;

pub use breaker::{
    BreakerConfig, BreakerLimit, BreakerOpen, BreakerPermit, BreakerStatus, CircuitBreaker,
};
pub use config::MAX_EJECTION_TIME;
pub use grpc::GrpcStatus;
pub use outlier::{
    EjectionReason, OutlierConfig, OutlierDetector, OutlierEvent, SuccessRateConfig,
};
pub use probe::{ProbeState, ProbeThresholds, next_probe_in};
pub use rate_limit::{RateLimitConfig, RateLimited, RateLimiter};
pub use registry::{HealthAt, Recorded, Resilience, ServiceResilience, ServiceStatus};
pub use retry::{
    NoRetry, RetryBudget, RetryBudgetConfig, RetryConfig, RetryOn, TryOutcome, is_idempotent,
};
pub use rollback::{
    RollbackConfig, RollbackEvent, RollbackGuardState, RollbackStatus, TripCause, WindowStats,
};

#[cfg(test)]
mod tests;
