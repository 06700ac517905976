//! Scenario 6: static stability when the whole control plane is gone.

use std::time::Duration;

use causeway_api::client::Versioned;
use causeway_e2e::federation::host;
use causeway_e2e::traffic::Traffic;
use causeway_e2e::{ClusterDef, Federation, Store};

use crate::support::{calls, tally};

/// 6. Kill every API replica and etcd: traffic between healthy clusters
/// continues with zero failures; a gateway restarted during the outage
/// serves from its persisted snapshot; when the control plane is back the
/// gateways converge with no duplicate or lost exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s06_control_plane_down_traffic_continues() -> anyhow::Result<()> {
    let mut fed = Federation::builder()
        .store(Store::Etcd { members: 1 })
        .replicas(2)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"),
        )
        .cluster(ClusterDef::new(
            "us-east-1",
            "us-east",
            "us-east-1a",
            &["us"],
        ))
        .cluster(
            ClusterDef::new("ap-south-1", "ap-south", "ap-south-1a", &["in"]).service("shop/stock"),
        )
        .start()
        .await?;
    let cart = host("shop/cart");
    let stock = host("shop/stock");
    let traffic = Traffic::start(
        fed.cluster("us-east-1")?.egress(),
        &cart,
        &[],
        Duration::from_millis(5),
    );
    traffic.wait_for(50, Duration::from_secs(30)).await?;

    fed.kill_control_plane();
    traffic.wait_for(100, Duration::from_secs(30)).await?;

    // A gateway restarted during the outage starts from its persisted catalog.
    {
        let ap = fed.cluster_mut("ap-south-1")?;
        ap.gateway.stop();
        ap.gateway.start().await?;
    }
    let t = tally(&calls(&fed, "ap-south-1", &cart, &[], 10).await?);
    assert_eq!(
        t.get("200 eu-west-1"),
        Some(&10),
        "restarted gateway routes from its snapshot: {t:?}"
    );
    // Peers marked it unhealthy while it was down; their probes see it
    // again within a few probe intervals.
    causeway_e2e::wait::until(
        "us-east-1 reaches the restarted ap-south-1",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let r = fed.call("us-east-1", &stock, &[]).await.ok()?;
            (r.status == 200).then_some(())
        },
    )
    .await?;
    let t = tally(&calls(&fed, "us-east-1", &stock, &[], 10).await?);
    assert_eq!(
        t.get("200 ap-south-1"),
        Some(&10),
        "restarted gateway serves its exports: {t:?}"
    );
    traffic.wait_for(100, Duration::from_secs(30)).await?;

    fed.restore_control_plane().await?;
    // A change after the outage reaches every gateway.
    fed.stop_backend("ap-south-1", "shop/stock").await?;
    fed.restore_backend("ap-south-1", "shop/stock").await?;
    fed.converge().await?;
    traffic.wait_for(50, Duration::from_secs(30)).await?;
    let tally_all = traffic.stop().await;
    assert_eq!(
        tally_all.failed, 0,
        "failures: {:?} of {}",
        tally_all.failures, tally_all.total
    );
    assert_eq!(tally_all.served_by("eu-west-1"), tally_all.total);

    // No duplicate or lost exports.
    let admin = fed.api().admin_client()?;
    for (svc, owner) in [("shop/cart", "eu-west-1"), ("shop/stock", "ap-south-1")] {
        let import: Versioned<serde_json::Value> = admin.get(&format!("/v1/imports/{svc}")).await?;
        let clusters: Vec<String> = import.value["spec"]["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| {
                c["cluster"]
                    .as_str()
                    .or(c["name"].as_str())
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(clusters, vec![owner.to_owned()], "{}", import.value);
    }
    for c in fed.clusters() {
        let cfg = c.gateway.debug_config().await?;
        let exports = cfg["catalog"]["exports"].as_object().map(|m| m.len());
        assert_eq!(
            exports,
            Some(2),
            "{}: {}",
            c.def.id,
            cfg["catalog"]["exports"]
        );
    }
    Ok(())
}
