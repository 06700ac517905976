//! Retries: a budget over recent requests and the decision whether one
//! failed try may be retried at all.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::window::Window;

/// Retry budget settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryBudgetConfig {
    /// Retries may add at most this share (0..=100) of the requests in the
    /// window.
    pub budget_percent: u32,
    /// Retries always allowed per window, whatever the traffic (so that a
    /// quiet service can still retry).
    pub min_retries: u32,
    /// The sliding window.
    pub window: Duration,
}

impl Default for RetryBudgetConfig {
    fn default() -> Self {
        Self {
            budget_percent: 20,
            min_retries: 10,
            window: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    requests: u64,
    retries: u64,
}

/// A retry budget for one service.
#[derive(Debug)]
pub struct RetryBudget {
    inner: Mutex<(RetryBudgetConfig, Window<Counts>)>,
}

impl RetryBudget {
    /// A budget starting empty at `now`.
    pub fn new(config: RetryBudgetConfig, now: Instant) -> Self {
        Self {
            inner: Mutex::new((config, Window::new(config.window, 10, now))),
        }
    }

    /// Changes the settings (the window restarts when its span changes).
    pub fn set_config(&self, config: RetryBudgetConfig, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if g.0.window != config.window {
            g.1 = Window::new(config.window, 10, now);
        }
        g.0 = config;
    }

    /// Counts one original request (not a retry).
    pub fn record_request(&self, now: Instant) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.current(now).requests += 1;
    }

    /// Takes one retry from the budget if `retries + 1 <= min_retries +
    /// budget_percent% of requests` over the window; counts it when allowed.
    pub fn try_retry(&self, now: Instant) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let (cfg, window) = &mut *g;
        let (requests, retries) = window
            .live(now)
            .fold((0u64, 0u64), |(a, b), c| (a + c.requests, b + c.retries));
        let allowed = u64::from(cfg.min_retries) + requests * u64::from(cfg.budget_percent) / 100;
        if retries < allowed {
            window.current(now).retries += 1;
            true
        } else {
            false
        }
    }
}

/// Conditions under which a failed try is retried (`retryOn`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetryOn {
    /// `connect-failure`: the connection to the target failed (request not sent).
    pub connect_failure: bool,
    /// `refused-stream`: HTTP/2 `REFUSED_STREAM` / GOAWAY before processing
    /// (request not processed).
    pub refused_stream: bool,
    /// `reset`: the connection or stream was reset or timed out after the
    /// request was sent.
    pub reset: bool,
    /// `unavailable`: a 503 response, or gRPC `UNAVAILABLE` (14).
    pub unavailable: bool,
    /// `cancelled`: gRPC `CANCELLED` (1).
    pub cancelled: bool,
    /// `deadline-exceeded`: gRPC `DEADLINE_EXCEEDED` (4).
    pub deadline_exceeded: bool,
    /// `resource-exhausted`: gRPC `RESOURCE_EXHAUSTED` (8).
    pub resource_exhausted: bool,
    /// `gateway-error`: 502, 503 or 504.
    pub gateway_error: bool,
    /// `5xx`: any 5xx response.
    pub server_error: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// `non-idempotent`: also retry non-idempotent requests after the
    /// upstream may have acted (explicit opt-in).
    pub non_idempotent: bool,
}

impl RetryOn {
    /// Parses the `retryOn` list; unknown names are returned as errors.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> (Self, Vec<String>) {
        let mut r = Self::default();
        let mut unknown = Vec::new();
        for n in names {
            match n {
                "connect-failure" => r.connect_failure = true,
                "refused-stream" => r.refused_stream = true,
                "reset" => r.reset = true,
                "unavailable" => r.unavailable = true,
                "cancelled" => r.cancelled = true,
                "deadline-exceeded" => r.deadline_exceeded = true,
                "resource-exhausted" => r.resource_exhausted = true,
                "gateway-error" => r.gateway_error = true,
                "5xx" => r.server_error = true,
                "retriable-4xx" => r.retriable_4xx = true,
                "non-idempotent" => r.non_idempotent = true,
                other => unknown.push(other.to_owned()),
            }
        }
        (r, unknown)
    }
}

/// How one try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TryOutcome {
    /// Connecting to the target failed; nothing was sent.
    ConnectFailed,
    /// The target refused the stream before processing it.
    RefusedStream,
    /// Reset or closed after the request (or part of it) was sent.
    Reset,
    /// The per-try timeout fired after the request was sent.
    Timeout,
    /// A response arrived with this status.
    Status(u16),
    /// A gRPC response ended with this `grpc-status` code (HTTP 200).
    Grpc(u8),
}

impl TryOutcome {
    /// The HTTP status this outcome counts as: a gRPC code maps through
    /// [`super::grpc::http_equivalent`]; connect failures, resets and
    /// timeouts count as 503 (Envoy's locally-originated errors).
    pub fn effective_status(&self) -> u16 {
        match self {
            TryOutcome::Status(s) => *s,
            TryOutcome::Grpc(c) => super::grpc::http_equivalent(*c),
            TryOutcome::Timeout => 504,
            TryOutcome::ConnectFailed | TryOutcome::RefusedStream | TryOutcome::Reset => 503,
        }
    }

    /// Whether the try succeeded for outlier detection and the rollback
    /// guard: anything but a 5xx (or its gRPC or connection equivalent).
    pub fn is_success(&self) -> bool {
        self.effective_status() < 500
    }

    /// A gateway failure in Envoy's sense: 502, 503, 504 (or their gRPC
    /// equivalents `UNAVAILABLE`, `DEADLINE_EXCEEDED`), connect failures,
    /// resets and timeouts.
    pub fn is_gateway_failure(&self) -> bool {
        matches!(self.effective_status(), 502..=504)
    }

    /// Whether the upstream may have acted on the request.
    pub fn upstream_may_have_acted(&self) -> bool {
        !matches!(self, TryOutcome::ConnectFailed | TryOutcome::RefusedStream)
    }
}

/// Why a retry is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoRetry {
    /// The outcome is a success or not in `retryOn`.
    NotRetriable,
    /// The attempt limit is reached.
    AttemptsExhausted,
    /// The method is not idempotent and the upstream may have acted.
    NotIdempotent,
    /// The retry budget is spent.
    BudgetExhausted,
}

/// Whether an HTTP method is idempotent (RFC 9110 §9.2.2).
pub fn is_idempotent(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::PUT
            | http::Method::DELETE
    )
}

/// Retry settings of one service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RetryConfig {
    /// Retries after the first try.
    pub attempts: u32,
    /// The conditions.
    pub retry_on: RetryOn,
}

impl RetryConfig {
    /// Whether `outcome` is one of the `retryOn` conditions.
    pub fn matches(&self, outcome: TryOutcome) -> bool {
        let r = &self.retry_on;
        match outcome {
            TryOutcome::ConnectFailed => r.connect_failure,
            TryOutcome::RefusedStream => r.refused_stream,
            TryOutcome::Reset | TryOutcome::Timeout => r.reset,
            TryOutcome::Status(s) => {
                (s == 503 && r.unavailable)
                    || (matches!(s, 502..=504) && r.gateway_error)
                    || ((500..=599).contains(&s) && r.server_error)
                    || (s == 409 && r.retriable_4xx)
            }
            TryOutcome::Grpc(c) => {
                use super::grpc::{CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE};
                (c == UNAVAILABLE && r.unavailable)
                    || (c == CANCELLED && r.cancelled)
                    || (c == DEADLINE_EXCEEDED && r.deadline_exceeded)
                    || (c == RESOURCE_EXHAUSTED && r.resource_exhausted)
            }
        }
    }

    /// Whether the try that ended with `outcome` may be retried, given the
    /// method and the retries already made (`retries_done`). Does not take
    /// from the budget: call [`RetryBudget::try_retry`] after a yes.
    /// A retry calls `decide` again (with the tried clusters excluded), so
    /// it never leaves the residency-allowed set.
    pub fn may_retry(
        &self,
        method: &http::Method,
        outcome: TryOutcome,
        retries_done: u32,
    ) -> Result<(), NoRetry> {
        let r = &self.retry_on;
        if !self.matches(outcome) {
            return Err(NoRetry::NotRetriable);
        }
        if retries_done >= self.attempts {
            return Err(NoRetry::AttemptsExhausted);
        }
        // A gRPC status listed in `retryOn` is the service owner saying the
        // call may be retried (gRPC's retry design, A6): every gRPC call is
        // a POST, so idempotency is not asked.
        let declared = matches!(outcome, TryOutcome::Grpc(_));
        if outcome.upstream_may_have_acted()
            && !declared
            && !is_idempotent(method)
            && !r.non_idempotent
        {
            return Err(NoRetry::NotIdempotent);
        }
        Ok(())
    }
}
