//! Scenario 11 (HA): API replicas are stateless over a 3-member etcd.

use std::time::Duration;

use causeway_e2e::federation::host;
use causeway_e2e::traffic::Traffic;
use causeway_e2e::{ClusterDef, Federation, Store};

use crate::support::{calls, tally};

/// 11. With two API replicas over three etcd members, losing one replica
/// and then the etcd leader neither disturbs traffic (zero failures) nor
/// stops catalog changes: the agents move to the surviving replica and a
/// drain announced afterwards reaches every gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s11_api_replica_and_etcd_leader_loss() -> anyhow::Result<()> {
    let mut fed = Federation::builder()
        .store(Store::Etcd { members: 3 })
        .replicas(2)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"),
        )
        .cluster(
            ClusterDef::new("eu-west-2", "eu-west", "eu-west-2b", &["eu"]).service("shop/cart"),
        )
        .cluster(ClusterDef::new(
            "us-east-1",
            "us-east",
            "us-east-1a",
            &["us"],
        ))
        .start()
        .await?;
    let cart = host("shop/cart");
    let traffic = Traffic::start(
        fed.cluster("us-east-1")?.egress(),
        &cart,
        &[],
        Duration::from_millis(5),
    );
    traffic.wait_for(30, Duration::from_secs(30)).await?;

    fed.api_mut().stop_replica(0);
    fed.kill_etcd_leader().await?;
    // A change after both losses: eu-west-1 announces a drain.
    fed.set_ready("eu-west-1", "shop/cart", false).await?;
    fed.wait_converged(fed.last_write(), Duration::from_secs(30))
        .await?;
    let t = tally(&calls(&fed, "us-east-1", &cart, &[], 20).await?);
    assert_eq!(t.get("200 eu-west-2"), Some(&20), "{t:?}");
    traffic.wait_for(50, Duration::from_secs(30)).await?;
    let t = traffic.stop().await;
    assert_eq!(t.failed, 0, "{t:?}");
    eprintln!("api ha: traffic {:?}", t.by_outcome);
    Ok(())
}
