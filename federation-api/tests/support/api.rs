//! Shared harness of the API tests: a server on 127.0.0.1:0 over a chosen
//! store, ES256 keys, tokens and clients.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use causeway_api::client::Client;
use causeway_federation::server::{Authn, Server, ServerConfig};
use causeway_federation::store::{MemoryStore, Store};
use causeway_federation::token::{JwtKeys, Scope, generate_es256_pem};
use serde_json::{Value, json};

pub struct TestServer {
    pub base: String,
    pub keys: JwtKeys,
    pub public_pem: String,
    pub private_pem: String,
    pub store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub fn memory_store() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(memory_store(), |_| {}).await
    }

    pub async fn start_with(store: Arc<dyn Store>, tweak: impl FnOnce(&mut ServerConfig)) -> Self {
        let (private_pem, public_pem) = generate_es256_pem().unwrap();
        let keys = JwtKeys::es256(
            public_pem.as_bytes(),
            Some(private_pem.as_bytes()),
            "causeway",
            None,
        )
        .unwrap();
        Self::start_keys(store, keys, public_pem, private_pem, tweak).await
    }

    pub async fn start_keys(
        store: Arc<dyn Store>,
        keys: JwtKeys,
        public_pem: String,
        private_pem: String,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Self {
        let mut config = ServerConfig::default();
        tweak(&mut config);
        let server = Server::new(config, store.clone(), Authn::Jwt(keys.clone())).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
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
            base: format!("http://{addr}"),
            keys,
            public_pem,
            private_pem,
            store,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<Scope> = scopes.iter().map(|s| s.parse().unwrap()).collect();
        self.keys
            .mint(&scopes, Duration::from_secs(300), Some("test"))
            .unwrap()
    }

    pub fn client(&self, scopes: &[&str]) -> Client {
        Client::new(&self.base, Some(self.token(scopes))).unwrap()
    }

    pub fn admin(&self) -> Client {
        self.client(&["admin"])
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.base, None).unwrap()
    }
}

pub fn cluster(id: &str, td: &str, region: &str) -> Value {
    json!({
        "apiVersion": "causeway.dev/v1",
        "kind": "Cluster",
        "metadata": {"name": id},
        "spec": {
            "cloud": "aws", "region": region, "zone": format!("{region}a"),
            "jurisdictions": ["eu"],
            "gateway": {"endpoints": [format!("gw.{id}.example.com:15443")]},
            "trustDomain": td
        }
    })
}

pub fn export(
    cluster: &str,
    ns: &str,
    name: &str,
    port: u16,
    protocol: &str,
    type_: &str,
) -> Value {
    json!({
        "apiVersion": "causeway.dev/v1",
        "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns, "cluster": cluster},
        "spec": {
            "ports": [{"name": "http", "protocol": protocol, "port": port}],
            "type": type_,
            "endpoints": [{"zone": "a", "ready": 2}]
        }
    })
}

pub fn export_path(cluster: &str, ns: &str, name: &str) -> String {
    format!("/v1/clusters/{cluster}/exports/{ns}/{name}")
}

/// Waits until `f` is true, polling every 20 ms, at most `secs` seconds.
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
