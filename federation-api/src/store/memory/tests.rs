#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;

use super::*;
use crate::store::WatchEventKind;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test(start_paused = true)]
async fn leases_expire_on_tokio_time_without_sleeping() {
    let s = MemoryStore::new();
    let lease = s.grant_lease(Duration::from_secs(10)).await.unwrap();
    let r = s
        .put("/hb/a", b("x"), Precondition::None, Some(lease))
        .await
        .unwrap();
    let mut w = s.watch("/hb/", r + 1).await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    s.keep_alive(lease).await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(
        s.get("/hb/a").await.unwrap().is_some(),
        "keep-alive extended the lease"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    // The background task (paused time auto-advances its interval) deletes it.
    let e = tokio::time::timeout(Duration::from_secs(1), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.kind, WatchEventKind::Delete);
    assert!(s.get("/hb/a").await.unwrap().is_none());
    assert_eq!(
        s.keep_alive(lease).await.unwrap_err(),
        StoreError::LeaseNotFound { lease }
    );
}

#[tokio::test]
async fn history_limit_compacts_automatically() {
    let s = MemoryStore::with_config(MemoryStoreConfig {
        history_limit: 10,
        ..MemoryStoreConfig::default()
    })
    .unwrap();
    let first = s
        .put("/k/0", b("0"), Precondition::None, None)
        .await
        .unwrap();
    for i in 1..30 {
        s.put(&format!("/k/{i}"), b("x"), Precondition::None, None)
            .await
            .unwrap();
    }
    let cur = s.current_revision().await.unwrap();
    let mut w = s.watch("/k/", first).await.unwrap();
    match w.next().await {
        Some(Err(StoreError::Compacted {
            compact_revision, ..
        })) => {
            assert_eq!(
                compact_revision,
                cur - 9,
                "the last 10 revisions stay watchable"
            );
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = s.watch("/k/", cur - 9).await.unwrap();
    for r in cur - 9..=cur {
        assert_eq!(w.next().await.unwrap().unwrap().revision, r);
    }
}

#[tokio::test]
async fn a_slow_watcher_misses_nothing() {
    let s = MemoryStore::new();
    let mut w = s.watch("/", 0).await.unwrap();
    let mut revs = Vec::new();
    for i in 0..20_000 {
        revs.push(
            s.put(&format!("/k{}", i % 100), b("x"), Precondition::None, None)
                .await
                .unwrap(),
        );
    }
    for r in revs {
        assert_eq!(w.next().await.unwrap().unwrap().revision, r);
    }
}

#[tokio::test]
async fn close_watchers_ends_streams_with_unavailable() {
    let s = MemoryStore::new();
    let mut w = s.watch("/", 0).await.unwrap();
    s.close_watchers().unwrap();
    let e = w.next().await.unwrap().unwrap_err();
    assert!(e.is_retryable());
    assert!(w.next().await.is_none());
}

#[tokio::test]
async fn persistence_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let config = MemoryStoreConfig {
        persist_path: Some(path.clone()),
        ..MemoryStoreConfig::default()
    };
    let (rev, lease) = {
        let s = MemoryStore::with_config(config.clone()).unwrap();
        s.put("/a", b("1"), Precondition::None, None).await.unwrap();
        let r = s.put("/a", b("2"), Precondition::None, None).await.unwrap();
        s.put("/b", b("gone"), Precondition::None, None)
            .await
            .unwrap();
        s.delete("/b", Precondition::None).await.unwrap();
        let lease = s.grant_lease(Duration::from_secs(60)).await.unwrap();
        s.put("/hb", b("alive"), Precondition::None, Some(lease))
            .await
            .unwrap();
        let _ = r;
        (s.current_revision().await.unwrap(), lease)
    };
    let s = MemoryStore::with_config(config.clone()).unwrap();
    assert_eq!(s.current_revision().await.unwrap(), rev);
    let a = s.get("/a").await.unwrap().unwrap();
    assert_eq!((a.value, a.version), (b("2"), 2));
    assert!(s.get("/b").await.unwrap().is_none());
    let hb = s.get("/hb").await.unwrap().unwrap();
    assert_eq!(hb.lease, Some(lease));
    s.keep_alive(lease).await.unwrap();
    // New writes continue the revision sequence; a new lease gets a new id.
    let r = s.put("/c", b("3"), Precondition::None, None).await.unwrap();
    assert_eq!(r, rev + 1);
    let l2 = s.grant_lease(Duration::from_secs(5)).await.unwrap();
    assert!(l2.0 > lease.0);
    // History from before the restart is gone: relist.
    let mut w = s.watch("/", 2).await.unwrap();
    assert!(matches!(
        w.next().await,
        Some(Err(StoreError::Compacted { .. }))
    ));
    drop(s);
    // A second restart replays the log written since the first.
    let s = MemoryStore::with_config(config).unwrap();
    assert_eq!(s.get("/c").await.unwrap().unwrap().value, b("3"));
    assert_eq!(s.current_revision().await.unwrap(), rev + 1);
    // The snapshot was written atomically (no temp file left behind).
    assert!(!dir.path().join("store.json.tmp").exists());
}

#[tokio::test]
async fn torn_log_tail_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.json");
    let config = MemoryStoreConfig {
        persist_path: Some(path.clone()),
        ..MemoryStoreConfig::default()
    };
    {
        let s = MemoryStore::with_config(config.clone()).unwrap();
        s.put("/a", b("1"), Precondition::None, None).await.unwrap();
    }
    let log = dir.path().join("store.json.log");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"op\":\"put\",\"rev\":9");
    std::fs::write(&log, text).unwrap();
    let s = MemoryStore::with_config(config).unwrap();
    assert_eq!(s.get("/a").await.unwrap().unwrap().value, b("1"));
}
