//! Scenario 14: per-caller authorization across clusters.

use causeway_api::model::{AccessPolicy, AccessPolicySpec, AccessRule, ServiceSelector};
use causeway_e2e::federation::host;
use causeway_e2e::mtls::{load_authority, rogue_authority};
use causeway_e2e::{ClusterDef, Federation, Store};
use causeway_gateway::callers::{AddressIdentity, CallersConfig};

const WEB: &str = "spiffe://eu-west-1.causeway.test/ns/shop/sa/web";
const BATCH: &str = "spiffe://eu-west-1.causeway.test/ns/shop/sa/batch";
const GATEWAY: &str = "spiffe://eu-west-1.causeway.test/causeway/gateway/eu-west-1";

/// 14. Two workloads behind cluster A: `web`, known by its source address
/// (`callers.byAddress`), and `batch`, which presents a JWT-SVID. Cluster
/// B's AccessPolicy allows only `batch`: 200 for it (in both places a
/// JWT-SVID may be presented), 403 for `web`; B's backend counts only the
/// allowed calls and is told who called. Identity headers a client sets,
/// a garbage caller token and a JWT-SVID of a foreign CA change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s14_caller_identity() -> anyhow::Result<()> {
    let callers = CallersConfig {
        by_address: ["0.0.0.0/0", "::/0"]
            .into_iter()
            .map(|cidr| AddressIdentity {
                cidr: cidr.parse().unwrap(),
                spiffe_id: WEB.parse().unwrap(),
            })
            .collect(),
        ..CallersConfig::default()
    };
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).callers(callers))
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"])
                .service("payments/ledger"),
        )
        .start()
        .await?;
    let policy = AccessPolicy::new(
        "ledger-batch-only".parse().unwrap(),
        AccessPolicySpec {
            services: ServiceSelector(vec!["payments/ledger".parse().unwrap()]),
            allow: vec![AccessRule {
                spiffe_ids: vec![BATCH.into()],
                ..AccessRule::default()
            }],
        },
    );
    fed.put_policy("access", "ledger-batch-only", &policy)
        .await?;
    fed.converge().await?;
    let ledger = host("payments/ledger");
    let backend = fed.backend("us-east-1", "payments/ledger")?.clone();

    let a_ca = load_authority(&fed.dir().join("eu-west-1").join("ca"))?;
    let batch_svid = a_ca.issue_jwt_svid(&BATCH.parse()?, &[GATEWAY])?;
    let batch_token = batch_svid.token().to_owned();
    let bearer = format!("Bearer {batch_token}");

    // `batch`, by its JWT-SVID: allowed, and B's backend learns who called.
    for headers in [
        vec![("x-causeway-workload-jwt", batch_token.as_str())],
        vec![("authorization", bearer.as_str())],
    ] {
        for _ in 0..5 {
            let r = fed.call("eu-west-1", &ledger, &headers).await?;
            assert_eq!(r.status, 200, "{r:?}");
            assert_eq!(r.served_by.as_deref(), Some("us-east-1"));
            let seen = &r.json()["headers"];
            assert_eq!(seen["x-causeway-source-workload"], BATCH, "{}", r.body);
            assert!(
                seen.get("x-causeway-workload-jwt").is_none()
                    && seen.get("authorization").is_none(),
                "the workload's JWT-SVID is consumed, not forwarded: {}",
                r.body
            );
        }
    }
    assert_eq!(backend.count(), 10);

    // `web`, by its source address: refused by B's AccessPolicy.
    let spoof = [
        vec![],
        vec![("x-causeway-source-workload", BATCH)],
        vec![("x-causeway-caller-jwt", batch_token.as_str())],
        vec![(
            "x-forwarded-client-cert",
            "URI=spiffe://eu-west-1.causeway.test/ns/shop/sa/batch",
        )],
    ];
    let rogue = rogue_authority("eu-west-1.causeway.test")?;
    let forged = rogue.issue_jwt_svid(&BATCH.parse()?, &[GATEWAY])?;
    let forged_headers = vec![("x-causeway-workload-jwt", forged.token())];
    for headers in spoof.iter().chain([&forged_headers]) {
        for _ in 0..3 {
            let r = fed.call("eu-west-1", &ledger, headers).await?;
            assert_eq!(r.status, 403, "{headers:?}: {r:?}");
            assert_eq!(r.deny_reason.as_deref(), Some("access_denied"), "{r:?}");
        }
    }
    assert_eq!(
        backend.count(),
        10,
        "the backend counts only the allowed calls"
    );

    // The refused JWT-SVID was counted with its reason at A's egress.
    let m = fed.cluster("eu-west-1")?.gateway.metrics().await?;
    assert!(
        causeway_e2e::metrics::sum(
            &m,
            "causeway_gateway_token_rejections_total",
            &[("source", "jwt_svid")]
        ) >= 3.0,
        "{m}"
    );
    // B refused `web` by name: its access log states the verified caller.
    // Lines are written after the response, off the request path: wait.
    let b = &fed.cluster("us-east-1")?.gateway;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let denied = loop {
        let denied: Vec<_> = b
            .access_log()
            .into_iter()
            .filter(|l| l["status"] == 403)
            .collect();
        if denied.len() >= 15 || std::time::Instant::now() > deadline {
            break denied;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        denied.len() >= 15,
        "B logged its refusals: {}",
        denied.len()
    );
    assert!(
        denied.iter().all(|l| l["caller"] == WEB),
        "every refusal names the verified caller: {denied:?}"
    );
    Ok(())
}
