#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// A fake clock: a fixed origin plus an offset moved by the test.
struct Clock {
    t0: Instant,
    now: Instant,
}

impl Clock {
    fn new() -> Self {
        let t0 = Instant::now();
        Self { t0, now: t0 }
    }
    fn advance(&mut self, d: Duration) -> Instant {
        self.now += d;
        self.now
    }
    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }
}

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
const OK: TryOutcome = TryOutcome::Status(200);
const E500: TryOutcome = TryOutcome::Status(500);

// ---------- outlier detection ----------

fn outlier(pct: u8) -> OutlierDetector {
    let d = OutlierDetector::new(OutlierConfig {
        consecutive_errors: 3,
        base_ejection_time: 10 * S,
        max_ejection_time: 25 * S,
        max_ejection_percent: pct,
        ..OutlierConfig::default()
    });
    d.set_targets(["a", "b", "c", "d"]);
    d
}

#[test]
fn outlier_ejects_after_consecutive_errors_with_growing_backoff() {
    let mut clk = Clock::new();
    let d = outlier(50);
    let now = clk.now;
    assert_eq!(d.record("a", E500, now), None);
    assert_eq!(d.record("a", OK, now), None, "a success resets the streak");
    assert_eq!(d.record("a", E500, now), None);
    assert_eq!(d.record("a", E500, now), None);
    assert!(!d.is_ejected("a", now));
    let ev = d.record("a", E500, now).unwrap();
    assert_eq!(
        ev,
        OutlierEvent::Ejected {
            cluster: "a".into(),
            duration: 10 * S,
            times: 1,
            reason: EjectionReason::ConsecutiveErrors,
        }
    );
    assert!(d.is_ejected("a", clk.at(9 * S)));
    assert!(
        !d.is_ejected("a", clk.at(10 * S)),
        "un-ejected when the time is up"
    );
    // Second ejection lasts twice as long, the third is capped at 25s.
    let now = clk.advance(10 * S);
    assert_eq!(
        d.record("a", E500, now),
        Some(OutlierEvent::Returned {
            cluster: "a".into()
        })
    );
    d.record("a", E500, now);
    assert!(
        matches!(d.record("a", E500, now), Some(OutlierEvent::Ejected { duration, times: 2, .. }) if duration == 20 * S)
    );
    let now = clk.advance(20 * S);
    for _ in 0..3 {
        d.record("a", E500, now);
    }
    assert_eq!(d.ejected(now), vec![(Arc::from("a"), 25 * S)]);
    assert_eq!(d.times_ejected("a"), 3);
    // Back in for 2 base ejection times with successes: the multiplier
    // decays from 3 to 1, so the next ejection lasts 2 x 10 s.
    let back = clk.advance(25 * S);
    d.record("a", OK, back);
    d.record("a", OK, back + 10 * S);
    d.record("a", OK, back + 20 * S);
    assert_eq!(d.times_ejected("a"), 1);
    let now = clk.advance(20 * S);
    for _ in 0..3 {
        d.record("a", E500, now);
    }
    assert_eq!(d.ejected(now), vec![(Arc::from("a"), 20 * S)]);
}

#[test]
fn outlier_respects_max_ejection_percent() {
    let now = Clock::new().now;
    let d = outlier(50); // 4 targets: at most 2 ejected
    for c in ["a", "b", "c"] {
        for _ in 0..3 {
            d.record(c, E500, now);
        }
    }
    assert!(d.is_ejected("a", now) && d.is_ejected("b", now));
    assert!(!d.is_ejected("c", now));
    // The skipped target keeps failing: still skipped while the share is used.
    d.record("c", E500, now);
    d.record("c", E500, now);
    assert_eq!(
        d.record("c", E500, now),
        Some(OutlierEvent::EjectionSkipped {
            cluster: "c".into()
        })
    );
    // 10% of 4 targets rounds down to 0, but one ejection is always
    // allowed (Envoy): the first failing target goes, the second stays.
    let d = outlier(10);
    for _ in 0..3 {
        d.record("a", E500, now);
        d.record("b", E500, now);
    }
    assert!(d.is_ejected("a", now));
    assert!(!d.is_ejected("b", now), "only one of four at 10 %");
}

#[test]
fn outlier_ignores_outcomes_while_ejected_and_forgets_removed_targets() {
    let now = Clock::new().now;
    let d = outlier(100);
    for _ in 0..3 {
        d.record("a", E500, now);
    }
    assert_eq!(d.record("a", E500, now + S), None);
    assert_eq!(d.times_ejected("a"), 1);
    d.set_targets(["b", "c"]);
    assert!(!d.is_ejected("a", now));
    assert_eq!(d.times_ejected("a"), 0);
}

#[test]
fn outlier_consecutive_gateway_errors_count_only_gateway_failures() {
    let now = Clock::new().now;
    let d = OutlierDetector::new(OutlierConfig {
        consecutive_errors: 0,
        consecutive_gateway_errors: 3,
        max_ejection_percent: 10,
        ..OutlierConfig::default()
    });
    d.set_targets(["a", "b"]);
    // 500 and gRPC INTERNAL are errors but not gateway failures: they
    // break the streak.
    d.record("a", TryOutcome::Grpc(grpc::UNAVAILABLE), now);
    d.record("a", TryOutcome::ConnectFailed, now);
    d.record("a", E500, now);
    d.record("a", TryOutcome::Grpc(grpc::INTERNAL), now);
    assert!(!d.is_ejected("a", now));
    d.record("a", TryOutcome::Status(503), now);
    d.record("a", TryOutcome::Grpc(grpc::DEADLINE_EXCEEDED), now);
    let ev = d.record("a", TryOutcome::Grpc(grpc::UNAVAILABLE), now);
    assert!(
        matches!(
            ev,
            Some(OutlierEvent::Ejected {
                reason: EjectionReason::ConsecutiveGatewayErrors,
                ..
            })
        ),
        "{ev:?}"
    );
    // gRPC caller errors (NOT_FOUND, RESOURCE_EXHAUSTED) are successes for
    // the detectors.
    for _ in 0..10 {
        d.record("b", TryOutcome::Grpc(5), now);
        d.record("b", TryOutcome::Grpc(grpc::RESOURCE_EXHAUSTED), now);
    }
    assert!(!d.is_ejected("b", now));
}

#[test]
fn outlier_success_rate_ejects_the_outlier_once_per_interval() {
    let mut clk = Clock::new();
    let d = OutlierDetector::new(OutlierConfig {
        consecutive_errors: 0,
        success_rate: Some(SuccessRateConfig {
            minimum_hosts: 3,
            request_volume: 10,
            stdev_factor: 1000,
        }),
        interval: 10 * S,
        max_ejection_percent: 10,
        ..OutlierConfig::default()
    });
    d.set_targets(["a", "b", "c", "d"]);
    let t0 = clk.now;
    assert!(
        d.evaluate(t0).is_empty(),
        "the first call starts the interval"
    );
    for i in 0..20u32 {
        d.record("a", OK, t0);
        d.record("b", OK, t0);
        d.record("c", if i % 10 == 0 { E500 } else { OK }, t0);
        // d: 50 % success, never 2 failures in a row.
        d.record("d", if i % 2 == 0 { E500 } else { OK }, t0);
    }
    assert!(d.evaluate(clk.at(9 * S)).is_empty(), "before the interval");
    let now = clk.advance(10 * S);
    let evs = d.evaluate(now);
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(matches!(
        &evs[0],
        OutlierEvent::Ejected { cluster, reason: EjectionReason::SuccessRate, .. } if &**cluster == "d"
    ));
    assert!(d.is_ejected("d", now) && !d.is_ejected("c", now));
    // Counts restart each interval: too few requests, nothing happens.
    for _ in 0..5 {
        d.record("c", E500, now);
    }
    assert!(d.evaluate(clk.advance(10 * S)).is_empty());
}

#[test]
fn outlier_success_rate_needs_minimum_hosts_with_volume() {
    let mut clk = Clock::new();
    let d = OutlierDetector::new(OutlierConfig {
        consecutive_errors: 0,
        success_rate: Some(SuccessRateConfig {
            minimum_hosts: 3,
            request_volume: 10,
            stdev_factor: 1000,
        }),
        interval: 10 * S,
        ..OutlierConfig::default()
    });
    d.set_targets(["a", "b", "c"]);
    d.evaluate(clk.now);
    for i in 0..20u32 {
        d.record("a", OK, clk.now);
        d.record("b", if i % 2 == 0 { E500 } else { OK }, clk.now);
    }
    for _ in 0..9 {
        d.record("c", OK, clk.now);
    }
    assert!(
        d.evaluate(clk.advance(10 * S)).is_empty(),
        "c has 9 < 10 requests: two hosts are not enough"
    );
}

#[test]
fn grpc_status_is_classified_per_the_spec() {
    use http::HeaderMap;
    let mut h = HeaderMap::new();
    h.insert("content-type", "application/grpc+proto".parse().unwrap());
    assert_eq!(GrpcStatus::from_headers(&h), GrpcStatus::Pending);
    h.insert("grpc-status", "14".parse().unwrap());
    assert_eq!(GrpcStatus::from_headers(&h), GrpcStatus::Code(14));
    assert_eq!(GrpcStatus::Code(14).label(), "14");
    h.insert("grpc-status", "17".parse().unwrap());
    assert_eq!(GrpcStatus::from_headers(&h), GrpcStatus::Invalid);
    assert_eq!(GrpcStatus::Invalid.code(), Some(grpc::UNKNOWN));
    h.insert("content-type", "application/grpc-web".parse().unwrap());
    assert_eq!(GrpcStatus::from_headers(&h), GrpcStatus::NotGrpc);
    assert_eq!(
        GrpcStatus::from_trailers(&HeaderMap::new()),
        GrpcStatus::Missing
    );
    assert_eq!(GrpcStatus::Missing.code(), Some(grpc::INTERNAL));
    // Failures: the server-side codes; caller errors are not.
    let failing: Vec<u8> = (0..=16)
        .filter(|c| !TryOutcome::Grpc(*c).is_success())
        .collect();
    assert_eq!(failing, vec![2, 4, 12, 13, 14, 15]);
    let gateway: Vec<u8> = (0..=16)
        .filter(|c| TryOutcome::Grpc(*c).is_gateway_failure())
        .collect();
    assert_eq!(gateway, vec![4, 14]);
}

#[test]
fn retry_on_grpc_conditions_ignores_the_post_method() {
    let cfg = RetryConfig {
        attempts: 2,
        retry_on: RetryOn::parse(["unavailable", "resource-exhausted"]).0,
    };
    let post = http::Method::POST;
    assert_eq!(cfg.may_retry(&post, TryOutcome::Grpc(14), 0), Ok(()));
    assert_eq!(cfg.may_retry(&post, TryOutcome::Grpc(8), 1), Ok(()));
    assert_eq!(
        cfg.may_retry(&post, TryOutcome::Grpc(14), 2),
        Err(NoRetry::AttemptsExhausted)
    );
    assert_eq!(
        cfg.may_retry(&post, TryOutcome::Grpc(4), 0),
        Err(NoRetry::NotRetriable),
        "deadline-exceeded not listed"
    );
    assert_eq!(
        cfg.may_retry(&post, TryOutcome::Grpc(0), 0),
        Err(NoRetry::NotRetriable)
    );
    // HTTP 503 under `unavailable` still asks idempotency.
    assert_eq!(
        cfg.may_retry(&post, TryOutcome::Status(503), 0),
        Err(NoRetry::NotIdempotent)
    );
    assert_eq!(
        cfg.may_retry(&http::Method::GET, TryOutcome::Status(503), 0),
        Ok(())
    );
    let all = RetryOn::parse(["cancelled", "deadline-exceeded"]).0;
    let cfg = RetryConfig {
        attempts: 1,
        retry_on: all,
    };
    assert!(cfg.matches(TryOutcome::Grpc(1)) && cfg.matches(TryOutcome::Grpc(4)));
    assert!(!cfg.matches(TryOutcome::Grpc(14)));
}

// ---------- circuit breaker ----------

#[test]
fn breaker_permits_are_raii() {
    let b = Arc::new(CircuitBreaker::new(BreakerConfig {
        max_connections: 1,
        max_pending: 0,
        max_requests: 2,
    }));
    let p1 = b.try_acquire(BreakerLimit::Requests).unwrap();
    assert!(!b.is_open());
    let p2 = b.try_acquire(BreakerLimit::Requests).unwrap();
    assert!(b.is_open());
    let err = b.try_acquire(BreakerLimit::Requests).unwrap_err();
    assert_eq!(
        err,
        BreakerOpen {
            limit: BreakerLimit::Requests,
            max: 2
        }
    );
    drop(p1);
    assert!(!b.is_open());
    assert_eq!(b.count(BreakerLimit::Requests), 1);
    let _c = b.try_acquire(BreakerLimit::Connections).unwrap();
    assert!(b.try_acquire(BreakerLimit::Connections).is_err());
    // 0 = unlimited.
    let pending: Vec<_> = (0..100)
        .map(|_| b.try_acquire(BreakerLimit::Pending).unwrap())
        .collect();
    assert_eq!(b.status().pending, 100);
    drop(pending);
    drop(p2);
    assert_eq!(
        b.status(),
        BreakerStatus {
            connections: 1,
            pending: 0,
            requests: 0,
            open: true
        }
    );
}

#[test]
fn breaker_is_exact_under_contention() {
    let b = Arc::new(CircuitBreaker::new(BreakerConfig {
        max_connections: 0,
        max_pending: 0,
        max_requests: 8,
    }));
    let granted = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1000 {
                    if let Ok(p) = b.try_acquire(BreakerLimit::Requests) {
                        assert!(b.count(BreakerLimit::Requests) <= 8);
                        granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        drop(p);
                    }
                }
            });
        }
    });
    assert!(granted.into_inner() > 0);
    assert_eq!(b.count(BreakerLimit::Requests), 0);
}

// ---------- rate limiter ----------

#[test]
fn rate_limiter_token_bucket_with_retry_after() {
    let mut clk = Clock::new();
    let rl = RateLimiter::new(RateLimitConfig {
        requests_per_second: 2.0,
        burst: 3,
    });
    let now = clk.now;
    for _ in 0..3 {
        rl.check("alice", now).unwrap();
    }
    assert_eq!(
        rl.check("alice", now),
        Err(RateLimited {
            retry_after_secs: 1
        })
    );
    // Sources are independent.
    rl.check("bob", now).unwrap();
    // Half a second refills one token.
    let now = clk.advance(500 * MS);
    rl.check("alice", now).unwrap();
    assert!(rl.check("alice", now).is_err());
    // Slow rates report longer waits.
    let slow = RateLimiter::new(RateLimitConfig {
        requests_per_second: 0.1,
        burst: 1,
    });
    slow.check("a", now).unwrap();
    assert_eq!(
        slow.check("a", now),
        Err(RateLimited {
            retry_after_secs: 10
        })
    );
    assert_eq!(
        slow.check("a", now + 4 * S),
        Err(RateLimited {
            retry_after_secs: 6
        })
    );
    slow.check("a", now + 10 * S).unwrap();
}

// ---------- retries ----------

#[test]
fn retry_budget_allows_min_plus_percent() {
    let mut clk = Clock::new();
    let b = RetryBudget::new(
        RetryBudgetConfig {
            budget_percent: 20,
            min_retries: 2,
            window: 10 * S,
        },
        clk.now,
    );
    let now = clk.now;
    assert!(b.try_retry(now) && b.try_retry(now));
    assert!(!b.try_retry(now), "min spent, no traffic");
    for _ in 0..50 {
        b.record_request(now);
    }
    let granted = (0..100).filter(|_| b.try_retry(now)).count();
    assert_eq!(granted, 10, "20% of 50");
    // The window slides: after it, only the minimum again.
    let now = clk.advance(11 * S);
    assert!(b.try_retry(now) && b.try_retry(now) && !b.try_retry(now));
}

#[test]
fn may_retry_table() {
    use http::Method;
    let defaults = RetryConfig {
        attempts: 2,
        retry_on: RetryOn::parse(["connect-failure", "refused-stream", "reset"]).0,
    };
    let fivexx = RetryConfig {
        attempts: 2,
        retry_on: RetryOn::parse(["5xx"]).0,
    };
    let post_ok = RetryConfig {
        attempts: 2,
        retry_on: RetryOn::parse(["reset", "gateway-error", "non-idempotent"]).0,
    };
    type Case<'a> = (
        &'a RetryConfig,
        Method,
        TryOutcome,
        u32,
        Result<(), NoRetry>,
    );
    let cases: Vec<Case<'_>> = vec![
        (&defaults, Method::GET, TryOutcome::ConnectFailed, 0, Ok(())),
        (
            &defaults,
            Method::POST,
            TryOutcome::ConnectFailed,
            0,
            Ok(()),
        ),
        (
            &defaults,
            Method::POST,
            TryOutcome::RefusedStream,
            1,
            Ok(()),
        ),
        (&defaults, Method::GET, TryOutcome::Reset, 0, Ok(())),
        (
            &defaults,
            Method::POST,
            TryOutcome::Reset,
            0,
            Err(NoRetry::NotIdempotent),
        ),
        (
            &defaults,
            Method::PATCH,
            TryOutcome::Timeout,
            0,
            Err(NoRetry::NotIdempotent),
        ),
        (&defaults, Method::PUT, TryOutcome::Timeout, 0, Ok(())),
        (
            &defaults,
            Method::GET,
            TryOutcome::Status(503),
            0,
            Err(NoRetry::NotRetriable),
        ),
        (
            &defaults,
            Method::GET,
            TryOutcome::ConnectFailed,
            2,
            Err(NoRetry::AttemptsExhausted),
        ),
        (&fivexx, Method::GET, TryOutcome::Status(500), 0, Ok(())),
        (
            &fivexx,
            Method::GET,
            TryOutcome::Status(404),
            0,
            Err(NoRetry::NotRetriable),
        ),
        (
            &fivexx,
            Method::POST,
            TryOutcome::Status(500),
            0,
            Err(NoRetry::NotIdempotent),
        ),
        (
            &fivexx,
            Method::GET,
            TryOutcome::ConnectFailed,
            0,
            Err(NoRetry::NotRetriable),
        ),
        (&post_ok, Method::POST, TryOutcome::Reset, 0, Ok(())),
        (&post_ok, Method::POST, TryOutcome::Status(502), 1, Ok(())),
        (
            &post_ok,
            Method::POST,
            TryOutcome::Status(500),
            0,
            Err(NoRetry::NotRetriable),
        ),
    ];
    for (cfg, m, outcome, done, want) in cases {
        assert_eq!(
            cfg.may_retry(&m, outcome, done),
            want,
            "{m} {outcome:?} {done}"
        );
    }
    let (_, unknown) = RetryOn::parse(["reset", "bogus"]);
    assert_eq!(unknown, ["bogus"]);
}

// ---------- rollback guard ----------

fn guard(now: Instant) -> RollbackGuardState {
    RollbackGuardState::new(
        RollbackConfig {
            canary: "canary".into(),
            max_error_rate: 0.1,
            max_p99: 500 * MS,
            window: 60 * S,
            min_requests: 20,
        },
        now,
    )
}

#[test]
fn rollback_trips_on_error_rate_after_min_requests() {
    let mut clk = Clock::new();
    let g = guard(clk.now);
    // 5 errors in the first 5 requests: 100% but under min_requests.
    for _ in 0..5 {
        assert_eq!(g.record(clk.now, true, 10 * MS), None);
    }
    for _ in 0..14 {
        assert_eq!(g.record(clk.now, false, 10 * MS), None);
    }
    assert!(!g.is_tripped());
    let now = clk.advance(S);
    let ev = g.record(now, false, 10 * MS).unwrap();
    assert_eq!(ev.cause, TripCause::ErrorRate);
    assert_eq!((ev.stats.requests, ev.stats.errors), (20, 5));
    assert!(g.is_tripped());
    // Sticky: the window clearing does not un-trip, and no second event.
    let now = clk.advance(120 * S);
    assert_eq!(g.record(now, false, MS), None);
    assert!(g.is_tripped() && g.status(now).tripped);
    // The same policy again keeps the trip; a changed policy resets it.
    let same = RollbackConfig {
        canary: "canary".into(),
        max_error_rate: 0.1,
        max_p99: 500 * MS,
        window: 60 * S,
        min_requests: 20,
    };
    assert!(g.set_config(same.clone(), now));
    assert!(g.is_tripped());
    assert!(g.set_config(
        RollbackConfig {
            max_error_rate: 0.2,
            ..same.clone()
        },
        now
    ));
    assert!(!g.is_tripped());
    assert!(!g.set_config(
        RollbackConfig {
            canary: "other".into(),
            ..same
        },
        now
    ));
}

#[test]
fn rollback_trips_on_p99_latency_and_old_errors_age_out() {
    let mut clk = Clock::new();
    let g = guard(clk.now);
    // Old errors leave the window.
    for _ in 0..10 {
        g.record(clk.now, true, MS);
    }
    let now = clk.advance(61 * S);
    assert_eq!(g.status(now).window.requests, 0);
    // 198 fast requests, then slow ones: the nearest-rank p99 turns slow
    // when more than 1% are slow (the 3rd slow one of 201).
    for _ in 0..198 {
        assert_eq!(g.record(now, false, 20 * MS), None);
    }
    assert_eq!(g.record(now, false, 900 * MS), None, "1 of 199 slow");
    assert_eq!(g.record(now, false, 900 * MS), None, "2 of 200 slow");
    let ev = g.record(now, false, 900 * MS).unwrap();
    assert_eq!(ev.cause, TripCause::Latency);
    assert_eq!(ev.stats.p99, Some(1000 * MS));
    let st = g.status(now);
    assert_eq!(st.window.errors, 0);
    assert_eq!(&*st.canary, "canary");
}

// ---------- registry + routing ----------

mod registry {
    use super::*;
    use crate::routing::{
        CatalogView, HealthView, LocalCluster, RouteRequest, RoutingSnapshot, decide,
    };
    use causeway_api::model::policy::{OutlierDetection, Percent, Ratio, RollbackGuard};
    use causeway_api::model::{
        CatalogSnapshot, Cluster, ClusterSpec, ServiceExport, ServiceExportSpec, ServicePort,
        TrafficPolicy, TrafficPolicySpec, ZoneEndpoints,
    };

    fn catalog() -> CatalogSnapshot {
        let mut cs = CatalogSnapshot::default();
        for (id, zone) in [("local", "r1-a"), ("stable", "r1-b"), ("canary", "r1-c")] {
            let c = Cluster::new(
                id.parse().unwrap(),
                ClusterSpec {
                    cloud: String::new(),
                    region: "r1".into(),
                    zone: zone.into(),
                    jurisdictions: vec!["eu".into()],
                    labels: Default::default(),
                    gateway: Default::default(),
                    trust_domain: format!("{id}.td").parse().unwrap(),
                },
            );
            cs.clusters.insert(c.id().clone(), c);
        }
        for c in ["stable", "canary"] {
            let e = ServiceExport::new(
                "shop".parse().unwrap(),
                "cart".parse().unwrap(),
                c.parse().unwrap(),
                ServiceExportSpec {
                    ports: vec![ServicePort {
                        name: None,
                        protocol: Default::default(),
                        app_protocol: None,
                        port: 80,
                    }],
                    endpoints: vec![ZoneEndpoints {
                        zone: "z".into(),
                        ready: 1,
                    }],
                    ..ServiceExportSpec::default()
                },
            );
            cs.exports.insert(e.key(), e);
        }
        let mut spec = TrafficPolicySpec::new("shop/cart".parse().unwrap());
        spec.weights = [
            ("stable".parse().unwrap(), 50),
            ("canary".parse().unwrap(), 50),
        ]
        .into();
        spec.outlier_detection = Some(OutlierDetection {
            consecutive_errors: 2,
            interval: 10 * S,
            base_ejection_time: 30 * S,
            max_ejection_percent: Percent::new(50).unwrap(),
            ..OutlierDetection::default()
        });
        spec.rollback_guard = Some(RollbackGuard {
            canary: "canary".parse().unwrap(),
            max_error_rate: Ratio::new(0.5).unwrap(),
            max_p99: S,
            window: 60 * S,
            min_requests: 4,
        });
        let p = TrafficPolicy::new("cart".parse().unwrap(), spec);
        cs.policies.traffic.insert(p.name().clone(), p);
        cs
    }

    fn snapshot(cs: &CatalogSnapshot) -> RoutingSnapshot {
        RoutingSnapshot::build(
            CatalogView::of(cs),
            LocalCluster::from_cluster(
                &cs.clusters[&"local".parse::<causeway_api::model::ClusterId>().unwrap()],
            ),
        )
    }

    fn picks(snap: &RoutingSnapshot, h: &impl HealthView) -> std::collections::BTreeSet<String> {
        (0..200u64)
            .filter_map(|i| {
                decide(
                    snap,
                    h,
                    &RouteRequest::service("shop", "cart")
                        .with_random(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                )
                .route()
                .map(|r| r.target.cluster.to_string())
            })
            .collect()
    }

    #[test]
    fn rollback_and_ejection_steer_decide() {
        let mut clk = Clock::new();
        let cs = catalog();
        let snap = snapshot(&cs);
        let reg = Resilience::new();
        reg.apply(&cs, &snap, clk.now);
        let svc = reg.service("shop", "cart").unwrap();
        assert_eq!(
            picks(&snap, &reg.view(clk.now)),
            ["canary".to_string(), "stable".to_string()].into()
        );

        // The canary fails: 2 consecutive errors eject it (50% of 2 targets = 1).
        let now = clk.now;
        assert!(svc.record("canary", E500, 10 * MS, now).outlier.is_empty());
        let rec = svc.record("canary", E500, 10 * MS, now);
        assert!(matches!(
            rec.outlier.as_slice(),
            [OutlierEvent::Ejected { .. }]
        ));
        assert_eq!(picks(&snap, &reg.view(now)), ["stable".to_string()].into());
        // Back after 30 s ...
        let now = clk.advance(30 * S);
        assert_eq!(picks(&snap, &reg.view(now)).len(), 2);
        // ... the rollback guard trips at 4 requests with > 50% errors.
        svc.record("canary", OK, MS, now);
        let rec = svc.record("canary", E500, MS, now);
        let ev = rec.rollback.unwrap();
        assert_eq!(&*ev.canary, "canary");
        assert!(
            reg.view(now)
                .target_health("shop", "cart", "canary")
                .rolled_back
        );
        assert_eq!(picks(&snap, &reg.view(now)), ["stable".to_string()].into());
        assert!(svc.status(now).rollback.unwrap().tripped);
        // Re-applying the same catalog keeps the trip (sticky).
        reg.apply(&cs, &snap, now);
        assert_eq!(picks(&snap, &reg.view(now)), ["stable".to_string()].into());
        // A probe failure of the stable gateway leaves nothing.
        assert!(reg.set_probe("stable", false, now).is_empty());
        assert!(picks(&snap, &reg.view(now)).is_empty());
        assert!(
            reg.set_probe("stable", true, now).is_empty(),
            "nothing ejected"
        );
        assert_eq!(picks(&snap, &reg.view(now)).len(), 1);
    }

    fn ejected(reg: &Resilience, at: Instant) -> bool {
        reg.view(at).target_health("shop", "cart", "stable").ejected
    }

    #[test]
    fn a_probe_passing_again_lets_ejected_services_back() {
        let clk = Clock::new();
        let cs = catalog();
        let snap = snapshot(&cs);
        let reg = Resilience::new();
        let now = clk.now;
        reg.apply(&cs, &snap, now);
        let svc = reg.service("shop", "cart").unwrap();
        // The service answers 500s in the stable cluster: ejected there.
        assert!(reg.set_probe("stable", true, now).is_empty());
        svc.record("stable", E500, MS, now);
        svc.record("stable", E500, MS, now);
        assert!(ejected(&reg, now));
        // The gateway's probe passing says nothing about the service ...
        assert!(reg.set_probe("stable", true, now).is_empty());
        assert!(ejected(&reg, now));
        // ... passing again after failing (the gateway died and came back)
        // lets it back long before 30 s.
        reg.set_probe("stable", false, now);
        let back = reg.set_probe("stable", true, now + S);
        assert_eq!(back, vec!["shop/cart".to_string()]);
        assert!(!ejected(&reg, now + S));
    }

    #[test]
    fn a_passing_probe_lifts_an_ejection_by_connect_failures() {
        let clk = Clock::new();
        let cs = catalog();
        let snap = snapshot(&cs);
        let reg = Resilience::new();
        let now = clk.now;
        reg.apply(&cs, &snap, now);
        let svc = reg.service("shop", "cart").unwrap();
        // The stable gateway restarts faster than its probe is marked
        // failing; requests meanwhile fail to connect and eject the service.
        svc.record("stable", TryOutcome::ConnectFailed, MS, now);
        svc.record("stable", TryOutcome::ConnectFailed, MS, now);
        assert!(ejected(&reg, now));
        assert!(reg.set_probe("stable", false, now).is_empty());
        assert!(ejected(&reg, now), "a failing probe lifts nothing");
        // Failing was one probe below the threshold: the state the
        // registry sees is "passing" again, yet the gateway is reachable.
        let back = reg.set_probe("stable", true, now + MS);
        assert_eq!(back, vec!["shop/cart".to_string()]);
        assert!(!ejected(&reg, now + MS));
        // A reset ejects the same way; a 503 from the gateway does not count
        // as unreachable.
        svc.record("stable", TryOutcome::Reset, MS, now + MS);
        svc.record("stable", TryOutcome::Reset, MS, now + MS);
        assert!(ejected(&reg, now + MS));
        assert_eq!(reg.set_probe("stable", true, now + 2 * MS).len(), 1);
        svc.record("stable", TryOutcome::Status(503), MS, now + 3 * MS);
        svc.record("stable", TryOutcome::Status(503), MS, now + 3 * MS);
        assert!(ejected(&reg, now + 3 * MS));
        assert!(reg.set_probe("stable", true, now + 4 * MS).is_empty());
        assert!(ejected(&reg, now + 4 * MS));
    }

    #[test]
    fn breaker_open_steers_decide_and_rate_limit_applies() {
        let now = Clock::new().now;
        let mut cs = catalog();
        let key = cs.policies.traffic.keys().next().unwrap().clone();
        let p = cs.policies.traffic.get_mut(&key).unwrap();
        p.spec.circuit_breaker = Some(causeway_api::model::policy::CircuitBreaker {
            max_connections: 10,
            max_pending_requests: 10,
            max_requests: 1,
        });
        p.spec.rate_limit = Some(causeway_api::model::policy::RateLimit {
            requests_per_second: 1,
            burst: Some(2),
        });
        let snap = snapshot(&cs);
        let reg = Resilience::new();
        reg.apply(&cs, &snap, now);
        let svc = reg.service("shop", "cart").unwrap();
        let permit = svc
            .breaker("stable")
            .try_acquire(BreakerLimit::Requests)
            .unwrap();
        assert_eq!(picks(&snap, &reg.view(now)), ["canary".to_string()].into());
        drop(permit);
        assert_eq!(picks(&snap, &reg.view(now)).len(), 2);
        svc.check_rate("spiffe://a/x", now).unwrap();
        svc.check_rate("spiffe://a/x", now).unwrap();
        assert_eq!(
            svc.check_rate("spiffe://a/x", now),
            Err(RateLimited {
                retry_after_secs: 1
            })
        );
        assert_eq!(svc.retry_config().attempts, 2);
        // Services that disappear are forgotten.
        let empty = CatalogSnapshot::default();
        reg.apply(
            &empty,
            &RoutingSnapshot::from_catalog(&empty, LocalCluster::default()),
            now,
        );
        assert!(reg.service("shop", "cart").is_none());
    }
}

// ---------- active-probe thresholds ----------

mod probe {
    use std::num::NonZeroU32;

    use super::*;

    fn thresholds(healthy: u32, unhealthy: u32) -> ProbeThresholds {
        ProbeThresholds {
            healthy: NonZeroU32::new(healthy).unwrap(),
            unhealthy: NonZeroU32::new(unhealthy).unwrap(),
        }
    }

    /// Feeds `results` and returns the failing state after each.
    fn run(t: ProbeThresholds, results: &[bool]) -> Vec<bool> {
        let mut st = ProbeState::default();
        results
            .iter()
            .map(|&passed| {
                st.observe(passed, t);
                st.failing()
            })
            .collect()
    }

    #[test]
    fn one_failure_does_not_flip_a_healthy_gateway() {
        let t = thresholds(2, 3);
        assert_eq!(
            run(t, &[false, false, true, false, false]),
            [false; 5],
            "a pass breaks the run of failures"
        );
        assert_eq!(
            run(t, &[false, false, false, false]),
            [false, false, true, true]
        );
    }

    #[test]
    fn a_failing_gateway_needs_the_healthy_run_to_come_back() {
        let t = thresholds(2, 1);
        let mut st = ProbeState::default();
        assert_eq!(
            st.observe(false, t),
            Some(true),
            "threshold 1 flips at once"
        );
        assert_eq!(st.observe(true, t), None);
        assert_eq!(st.observe(false, t), None, "still failing, run broken");
        assert_eq!(st.observe(true, t), None);
        assert!(st.failing());
        assert_eq!(st.observe(true, t), Some(false));
        assert_eq!(st.observe(true, t), None);
        assert!(!st.failing());
    }

    #[test]
    fn thresholds_of_one_follow_every_probe() {
        let t = thresholds(1, 1);
        assert_eq!(
            run(t, &[true, false, true, false, false, true]),
            [false, true, false, true, true, false]
        );
    }

    #[test]
    fn the_wait_is_jittered_within_the_percentage() {
        let i = Duration::from_secs(10);
        assert_eq!(next_probe_in(i, 10, 0.0), i);
        assert_eq!(next_probe_in(i, 10, 0.5), Duration::from_millis(10_500));
        assert_eq!(next_probe_in(i, 0, 0.9), i, "no jitter");
        assert_eq!(next_probe_in(i, 200, 1.0), 2 * i, "capped at 100 %");
        let waits: std::collections::BTreeSet<Duration> = (0..100)
            .map(|_| next_probe_in(i, 10, rand::random::<f64>()))
            .collect();
        assert!(waits.iter().all(|w| *w >= i && *w <= i + S));
        assert!(waits.len() > 50, "spread, not constant: {waits:?}");
    }
}
