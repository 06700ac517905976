//! Scenario 4: a cross-cluster canary split and its rollback guard.

use std::collections::BTreeMap;
use std::time::Duration;

use causeway_api::model::{OutlierDetection, RollbackGuard, TrafficPolicy, TrafficPolicySpec};
use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, Federation, Store};

use crate::support::tally;

/// 4. 90/10 between two clusters over 2,000 requests, within 3 standard
/// deviations; the canary starts failing: the rollback guard pulls it to 0
/// and errors stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s04_weighted_split_and_rollback_guard() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"),
        )
        .cluster(
            ClusterDef::new("eu-central-1", "eu-central", "eu-central-1a", &["eu"])
                .service("shop/cart"),
        )
        .cluster(ClusterDef::new(
            "us-east-1",
            "us-east",
            "us-east-1a",
            &["us"],
        ))
        .start()
        .await?;
    let mut spec = TrafficPolicySpec::new("shop/cart".parse()?);
    spec.weights = BTreeMap::from([("eu-west-1".parse()?, 90), ("eu-central-1".parse()?, 10)]);
    spec.rollback_guard = Some(RollbackGuard {
        canary: "eu-central-1".parse()?,
        max_error_rate: serde_json::from_value(serde_json::json!(0.2))?,
        max_p99: Duration::from_secs(2),
        window: Duration::from_secs(2),
        min_requests: 10,
    });
    // Outlier detection off: it always may eject one of the two clusters,
    // and five 500s in a row would eject the canary before the guard has
    // its 10 requests; this scenario is about the guard.
    spec.outlier_detection = Some(OutlierDetection {
        consecutive_errors: 0,
        ..OutlierDetection::default()
    });
    fed.put_policy(
        "traffic",
        "cart-canary",
        &TrafficPolicy::new("cart-canary".parse()?, spec),
    )
    .await?;
    fed.converge().await?;
    let cart = host("shop/cart");

    let n = 2000;
    let replies = crate::support::calls_concurrent(&fed, "us-east-1", &cart, n, 4).await?;
    let t = tally(&replies);
    let canary = *t.get("200 eu-central-1").unwrap_or(&0) as f64;
    let stable = *t.get("200 eu-west-1").unwrap_or(&0) as f64;
    assert_eq!(canary + stable, n as f64, "{t:?}");
    // Binomial(2000, 0.1): mean 200, sd 13.4; 3 sd = 40.
    assert!(
        (canary - 200.0).abs() <= 40.0,
        "canary share {canary}/{n}: {t:?}"
    );

    // The canary starts failing. Requests continue until the guard trips
    // (its window first has to forget the healthy canary requests above).
    fed.backend("eu-central-1", "shop/cart")?.set_failing(true);
    let us = &fed.cluster("us-east-1")?.gateway;
    let mut during = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        for _ in 0..20 {
            during.push(fed.call("us-east-1", &cart, &[]).await?);
        }
        let m = us.metrics().await?;
        if causeway_e2e::metrics::sum(&m, "causeway_gateway_rollback_guard_trips_total", &[]) >= 1.0
        {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the rollback guard did not trip; replies meanwhile {:?}",
            tally(&during)
        );
    }
    let after = crate::support::calls(&fed, "us-east-1", &cart, &[], 200).await?;
    let t_after = tally(&after);
    assert_eq!(
        t_after.get("200 eu-west-1"),
        Some(&200),
        "after the guard tripped: {t_after:?}"
    );
    let route = us.debug_route(&cart, &[]).await?;
    assert!(
        route.to_string().contains("\"rolled_back\":true"),
        "{route}"
    );
    eprintln!(
        "split over {n}: {t:?}; until the guard tripped: {:?}; route {route}",
        tally(&during)
    );
    Ok(())
}
