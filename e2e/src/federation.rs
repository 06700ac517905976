//! A whole federation on one machine: etcd (or the embedded store), API
//! replicas behind a balancer, and one gateway per cluster whose own agent
//! registers the cluster, publishes its bundle and the exports of its static
//! discovery file, and follows the catalog. Every process is killed when the
//! [`Federation`] is dropped.

mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use causeway_federation::testing::{EtcdCluster, EtcdProcess};
use causeway_trust::{Authority, SystemClock, TrustDomain};

pub use self::cluster::{ClusterDef, ClusterHandle, ServiceDef};
use crate::api::{ApiSettings, FederationApi};
use crate::balancer::ApiBalancer;
use crate::client::{HttpClient, Reply};
use crate::echo::EchoServer;
use crate::gateway::GatewayProcess;
use crate::site::{SiteFile, SiteService};

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
    /// Agent bundle publication period (and first-publication retry).
    pub bundle_interval: Duration,
    /// API heartbeat lease TTL.
    pub heartbeat_ttl: Duration,
    /// Gateway SVID renewal check and static discovery file poll period.
    pub reload_interval: Duration,
    /// Gateway active probe period.
    pub probe_interval: Duration,
    /// Gateway upstream connect timeout.
    pub connect_timeout: Duration,
    /// Refresh period of the web console (live views, gateway scrapes).
    pub console_refresh: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(500),
            bundle_interval: Duration::from_millis(500),
            heartbeat_ttl: Duration::from_secs(5),
            reload_interval: Duration::from_millis(100),
            probe_interval: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(500),
            console_refresh: Duration::from_secs(1),
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
    // Field order is drop order: gateways, the balancer, the API, etcd, then
    // the network namespaces.
    clusters: Vec<ClusterHandle>,
    balancer: ApiBalancer,
    api: FederationApi,
    etcd: Option<Etcd>,
    network: Option<crate::netns::Network>,
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
    /// holds every cluster, bundle and export.
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
        // Each cluster in its own network namespace where that works (root),
        // else on its own loopback address.
        let network = crate::netns::Network::create(self.clusters.len());
        let subnet = crate::net::Subnet::allocate();
        let api_ip = network
            .as_ref()
            .map_or_else(|| subnet.api_ip(), |n| n.host_ip());
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
                ip: api_ip,
                console_refresh: self.timings.console_refresh,
            },
        )
        .await?;
        let replica_addrs = api.replicas().iter().map(|r| r.addr).collect();
        let balancer = ApiBalancer::start(api_ip, replica_addrs).await?;
        let mut fed = Federation {
            clusters: Vec::new(),
            balancer,
            api,
            etcd,
            network,
            http: HttpClient::default(),
            last_write: AtomicU64::new(0),
            dir: dir.clone(),
            _tmp: tmp,
        };
        // Gateways start one after another: each agent registers its cluster
        // and publishes its bundle and exports on its own.
        for (i, def) in self.clusters.iter().enumerate() {
            let (ip, backend_ip, namespace) = match &fed.network {
                Some(n) => (
                    n.cluster_ip(i),
                    n.host_ip(),
                    n.namespace(i).map(str::to_owned),
                ),
                None => (subnet.cluster_ip(i), subnet.cluster_ip(i), None),
            };
            let p = prepare(&dir, ip, backend_ip, def).await?;
            let handle = fed.launch(p, namespace, &self.timings).await?;
            fed.clusters.push(handle);
        }
        let rev = fed.wait_joined(Duration::from_secs(30)).await?;
        fed.wait_converged(rev, Duration::from_secs(30)).await?;
        // A gateway that probed a peer before the peer knew its bundle saw
        // the handshake refused; wait for the next probes to pass.
        fed.wait_probes_pass(Duration::from_secs(30)).await?;
        Ok(fed)
    }
}

/// A cluster whose identity and backends exist, before its gateway starts.
struct Prepared {
    def: ClusterDef,
    ip: std::net::IpAddr,
    backend_ip: std::net::IpAddr,
    dir: PathBuf,
    backends: BTreeMap<String, EchoServer>,
}

async fn prepare(
    root: &Path,
    ip: std::net::IpAddr,
    backend_ip: std::net::IpAddr,
    def: &ClusterDef,
) -> anyhow::Result<Prepared> {
    let dir = root.join(&def.id);
    std::fs::create_dir_all(&dir)?;
    // The gateway loads this CA (`identity.authorityDir`); creating it here
    // lets tests sign foreign or rotated certificates with it.
    Authority::load_or_create(
        &dir.join("ca"),
        TrustDomain::new(&def.trust_domain())?,
        def.authority_config(),
        Arc::new(SystemClock),
    )?;
    let mut backends = BTreeMap::new();
    for s in &def.services {
        let echo = EchoServer::start(
            std::net::SocketAddr::new(backend_ip, 0),
            &def.id,
            &s.service,
        )
        .await?;
        backends.insert(s.service.clone(), echo);
    }
    Ok(Prepared {
        def: def.clone(),
        ip,
        backend_ip,
        dir,
        backends,
    })
}

impl Federation {
    /// A builder.
    pub fn builder() -> FederationBuilder {
        FederationBuilder::default()
    }

    async fn launch(
        &mut self,
        p: Prepared,
        namespace: Option<String>,
        t: &Timings,
    ) -> anyhow::Result<ClusterHandle> {
        let ip = p.ip;
        let replica_count = p.def.replicas.max(1);
        let addrs = crate::net::free_addrs(ip, 3 * replica_count)?;
        let [egress, ingress, admin]: [std::net::SocketAddr; 3] = addrs[..3]
            .try_into()
            .map_err(|_| anyhow::anyhow!("expected three addresses"))?;
        let more: Vec<[std::net::SocketAddr; 3]> =
            addrs[3..].chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        let mut config = p.def.gateway_config(egress, ingress, admin, &p.dir, t);
        let token_file = p.dir.join("cluster.token");
        std::fs::write(
            &token_file,
            self.api.token(&[&format!("cluster:{}", p.def.id)])?,
        )?;
        let mut exported = Vec::new();
        for s in &p.def.services {
            let addr = p
                .backends
                .get(&s.service)
                .map(EchoServer::addr)
                .ok_or_else(|| anyhow::anyhow!("no backend for {}", s.service))?;
            if s.export {
                exported.push(SiteService {
                    service: s.service.clone(),
                    addr,
                    ready: true,
                    weight: s.weight,
                    app_protocol: s.app_protocol,
                });
            } else {
                let key = s
                    .service
                    .parse()
                    .map_err(|e| anyhow::anyhow!("service {}: {e}", s.service))?;
                config.local_services.insert(key, addr.into());
            }
        }
        let site = SiteFile::create(&p.dir.join("services.yaml"), exported)?;
        let agent = &mut config.agent;
        agent.endpoint = Some(self.balancer.url());
        agent.token_file = Some(token_file);
        agent.cloud = "local".into();
        agent.gateway_endpoints = std::iter::once(ingress)
            .chain(more.iter().map(|a| a[1]))
            .map(|a| a.to_string())
            .collect();
        agent.snapshot_file = Some(p.dir.join("catalog.snapshot"));
        agent.static_file = Some(site.path().to_owned());
        agent.static_poll_interval = t.reload_interval;
        agent.heartbeat_interval = t.heartbeat_interval;
        agent.bundle_interval = t.bundle_interval;
        agent.backoff_base = Duration::from_millis(50);
        agent.backoff_cap = Duration::from_secs(1);
        let tcp_addrs = crate::net::free_addrs(ip, p.def.tcp_imports.len() + 3 * replica_count)?;
        for (svc, listen) in p
            .def
            .tcp_imports
            .iter()
            .zip(tcp_addrs.into_iter().filter(|a| !addrs.contains(a)))
        {
            config.tcp.push(causeway_gateway::config::TcpServiceConfig {
                service: svc
                    .parse()
                    .map_err(|e| anyhow::anyhow!("tcp import {svc}: {e}"))?,
                port: std::num::NonZeroU16::new(crate::site::SERVICE_PORT)
                    .ok_or_else(|| anyhow::anyhow!("service port 0"))?,
                listen,
            });
        }
        let kube = if p.def.kubernetes {
            // On the host side, which gateways in network namespaces reach.
            let kube = causeway_agent::testing::FakeKube::start_on(p.backend_ip).await;
            let kubeconfig = p.dir.join("kubeconfig.yaml");
            std::fs::write(&kubeconfig, kube.kubeconfig())?;
            // The gateway replicas behind the egress Service, as the
            // EndpointSlice controller lists them (one replica here).
            let replicas: kube::Api<k8s_openapi::api::discovery::v1::EndpointSlice> =
                kube::Api::namespaced(kube.client(), "causeway");
            let slice = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "causeway-gateway-egress-x1", "namespace": "causeway",
                             "labels": {"kubernetes.io/service-name": "causeway-gateway-egress"}},
                "addressType": if egress.ip().is_ipv4() { "IPv4" } else { "IPv6" },
                "endpoints": [{"addresses": [egress.ip().to_string()], "conditions": {"ready": true}}],
                "ports": [{"name": "egress", "port": egress.port()}]
            }))?;
            replicas
                .create(&kube::api::PostParams::default(), &slice)
                .await?;
            let k = &mut config.agent.kubernetes;
            k.enabled = true;
            k.kubeconfig = Some(kubeconfig);
            k.egress_service = Some("causeway/causeway-gateway-egress".into());
            k.egress_port = egress.port();
            if replica_count > 1 {
                // Replicas elect a leader quickly, and each identifies
                // itself to the API server (its bearer token) so the
                // request log says who wrote what.
                let le = &mut k.leader_election;
                le.namespace = "causeway".into();
                le.identity = "gw-0".into();
                le.lease_duration = Duration::from_millis(1500);
                le.renew_deadline = Duration::from_millis(1000);
                le.retry_period = Duration::from_millis(100);
                let kc = p.dir.join("kubeconfig-gw-0.yaml");
                std::fs::write(&kc, kube.kubeconfig_as("gw-0"))?;
                k.kubeconfig = Some(kc);
            }
            Some(kube)
        } else {
            None
        };
        if replica_count > 1 {
            // Replicas are restarted in scenarios: drain quickly.
            config.drain.delay = Duration::from_millis(500);
            config.drain.timeout = Duration::from_secs(5);
        }
        let mut more_replicas = Vec::new();
        for (i, [e, ing, adm]) in more.iter().enumerate() {
            let mut c = config.clone();
            c.listeners.egress = *e;
            c.listeners.ingress = *ing;
            c.listeners.admin = *adm;
            let id = format!("gw-{}", i + 1);
            if let Some(kube) = &kube {
                let kc = p.dir.join(format!("kubeconfig-{id}.yaml"));
                std::fs::write(&kc, kube.kubeconfig_as(&id))?;
                c.agent.kubernetes.kubeconfig = Some(kc);
                c.agent.kubernetes.leader_election.identity = id.clone();
            }
            let mut g = GatewayProcess::new(&p.dir.join(format!("gateway-{id}")), c)?;
            g.namespace = namespace.clone();
            more_replicas.push(g);
        }
        let mut gateway = GatewayProcess::new(&p.dir.join("gateway"), config)?;
        gateway.namespace = namespace;
        gateway.start().await?;
        // The other replicas share the first one's CA directory: started
        // after it, they load its CA.
        for g in &mut more_replicas {
            g.start().await?;
        }
        self.api.add_gateway_admin(&p.def.id, admin)?;
        Ok(ClusterHandle {
            def: p.def,
            ip,
            backend_ip: p.backend_ip,
            gateway,
            site,
            backends: p.backends,
            kube,
            more_replicas,
        })
    }

    /// Waits until the API holds every cluster's record, trust bundle and
    /// exports (with the ready counts of its static file), as the gateways'
    /// agents publish them; returns the newest revision among them.
    pub async fn wait_joined(&self, timeout: Duration) -> anyhow::Result<u64> {
        let mut newest = 0;
        for c in &self.clusters {
            let id = &c.def.id;
            newest = newest.max(
                self.wait_resource(&format!("/v1/clusters/{id}"), timeout, |_| true)
                    .await?,
            );
            let bundle = format!("/v1/trust-domains/{}/bundle", c.def.trust_domain());
            newest = newest.max(self.wait_resource(&bundle, timeout, |_| true).await?);
            for s in c.site.services() {
                newest = newest.max(
                    self.wait_export(id, &s.service, u32::from(s.ready), timeout)
                        .await?,
                );
            }
        }
        Ok(self.note_write(newest))
    }

    /// Waits until `path` exists and `accept` takes it; returns its revision.
    async fn wait_resource(
        &self,
        path: &str,
        timeout: Duration,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> anyhow::Result<u64> {
        let accept = &accept;
        crate::wait::until(path, timeout, Duration::from_millis(25), || async move {
            for i in 0..self.api.replicas().len() {
                let Ok(client) = self.api.admin_client_of(i) else {
                    continue;
                };
                if let Ok(v) = client.get::<serde_json::Value>(path).await {
                    return accept(&v.value).then_some(v.revision.unwrap_or(0));
                }
            }
            None
        })
        .await
    }

    /// Waits until the export of `service` by `cluster` announces `ready`
    /// endpoints; returns its revision.
    pub async fn wait_export(
        &self,
        cluster: &str,
        service: &str,
        ready: u32,
        timeout: Duration,
    ) -> anyhow::Result<u64> {
        let path = format!("/v1/clusters/{cluster}/exports/{service}");
        self.wait_resource(&path, timeout, |export| {
            let announced: u64 = export["spec"]["endpoints"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|z| z["ready"].as_u64())
                .sum();
            announced == u64::from(ready)
        })
        .await
    }

    /// Waits until every running gateway serves catalog revision `rev` or later.
    pub async fn wait_converged(&self, rev: u64, timeout: Duration) -> anyhow::Result<()> {
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

    /// Waits until no running gateway reports a failing probe of a peer.
    pub async fn wait_probes_pass(&self, timeout: Duration) -> anyhow::Result<()> {
        for c in &self.clusters {
            let g = &c.gateway;
            crate::wait::until(
                "gateway probes of every peer pass",
                timeout,
                Duration::from_millis(25),
                || async move {
                    let text = g.metrics().await.ok()?;
                    let failing = crate::metrics::parse(&text)
                        .into_iter()
                        .any(|s| s.name == "causeway_gateway_peer_probe_failing" && s.value > 0.0);
                    (!failing).then_some(())
                },
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

    /// Stops the backend of `service` in `cluster` and marks it not ready in
    /// the cluster's static file; returns the store revision at which its
    /// agent published the drained export.
    pub async fn stop_backend(&self, cluster: &str, service: &str) -> anyhow::Result<u64> {
        self.backend(cluster, service)?.stop().await;
        self.set_ready(cluster, service, false).await
    }

    /// Marks the backend of `service` in `cluster` ready or not in the
    /// static file without touching the backend (a graceful drain announces
    /// it first), and waits until the agent published it; returns the revision.
    pub async fn set_ready(
        &self,
        cluster: &str,
        service: &str,
        ready: bool,
    ) -> anyhow::Result<u64> {
        self.cluster(cluster)?.site.set_ready(service, ready)?;
        let rev = self
            .wait_export(cluster, service, u32::from(ready), Duration::from_secs(30))
            .await?;
        Ok(self.note_write(rev))
    }

    /// Restarts the backend and marks it ready again.
    pub async fn restore_backend(&self, cluster: &str, service: &str) -> anyhow::Result<u64> {
        self.backend(cluster, service)?.restart().await?;
        self.set_ready(cluster, service, true).await
    }

    /// Starts an echo backend for `service` in `cluster` and adds it to the
    /// cluster's static file, which its agent publishes as a new export.
    pub async fn add_service(&mut self, cluster: &str, service: &str) -> anyhow::Result<()> {
        let c = self.cluster_mut(cluster)?;
        let echo =
            EchoServer::start(std::net::SocketAddr::new(c.backend_ip, 0), cluster, service).await?;
        c.site.add(SiteService {
            service: service.to_owned(),
            addr: echo.addr(),
            ready: true,
            weight: 100,
            app_protocol: "http",
        })?;
        c.backends.insert(service.to_owned(), echo);
        Ok(())
    }

    /// Cuts `cluster` off the network (`true`) or heals it: its namespace's
    /// link goes down, so peers see connections hang and time out; without
    /// namespaces its gateway is stopped (and started again on heal).
    pub async fn partition(&mut self, cluster: &str, cut: bool) -> anyhow::Result<()> {
        let index = self
            .clusters
            .iter()
            .position(|c| c.def.id == cluster)
            .ok_or_else(|| anyhow::anyhow!("no cluster {cluster}"))?;
        match &self.network {
            Some(n) => n.partition(index, cut),
            None if cut => {
                self.clusters[index].gateway.stop();
                Ok(())
            }
            None => self.clusters[index].gateway.start().await,
        }
    }

    /// Whether clusters run in their own network namespaces.
    pub fn uses_namespaces(&self) -> bool {
        self.network.is_some()
    }

    /// The URL the gateways' agents reach the API at (the balancer).
    pub fn api_url(&self) -> String {
        self.balancer.url()
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
                    causeway_api::client::Precondition::None,
                )
                .await;
            match put {
                Ok(v) => return Ok(self.note_write(v.revision.unwrap_or(0))),
                // Only an unreachable replica is skipped; API answers are final.
                Err(e @ causeway_api::client::ClientError::Connect(_)) => {
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
