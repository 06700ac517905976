//! Scenario 9: a gateway from a non-federated trust domain is refused at
//! the handshake.

use causeway_e2e::federation::host;
use causeway_e2e::mtls::{Attempt, attempt, gateway_svid, load_authority, rogue_authority};
use causeway_e2e::{ClusterDef, Federation, Store};

/// 9. Certificates from a non-federated trust domain (and from a forged CA
/// claiming a federated trust domain) are refused at the handshake; zero
/// requests reach the backend. A federated peer's certificate gets through
/// the same client, so the refusal is the trust check, not the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s09_foreign_trust_domain_is_refused_at_handshake() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
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
    let target = fed.cluster("eu-west-1")?;
    let server = load_authority(&fed.dir().join("eu-west-1").join("ca"))?;
    let cart = host("shop/cart");
    let backend = fed.backend("eu-west-1", "shop/cart")?;

    let rogue = rogue_authority("rogue.example")?;
    let forged = rogue_authority("us-east-1.causeway.test")?;
    for (who, svid) in [
        ("non-federated trust domain", gateway_svid(&rogue, "rogue")?),
        (
            "forged CA for a federated trust domain",
            gateway_svid(&forged, "us-east-1")?,
        ),
    ] {
        for _ in 0..5 {
            let a = attempt(target.gateway.ingress(), &svid, &server, &cart).await?;
            assert!(matches!(a, Attempt::Refused(_)), "{who}: {a:?}");
        }
    }
    assert_eq!(backend.count(), 0, "no request reached the backend");

    // Control: the federated peer's real CA gets an HTTP answer.
    let peer = load_authority(&fed.dir().join("us-east-1").join("ca"))?;
    let a = attempt(
        target.gateway.ingress(),
        &gateway_svid(&peer, "us-east-1")?,
        &server,
        &cart,
    )
    .await?;
    assert!(matches!(a, Attempt::Answered(_)), "federated peer: {a:?}");
    Ok(())
}
