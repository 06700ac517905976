//! The conformance cases, generic over the store.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use causeway_federation::store::{
    Page, Precondition, Store, StoreError, WatchEvent, WatchEventKind, WatchStream,
};
use futures::StreamExt;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next(stream: &mut WatchStream) -> anyhow::Result<WatchEvent> {
    match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
        Ok(Some(Ok(e))) => Ok(e),
        Ok(Some(Err(e))) => bail!("watch error: {e}"),
        Ok(None) => bail!("watch ended"),
        Err(_) => bail!("no watch event within 10s"),
    }
}

/// Asserts that no event arrives within a short time.
async fn quiet(stream: &mut WatchStream) -> anyhow::Result<()> {
    match tokio::time::timeout(Duration::from_millis(300), stream.next()).await {
        Err(_) => Ok(()),
        Ok(other) => bail!("unexpected watch item: {other:?}"),
    }
}

pub(crate) async fn put_get_versions(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let k = format!("{p}a");
    ensure!(s.get(&k).await?.is_none(), "missing key must read as None");
    let r1 = s.put(&k, b("one"), Precondition::None, None).await?;
    let kv = s.get(&k).await?.context("key after put")?;
    assert_eq!(kv.key, k);
    assert_eq!(kv.value, b("one"));
    assert_eq!(kv.create_revision, r1);
    assert_eq!(kv.mod_revision, r1);
    assert_eq!(kv.version, 1);
    assert_eq!(kv.lease, None);
    let r2 = s.put(&k, b("two"), Precondition::None, None).await?;
    assert!(r2 > r1);
    let kv = s.get(&k).await?.context("key after update")?;
    assert_eq!(kv.value, b("two"));
    assert_eq!(kv.create_revision, r1);
    assert_eq!(kv.mod_revision, r2);
    assert_eq!(kv.version, 2);
    Ok(())
}

pub(crate) async fn precondition_must_not_exist(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let k = format!("{p}create");
    let r1 = s.put(&k, b("v1"), Precondition::MustNotExist, None).await?;
    let err = s
        .put(&k, b("v2"), Precondition::MustNotExist, None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            key: k.clone(),
            current: Some(r1)
        }
    );
    assert_eq!(
        s.get(&k).await?.context("key")?.value,
        b("v1"),
        "a failed create must not write"
    );
    Ok(())
}

pub(crate) async fn precondition_mod_revision(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let k = format!("{p}cas");
    let r1 = s.put(&k, b("v1"), Precondition::None, None).await?;
    let r2 = s
        .put(&k, b("v2"), Precondition::ModRevision(r1), None)
        .await?;
    assert!(r2 > r1);
    // The stale revision now loses, and reports the current one.
    let err = s
        .put(&k, b("v3"), Precondition::ModRevision(r1), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            key: k.clone(),
            current: Some(r2)
        }
    );
    assert_eq!(s.get(&k).await?.context("key")?.value, b("v2"));
    // Updating a missing key with a revision is a conflict with no current.
    let missing = format!("{p}missing");
    let err = s
        .put(&missing, b("x"), Precondition::ModRevision(r2), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            key: missing.clone(),
            current: None
        }
    );
    ensure!(s.get(&missing).await?.is_none());
    Ok(())
}

pub(crate) async fn pagination(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let dir = format!("{p}items/");
    for i in 0..25 {
        s.put(
            &format!("{dir}{i:03}"),
            b(&i.to_string()),
            Precondition::None,
            None,
        )
        .await?;
    }
    // Neighbours that share the textual prefix but not the directory.
    s.put(&format!("{p}items0"), b("x"), Precondition::None, None)
        .await?;
    s.put(&format!("{p}itemz/1"), b("x"), Precondition::None, None)
        .await?;

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = s.range(&dir, Page::new(10, after.clone())).await?;
        pages += 1;
        ensure!(page.kvs.len() <= 10);
        ensure!(page.revision > 0);
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        after = page.kvs.last().map(|kv| kv.key.clone());
        ensure!(pages < 10, "pagination does not terminate");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).map(|i| format!("{dir}{i:03}")).collect();
    assert_eq!(seen, expected);

    let all = s.range(&dir, Page::all()).await?;
    assert_eq!(all.kvs.len(), 25);
    assert!(!all.more);
    let exact = s.range(&dir, Page::new(25, None)).await?;
    assert_eq!(exact.kvs.len(), 25);
    assert!(
        !exact.more,
        "a page that ends exactly at the last key has no more"
    );
    Ok(())
}

pub(crate) async fn delete_semantics(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let k = format!("{p}d");
    let r1 = s.put(&k, b("v"), Precondition::None, None).await?;
    let err = s
        .delete(&k, Precondition::ModRevision(r1 + 1000))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::Conflict {
            key: k.clone(),
            current: Some(r1)
        }
    );
    ensure!(
        s.get(&k).await?.is_some(),
        "a failed delete must not delete"
    );
    let rd = s.delete(&k, Precondition::ModRevision(r1)).await?;
    assert!(rd > r1);
    ensure!(s.get(&k).await?.is_none());
    let err = s.delete(&k, Precondition::None).await.unwrap_err();
    assert_eq!(err, StoreError::NotFound { key: k.clone() });
    // Recreating starts a new life: version 1, new create revision.
    let r2 = s
        .put(&k, b("again"), Precondition::MustNotExist, None)
        .await?;
    let kv = s.get(&k).await?.context("recreated")?;
    assert_eq!(kv.version, 1);
    assert_eq!(kv.create_revision, r2);
    let rd2 = s.delete(&k, Precondition::None).await?;
    assert!(rd2 > r2);
    Ok(())
}

pub(crate) async fn lease_expiry_deletes_keys(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let k = format!("{p}hb");
    let other = format!("{p}plain");
    let lease = s.grant_lease(Duration::from_secs(1)).await?;
    let r = s
        .put(&k, b("alive"), Precondition::None, Some(lease))
        .await?;
    s.put(&other, b("x"), Precondition::None, None).await?;
    assert_eq!(s.get(&k).await?.context("leased key")?.lease, Some(lease));
    let ttl = s.keep_alive(lease).await?;
    assert!(ttl >= Duration::from_secs(1), "ttl {ttl:?}");
    let mut w = s.watch(p, r + 1).await?;
    let started = std::time::Instant::now();
    let ev = loop {
        let ev = next(&mut w).await?;
        if ev.kv.key == k {
            break ev;
        }
    };
    assert_eq!(ev.kind, WatchEventKind::Delete);
    assert_eq!(
        ev.prev.as_ref().map(|kv| kv.value.clone()),
        Some(b("alive"))
    );
    ensure!(
        started.elapsed() < Duration::from_secs(8),
        "lease expired too late"
    );
    ensure!(s.get(&k).await?.is_none(), "leased key must be gone");
    ensure!(s.get(&other).await?.is_some(), "unleased key must stay");
    let err = s.keep_alive(lease).await.unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound { lease });
    Ok(())
}

pub(crate) async fn lease_revoke_and_unknown_lease(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let lease = s.grant_lease(Duration::from_secs(60)).await?;
    let k1 = format!("{p}a");
    let k2 = format!("{p}b");
    s.put(&k1, b("1"), Precondition::None, Some(lease)).await?;
    let r = s.put(&k2, b("2"), Precondition::None, Some(lease)).await?;
    let mut w = s.watch(p, r + 1).await?;
    s.revoke_lease(lease).await?;
    let e1 = next(&mut w).await?;
    let e2 = next(&mut w).await?;
    assert_eq!(e1.kind, WatchEventKind::Delete);
    assert_eq!(e2.kind, WatchEventKind::Delete);
    assert_eq!(
        e1.revision, e2.revision,
        "a revoke deletes its keys at one revision"
    );
    let mut keys = vec![e1.kv.key, e2.kv.key];
    keys.sort();
    assert_eq!(keys, vec![k1.clone(), k2.clone()]);
    ensure!(s.get(&k1).await?.is_none() && s.get(&k2).await?.is_none());
    let err = s.revoke_lease(lease).await.unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound { lease });
    let err = s
        .put(&format!("{p}c"), b("x"), Precondition::None, Some(lease))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::LeaseNotFound { lease });
    Ok(())
}

pub(crate) async fn revisions_monotonic(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let mut last = s.current_revision().await?;
    for i in 0..20 {
        let k = format!("{p}{}", i % 3);
        let r = if i % 5 == 4 {
            s.delete(&k, Precondition::None).await?
        } else {
            s.put(&k, b(&i.to_string()), Precondition::None, None)
                .await?
        };
        ensure!(r > last, "revision {r} after {last}");
        last = r;
        let cur = s.current_revision().await?;
        ensure!(cur >= r, "current revision {cur} behind write {r}");
    }
    Ok(())
}

pub(crate) async fn watch_replays_missed_events_then_live(
    s: &dyn Store,
    p: &str,
) -> anyhow::Result<()> {
    let a = format!("{p}a");
    let bk = format!("{p}b");
    let r1 = s.put(&a, b("a1"), Precondition::None, None).await?;
    let r2 = s.put(&bk, b("b1"), Precondition::None, None).await?;
    let r3 = s
        .put(&a, b("a2"), Precondition::ModRevision(r1), None)
        .await?;
    let r4 = s.delete(&bk, Precondition::None).await?;
    // Start after the first change: exactly the three later ones, in order.
    let mut w = s.watch(p, r2).await?;
    let e = next(&mut w).await?;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.revision),
        (WatchEventKind::Put, bk.as_str(), r2)
    );
    assert_eq!(e.kv.value, b("b1"));
    let e = next(&mut w).await?;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.revision),
        (WatchEventKind::Put, a.as_str(), r3)
    );
    assert_eq!(e.kv.value, b("a2"));
    assert_eq!(e.kv.version, 2);
    assert_eq!(e.prev.as_ref().map(|kv| kv.value.clone()), Some(b("a1")));
    let e = next(&mut w).await?;
    assert_eq!(
        (e.kind, e.kv.key.as_str(), e.revision),
        (WatchEventKind::Delete, bk.as_str(), r4)
    );
    assert_eq!(e.prev.as_ref().map(|kv| kv.value.clone()), Some(b("b1")));
    // Then live.
    let r5 = s
        .put(&format!("{p}c"), b("c1"), Precondition::None, None)
        .await?;
    let e = next(&mut w).await?;
    assert_eq!((e.kind, e.revision), (WatchEventKind::Put, r5));
    let mut revs = Vec::new();
    for i in 0..50 {
        revs.push(
            s.put(&format!("{p}n{i}"), b("x"), Precondition::None, None)
                .await?,
        );
    }
    for r in revs {
        let e = next(&mut w).await?;
        assert_eq!(
            e.revision, r,
            "events must arrive in revision order without gaps"
        );
    }
    quiet(&mut w).await
}

pub(crate) async fn watch_from_now_sees_only_new_events(
    s: &dyn Store,
    p: &str,
) -> anyhow::Result<()> {
    s.put(&format!("{p}old"), b("x"), Precondition::None, None)
        .await?;
    let mut w = s.watch(p, 0).await?;
    let r = s
        .put(&format!("{p}new"), b("y"), Precondition::None, None)
        .await?;
    let e = next(&mut w).await?;
    assert_eq!(e.kv.key, format!("{p}new"));
    assert_eq!(e.revision, r);
    quiet(&mut w).await
}

pub(crate) async fn watch_prefix_isolation(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let mine = format!("{p}mine/");
    let start = s.current_revision().await? + 1;
    s.put(&format!("{p}mine-not/x"), b("x"), Precondition::None, None)
        .await?;
    s.put(&format!("{p}other/x"), b("x"), Precondition::None, None)
        .await?;
    let r = s
        .put(&format!("{mine}x"), b("x"), Precondition::None, None)
        .await?;
    let mut w = s.watch(&mine, start).await?;
    let e = next(&mut w).await?;
    assert_eq!(e.revision, r);
    assert_eq!(e.kv.key, format!("{mine}x"));
    quiet(&mut w).await
}

pub(crate) async fn concurrent_writers_lose_no_update(
    s: &dyn Store,
    p: &str,
) -> anyhow::Result<()> {
    const WRITERS: usize = 6;
    const INCREMENTS: usize = 10;
    let k = format!("{p}counter");
    s.put(&k, b("0"), Precondition::MustNotExist, None).await?;
    let conflicts = std::sync::atomic::AtomicUsize::new(0);
    let writer = || async {
        for _ in 0..INCREMENTS {
            loop {
                let kv = s.get(&k).await?.context("counter")?;
                let n: usize = std::str::from_utf8(&kv.value)?.parse()?;
                match s
                    .put(
                        &k,
                        b(&(n + 1).to_string()),
                        Precondition::ModRevision(kv.mod_revision),
                        None,
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(StoreError::Conflict { .. }) => {
                        conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => return Err(anyhow::Error::from(e)),
                }
            }
        }
        anyhow::Ok(())
    };
    let results = futures::future::join_all((0..WRITERS).map(|_| writer())).await;
    for r in results {
        r?;
    }
    let kv = s.get(&k).await?.context("counter")?;
    assert_eq!(
        std::str::from_utf8(&kv.value)?,
        (WRITERS * INCREMENTS).to_string()
    );
    assert_eq!(kv.version as usize, WRITERS * INCREMENTS + 1);
    Ok(())
}

pub(crate) async fn watch_from_compacted_revision(s: &dyn Store, p: &str) -> anyhow::Result<()> {
    let r1 = s
        .put(&format!("{p}a"), b("1"), Precondition::None, None)
        .await?;
    s.put(&format!("{p}a"), b("2"), Precondition::None, None)
        .await?;
    let r3 = s
        .put(&format!("{p}a"), b("3"), Precondition::None, None)
        .await?;
    s.compact(r3).await?;
    let mut w = s.watch(p, r1).await?;
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Err(StoreError::Compacted {
            compact_revision, ..
        }))) => assert_eq!(compact_revision, r3),
        other => bail!("expected Compacted, got {other:?}"),
    }
    // The stream ends after the error.
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(None) => {}
        other => bail!("expected the stream to end, got {other:?}"),
    }
    // Watching from the compaction point still works and replays it.
    let mut w = s.watch(p, r3).await?;
    let e = next(&mut w).await?;
    assert_eq!(e.revision, r3);
    assert_eq!(e.kv.value, b("3"));
    // Compacting again at or below the point is an error, as is the future.
    let err = s.compact(r1).await.unwrap_err();
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let future = s.current_revision().await? + 100;
    let err = s.compact(future).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidArgument { .. }), "{err:?}");
    Ok(())
}
