//! Scenario 3: residency is a hard filter, even when every allowed cluster
//! is down.

use causeway_api::model::{
    RequestClassification, ResidencyPolicy, ResidencyPolicySpec, ServiceSelector,
};
use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, Federation, Store};

use crate::support::{calls, tally};

fn policy(name: &str, service: &str, header: Option<&str>) -> ResidencyPolicy {
    ResidencyPolicy::new(
        name.parse().unwrap(),
        ResidencyPolicySpec {
            services: ServiceSelector(vec![service.parse().unwrap()]),
            match_: header.map(|h| RequestClassification {
                header: Some(h.to_owned()),
                jwt_claim: None,
                values: vec!["eu".into()],
                ..Default::default()
            }),
            allowed_jurisdictions: vec!["eu".into()],
            allowed_regions: vec![],
        },
    )
}

/// 3. An EU-only service and an EU-classified request, both exported in EU
/// and US. With every EU backend stopped the caller gets 503 with the
/// residency reason, and the US backend counts zero requests, during and
/// after the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s03_residency_holds_when_every_allowed_cluster_is_down() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"])
                .service("payments/ledger")
                .service("shop/profile"),
        )
        .cluster(
            ClusterDef::new("eu-central-1", "eu-central", "eu-central-1a", &["eu", "de"])
                .service("payments/ledger"),
        )
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"])
                .service("payments/ledger")
                .service("shop/profile"),
        )
        .start()
        .await?;
    fed.put_policy(
        "residency",
        "ledger-eu-only",
        &policy("ledger-eu-only", "payments/ledger", None),
    )
    .await?;
    fed.put_policy(
        "residency",
        "profile-eu-requests",
        &policy("profile-eu-requests", "shop/profile", Some("x-data-region")),
    )
    .await?;
    fed.converge().await?;
    let ledger = host("payments/ledger");
    let profile = host("shop/profile");
    let eu = [("x-data-region", "eu")];

    // Healthy: the US caller's EU-only calls are served in the EU, although
    // its own cluster exports the service; unclassified profile calls stay local.
    let t = tally(&calls(&fed, "us-east-1", &ledger, &[], 20).await?);
    assert_eq!(
        t.keys()
            .filter(|k| !k.ends_with("eu-west-1") && !k.ends_with("eu-central-1"))
            .count(),
        0,
        "{t:?}"
    );
    assert_eq!(t.values().sum::<usize>(), 20);
    let t = tally(&calls(&fed, "us-east-1", &profile, &eu, 10).await?);
    assert_eq!(t.get("200 eu-west-1"), Some(&10), "{t:?}");
    let t = tally(&calls(&fed, "us-east-1", &profile, &[], 10).await?);
    assert_eq!(t.get("200 us-east-1"), Some(&10), "{t:?}");
    let us_ledger = fed.backend("us-east-1", "payments/ledger")?.clone();
    let us_profile = fed.backend("us-east-1", "shop/profile")?.clone();
    assert_eq!(us_ledger.count(), 0);
    assert_eq!(us_profile.count(), 10);

    // Every EU backend goes away.
    fed.stop_backend("eu-west-1", "payments/ledger").await?;
    fed.stop_backend("eu-central-1", "payments/ledger").await?;
    fed.stop_backend("eu-west-1", "shop/profile").await?;
    // During the failure (before and after every gateway learnt of it):
    // nothing reaches the US backend.
    let during = calls(&fed, "us-east-1", &ledger, &[], 10).await?;
    assert!(
        during.iter().all(|r| r.status >= 500),
        "{:?}",
        tally(&during)
    );
    fed.converge().await?;
    for (svc, headers) in [(&ledger, &[][..]), (&profile, &eu[..])] {
        for from in ["us-east-1", "eu-west-1", "eu-central-1"] {
            let replies = calls(&fed, from, svc, headers, 10).await?;
            for r in &replies {
                assert_eq!(r.status, 503, "{from} -> {svc}: {r:?}");
                assert_eq!(r.deny_reason.as_deref(), Some("residency"), "{r:?}");
                assert!(
                    r.json()["policy"].is_string(),
                    "names the policy: {}",
                    r.body
                );
            }
        }
    }
    assert_eq!(us_ledger.count(), 0, "no EU-only request reached the US");
    assert_eq!(
        us_profile.count(),
        10,
        "no EU-classified request reached the US"
    );
    // Residency denials are counted.
    let m = fed.cluster("us-east-1")?.gateway.metrics().await?;
    assert!(
        causeway_e2e::metrics::sum(&m, "causeway_gateway_residency_denials_total", &[]) >= 20.0,
        "{m}"
    );

    // After the failure: EU serves again, the US backend still counts zero.
    fed.restore_backend("eu-central-1", "payments/ledger")
        .await?;
    fed.converge().await?;
    let t = tally(&calls(&fed, "us-east-1", &ledger, &[], 10).await?);
    assert_eq!(t.get("200 eu-central-1"), Some(&10), "{t:?}");
    assert_eq!(us_ledger.count(), 0);
    Ok(())
}
