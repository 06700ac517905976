//! Abuse: a write answered while etcd cannot confirm it (finding 8,
//! SECURITY.md F14). A real etcd is paused (SIGSTOP) just as the server
//! sends the write, so the write reaches etcd but no answer comes back
//! within the request timeout; etcd resumes (SIGCONT) shortly after. The
//! API must say "outcome unknown" (503 with its own problem type and
//! `Retry-After`), not "unavailable" (which promises nothing was written),
//! and the client the agent and `causewayctl` use must retry such a write
//! idempotently until it knows the outcome.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use causeway_api::client::{Client, Precondition, Versioned};
use causeway_federation::store::{
    EtcdStore, EtcdStoreConfig, KeyValue, LeaseId, Page, Precondition as StorePre, RangeResponse,
    Revision, Store, StoreError, WatchStream,
};
use causeway_federation::testing::EtcdProcess;
use http::Method;
use serde_json::{Value, json};
use support::*;

/// The real etcd store; when armed, the next write to a key containing
/// `exports/` first pauses the etcd process (SIGSTOP) and resumes it
/// (SIGCONT) after `pause`, so that write's answer is lost in a timeout.
struct PauseOnWrite {
    inner: EtcdStore,
    pid: u32,
    armed: AtomicBool,
    pause: Duration,
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

impl PauseOnWrite {
    fn maybe_pause(&self, key: &str) {
        if key.contains("exports/") && self.armed.swap(false, Ordering::SeqCst) {
            signal(self.pid, "-STOP");
            let (pid, pause) = (self.pid, self.pause);
            std::thread::spawn(move || {
                std::thread::sleep(pause);
                signal(pid, "-CONT");
            });
        }
    }
}

#[async_trait::async_trait]
impl Store for PauseOnWrite {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.inner.get(key).await
    }
    async fn range(&self, prefix: &str, page: Page) -> Result<RangeResponse, StoreError> {
        self.inner.range(prefix, page).await
    }
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        precondition: StorePre,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        self.maybe_pause(key);
        self.inner.put(key, value, precondition, lease).await
    }
    async fn delete(&self, key: &str, precondition: StorePre) -> Result<Revision, StoreError> {
        self.maybe_pause(key);
        self.inner.delete(key, precondition).await
    }
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        self.inner.grant_lease(ttl).await
    }
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        self.inner.keep_alive(lease).await
    }
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.inner.revoke_lease(lease).await
    }
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.inner.compact(revision).await
    }
    async fn watch(&self, prefix: &str, start: Revision) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, start).await
    }
}

struct World {
    s: TestServer,
    store: Arc<PauseOnWrite>,
    etcd: EtcdProcess,
}

impl Drop for World {
    fn drop(&mut self) {
        // Never leave a stopped etcd behind (it is killed by pid on drop).
        if let Some(pid) = self.etcd.pid() {
            let _ = std::process::Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
    }
}

async fn world(pause: Duration) -> World {
    let etcd = EtcdProcess::start().await.unwrap();
    let inner = EtcdStore::connect(&EtcdStoreConfig {
        endpoints: etcd.endpoints(),
        namespace: format!("/outcome-{}", std::process::id()),
        request_timeout: Duration::from_millis(700),
        ..EtcdStoreConfig::default()
    })
    .await
    .unwrap();
    let store = Arc::new(PauseOnWrite {
        inner,
        pid: etcd.pid().unwrap(),
        armed: AtomicBool::new(false),
        pause,
    });
    let s = TestServer::start_with(store.clone(), |_| {}).await;
    let _: Versioned<Value> = s
        .admin()
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu-1.example.org", "r"),
            Precondition::None,
        )
        .await
        .unwrap();
    World { s, store, etcd }
}

/// The raw answer to a write whose confirmation is lost: 503 with the
/// `outcome-unknown` problem type and `Retry-After`, distinct from
/// `unavailable`.
#[tokio::test]
async fn unconfirmed_write_is_outcome_unknown_not_unavailable() {
    let w = world(Duration::from_secs(4)).await;
    let eu = w.s.client(&["cluster:eu-1"]);
    w.store.armed.store(true, Ordering::SeqCst);
    let body = export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP");
    let r = eu
        .raw(
            Method::PUT,
            &export_path("eu-1", "shop", "cart"),
            Some(serde_json::to_vec(&body).unwrap()),
            &[],
        )
        .await
        .unwrap();
    let p: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, 503, "{p}");
    assert_eq!(
        p["type"], "https://causeway.dev/problems/outcome-unknown",
        "{p}"
    );
    assert!(r.headers.contains_key(http::header::RETRY_AFTER), "{p}");
    // A write that never reached the store is still plain `unavailable`:
    // while etcd is stopped, the server's first read of the next write
    // times out before anything is sent.
    let r = eu
        .raw(
            Method::PUT,
            &export_path("eu-1", "shop", "other"),
            Some(
                serde_json::to_vec(&export("eu-1", "shop", "other", 80, "TCP", "ClusterSetIP"))
                    .unwrap(),
            ),
            &[],
        )
        .await
        .unwrap();
    let p: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(r.status, 503, "{p}");
    assert_eq!(
        p["type"], "https://causeway.dev/problems/unavailable",
        "{p}"
    );
}

/// The client (agent, causewayctl) turns an outcome-unknown answer into a
/// known outcome: it re-reads, and repeats the write only when it did not
/// land. A create (`If-None-Match: *`) whose first attempt landed is a
/// success, not a 412; a delete whose first attempt landed is a success,
/// not a 404.
#[tokio::test]
async fn client_retries_unconfirmed_writes_idempotently() {
    let w = world(Duration::from_millis(1200)).await;
    let eu: Client = w.s.client(&["cluster:eu-1"]);
    let path = export_path("eu-1", "shop", "cart");
    let body = export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP");
    w.store.armed.store(true, Ordering::SeqCst);
    let got: Versioned<Value> = tokio::time::timeout(
        Duration::from_secs(30),
        eu.put(&path, &body, Precondition::MustNotExist),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(got.value["spec"]["ports"][0]["port"], 8080);
    let read: Versioned<Value> = eu.get(&path).await.unwrap();
    assert_eq!(read.revision, got.revision);
    assert!(
        !w.store.armed.load(Ordering::SeqCst),
        "the pause never fired"
    );

    // A conditional replace.
    let mut changed = body.clone();
    changed["spec"]["ports"][0]["port"] = json!(9090);
    w.store.armed.store(true, Ordering::SeqCst);
    let got: Versioned<Value> = eu
        .put(
            &path,
            &changed,
            Precondition::Revision(read.revision.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(got.value["spec"]["ports"][0]["port"], 9090);

    // A delete.
    w.store.armed.store(true, Ordering::SeqCst);
    eu.delete(&path, Precondition::None).await.unwrap();
    assert!(eu.get_opt::<Value>(&path).await.unwrap().is_none());
}
