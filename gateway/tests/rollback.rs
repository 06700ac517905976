//! The rollback guard on the request path: a canary cluster that answers
//! errors is pulled back to weight 0 by the guard, which logs, counts, and
//! sends every later request to the stable cluster. Two gateways in-process.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use causeway_api::model::policy::{Ratio, RollbackGuard};
use causeway_api::model::{TrafficPolicy, TrafficPolicySpec};
use support::backend::Backend;
use support::client::get;
use support::fixture::{Site, catalog, export, start_inproc, write_catalog};

const HOST: &str = "echo.demo.svc.clusterset.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_canary_is_rolled_back_to_the_stable_cluster() {
    let dir = tempfile::tempdir().unwrap();
    // Same region and zone: both clusters are in the best tier, split by weight.
    let stable = Site::new(dir.path(), "stable", "eu-west", "eu-west-1a", &["eu"]);
    let canary = Site::new(dir.path(), "canary", "eu-west", "eu-west-1a", &["eu"]);
    let stable_backend = Backend::start("stable").await;
    let canary_backend = Backend::start("canary").await;
    let cat = dir.path().join("catalog.json");
    let mut c = catalog(
        2,
        &[&stable, &canary],
        vec![
            export("demo/echo", "stable", 1),
            export("demo/echo", "canary", 1),
        ],
        vec![],
    );
    let mut spec = TrafficPolicySpec::new("demo/echo".parse().unwrap());
    spec.weights.insert("stable".parse().unwrap(), 50);
    spec.weights.insert("canary".parse().unwrap(), 50);
    spec.rollback_guard = Some(RollbackGuard {
        canary: "canary".parse().unwrap(),
        max_error_rate: Ratio::new(0.5).unwrap(),
        max_p99: Duration::from_secs(10),
        window: Duration::from_secs(60),
        min_requests: 4,
    });
    let p = TrafficPolicy::new("echo-canary".parse().unwrap(), spec);
    c.policies.traffic.insert(p.name().clone(), p);
    write_catalog(&cat, &c);
    let _canary_gw =
        start_inproc(canary.config(&[&stable], &cat, &[("demo/echo", canary_backend.addr)])).await;
    let stable_gw =
        start_inproc(stable.config(&[&canary], &cat, &[("demo/echo", stable_backend.addr)])).await;

    // Errors from both; only the canary's feed its guard.
    for _ in 0..40 {
        let r = get(stable_gw.egress_addr, HOST, "/status/503")
            .await
            .unwrap();
        assert_eq!(r.status, 503);
    }
    let canary_before = canary_backend.count();
    assert!(
        canary_before >= 4,
        "the canary saw {canary_before} requests"
    );
    for _ in 0..20 {
        let r = get(stable_gw.egress_addr, HOST, "/").await.unwrap();
        assert_eq!(r.served_by().as_deref(), Some("stable"));
    }
    assert_eq!(canary_backend.count(), canary_before);
    let m = get(stable_gw.admin_addr, "admin", "/metrics")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains("causeway_gateway_rollback_guard_trips_total{service=\"demo/echo\"} 1"),
        "{text}"
    );
}
