//! Scenario 8: a cluster token cannot take over names or records it does
//! not own.

use causeway_api::client::{Precondition, Versioned};
use causeway_api::model::{
    Cluster, ExportPolicy, ExportPolicySpec, ServiceExport, ServiceExportSpec, ServicePort,
    ZoneEndpoints,
};
use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, Federation, Store};

use crate::support::{calls, tally};

/// 8. us-east-1's token tries to export into a namespace owned by
/// eu-west-1, to write eu-west-1's export and to rewrite eu-west-1's cluster
/// record: each is 403 and routing does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s08_cluster_token_cannot_take_over_names() -> anyhow::Result<()> {
    // Three etcd members behind two stateless API replicas: the agents and
    // the attacker may hit either replica.
    let fed = Federation::builder()
        .store(Store::Etcd { members: 3 })
        .replicas(2)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"])
                .service("payments/ledger"),
        )
        .cluster(ClusterDef::new(
            "us-east-1",
            "us-east",
            "us-east-1a",
            &["us"],
        ))
        .cluster(ClusterDef::new(
            "ap-south-1",
            "ap-south",
            "ap-south-1a",
            &["in"],
        ))
        .start()
        .await?;
    let owner = ExportPolicy::new(
        "payments-owner".parse()?,
        ExportPolicySpec {
            namespaces: vec!["payments".parse()?],
            clusters: vec!["eu-west-1".parse()?],
        },
    );
    fed.put_policy("export", "payments-owner", &owner).await?;
    fed.converge().await?;
    let mut before = Vec::new();
    for c in fed.clusters() {
        before.push(c.gateway.revision().await?);
    }
    let ledger = host("payments/ledger");
    let route_before = fed
        .cluster("ap-south-1")?
        .gateway
        .debug_route(&ledger, &[])
        .await?;

    let attacker = fed.api().cluster_client_of(1, "us-east-1")?;
    assert!(fed.cluster("us-east-1")?.site.services().is_empty());
    let eu_cluster: Versioned<causeway_api::model::Cluster> = fed
        .api()
        .admin_client()?
        .get("/v1/clusters/eu-west-1")
        .await?;
    let us_cluster: Versioned<causeway_api::model::Cluster> = fed
        .api()
        .admin_client()?
        .get("/v1/clusters/us-east-1")
        .await?;
    // a) export into a namespace it does not own, under its own name.
    let own = ledger_export(&us_cluster.value)?;
    let r = attacker
        .put::<_, serde_json::Value>(
            "/v1/clusters/us-east-1/exports/payments/ledger",
            &own,
            Precondition::None,
        )
        .await;
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(403),
        "foreign namespace"
    );
    // b) write another cluster's export.
    let theirs = ledger_export(&eu_cluster.value)?;
    let r = attacker
        .put::<_, serde_json::Value>(
            "/v1/clusters/eu-west-1/exports/payments/ledger",
            &theirs,
            Precondition::None,
        )
        .await;
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(403),
        "another cluster's export"
    );
    let r = attacker
        .delete(
            "/v1/clusters/eu-west-1/exports/payments/ledger",
            Precondition::None,
        )
        .await;
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(403),
        "delete another cluster's export"
    );
    // c) rewrite another cluster's record (point its gateway elsewhere).
    let mut hijack = eu_cluster.value.clone();
    hijack.spec.gateway.endpoints = vec!["127.0.0.1:9".parse()?];
    let r = attacker
        .put::<_, serde_json::Value>("/v1/clusters/eu-west-1", &hijack, Precondition::None)
        .await;
    assert_eq!(
        r.err().and_then(|e| e.status()),
        Some(403),
        "another cluster's record"
    );

    // Routing did not change: same catalog revision, same decision, same server.
    for (c, before) in fed.clusters().iter().zip(before) {
        assert_eq!(
            c.gateway.revision().await?,
            before,
            "{} catalog changed",
            c.def.id
        );
    }
    let route_after = fed
        .cluster("ap-south-1")?
        .gateway
        .debug_route(&ledger, &[])
        .await?;
    assert_eq!(route_before, route_after);
    let t = tally(&calls(&fed, "ap-south-1", &ledger, &[], 10).await?);
    assert_eq!(t.get("200 eu-west-1"), Some(&10), "{t:?}");
    let import: Versioned<serde_json::Value> = fed
        .api()
        .admin_client()?
        .get("/v1/imports/payments/ledger")
        .await?;
    let clusters = import.value["spec"]["clusters"].as_array().map(Vec::len);
    assert_eq!(clusters, Some(1), "{}", import.value);
    Ok(())
}

/// An export of `payments/ledger` by `cluster` with 5 ready endpoints.
fn ledger_export(cluster: &Cluster) -> anyhow::Result<ServiceExport> {
    Ok(ServiceExport::new(
        "payments".parse()?,
        "ledger".parse()?,
        cluster.id().clone(),
        ServiceExportSpec {
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: Default::default(),
                app_protocol: None,
                port: 8080,
            }],
            endpoints: vec![ZoneEndpoints {
                zone: cluster.spec.zone.clone(),
                ready: 5,
            }],
            weight: 100,
            ..ServiceExportSpec::default()
        },
    ))
}
