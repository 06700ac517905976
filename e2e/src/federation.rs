//! A whole federation on one machine: etcd (or the embedded store), API
//! replicas, and one gateway per cluster with its agent and echo backends.
//! Every process is killed when the [`Federation`] is dropped.

mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use causeway_federation::testing::{EtcdCluster, EtcdProcess};
use causeway_trust::{Authority, AuthorityConfig, SystemClock, TrustDomain};

pub use self::cluster::{ClusterDef, ClusterHandle, ServiceDef};
use crate::agent::{Agent, AgentSpec, LocalExport};
use crate::api::{ApiSettings, FederationApi};
use crate::client::{HttpClient, Reply};
use crate::echo::EchoServer;
use crate::gateway::GatewayProcess;

/// Where the catalog lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// The API's embedded in-process store (one replica).
    Embedded,
    /// A real etcd started by the harness with 1 or 3 members.
    Etcd {
        /// 1 or 3.
        members: usize,
    },
    /// An etcd the caller runs (client URLs).
    External(Vec<String>),
}

/// Timing knobs, short by default so that scenarios run fast.
#[derive(Debug, Clone)]
pub struct Timings {
    /// Agent heartbeat period.
    pub heartbeat_interval: Duration,
    /// API heartbeat lease TTL.
    pub heartbeat_ttl: Duration,
    /// Gateway catalog/bundle file reload period.
    pub reload_interval: Duration,
    /// Gateway active probe period.
    pub probe_interval: Duration,
    /// Gateway upstream connect timeout.
    pub connect_timeout: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_ttl: Duration::from_secs(5),
            reload_interval: Duration::from_millis(100),
            probe_interval: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(500),
        }
    }
}

/// Builds a [`Federation`].
#[derive(Debug, Clone)]
pub struct FederationBuilder {
    store: Store,
    replicas: usize,
    clusters: Vec<ClusterDef>,
    timings: Timings,
    dir: Option<PathBuf>,
}

/// The etcd the harness runs.
#[derive(Debug)]
enum Etcd {
    One(EtcdProcess),
    Three(EtcdCluster),
}

/// A running federation.
#[derive(Debug)]
pub struct Federation {
    // Field order is drop order: gateways and agents, then the API, then etcd.
    clusters: Vec<ClusterHandle>,
    api: FederationApi,
    etcd: Option<Etcd>,
    http: HttpClient,
    last_write: AtomicU64,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Default for FederationBuilder {
    fn default() -> Self {
        Self {
            store: Store::Embedded,
            replicas: 1,
            clusters: Vec::new(),
            timings: Timings::default(),
            dir: None,
        }
    }
}

impl FederationBuilder {
    /// The store (default: embedded).
    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// The number of API replicas (default 1; more than one needs etcd).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n.max(1);
        self
    }

    /// Adds a cluster.
    pub fn cluster(mut self, c: ClusterDef) -> Self {
        self.clusters.push(c);
        self
    }

    /// Overrides the timing knobs.
    pub fn timings(mut self, t: Timings) -> Self {
        self.timings = t;
        self
    }

    /// Keeps state and logs under `dir` instead of a temporary directory.
    pub fn dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Starts everything and waits until every gateway serves a catalog that
    /// knows every cluster.
    pub async fn start(self) -> anyhow::Result<Federation> {
        let (tmp, dir) = match &self.dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                (None, d.clone())
            }
            None => {
                let t = tempfile::Builder::new().prefix("causeway-e2e-").tempdir()?;
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let (etcd, endpoints) = match &self.store {
            Store::Embedded => (None, Vec::new()),
            Store::Etcd { members } if *members >= 3 => {
                let c = EtcdCluster::start().await?;
                let e = c.endpoints();
                (Some(Etcd::Three(c)), e)
            }
            Store::Etcd { .. } => {
                let p = EtcdProcess::start().await?;
                let e = p.endpoints();
                (Some(Etcd::One(p)), e)
            }
            Store::External(urls) => (None, urls.clone()),
        };
        let subnet = crate::net::Subnet::allocate();
        let replicas = if endpoints.is_empty() {
            1
        } else {
            self.replicas
        };
        let api = FederationApi::start(
            &dir.join("api"),
            replicas,
            ApiSettings {
                etcd: endpoints,
                heartbeat_ttl: self.timings.heartbeat_ttl,
                log_level: "warn".into(),
                ip: subnet.api_ip(),
            },
        )
        .await?;
        let mut fed = Federation {
            clusters: Vec::new(),
            api,
            etcd,
            http: HttpClient::default(),
            last_write: AtomicU64::new(0),
            dir: dir.clone(),
            _tmp: tmp,
        };
        // Identities first: every gateway is federated with every other
        // cluster's trust domain.
        let mut prepared = Vec::new();
        for (i, def) in self.clusters.iter().enumerate() {
            prepared.push(prepare(&dir, subnet.cluster_ip(i), def).await?);
        }
        let tds: Vec<(String, String)> = prepared
            .iter()
            .map(|p| (p.def.id.clone(), p.def.trust_domain()))
            .collect();
        let mut staged = Vec::new();
        for p in prepared {
            staged.push(fed.register(p, &tds, &self.timings).await?);
        }
        let rev = fed.last_write();
        for s in staged {
            let handle = fed.launch(s, rev, &self.timings).await?;
            fed.clusters.push(handle);
        }
        fed.wait_converged(rev, Duration::from_secs(30)).await?;
        Ok(fed)
    }
}

/// A registered cluster whose gateway is not started yet.
struct Staged {
    p: Prepared,
    agent: Agent,
    addrs: [std::net::SocketAddr; 3],
    bundle_files: BTreeMap<String, PathBuf>,
    catalog_file: PathBuf,
}

/// A cluster whose identity and backends exist, before its gateway starts.
struct Prepared {
    def: ClusterDef,
    ip: std::net::IpAddr,
    dir: PathBuf,
    bundle_json: String,
    backends: BTreeMap<String, EchoServer>,
}

async fn prepare(root: &Path, ip: std::net::IpAddr, def: &ClusterDef) -> anyhow::Result<Prepared> {
    let dir = root.join(&def.id);
    std::fs::create_dir_all(&dir)?;
    let authority = Authority::load_or_create(
        &dir.join("ca"),
        TrustDomain::new(&def.trust_domain())?,
        AuthorityConfig::default(),
        Arc::new(SystemClock),
    )?;
    let mut backends = BTreeMap::new();
    for s in &def.services {
        let echo = EchoServer::start(std::net::SocketAddr::new(ip, 0), &def.id, &s.service).await?;
        backends.insert(s.service.clone(), echo);
    }
    Ok(Prepared {
        def: def.clone(),
        ip,
        dir,
        bundle_json: authority.bundle().to_json_pretty(),
        backends,
    })
}

impl Federation {
    /// A builder.
    pub fn builder() -> FederationBuilder {
        FederationBuilder::default()
    }

    async fn register(
        &mut self,
        p: Prepared,
        tds: &[(String, String)],
        t: &Timings,
    ) -> anyhow::Result<Staged> {
        let ip = p.ip;
        let [egress, ingress, admin]: [std::net::SocketAddr; 3] = crate::net::free_addrs(ip, 3)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("expected three addresses"))?;
        let cluster = p.def.resource(ingress)?;
        let bundle_files: BTreeMap<String, PathBuf> = tds
            .iter()
            .filter(|(id, _)| *id != p.def.id)
            .map(|(id, td)| (td.clone(), p.dir.join(format!("bundle-{id}.json"))))
            .collect();
        let catalog_file = p.dir.join("catalog.json");
        let spec = AgentSpec {
            cluster: cluster.clone(),
            bundle_json: p.bundle_json.clone(),
            api_urls: self.api.urls(),
            token: self.api.token(&[&format!("cluster:{}", p.def.id)])?,
            catalog_file: catalog_file.clone(),
            bundle_files: bundle_files.clone(),
            heartbeat_interval: t.heartbeat_interval,
        };
        let exports = p
            .def
            .services
            .iter()
            .filter(|s| s.export)
            .map(|s| LocalExport {
                service: s.service.clone(),
                port: 8080,
                ready: 1,
                weight: s.weight,
            })
            .collect();
        let (agent, rev) = Agent::start(spec, exports).await?;
        self.note_write(rev);
        Ok(Staged {
            p,
            agent,
            addrs: [egress, ingress, admin],
            bundle_files,
            catalog_file,
        })
    }

    async fn launch(&mut self, s: Staged, rev: u64, t: &Timings) -> anyhow::Result<ClusterHandle> {
        let Staged {
            p,
            agent,
            addrs: [egress, ingress, admin],
            bundle_files,
            catalog_file,
        } = s;
        let ip = p.ip;
        // The gateway needs every federated bundle file at start.
        agent.wait_revision(rev, Duration::from_secs(30)).await?;
        let mut config = p.def.gateway_config(egress, ingress, admin, &p.dir, t);
        config.federation.catalog_file = Some(catalog_file);
        for (td, path) in &bundle_files {
            if path.is_file() {
                config.federation.bundles.insert(td.clone(), path.clone());
            }
        }
        let tcp_addrs = crate::net::free_addrs(ip, p.def.tcp_imports.len() + 3)?;
        for (svc, listen) in p.def.tcp_imports.iter().zip(
            tcp_addrs
                .into_iter()
                .filter(|a| ![egress, ingress, admin].contains(a)),
        ) {
            config.tcp.push(causeway_gateway::config::TcpServiceConfig {
                service: svc.clone(),
                port: 8080,
                listen,
            });
        }
        for (svc, echo) in &p.backends {
            config.local_services.insert(svc.clone(), vec![echo.addr()]);
        }
        let mut gateway = GatewayProcess::new(&p.dir.join("gateway"), config)?;
        gateway.start().await?;
        Ok(ClusterHandle {
            def: p.def,
            ip,
            gateway,
            agent,
            backends: p.backends,
        })
    }

    /// The current store revision (from a list of clusters).
    pub async fn store_revision(&self) -> anyhow::Result<u64> {
        let mut last = None;
        for i in 0..self.api.replicas().len() {
            match self.api.admin_client_of(i) {
                Ok(c) => match c
                    .get::<causeway_federation::client::Page<serde_json::Value>>("/v1/clusters")
                    .await
                {
                    Ok(p) => return Ok(p.value.revision),
                    Err(e) => last = Some(anyhow::Error::from(e)),
                },
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no API replica")))
    }

    /// Waits until every running gateway serves catalog revision `rev` or later.
    pub async fn wait_converged(&self, rev: u64, timeout: Duration) -> anyhow::Result<()> {
        for c in &self.clusters {
            c.agent.wait_revision(rev, timeout).await?;
        }
        for c in &self.clusters {
            if !c.gateway.is_started() {
                continue;
            }
            let g = &c.gateway;
            crate::wait::until(
                "gateway catalog revision",
                timeout,
                Duration::from_millis(25),
                || async move { g.revision().await.ok().filter(|r| *r >= rev) },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", c.def.id))?;
        }
        Ok(())
    }

    /// Records a catalog change made at `rev` (the target of [`Self::converge`]).
    pub fn note_write(&self, rev: u64) -> u64 {
        self.last_write.fetch_max(rev, Ordering::Relaxed);
        rev
    }

    /// The revision of the last catalog change made through the harness.
    pub fn last_write(&self) -> u64 {
        self.last_write.load(Ordering::Relaxed)
    }

    /// Waits until every running gateway serves the last change made through
    /// the harness.
    pub async fn converge(&self) -> anyhow::Result<u64> {
        let rev = self.last_write();
        self.wait_converged(rev, Duration::from_secs(30)).await?;
        Ok(rev)
    }

    /// The clusters.
    pub fn clusters(&self) -> &[ClusterHandle] {
        &self.clusters
    }

    /// The cluster `id`.
    pub fn cluster(&self, id: &str) -> anyhow::Result<&ClusterHandle> {
        self.clusters
            .iter()
            .find(|c| c.def.id == id)
            .ok_or_else(|| anyhow::anyhow!("no cluster {id}"))
    }

    /// The cluster `id`, mutably.
    pub fn cluster_mut(&mut self, id: &str) -> anyhow::Result<&mut ClusterHandle> {
        self.clusters
            .iter_mut()
            .find(|c| c.def.id == id)
            .ok_or_else(|| anyhow::anyhow!("no cluster {id}"))
    }

    /// The echo backend of `service` in `cluster`.
    pub fn backend(&self, cluster: &str, service: &str) -> anyhow::Result<&EchoServer> {
        self.cluster(cluster)?
            .backends
            .get(service)
            .ok_or_else(|| anyhow::anyhow!("no backend {service} in {cluster}"))
    }

    /// `GET <path>` of `host` from a caller in cluster `from` (through its egress).
    pub async fn call_path(
        &self,
        from: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let egress = self.cluster(from)?.gateway.egress();
        self.http.get(egress, host, path, headers).await
    }

    /// `GET /` of `host` from a caller in cluster `from`.
    pub async fn call(
        &self,
        from: &str,
        host: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        self.call_path(from, host, "/", headers).await
    }

    /// Stops the backend of `service` in `cluster` and publishes 0 ready
    /// endpoints (as the agent does when a Service's endpoints drain);
    /// returns the store revision of the change.
    pub async fn stop_backend(&self, cluster: &str, service: &str) -> anyhow::Result<u64> {
        let c = self.cluster(cluster)?;
        self.backend(cluster, service)?.stop().await;
        Ok(self.note_write(c.agent.set_ready(service, 0).await?))
    }

    /// Publishes `ready` endpoints for `service` in `cluster` without touching
    /// the backend (a graceful drain announces 0 before stopping).
    pub async fn set_ready(&self, cluster: &str, service: &str, ready: u32) -> anyhow::Result<u64> {
        let c = self.cluster(cluster)?;
        Ok(self.note_write(c.agent.set_ready(service, ready).await?))
    }

    /// Restarts the backend and publishes 1 ready endpoint.
    pub async fn restore_backend(&self, cluster: &str, service: &str) -> anyhow::Result<u64> {
        let c = self.cluster(cluster)?;
        self.backend(cluster, service)?.restart().await?;
        Ok(self.note_write(c.agent.set_ready(service, 1).await?))
    }

    /// Creates or replaces a policy (`kind` = residency|traffic|access|export)
    /// with an admin token; returns the store revision.
    pub async fn put_policy<T: serde::Serialize>(
        &self,
        kind: &str,
        name: &str,
        policy: &T,
    ) -> anyhow::Result<u64> {
        let mut last = None;
        for i in 0..self.api.replicas().len() {
            let put = self
                .api
                .admin_client_of(i)?
                .put::<_, serde_json::Value>(
                    &format!("/v1/policies/{kind}/{name}"),
                    policy,
                    causeway_federation::client::Precondition::None,
                )
                .await;
            match put {
                Ok(v) => return Ok(self.note_write(v.revision.unwrap_or(0))),
                // Only an unreachable replica is skipped; API answers are final.
                Err(e @ causeway_federation::client::ClientError::Connect(_)) => {
                    last = Some(anyhow::Error::from(e));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no API replica")))
    }

    /// The API.
    pub fn api(&self) -> &FederationApi {
        &self.api
    }

    /// The API, to stop or restart replicas.
    pub fn api_mut(&mut self) -> &mut FederationApi {
        &mut self.api
    }

    /// Kills the etcd leader (3-member etcd only); returns its index.
    pub async fn kill_etcd_leader(&mut self) -> anyhow::Result<usize> {
        match &mut self.etcd {
            Some(Etcd::Three(c)) => {
                let leader = c
                    .wait_for_leader(Duration::from_secs(10))
                    .await
                    .ok_or_else(|| anyhow::anyhow!("etcd has no leader"))?;
                c.kill(leader);
                Ok(leader)
            }
            _ => anyhow::bail!("killing the leader needs a 3-member etcd"),
        }
    }

    /// Kills every API replica and etcd (SIGKILL).
    pub fn kill_control_plane(&mut self) {
        self.api.stop_all();
        match &mut self.etcd {
            Some(Etcd::One(p)) => p.kill(),
            Some(Etcd::Three(c)) => {
                for i in 0..EtcdCluster::SIZE {
                    c.kill(i);
                }
            }
            None => {}
        }
    }

    /// Restarts etcd (with its data) and every API replica.
    pub async fn restore_control_plane(&mut self) -> anyhow::Result<()> {
        match &mut self.etcd {
            Some(Etcd::One(p)) => p.restart().await?,
            Some(Etcd::Three(_)) => {
                anyhow::bail!(
                    "restarting a whole 3-member etcd is not supported (members restart one at a time and wait for quorum)"
                )
            }
            None => {}
        }
        self.api.start_all().await
    }

    /// The directory holding state and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `name.ns.svc.clusterset.local` for `ns/name`.
pub fn host(service: &str) -> String {
    match service.split_once('/') {
        Some((ns, name)) => format!("{name}.{ns}.svc.clusterset.local"),
        None => service.to_owned(),
    }
}
