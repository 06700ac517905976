//! The harness's stand-in for the gateway's cluster agent, until the gateway
//! ships its own (see `e2e/REQUESTS.md`). It does what the agent is
//! specified to do, over the public API and with the cluster's own
//! `cluster:<id>` token: register the cluster, publish its trust bundle,
//! export its local services (ready counts per zone), heartbeat, follow the
//! NDJSON watch, and persist the catalog and the federated bundles as the
//! files the gateway loads (`federation.catalogFile`,
//! `federation.bundles`). When the API is gone it keeps the last files, so
//! the gateway keeps routing and a restarted gateway starts from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_federation::client::{Client, Precondition, WatchEvent};
use causeway_federation::model::{
    CatalogSnapshot, Cluster, ServiceExport, ServiceExportSpec, ServicePort, ZoneEndpoints,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the agent of one cluster needs.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// The cluster record it registers.
    pub cluster: Cluster,
    /// Its trust domain's bundle (SPIFFE JSON) to publish.
    pub bundle_json: String,
    /// API replica URLs, tried in turn.
    pub api_urls: Vec<String>,
    /// The `cluster:<id>` token.
    pub token: String,
    /// Where the gateway reads the catalog.
    pub catalog_file: PathBuf,
    /// Where the gateway reads each federated trust domain's bundle.
    pub bundle_files: BTreeMap<String, PathBuf>,
    /// Heartbeat period.
    pub heartbeat_interval: Duration,
}

/// The exports of one cluster as the agent publishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalExport {
    /// `namespace/name`.
    pub service: String,
    /// Exported port.
    pub port: u16,
    /// Ready backends.
    pub ready: u32,
    /// Relative weight.
    pub weight: u32,
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    spec: AgentSpec,
    exports: Arc<Mutex<BTreeMap<String, LocalExport>>>,
    revision: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn client(url: &str, token: &str) -> anyhow::Result<Client> {
    Ok(Client::new(url, Some(token.to_owned()))?)
}

/// The export resource for `e` by `cluster`.
pub fn export_resource(cluster: &Cluster, e: &LocalExport) -> anyhow::Result<ServiceExport> {
    let (ns, name) = e
        .service
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("service {:?} is not namespace/name", e.service))?;
    Ok(ServiceExport::new(
        ns.parse()?,
        name.parse()?,
        cluster.id().clone(),
        ServiceExportSpec {
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: Default::default(),
                app_protocol: None,
                port: e.port,
            }],
            endpoints: vec![ZoneEndpoints {
                zone: cluster.spec.zone.clone(),
                ready: e.ready,
            }],
            weight: e.weight,
            ..ServiceExportSpec::default()
        },
    ))
}

impl Agent {
    /// Registers the cluster, publishes the bundle and `exports`, writes the
    /// first catalog and bundle files, then follows the API in the background.
    pub async fn start(spec: AgentSpec, exports: Vec<LocalExport>) -> anyhow::Result<(Self, u64)> {
        let exports: BTreeMap<_, _> = exports
            .into_iter()
            .map(|e| (e.service.clone(), e))
            .collect();
        let api = client(&spec.api_urls[0], &spec.token)?;
        let id = spec.cluster.id().to_string();
        let c: causeway_federation::client::Versioned<serde_json::Value> = api
            .put(
                &format!("/v1/clusters/{id}"),
                &spec.cluster,
                Precondition::None,
            )
            .await?;
        let mut last = c.revision.unwrap_or(0);
        let bundle: serde_json::Value = serde_json::from_str(&spec.bundle_json)?;
        let b = publish_bundle(&api, &spec, bundle).await?;
        last = last.max(b.revision.unwrap_or(0));
        for e in exports.values() {
            last = last.max(put_export(&api, &spec.cluster, e).await?);
        }
        api.heartbeat(&id).await?;
        let (tx, rx) = watch::channel(0);
        let mut agent = Self {
            spec,
            exports: Arc::new(Mutex::new(exports)),
            revision: rx,
            tasks: Vec::new(),
        };
        agent
            .tasks
            .push(tokio::spawn(follow(agent.spec.clone(), tx)));
        agent
            .tasks
            .push(tokio::spawn(heartbeats(agent.spec.clone())));
        Ok((agent, last))
    }

    /// Waits until the written catalog is at `revision` or later.
    pub async fn wait_revision(&self, revision: u64, timeout: Duration) -> anyhow::Result<()> {
        let mut rx = self.revision.clone();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "agent of {} did not reach revision {revision}",
                    self.spec.cluster.id()
                )
            })??;
        Ok(())
    }

    /// The revision of the last catalog file written.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// Publishes a new ready count for `service` (what the agent does when
    /// the service's endpoints change); returns the store revision.
    pub async fn set_ready(&self, service: &str, ready: u32) -> anyhow::Result<u64> {
        let e = {
            let mut map = self.exports.lock().unwrap_or_else(|e| e.into_inner());
            let e = map
                .get_mut(service)
                .ok_or_else(|| anyhow::anyhow!("{service} is not exported here"))?;
            e.ready = ready;
            e.clone()
        };
        self.publish(&e).await
    }

    /// Publishes `e` through the first replica that takes it; like a real
    /// agent it retries a few times (a replica or the etcd leader may be gone).
    async fn publish(&self, e: &LocalExport) -> anyhow::Result<u64> {
        let mut last = None;
        for attempt in 0..5u64 {
            for url in &self.spec.api_urls {
                match put_export(&client(url, &self.spec.token)?, &self.spec.cluster, e).await {
                    Ok(rev) => return Ok(rev),
                    Err(err) => last = Some(err),
                }
            }
            tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no API replica")))
    }

    /// The exports this agent publishes.
    pub fn exports(&self) -> Vec<LocalExport> {
        let map = self.exports.lock().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    /// The catalog file.
    pub fn catalog_file(&self) -> &Path {
        &self.spec.catalog_file
    }
}

/// Publishes this trust domain's bundle. A bundle already stored for the
/// trust domain (an earlier run against the same store, or a re-created CA)
/// has a sequence that must grow: publish with the next sequence.
async fn publish_bundle(
    api: &Client,
    spec: &AgentSpec,
    mut bundle: serde_json::Value,
) -> anyhow::Result<causeway_federation::client::Versioned<serde_json::Value>> {
    let path = format!(
        "/v1/trust-domains/{}/bundle",
        spec.cluster.spec.trust_domain
    );
    match api.put(&path, &bundle, Precondition::None).await {
        Err(e) if e.status() == Some(409) => {
            let stored: causeway_federation::client::Versioned<serde_json::Value> =
                api.get(&path).await?;
            let seq = stored.value["spiffe_sequence"]
                .as_u64()
                .or_else(|| stored.value["spec"]["bundle"]["spiffe_sequence"].as_u64())
                .unwrap_or(0);
            bundle["spiffe_sequence"] = serde_json::Value::from(seq + 1);
            Ok(api.put(&path, &bundle, Precondition::None).await?)
        }
        other => Ok(other?),
    }
}

async fn put_export(api: &Client, cluster: &Cluster, e: &LocalExport) -> anyhow::Result<u64> {
    let res = export_resource(cluster, e)?;
    let v: causeway_federation::client::Versioned<serde_json::Value> = api
        .put(
            &format!("/v1/clusters/{}/exports/{}", cluster.id(), e.service),
            &res,
            Precondition::None,
        )
        .await?;
    Ok(v.revision.unwrap_or(0))
}

async fn heartbeats(spec: AgentSpec) {
    let id = spec.cluster.id().to_string();
    let mut i = 0usize;
    loop {
        tokio::time::sleep(spec.heartbeat_interval).await;
        let url = &spec.api_urls[i % spec.api_urls.len()];
        let ok = match client(url, &spec.token) {
            Ok(c) => c.heartbeat(&id).await.is_ok(),
            Err(_) => false,
        };
        if !ok {
            i += 1;
        }
    }
}

/// Writes `data` to `path` atomically (temp file + rename) if it changed.
fn write_if_changed(path: &Path, data: &[u8]) -> std::io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == data) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

/// Writes the catalog and the federated bundle files of `spec` from `snap`.
pub fn persist(spec: &AgentSpec, snap: &CatalogSnapshot) -> anyhow::Result<()> {
    for (td, path) in &spec.bundle_files {
        if let Some(b) = snap
            .bundles
            .iter()
            .find(|(name, _)| name.to_string() == *td)
            .map(|(_, b)| b)
        {
            write_if_changed(path, b.spec.bundle.to_json_pretty().as_bytes())?;
        }
    }
    write_if_changed(&spec.catalog_file, &serde_json::to_vec_pretty(snap)?)?;
    Ok(())
}

async fn follow(spec: AgentSpec, revision: watch::Sender<u64>) {
    let mut i = 0usize;
    loop {
        let url = spec.api_urls[i % spec.api_urls.len()].clone();
        if let Err(e) = follow_once(&spec, &url, &revision).await {
            debug_log(&format!("agent {}: watch on {url}: {e}", spec.cluster.id()));
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The harness is quiet by default (failures surface through waits);
/// `CAUSEWAY_E2E_DEBUG=1` prints agent errors.
fn debug_log(msg: &str) {
    if std::env::var_os("CAUSEWAY_E2E_DEBUG").is_some() {
        eprintln!("{msg}");
    }
}

async fn follow_once(
    spec: &AgentSpec,
    url: &str,
    revision: &watch::Sender<u64>,
) -> anyhow::Result<()> {
    let api = client(url, &spec.token)?;
    let mut stream = api.watch(None).await?;
    let mut snap: Option<CatalogSnapshot> = None;
    while let Some(line) = stream.next().await {
        let line = line?;
        debug_log(&format!(
            "agent {}: watch line at {:?}",
            spec.cluster.id(),
            line.revision()
        ));
        match &line {
            WatchEvent::Snapshot {
                revision: rev,
                resources,
            } => {
                snap = Some(CatalogSnapshot::from_resources(*rev, resources.clone()));
            }
            WatchEvent::Error { status, detail } => {
                anyhow::bail!("watch error {status}: {detail}");
            }
            WatchEvent::Bookmark { .. } => continue,
            _ => {
                if let (Some(s), Some(ev)) = (snap.as_mut(), line.to_catalog_event()) {
                    s.apply(&ev);
                }
            }
        }
        if let Some(s) = &snap {
            persist(spec, s)?;
            revision.send_replace(s.revision);
        }
    }
    anyhow::bail!("watch stream ended")
}
