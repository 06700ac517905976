//! East-west connections are pooled: many requests from one gateway to
//! another share a long-lived mTLS HTTP/2 connection instead of paying a
//! handshake each. Two gateways in-process.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::backend::Backend;
use support::client::get;
use support::fixture::{Site, catalog, export, start_inproc, write_catalog};

const HOST: &str = "echo.demo.svc.clusterset.local";

fn gauge(text: &str, line_prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn east_west_connections_are_reused() {
    if std::env::var("POOL_DEBUG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("pingora_core=debug,pingora_proxy=debug,h2=debug")
            .try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(1, &[&eu, &us], vec![export("demo/echo", "us-1", 1)], vec![]),
    );
    let mut us_cfg = us.config(&[&eu], &cat, &[("demo/echo", backend.addr)]);
    us_cfg.upstream.probe_interval = Duration::from_secs(3600);
    let us_gw = start_inproc(us_cfg).await;
    let mut eu_cfg = eu.config(&[&us], &cat, &[]);
    eu_cfg.upstream.probe_interval = Duration::from_secs(3600);
    let eu_gw = start_inproc(eu_cfg).await;
    // Let the first probe tick (at start) finish and close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..20 {
        let r = get(eu_gw.egress_addr, HOST, "/").await.unwrap();
        assert_eq!(r.status, 200);
    }
    let m = get(us_gw.admin_addr, "admin", "/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&m.body).to_string();
    let accepted = gauge(
        &text,
        "causeway_gateway_connections_total{listener=\"ingress\"}",
    );
    // Pooled connections only: the relay keeps at most two per remote
    // cluster, plus the first probe's (which may still be open on a loaded
    // machine). Without pooling this would be 20.
    assert!(
        (1.0..=3.0).contains(&accepted),
        "ingress connections accepted: {accepted}"
    );
    assert_eq!(backend.count(), 20);
}
