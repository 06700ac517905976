//! Scenario 5: CA rotation under load.

use std::time::Duration;

use causeway_api::client::Versioned;
use causeway_e2e::federation::host;
use causeway_e2e::mtls::{gateway_svid, load_authority, peer_certificate_from_active_ca};
use causeway_e2e::traffic::Traffic;
use causeway_e2e::{ClusterDef, Federation, Store};

/// 5. Cluster A's CA rotates (10 s CA lifetime: the next CA is published
/// 3 s before it starts signing; SVIDs live 4 s and are renewed at
/// half-life) while B sends continuous traffic: A's agent publishes the
/// grown bundle, B's agent installs it, A switches to SVIDs from the new CA,
/// and no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s05_ca_rotation_under_load_has_no_failures() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"])
                .service("shop/cart")
                .svid_ttl(Duration::from_secs(4))
                .ca_rotation(Duration::from_secs(10), Duration::from_secs(3)),
        )
        .cluster(ClusterDef::new(
            "us-east-1",
            "us-east",
            "us-east-1a",
            &["us"],
        ))
        .start()
        .await?;
    let a = fed.cluster("eu-west-1")?;
    let a_dir = fed.dir().join("eu-west-1").join("ca");
    let first_ca = load_authority(&a_dir)?.active_ca_cert();
    let b_ca = load_authority(&fed.dir().join("us-east-1").join("ca"))?;
    let probe_svid = gateway_svid(&b_ca, "us-east-1")?;
    let bundle_path = "/v1/trust-domains/eu-west-1.causeway.test/bundle";
    let sequence = || async {
        let b: Versioned<serde_json::Value> = fed.api().admin_client()?.get(bundle_path).await?;
        b.value["spiffe_sequence"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no sequence in {}", b.value))
    };
    let first_sequence = sequence().await?;

    let traffic = Traffic::start(
        fed.cluster("us-east-1")?.egress(),
        &host("shop/cart"),
        &[],
        Duration::from_millis(5),
    );
    // The new CA signs (saved by the gateway after the rotation) ...
    let rotated = causeway_e2e::wait::until(
        "eu-west-1's CA rotates",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || async {
            let now = load_authority(&a_dir).ok()?;
            (now.active_ca_cert() != first_ca).then_some(now)
        },
    )
    .await?;
    // ... and A presents an SVID it issued: verifiable with the new CA alone.
    causeway_e2e::wait::until(
        "eu-west-1 presents an SVID from the new CA",
        Duration::from_secs(8),
        Duration::from_millis(100),
        || async {
            peer_certificate_from_active_ca(a.gateway.ingress(), &probe_svid, &rotated)
                .await
                .ok()
        },
    )
    .await?;
    traffic.wait_for(100, Duration::from_secs(30)).await?;
    let t = traffic.stop().await;
    assert!(
        sequence().await? > first_sequence,
        "the rotated bundle was published"
    );
    assert_eq!(
        t.failed, 0,
        "failures during rotation: {:?} of {}",
        t.failures, t.total
    );
    assert_eq!(t.served_by("eu-west-1"), t.total);
    eprintln!("ca rotation: {} requests, 0 failed", t.total);
    Ok(())
}
