//! Scenario 2: locality tiers and failover, measured.

use std::time::{Duration, Instant};

use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, Federation, Store};

/// How long a caller may take to move to the next tier (or back) after the
/// catalog change: stated bound of this scenario.
const SWITCH_WITHIN: Duration = Duration::from_secs(5);

/// Calls until a reply is served by `want`; returns how long that took.
async fn time_until_served_by(
    fed: &Federation,
    from: &str,
    svc: &str,
    want: &str,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let r = fed.call(from, svc, &[]).await?;
        if r.status == 200 && r.served_by.as_deref() == Some(want) {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < SWITCH_WITHIN,
            "{from} -> {svc} not served by {want} within {SWITCH_WITHIN:?}; last reply {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The tier and cluster `/debug/route` of `from` chooses for `svc`.
async fn chosen(fed: &Federation, from: &str, svc: &str) -> anyhow::Result<(String, String)> {
    let route = fed.cluster(from)?.gateway.debug_route(svc, &[]).await?;
    let d = &route["decision"];
    anyhow::ensure!(d["outcome"] == "route", "not routed: {route}");
    let tier = d["tier"]["kind"].as_str().unwrap_or_default().to_owned();
    let cluster = d["target"]["cluster"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok((tier, cluster))
}

/// Every one of `n` calls is served by `want`.
async fn all_served_by(
    fed: &Federation,
    from: &str,
    svc: &str,
    want: &str,
    n: usize,
) -> anyhow::Result<()> {
    for _ in 0..n {
        let r = fed.call(from, svc, &[]).await?;
        anyhow::ensure!(
            r.status == 200 && r.served_by.as_deref() == Some(want),
            "expected {want}, got {r:?}"
        );
    }
    Ok(())
}

/// 2. A service in eu-west (two zones) and us-east; a caller in eu-west zone
/// a is served in zone a; without that backend in zone b; without eu-west
/// in us-east; restored, back to zone a.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s02_locality_prefers_zone_then_region_then_rest() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1a", "eu-west", "eu-west-a", &["eu"]).service("shop/catalog"),
        )
        .cluster(
            ClusterDef::new("eu-west-1b", "eu-west", "eu-west-b", &["eu"]).service("shop/catalog"),
        )
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-a", &["us"]).service("shop/catalog"),
        )
        .start()
        .await?;
    let svc = host("shop/catalog");
    let from = "eu-west-1a";
    all_served_by(&fed, from, &svc, "eu-west-1a", 10).await?;
    assert_eq!(
        chosen(&fed, from, &svc).await?,
        ("zone".into(), "eu-west-1a".into())
    );

    fed.stop_backend("eu-west-1a", "shop/catalog").await?;
    let to_zone_b = time_until_served_by(&fed, from, &svc, "eu-west-1b").await?;
    all_served_by(&fed, from, &svc, "eu-west-1b", 10).await?;
    assert_eq!(
        chosen(&fed, from, &svc).await?,
        ("region".into(), "eu-west-1b".into())
    );

    fed.stop_backend("eu-west-1b", "shop/catalog").await?;
    let to_us = time_until_served_by(&fed, from, &svc, "us-east-1").await?;
    all_served_by(&fed, from, &svc, "us-east-1", 10).await?;
    assert_eq!(
        chosen(&fed, from, &svc).await?,
        ("rest".into(), "us-east-1".into())
    );

    fed.restore_backend("eu-west-1b", "shop/catalog").await?;
    fed.restore_backend("eu-west-1a", "shop/catalog").await?;
    let back = time_until_served_by(&fed, from, &svc, "eu-west-1a").await?;
    all_served_by(&fed, from, &svc, "eu-west-1a", 10).await?;
    eprintln!(
        "locality: zone a -> zone b {to_zone_b:?}, eu-west -> us-east {to_us:?}, back to zone a {back:?}"
    );
    Ok(())
}
