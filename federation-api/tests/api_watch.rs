//! Watch streams (NDJSON and gRPC): snapshot then ordered events, derived
//! imports in the stream, resume by revision, 410 / OUT_OF_RANGE after
//! compaction.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::time::Duration;

use causeway_api::client::{NdjsonWatch, Precondition, Versioned, grpc_watch};
use causeway_api::model::{CatalogSnapshot, Kind};
use causeway_api::proto::EventType;
use causeway_api::wire::WatchLine;
use serde_json::Value;
use support::*;

async fn next(w: &mut NdjsonWatch) -> WatchLine {
    tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .expect("watch line in time")
        .unwrap()
        .unwrap()
}

/// Reads lines until one satisfies `f`; returns every line read.
async fn until(w: &mut NdjsonWatch, f: impl Fn(&WatchLine) -> bool) -> Vec<WatchLine> {
    let mut seen = Vec::new();
    loop {
        let l = next(w).await;
        let done = f(&l);
        seen.push(l);
        if done {
            return seen;
        }
    }
}

fn is_import_put(l: &WatchLine, key: &str) -> bool {
    matches!(l, WatchLine::Put { kind: Kind::ServiceImport, key: k, .. } if k == key)
}

async fn register_two(s: &TestServer) {
    let c = s.admin();
    for (id, region) in [("eu-1", "eu-west-1"), ("us-1", "us-east-1")] {
        let _: Versioned<Value> = c
            .put(
                &format!("/v1/clusters/{id}"),
                &cluster(id, &format!("{id}.example.org"), region),
                Precondition::None,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn ndjson_snapshot_events_imports_and_resume() {
    let s = TestServer::start().await;
    register_two(&s).await;
    let c = s.client(&["read"]);
    let admin = s.admin();
    let mut w = c.watch(None).await.unwrap();
    let WatchLine::Snapshot {
        revision: r0,
        resources,
    } = next(&mut w).await
    else {
        panic!("snapshot first")
    };
    assert_eq!(resources.len(), 2);
    let mut snap = CatalogSnapshot::from_resources(r0, resources);
    // First export: the export event, then the import appears.
    let _: Versioned<Value> = admin
        .put(
            &export_path("eu-1", "shop", "cart"),
            &export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    let lines = until(&mut w, |l| is_import_put(l, "imports/shop/cart")).await;
    assert!(
        matches!(&lines[0], WatchLine::Put { kind: Kind::ServiceExport, key, .. } if key == "exports/shop/cart/eu-1")
    );
    // Second export with another type: the import changes, conflict derived.
    let _: Versioned<Value> = admin
        .put(
            &export_path("us-1", "shop", "cart"),
            &export("us-1", "shop", "cart", 8080, "TCP", "Headless"),
            Precondition::None,
        )
        .await
        .unwrap();
    let more = until(&mut w, |l| is_import_put(l, "imports/shop/cart")).await;
    let WatchLine::Put {
        resource,
        revision: r_import,
        ..
    } = more.last().cloned().unwrap()
    else {
        unreachable!()
    };
    let v = serde_json::to_value(resource).unwrap();
    assert_eq!(v["spec"]["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(v["spec"]["type"], "ClusterSetIP");
    // Revisions are ordered and the lines apply to a snapshot.
    let all: Vec<WatchLine> = lines.into_iter().chain(more).collect();
    let revs: Vec<u64> = all.iter().filter_map(WatchLine::revision).collect();
    assert!(revs.windows(2).all(|w| w[0] <= w[1]), "{revs:?}");
    for l in &all {
        if let Some(ev) = l.to_catalog_event() {
            snap.apply(&ev);
        }
    }
    assert_eq!(snap.imports.len(), 1);
    // Delete one export; resume from before it on a new stream sees it.
    admin
        .delete(&export_path("us-1", "shop", "cart"), Precondition::None)
        .await
        .unwrap();
    let deleted = until(&mut w, |l| {
        matches!(
            l,
            WatchLine::Delete {
                kind: Kind::ServiceExport,
                ..
            }
        )
    })
    .await;
    let del_rev = deleted.last().unwrap().revision().unwrap();
    drop(w);
    let mut resumed = c.watch(Some(r_import)).await.unwrap();
    let first = next(&mut resumed).await;
    assert!(
        matches!(&first, WatchLine::Delete { key, revision, .. } if key == "exports/shop/cart/us-1" && *revision == del_rev),
        "{first:?}"
    );
    let imp = next(&mut resumed).await;
    assert!(is_import_put(&imp, "imports/shop/cart"), "{imp:?}");
    // Bad since: 400 naming it.
    let err = c
        .raw(http::Method::GET, "/v1/watch?since=abc", None, &[])
        .await
        .unwrap();
    assert_eq!(err.status.as_u16(), 400);
}

#[tokio::test]
async fn compacted_revision_is_410_and_out_of_range() {
    let s = TestServer::start().await;
    register_two(&s).await;
    let admin = s.admin();
    let first: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
    for i in 0..3 {
        let mut b = cluster("eu-1", "eu-1.example.org", "eu-west-1");
        b["spec"]["zone"] = serde_json::json!(format!("z{i}"));
        let _: Versioned<Value> = admin
            .put("/v1/clusters/eu-1", &b, Precondition::None)
            .await
            .unwrap();
    }
    let now = s.store.current_revision().await.unwrap();
    s.store.compact(now).await.unwrap();
    let err = s
        .admin()
        .watch(Some(first.revision.unwrap()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(410), "{err}");
    let st = grpc_watch(
        &s.base,
        Some(&s.token(&["read"])),
        Some(first.revision.unwrap()),
    )
    .await
    .unwrap_err();
    assert_eq!(st.status(), Some(410), "{st}");
    // Relisting works.
    let mut w = s.admin().watch(None).await.unwrap();
    assert!(matches!(next(&mut w).await, WatchLine::Snapshot { .. }));
}

#[tokio::test]
async fn grpc_watch_streams_snapshot_and_import_events() {
    let s = TestServer::start().await;
    register_two(&s).await;
    let admin = s.admin();
    // Unauthenticated gRPC watch is refused.
    let err = grpc_watch(&s.base, None, None).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    let mut st = grpc_watch(&s.base, Some(&s.token(&["read"])), None)
        .await
        .unwrap();
    let snap = st.message().await.unwrap().unwrap();
    assert_eq!(snap.r#type, EventType::Snapshot as i32);
    assert_eq!(snap.resources.len(), 2);
    let _: Versioned<Value> = admin
        .put(
            &export_path("eu-1", "shop", "cart"),
            &export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    let mut got_import = None;
    for _ in 0..4 {
        let ev = tokio::time::timeout(Duration::from_secs(5), st.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let r = ev.resource.unwrap();
        if r.kind == "ServiceImport" {
            got_import = Some((
                ev.revision,
                serde_json::from_slice::<Value>(&r.json).unwrap(),
            ));
            break;
        }
    }
    let (rev, imp) = got_import.expect("import event");
    assert!(rev > snap.revision);
    assert_eq!(imp["spec"]["clusters"][0]["cluster"], "eu-1");
    // Resume over gRPC from the snapshot revision replays the change.
    let mut resumed = grpc_watch(
        &s.base,
        Some(&s.token(&["read"])),
        Some(snap.revision as u64),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(5), resumed.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.r#type, EventType::Put as i32);
    assert_eq!(ev.resource.unwrap().key, "exports/shop/cart/eu-1");
}

#[tokio::test]
async fn heartbeat_connectivity_is_streamed_as_cluster_events() {
    let s =
        TestServer::start_with(memory_store(), |c| c.heartbeat_ttl = Duration::from_secs(1)).await;
    register_two(&s).await;
    let admin = s.admin();
    let mut w = admin.watch(None).await.unwrap();
    assert!(matches!(next(&mut w).await, WatchLine::Snapshot { .. }));
    admin.heartbeat("eu-1").await.unwrap();
    let lines = until(&mut w, |l| {
        matches!(
            l,
            WatchLine::Put {
                kind: Kind::Cluster,
                ..
            }
        )
    })
    .await;
    let WatchLine::Put { resource, .. } = lines.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(
        serde_json::to_value(resource).unwrap()["status"]["connected"],
        true
    );
    // The lease expires: a Cluster event with connected=false.
    let lines = until(&mut w, |l| {
        matches!(
            l,
            WatchLine::Put {
                kind: Kind::Cluster,
                ..
            }
        )
    })
    .await;
    let WatchLine::Put { resource, .. } = lines.last().unwrap() else {
        unreachable!()
    };
    assert_eq!(
        serde_json::to_value(resource).unwrap()["status"]["connected"],
        false
    );
}

/// A catalog larger than tonic's default 4 MiB message limit still arrives
/// as the first gRPC watch event (a federation of 100 clusters with 100
/// services each is about that size).
#[tokio::test]
async fn grpc_watch_delivers_a_snapshot_larger_than_4_mib() {
    let s = TestServer::start().await;
    register_two(&s).await;
    let admin = s.admin();
    let filler = "x".repeat(200 * 1024);
    for i in 0..24 {
        let mut e = export(
            "eu-1",
            "big",
            &format!("svc-{i}"),
            80,
            "TCP",
            "ClusterSetIP",
        );
        e["spec"]["exportedAnnotations"] = serde_json::json!({ "example.com/filler": filler });
        let _: Versioned<Value> = admin
            .put(
                &export_path("eu-1", "big", &format!("svc-{i}")),
                &e,
                Precondition::None,
            )
            .await
            .unwrap();
    }
    let mut st = grpc_watch(&s.base, Some(&s.token(&["read"])), None)
        .await
        .unwrap();
    let snap = st.message().await.unwrap().unwrap();
    assert_eq!(snap.r#type, EventType::Snapshot as i32);
    // Two clusters, 24 exports and the 24 imports derived from them.
    assert_eq!(snap.resources.len(), 2 + 24 + 24);
}
