//! A federation API server in-process on 127.0.0.1:0 (auth disabled), over
//! the embedded store or a real etcd.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use causeway_api::client::{Client, Precondition};
use causeway_api::model::{Cluster, Resource, ServiceExport};
use causeway_federation::server::{Authn, Server, ServerConfig};
use causeway_federation::store::{MemoryStore, Store};
use serde_json::json;

pub struct Api {
    pub addr: SocketAddr,
    pub base: String,
    pub store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Api {
    pub async fn memory() -> Self {
        Self::start(
            Arc::new(MemoryStore::new()),
            "127.0.0.1:0".parse().unwrap(),
            "/causeway/v1",
        )
        .await
    }

    /// Serves `store` under key `prefix` on `addr` (port 0 for a free one; a
    /// fixed port to restart "the same" API after a kill).
    pub async fn start(store: Arc<dyn Store>, addr: SocketAddr, prefix: &str) -> Self {
        let mut config = ServerConfig {
            danger_disable_auth: true,
            heartbeat_ttl: Duration::from_secs(5),
            ..ServerConfig::default()
        };
        config.store.prefix = Some(prefix.to_owned());
        let server = Server::new(config, store.clone(), Authn::Disabled).unwrap();
        let mut listener = None;
        for _ in 0..50 {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let listener = listener.expect("bind federation api");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = server
                .serve(listener, async move {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            base: format!("http://{addr}"),
            store,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops serving: watch streams end, open connections are closed (the
    /// server drains gracefully, then is aborted after 5 s).
    pub async fn kill(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(mut t) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut t)
                .await
                .is_err()
        {
            t.abort();
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base, None).unwrap()
    }
}

pub fn cluster(id: &str, td: &str, zone: &str) -> Cluster {
    serde_json::from_value(json!({
        "apiVersion": "causeway.dev/v1", "kind": "Cluster",
        "metadata": {"name": id},
        "spec": {
            "cloud": "aws", "region": "r-".to_owned() + id, "zone": zone,
            "jurisdictions": ["eu"],
            "gateway": {"endpoints": [format!("127.0.0.1:{}", 15443)]},
            "trustDomain": td
        }
    }))
    .unwrap()
}

pub fn export(cluster: &str, ns: &str, name: &str, port: u16, type_: &str) -> ServiceExport {
    serde_json::from_value(json!({
        "apiVersion": "causeway.dev/v1", "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns, "cluster": cluster},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": port}],
            "type": type_,
            "endpoints": [{"zone": "z", "ready": 2}]
        }
    }))
    .unwrap()
}

pub async fn put_cluster(c: &Client, cl: &Cluster) {
    c.put_cluster(cl, Precondition::None).await.unwrap();
}

pub async fn put_export(c: &Client, e: &ServiceExport) {
    c.put_export(e, Precondition::None).await.unwrap();
}

pub fn resource(v: serde_json::Value) -> Resource {
    serde_json::from_value(v).unwrap()
}

/// Polls `f` every 20 ms for at most `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
