//! Scenario 7: a cluster disappears and comes back.

use std::time::{Duration, Instant};

use causeway_e2e::federation::host;
use causeway_e2e::traffic::Traffic;
use causeway_e2e::{ClusterDef, Federation, Store};

/// Callers must have failed over (and come back) within this window: a few
/// probe intervals (300 ms) plus connect timeouts, when A's gateway is gone.
const WINDOW: Duration = Duration::from_secs(3);
/// Under a network partition, requests already sent to A on a pooled
/// connection hang until the request timeout (5 s) before they fail over.
const PARTITION_WINDOW: Duration = Duration::from_secs(7);
/// Failed requests allowed while failing over: the caller sends one request
/// at a time, so only the request in flight at the cut (measured: 1) and at
/// most a couple sent before the gateway learns A is gone may fail.
const MAX_FAILOVER_FAILURES: u64 = 3;

/// 7. Partition cluster A (its network namespace's link goes down; without
/// namespaces its gateway stops): callers that preferred A fail over to C
/// within the probe/outlier window, and come back after A heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s07_partitioned_cluster_fails_over_and_heals() -> anyhow::Result<()> {
    let mut fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"),
        )
        .cluster(ClusterDef::new(
            "eu-west-2",
            "eu-west",
            "eu-west-2b",
            &["eu"],
        ))
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"]).service("shop/cart"),
        )
        .start()
        .await?;
    let cart = host("shop/cart");
    let traffic = Traffic::start(
        fed.cluster("eu-west-2")?.egress(),
        &cart,
        &[],
        Duration::from_millis(5),
    );
    traffic.wait_for(30, Duration::from_secs(30)).await?;
    let before = traffic.tally();
    assert_eq!(
        before.served_by("eu-west-1"),
        before.total,
        "same region first: {before:?}"
    );

    let window = if fed.uses_namespaces() {
        PARTITION_WINDOW
    } else {
        WINDOW
    };
    fed.partition("eu-west-1", true).await?;
    tokio::time::sleep(window).await;
    let at_window = traffic.tally();
    traffic.wait_for(100, Duration::from_secs(30)).await?;
    let after = traffic.tally();
    let served_c = after.served_by("us-east-1") - at_window.served_by("us-east-1");
    assert_eq!(
        after.failed, at_window.failed,
        "no failures after the window: {after:?}"
    );
    assert_eq!(
        served_c,
        after.total - at_window.total,
        "failed over to us-east-1: {after:?}"
    );
    let failover_failures = at_window.failed - before.failed;
    assert!(
        failover_failures <= MAX_FAILOVER_FAILURES,
        "{failover_failures} requests failed while failing over (bound {MAX_FAILOVER_FAILURES}): {at_window:?}"
    );

    fed.partition("eu-west-1", false).await?;
    let healed = Instant::now();
    crate::support::until_served_by(&traffic, "eu-west-1", window).await?;
    let back_after = healed.elapsed();
    let t = traffic.stop().await;
    eprintln!(
        "partition (namespaces: {}): {failover_failures} failed requests while failing over ({} requests in the {window:?} after the cut); back to eu-west-1 {back_after:?} after healing; totals {:?}",
        fed.uses_namespaces(),
        at_window.total - before.total,
        t.by_outcome
    );
    Ok(())
}
