//! One full flow against a real etcd (the store engineer's `EtcdProcess`):
//! two clusters, exports, import seen on NDJSON and gRPC, conflict in the
//! export status, heartbeats on a real lease, resume and 410 after
//! compaction.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use causeway_api::client::{Precondition, Versioned, grpc_watch};
use causeway_api::model::Kind;
use causeway_api::wire::WatchLine;
use causeway_federation::store::{EtcdStore, EtcdStoreConfig, Store};
use causeway_federation::testing::EtcdProcess;
use serde_json::Value;
use support::*;

#[tokio::test]
async fn full_flow_on_real_etcd() {
    let etcd = EtcdProcess::start().await.unwrap();
    let store = EtcdStore::connect(&EtcdStoreConfig {
        endpoints: etcd.endpoints(),
        ..EtcdStoreConfig::default()
    })
    .await
    .unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let s =
        TestServer::start_with(store.clone(), |c| c.heartbeat_ttl = Duration::from_secs(1)).await;
    let admin = s.admin();
    assert!(admin.ready().await.unwrap());
    for (id, region) in [("eu-1", "eu-west-1"), ("us-1", "us-east-1")] {
        let t = s.client(&[&format!("cluster:{id}")]);
        let _: Versioned<Value> = t
            .put(
                &format!("/v1/clusters/{id}"),
                &cluster(id, &format!("{id}.example.org"), region),
                Precondition::MustNotExist,
            )
            .await
            .unwrap();
        t.heartbeat(id).await.unwrap();
    }
    let mut ndjson = s.client(&["read"]).watch(None).await.unwrap();
    let Some(Ok(WatchLine::Snapshot {
        revision: r0,
        resources,
    })) = ndjson.next().await
    else {
        panic!("snapshot")
    };
    assert_eq!(resources.len(), 2);
    let mut grpc = grpc_watch(&s.base, Some(&s.token(&["read"])), None)
        .await
        .unwrap();
    assert_eq!(grpc.message().await.unwrap().unwrap().resources.len(), 2);

    let eu = s.client(&["cluster:eu-1"]);
    let us = s.client(&["cluster:us-1"]);
    let _: Versioned<Value> = eu
        .put(
            &export_path("eu-1", "shop", "cart"),
            &export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    let _: Versioned<Value> = us
        .put(
            &export_path("us-1", "shop", "cart"),
            &export("us-1", "shop", "cart", 8080, "UDP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();

    // NDJSON: the import appears with both clusters.
    let mut import_clusters = 0;
    while import_clusters < 2 {
        let l = tokio::time::timeout(Duration::from_secs(5), ndjson.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let WatchLine::Put {
            kind: Kind::ServiceImport,
            resource,
            ..
        } = l
        {
            import_clusters = serde_json::to_value(&resource).unwrap()["spec"]["clusters"]
                .as_array()
                .unwrap()
                .len();
        }
    }
    // gRPC: same.
    let mut grpc_import = 0;
    while grpc_import < 2 {
        let ev = tokio::time::timeout(Duration::from_secs(5), grpc.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let r = ev.resource.unwrap();
        if r.kind == "ServiceImport" {
            let v: Value = serde_json::from_slice(&r.json).unwrap();
            grpc_import = v["spec"]["clusters"].as_array().unwrap().len();
        }
    }
    // The younger export reports the port conflict.
    let younger: Versioned<Value> = admin
        .get(&export_path("us-1", "shop", "cart"))
        .await
        .unwrap();
    let conflict = younger.value["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Conflict")
        .cloned()
        .unwrap();
    assert_eq!(conflict["reason"], "PortConflict", "{conflict}");
    assert_eq!(younger.value["status"]["stale"], false);
    // Optimistic concurrency on etcd.
    let rv = younger.revision.unwrap();
    let _: Versioned<Value> = us
        .put(
            &export_path("us-1", "shop", "cart"),
            &export("us-1", "shop", "cart", 8080, "TCP", "ClusterSetIP"),
            Precondition::Revision(rv),
        )
        .await
        .unwrap();
    let err = us
        .put::<_, Value>(
            &export_path("us-1", "shop", "cart"),
            &export("us-1", "shop", "cart", 9090, "TCP", "ClusterSetIP"),
            Precondition::Revision(rv),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412));
    // Heartbeats lapse on the real lease: disconnected, exports stale (kept).
    let lapsed = eventually(10, || async {
        let c: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
        c.value["status"]["connected"] == false
    })
    .await;
    assert!(lapsed);
    let e: Versioned<Value> = admin
        .get(&export_path("eu-1", "shop", "cart"))
        .await
        .unwrap();
    assert_eq!(e.value["status"]["stale"], true);
    // Resume from the snapshot revision, then 410 once compacted.
    let mut resumed = admin.watch(Some(r0)).await.unwrap();
    assert!(matches!(
        resumed.next().await,
        Some(Ok(WatchLine::Put { .. }))
    ));
    drop(resumed);
    let now = store.current_revision().await.unwrap();
    store.compact(now).await.unwrap();
    assert_eq!(admin.watch(Some(r0)).await.unwrap_err().status(), Some(410));
    assert_eq!(
        grpc_watch(&s.base, Some(&s.token(&["read"])), Some(r0))
            .await
            .unwrap_err()
            .status(),
        Some(410)
    );
}
