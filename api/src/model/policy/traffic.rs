//! `TrafficPolicy`: failover, weights and resilience settings of a service.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{ClusterId, ServiceRef, TrafficPolicyKind};

super::policy_resource!(
    /// Per-service traffic management. At most one traffic policy should
    /// name a service; when several do, the one with the lowest name wins.
    TrafficPolicy,
    TrafficPolicyKind,
    TrafficPolicySpec
);

/// Traffic management of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficPolicySpec {
    /// The service.
    pub service: ServiceRef,
    /// Locality labels tried after the same zone, in order (default
    /// `["region", "jurisdiction"]`); any other value names a cluster label.
    #[serde(default = "default_failover_priority")]
    pub failover_priority: Vec<String>,
    /// Cross-cluster split (canary, migration); absent clusters get weight 0
    /// when the map is non-empty. An empty map uses the exports' weights.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, u32>)]
    pub weights: BTreeMap<ClusterId, u32>,
    /// Retries.
    #[serde(default)]
    pub retries: RetryPolicy,
    /// Timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Circuit breaker per target cluster; absent = gateway defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Outlier detection per target; absent = gateway defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Local rate limit per gateway; absent = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Automatic rollback of a canary; absent = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_guard: Option<RollbackGuard>,
}

impl TrafficPolicySpec {
    /// A policy for `service` with every default.
    pub fn new(service: ServiceRef) -> Self {
        Self {
            service,
            failover_priority: default_failover_priority(),
            weights: BTreeMap::new(),
            retries: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            circuit_breaker: None,
            outlier_detection: None,
            rate_limit: None,
            rollback_guard: None,
        }
    }
}

fn default_failover_priority() -> Vec<String> {
    vec!["region".to_owned(), "jurisdiction".to_owned()]
}

/// A percentage, 0..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Percent(u32);

impl Percent {
    /// Builds a percentage; `None` above 100.
    pub fn new(v: u32) -> Option<Self> {
        (v <= 100).then_some(Self(v))
    }

    /// The value, 0..=100.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Percent {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        Self::new(v).ok_or_else(|| format!("percentage must be between 0 and 100, got {v}"))
    }
}

impl From<Percent> for u32 {
    fn from(p: Percent) -> u32 {
        p.0
    }
}

/// A ratio, 0.0..=1.0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Ratio(f64);

impl Ratio {
    /// Builds a ratio; `None` outside 0..=1 or NaN.
    pub fn new(v: f64) -> Option<Self> {
        (0.0..=1.0).contains(&v).then_some(Self(v))
    }

    /// The value, 0..=1.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Ratio {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        Self::new(v).ok_or_else(|| format!("ratio must be between 0 and 1, got {v}"))
    }
}

impl From<Ratio> for f64 {
    fn from(r: Ratio) -> f64 {
        r.0
    }
}

impl utoipa::PartialSchema for Percent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .minimum(Some(0))
            .maximum(Some(100))
            .into()
    }
}

impl utoipa::ToSchema for Percent {}

impl utoipa::PartialSchema for Ratio {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .minimum(Some(0))
            .maximum(Some(1))
            .into()
    }
}

impl utoipa::ToSchema for Ratio {}

/// Retries with a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Retries after the first try (default 2; 0 disables retries).
    pub attempts: u32,
    /// Timeout of each try (default: none, the request timeout applies).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "250ms")]
    pub per_try_timeout: Option<Duration>,
    /// Retry conditions (default `connect-failure`, `refused-stream`,
    /// `reset`); an unknown name is refused with its field path.
    pub retry_on: Vec<RetryCondition>,
    /// Retries may add at most this share of requests (default 20).
    pub budget_percent: Percent,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 2,
            per_try_timeout: None,
            retry_on: vec![
                RetryCondition::ConnectFailure,
                RetryCondition::RefusedStream,
                RetryCondition::Reset,
            ],
            budget_percent: Percent(20),
        }
    }
}

/// A `retryOn` condition. HTTP conditions match the response status; the
/// gRPC ones match `grpc-status` (an HTTP 200), which a gateway can only
/// retry while nothing was streamed to the caller: a trailers-only answer
/// (the status in the headers) is retried, a status in the trailers after
/// response messages is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RetryCondition {
    /// Connecting to the target failed (nothing was sent).
    ConnectFailure,
    /// HTTP/2 `REFUSED_STREAM` or GOAWAY before the request was processed.
    RefusedStream,
    /// Reset, closed or timed out after the request was sent.
    Reset,
    /// HTTP 503, or gRPC `UNAVAILABLE` (14).
    Unavailable,
    /// HTTP 502, 503 or 504.
    GatewayError,
    /// Any HTTP 5xx.
    #[serde(rename = "5xx")]
    ServerError,
    /// HTTP 409.
    #[serde(rename = "retriable-4xx")]
    Retriable4xx,
    /// gRPC `CANCELLED` (1).
    Cancelled,
    /// gRPC `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// gRPC `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// Also retry non-idempotent HTTP requests after the upstream may have
    /// acted (explicit opt-in; gRPC conditions never ask).
    NonIdempotent,
}

impl RetryCondition {
    /// The name as written in a policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectFailure => "connect-failure",
            Self::RefusedStream => "refused-stream",
            Self::Reset => "reset",
            Self::Unavailable => "unavailable",
            Self::GatewayError => "gateway-error",
            Self::ServerError => "5xx",
            Self::Retriable4xx => "retriable-4xx",
            Self::Cancelled => "cancelled",
            Self::DeadlineExceeded => "deadline-exceeded",
            Self::ResourceExhausted => "resource-exhausted",
            Self::NonIdempotent => "non-idempotent",
        }
    }
}

/// Timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Timeouts {
    /// Connect timeout to a remote gateway (default 2s).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "2s")]
    pub connect: Duration,
    /// Whole-request timeout (default 15s).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "15s")]
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(15),
        }
    }
}

/// Circuit breaker limits per target cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CircuitBreaker {
    /// Maximum connections (default 1024).
    pub max_connections: u32,
    /// Maximum requests waiting for a connection (default 1024).
    pub max_pending_requests: u32,
    /// Maximum concurrent requests (default 1024).
    pub max_requests: u32,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
        }
    }
}

/// Passive health checking of each target (the service in one cluster),
/// as Envoy's outlier detection: consecutive errors, consecutive gateway
/// errors and success-rate outliers eject the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct OutlierDetection {
    /// Consecutive errors that eject a target: 5xx, gRPC statuses that map
    /// to 5xx (`UNAVAILABLE`, `INTERNAL`, ...), connect failures, resets
    /// and timeouts (default 5; 0 = off).
    pub consecutive_errors: u32,
    /// Consecutive gateway errors that eject a target: 502, 503, 504, gRPC
    /// `UNAVAILABLE` and `DEADLINE_EXCEEDED`, connect failures, resets and
    /// timeouts (default 0 = off).
    pub consecutive_gateway_errors: u32,
    /// Success-rate ejection; absent = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<SuccessRateEjection>,
    /// How often success rates are compared (default 10s).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "10s")]
    pub interval: Duration,
    /// Base ejection time, multiplied by the number of ejections (default 30s).
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "30s")]
    pub base_ejection_time: Duration,
    /// Never eject more than this share of targets, but always allow one
    /// ejection (default 10).
    pub max_ejection_percent: Percent,
}

/// Envoy's success-rate ejection: every `interval`, targets with at least
/// `requestVolume` requests are compared (when there are `minimumHosts` of
/// them); one whose success rate is below `mean - stdevFactor / 1000 *
/// stdev` is ejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SuccessRateEjection {
    /// Targets with enough requests needed (default 5; at least 2).
    pub minimum_hosts: u32,
    /// Requests a target needs in the interval (default 100).
    pub request_volume: u32,
    /// The stdev multiplier in thousandths (default 1900 = 1.9).
    pub stdev_factor: u32,
}

impl Default for SuccessRateEjection {
    fn default() -> Self {
        Self {
            minimum_hosts: 5,
            request_volume: 100,
            stdev_factor: 1900,
        }
    }
}

impl Default for OutlierDetection {
    fn default() -> Self {
        Self {
            consecutive_errors: 5,
            consecutive_gateway_errors: 0,
            success_rate: None,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_percent: Percent(10),
        }
    }
}

/// A local token-bucket rate limit (429 + `Retry-After` when exceeded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub requests_per_second: u32,
    /// Bucket size (default: one second of traffic).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// Pulls a canary's weight back to 0 when it misbehaves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackGuard {
    /// The canary cluster.
    pub canary: ClusterId,
    /// Error-rate threshold, 0..=1.
    pub max_error_rate: Ratio,
    /// p99 latency threshold.
    #[serde(with = "humantime_serde")]
    #[schema(value_type = String, example = "500ms")]
    pub max_p99: Duration,
    /// The sliding window (default 60s).
    #[serde(with = "humantime_serde", default = "default_window")]
    #[schema(value_type = String, example = "60s")]
    pub window: Duration,
    /// Requests in the window before the guard may trip (default 100).
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
}

fn default_window() -> Duration {
    Duration::from_secs(60)
}

fn default_min_requests() -> u32 {
    100
}
