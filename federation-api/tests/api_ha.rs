//! HA: a 3-member etcd cluster on loopback and two API replicas. The etcd
//! leader is killed while a client writes continuously through both
//! replicas; every write that got a 2xx is present afterwards, and watchers
//! on both replicas (resuming by revision when their stream breaks) see the
//! same ordered events.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use causeway_api::client::{Client, Precondition};
use causeway_api::model::Kind;
use causeway_api::wire::WatchLine;
use causeway_federation::store::{EtcdStore, EtcdStoreConfig, Store};
use causeway_federation::testing::EtcdCluster;
use serde_json::Value;
use support::*;

async fn replica(cluster: &EtcdCluster, keys_from: Option<&TestServer>) -> TestServer {
    let config = EtcdStoreConfig {
        endpoints: cluster.endpoints(),
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(2),
        ..EtcdStoreConfig::default()
    };
    let store: Arc<dyn Store> = Arc::new(EtcdStore::connect(&config).await.unwrap());
    match keys_from {
        None => TestServer::start_with(store, |_| {}).await,
        Some(s) => {
            TestServer::start_keys(
                store,
                s.keys.clone(),
                s.public_pem.clone(),
                s.private_pem.clone(),
                |_| {},
            )
            .await
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_keeps_acknowledged_writes_and_watch_order() {
    let mut etcd = EtcdCluster::start().await.unwrap();
    let a = replica(&etcd, None).await;
    let b = replica(&etcd, Some(&a)).await;
    let (ca, cb) = (a.admin(), b.admin());
    // Both replicas answer and share keys.
    assert!(ca.ready().await.unwrap() && cb.ready().await.unwrap());

    let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (ca, cb) = (ca.clone(), cb.clone());
        let killed = killed.clone();
        tokio::spawn(async move {
            let mut acked = BTreeSet::new();
            let mut acked_after_kill = 0usize;
            let mut failed = 0usize;
            for i in 0..150 {
                let id = format!("c-{i:03}");
                let c = if i % 2 == 0 { &ca } else { &cb };
                let body = cluster(&id, "td.example.org", "r");
                match c
                    .put::<_, Value>(&format!("/v1/clusters/{id}"), &body, Precondition::None)
                    .await
                {
                    Ok(_) => {
                        acked.insert(id);
                        if killed.load(std::sync::atomic::Ordering::SeqCst) {
                            acked_after_kill += 1;
                        }
                    }
                    Err(e) => {
                        if failed == 0 {
                            eprintln!("first refused write {id}: {e}");
                        }
                        failed += 1
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (acked, acked_after_kill, failed)
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let leader = etcd.wait_for_leader(Duration::from_secs(5)).await.unwrap();
    etcd.kill(leader);
    killed.store(true, std::sync::atomic::Ordering::SeqCst);
    let new_leader = etcd.wait_for_leader(Duration::from_secs(10)).await;
    assert!(
        new_leader.is_some_and(|l| l != leader),
        "a new leader is elected"
    );
    let (acked, acked_after_kill, failed) = writer.await.unwrap();
    eprintln!(
        "writes: {} acknowledged ({acked_after_kill} after the leader was killed), {failed} refused",
        acked.len()
    );
    assert!(
        acked_after_kill > 0,
        "the replicas keep accepting writes after the leader is killed"
    );

    // Every acknowledged write is present, through either replica.
    for c in [&ca, &cb] {
        let mut listed = BTreeSet::new();
        for _ in 0..50 {
            if let Ok(items) = c.list::<Value>("/v1/clusters").await {
                listed = items
                    .iter()
                    .map(|v| v["metadata"]["name"].as_str().unwrap().to_owned())
                    .collect();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let missing: Vec<_> = acked.difference(&listed).collect();
        assert!(missing.is_empty(), "acknowledged but missing: {missing:?}");
    }

    // Watchers on both replicas replay the history from revision 0 (and
    // resume by revision if their stream breaks): identical order.
    let wa = tokio::spawn(follow_from(a.client(&["read"]), acked.clone()));
    let wb = tokio::spawn(follow_from(b.client(&["read"]), acked.clone()));
    let (ea, eb) = (wa.await.unwrap(), wb.await.unwrap());
    assert!(!ea.is_empty());
    assert_eq!(ea, eb, "both replicas stream the same ordered events");
    assert!(
        ea.windows(2).all(|w| w[0].0 < w[1].0),
        "revisions strictly increase"
    );
    let names: BTreeSet<String> = ea
        .iter()
        .map(|(_, k)| k.trim_start_matches("clusters/").to_owned())
        .collect();
    assert!(acked.is_subset(&names));
}

/// Replays the history from revision 1 on one replica (no snapshot).
async fn follow_from(c: Client, want: BTreeSet<String>) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    let mut names = BTreeSet::new();
    let mut last = 0u64;
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while !want.is_subset(&names) && tokio::time::Instant::now() < end {
        let Ok(mut w) = c.watch(Some(last)).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        while let Ok(Some(Ok(line))) = tokio::time::timeout(Duration::from_secs(2), w.next()).await
        {
            if let WatchLine::Put {
                kind: Kind::Cluster,
                key,
                revision,
                ..
            } = &line
            {
                seen.push((*revision, key.clone()));
                names.insert(key.trim_start_matches("clusters/").to_owned());
            }
            if let Some(r) = line.revision() {
                last = r;
            }
            if want.is_subset(&names) || matches!(line, WatchLine::Error { .. }) {
                break;
            }
        }
    }
    seen
}
