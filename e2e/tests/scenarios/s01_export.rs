//! Scenario 1: export in one cluster, call from another.

use std::time::{Duration, Instant};

use crate::support::{calls, tally};
use causeway_e2e::federation::host;
use causeway_e2e::metrics;
use causeway_e2e::{ClusterDef, Federation, Store};

/// 1. Export in cluster A, call `svc.ns.svc.clusterset.local` from cluster B:
/// served by A over mTLS; source and destination in metrics and access logs.
/// A service A starts exporting later is routable from B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_export_in_a_is_served_to_b_over_mtls() -> anyhow::Result<()> {
    let mut fed = Federation::builder()
        .store(Store::Etcd { members: 1 })
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"),
        )
        .cluster(ClusterDef::new(
            "us-east-1",
            "us-east",
            "us-east-1a",
            &["us"],
        ))
        .start()
        .await?;
    let cart = host("shop/cart");
    let replies = calls(&fed, "us-east-1", &cart, &[], 20).await?;
    let t = tally(&replies);
    assert_eq!(t.get("200 eu-west-1"), Some(&20), "{t:?}");
    assert_eq!(fed.backend("eu-west-1", "shop/cart")?.count(), 20);

    // The request crossed on the east-west listener with a verified identity.
    let body = replies[0].json();
    assert!(
        body["headers"].get("x-causeway-source-cluster").is_some()
            || body["headers"].get("x-causeway-source-gateway").is_some(),
        "destination gateway states the verified source: {body}"
    );

    // Metrics: the caller's egress counts requests to eu-west-1, the
    // destination's ingress counts requests from us-east-1.
    let src = fed.cluster("us-east-1")?.gateway.metrics().await?;
    let dst = fed.cluster("eu-west-1")?.gateway.metrics().await?;
    let egress = metrics::sum(
        &src,
        "causeway_gateway_requests_total",
        &[("listener", "egress"), ("destination_cluster", "eu-west-1")],
    );
    let ingress = metrics::sum(
        &dst,
        "causeway_gateway_requests_total",
        &[("listener", "ingress"), ("source_cluster", "us-east-1")],
    );
    assert_eq!(egress, 20.0, "egress metrics:\n{src}");
    assert_eq!(ingress, 20.0, "ingress metrics:\n{dst}");

    // Access logs on both sides name source and destination.
    let wait = Duration::from_secs(5);
    let src_log = crate::support::log_lines(&fed, "us-east-1", 20, wait).await?;
    let dst_log = crate::support::log_lines(&fed, "eu-west-1", 20, wait).await?;
    let about_cart = |l: &&serde_json::Value| l.to_string().contains("cart");
    let line = src_log.iter().rfind(about_cart).unwrap().to_string();
    assert!(
        line.contains("eu-west-1") && line.contains("us-east-1"),
        "{line}"
    );
    let line = dst_log.iter().rfind(about_cart).unwrap().to_string();
    assert!(
        line.contains("us-east-1") && line.contains("spiffe://us-east-1.causeway.test"),
        "{line}"
    );

    // A new export: A's agent publishes it from its static file, B's agent
    // learns it over the watch; B routes it within a second of its creation.
    fed.add_service("eu-west-1", "shop/orders").await?;
    let written = Instant::now();
    fed.wait_export("eu-west-1", "shop/orders", 1, Duration::from_secs(5))
        .await?;
    let created = Instant::now();
    let orders = host("shop/orders");
    let us = &fed.cluster("us-east-1")?.gateway;
    causeway_e2e::wait::until(
        "us-east-1 routes shop/orders",
        Duration::from_secs(5),
        Duration::from_millis(5),
        || async {
            let r = us.debug_route(&orders, &[]).await.ok()?;
            (r["decision"]["outcome"] == "route").then_some(())
        },
    )
    .await?;
    let visible = created.elapsed();
    eprintln!(
        "new export: published {:?} after the file edit, routable in us-east-1 {visible:?} after that",
        created - written
    );
    assert!(visible < Duration::from_secs(1), "{visible:?}");
    let r = fed.call("us-east-1", &orders, &[]).await?;
    assert_eq!(r.served_by.as_deref(), Some("eu-west-1"));
    Ok(())
}
