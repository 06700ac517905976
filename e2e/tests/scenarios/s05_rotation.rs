//! Scenario 5: certificate rotation under load.

use std::time::Duration;

use causeway_e2e::federation::host;
use causeway_e2e::mtls::{gateway_svid, load_authority, peer_certificate};
use causeway_e2e::traffic::Traffic;
use causeway_e2e::{ClusterDef, Federation, Store};

/// 5. Cluster A's gateway SVID rotates (4 s lifetime, renewed at half-life)
/// while B sends continuous traffic: zero failed requests, and A presents a
/// new certificate afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s05_svid_rotation_under_load_has_no_failures() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"])
                .service("shop/cart")
                .svid_ttl(Duration::from_secs(4)),
        )
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"])
                .svid_ttl(Duration::from_secs(4)),
        )
        .start()
        .await?;
    let a = fed.cluster("eu-west-1")?;
    let a_ca = load_authority(&fed.dir().join("eu-west-1").join("ca"))?;
    let b_ca = load_authority(&fed.dir().join("us-east-1").join("ca"))?;
    let probe_svid = gateway_svid(&b_ca, "us-east-1")?;
    let first = peer_certificate(a.gateway.ingress(), &probe_svid, &a_ca).await?;

    let traffic = Traffic::start(
        fed.cluster("us-east-1")?.egress(),
        &host("shop/cart"),
        &[],
        Duration::from_millis(5),
    );
    let rotated = causeway_e2e::wait::until(
        "eu-west-1 presents a rotated SVID",
        Duration::from_secs(8),
        Duration::from_millis(200),
        || async {
            let now = peer_certificate(a.gateway.ingress(), &probe_svid, &a_ca)
                .await
                .ok()?;
            (now != first).then_some(())
        },
    )
    .await;
    traffic.wait_for(100, Duration::from_secs(30)).await?;
    let t = traffic.stop().await;
    rotated?;
    assert_eq!(
        t.failed, 0,
        "failures during rotation: {:?} of {}",
        t.failures, t.total
    );
    assert_eq!(t.served_by("eu-west-1"), t.total);
    Ok(())
}
