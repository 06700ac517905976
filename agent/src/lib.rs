//! The Causeway cluster agent: what connects one cluster's gateway to the
//! federation. It never imports the gateway: it hands over what it learns
//! on `tokio::sync::watch` channels, and the gateway's boot installs them.
//!
//! - **Registration** ([`register`]): puts this cluster's record (locality,
//!   jurisdictions, gateway endpoints, trust domain) and keeps its heartbeat
//!   lease alive.
//! - **Trust** ([`trust`]): publishes this trust domain's bundle (the one
//!   the gateway's bundle store holds) whenever its sequence changes, and
//!   says which federated bundles of a catalog a store should take.
//! - **Catalog sync** ([`sync`]): follows the gRPC watch, publishes each
//!   applied catalog ([`Agent::catalog`]), persists it ([`persist`]),
//!   reconnects with jittered back-off ([`backoff`]) and keeps the last
//!   known catalog while the API is gone
//!   (`causeway_agent_catalog_staleness_seconds`).
//! - **Local services** ([`exports`], [`static_file`], [`kubernetes`]):
//!   exports from a watched static file or from MCS `ServiceExport`s, the
//!   local endpoints behind them ([`Agent::local`]), and `ServiceImport`s +
//!   EndpointSlices for remote services.
//!
//! [`spawn`] starts everything configured in [`AgentConfig`].

pub mod backoff;
pub mod config;
pub mod exports;
pub mod kubernetes;
pub mod metrics;
pub mod persist;
pub mod register;
pub mod staleness;
pub mod static_file;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trust;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use causeway_api::client::Client;
use causeway_api::model::CatalogSnapshot;
use causeway_trust::BundleStore;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::config::{AgentConfig, ConfigFieldError, KubernetesConfig, LeaderElectionConfig};
pub use self::kubernetes::endpoints::PortEndpoints;
pub use self::metrics::AgentMetrics;
pub use self::register::ClusterInfo;

/// Kubernetes API access the agent's controllers use: (api group, resource,
/// verbs). `""` is the core group; subresources as `serviceexports/status`.
/// The chart's ClusterRole is checked against this list.
pub const RBAC_RULES: &[(&str, &str, &[&str])] = kubernetes::RBAC_RULES;

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration is unusable.
    #[error("agent config: {0}")]
    Config(String),
    /// The token file could not be read.
    #[error("cannot read token file {path}: {source}")]
    Token {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The Kubernetes client could not be created.
    #[error("kubernetes: {0}")]
    Kubernetes(String),
}

/// Local endpoints the agent discovered, by `namespace/name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalEndpoints {
    /// Ready endpoints (of the service's first port, for a Kubernetes
    /// service: what a caller that names no port gets).
    pub ready: BTreeMap<String, Vec<SocketAddr>>,
    /// Listed but not ready (draining) endpoints: used only for a service
    /// that has no ready endpoint, so that requests peers send before they
    /// learn of a drain still succeed.
    pub draining: BTreeMap<String, Vec<SocketAddr>>,
    /// Endpoints per service port, where the source knows the ports
    /// (Kubernetes: the slice port of the same name carries the target
    /// port): `namespace/name` -> service port -> endpoints.
    pub ports: BTreeMap<String, BTreeMap<u16, PortEndpoints>>,
}

impl LocalEndpoints {
    /// Adds `other`'s endpoints (a service both list gets the union).
    pub fn merge(&mut self, other: &LocalEndpoints) {
        fn union(into: &mut Vec<SocketAddr>, from: &[SocketAddr]) {
            for a in from {
                if !into.contains(a) {
                    into.push(*a);
                }
            }
        }
        for (k, v) in &other.ready {
            union(self.ready.entry(k.clone()).or_default(), v);
        }
        for (k, v) in &other.draining {
            union(self.draining.entry(k.clone()).or_default(), v);
        }
        for (k, ports) in &other.ports {
            let mine = self.ports.entry(k.clone()).or_default();
            for (port, e) in ports {
                let m = mine.entry(*port).or_default();
                union(&mut m.ready, &e.ready);
                union(&mut m.draining, &e.draining);
            }
        }
    }
}

/// The local endpoints of every discovery source (static file, Kubernetes),
/// merged into the one table the gateway installs.
#[derive(Debug, Clone)]
pub struct LocalSources {
    by_source: Arc<std::sync::Mutex<BTreeMap<&'static str, LocalEndpoints>>>,
    tx: watch::Sender<LocalEndpoints>,
}

impl LocalSources {
    /// Sources publishing merged endpoints on `tx`.
    pub fn new(tx: watch::Sender<LocalEndpoints>) -> Self {
        Self {
            by_source: Arc::default(),
            tx,
        }
    }

    /// Replaces the endpoints of `source` and publishes the merge (only
    /// when it changed).
    pub fn set(&self, source: &'static str, endpoints: LocalEndpoints) {
        let merged = {
            let mut m = self
                .by_source
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            m.insert(source, endpoints);
            let mut merged = LocalEndpoints::default();
            for e in m.values() {
                merged.merge(e);
            }
            merged
        };
        self.tx.send_if_modified(|cur| {
            if *cur == merged {
                return false;
            }
            *cur = merged;
            true
        });
    }
}

/// A running agent: its tasks and what it publishes.
#[derive(Debug)]
pub struct Agent {
    /// Its tasks (they stop when the shutdown channel turns true).
    pub tasks: Vec<JoinHandle<()>>,
    /// Every catalog applied; holds the persisted one at once when there
    /// was one.
    pub catalog: watch::Receiver<Arc<CatalogSnapshot>>,
    /// The local endpoints of the services this cluster runs.
    pub local: watch::Receiver<LocalEndpoints>,
    /// Catalog staleness.
    pub staleness: Arc<staleness::Staleness>,
    /// The revision restored from disk at start, if any.
    pub restored: Option<u64>,
}

/// Reads the bearer token of `config`.
pub fn read_token(config: &AgentConfig) -> Result<Option<String>, AgentError> {
    match &config.token_file {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(p)
            .map(|t| Some(t.trim().to_owned()))
            .map_err(|source| AgentError::Token {
                path: p.clone(),
                source,
            }),
    }
}

/// Starts every service `config` enables for `cluster`. `bundles` is the
/// gateway's bundle store: the agent publishes the bundle it holds for the
/// cluster's own trust domain. The persisted catalog (if any) is on
/// [`Agent::catalog`] before this returns, so the gateway serves it even if
/// the API never answers. Must be called inside a tokio runtime.
pub fn spawn(
    config: &AgentConfig,
    cluster: ClusterInfo,
    bundles: BundleStore,
    metrics: AgentMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<Agent, AgentError> {
    spawn_with_svid(config, cluster, bundles, metrics, shutdown, None)
}

/// [`spawn`], presenting `svid` (the gateway's X.509-SVID) to an `https://`
/// federation API when `agent.authenticateWithSvid` is set.
pub fn spawn_with_svid(
    config: &AgentConfig,
    cluster: ClusterInfo,
    bundles: BundleStore,
    metrics: AgentMetrics,
    shutdown: watch::Receiver<bool>,
    svid: Option<causeway_api::client::ClientCert>,
) -> Result<Agent, AgentError> {
    let endpoint = config
        .endpoint
        .clone()
        .ok_or_else(|| AgentError::Config("agent.endpoint is required".into()))?;
    let token = read_token(config)?;
    if config.authenticate_with_svid && !endpoint.starts_with("https://") {
        return Err(AgentError::Config(
            "agent.authenticateWithSvid needs an https:// endpoint".into(),
        ));
    }
    if config.authenticate_with_svid && token.is_some() {
        tracing::warn!(
            "agent.tokenFile and authenticateWithSvid are both set: the API uses the token"
        );
    }
    let tls = causeway_api::client::TlsOptions {
        ca_file: config.ca_file.clone(),
        client_cert: if config.authenticate_with_svid {
            svid
        } else {
            None
        },
    };
    let client = Client::with_tls(&endpoint, token.clone(), &tls)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let record = register::cluster_record(&cluster, config)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let backoff = backoff::Backoff::new(config.backoff_base, config.backoff_cap);
    let mut kubernetes = config.kubernetes.clone();
    if kubernetes.enabled
        && kubernetes.egress_addresses.is_empty()
        && kubernetes.egress_service.is_none()
    {
        match std::env::var("POD_IP").ok().and_then(|ip| ip.parse().ok()) {
            Some(ip) => kubernetes.egress_addresses.push(ip),
            None => {
                return Err(AgentError::Config(
                    "agent.kubernetes.egressAddresses and egressService are empty and POD_IP is not set".into(),
                ));
            }
        }
    }
    let mut tasks = Vec::new();

    let mut follower = sync::Follower::new(
        sync::FollowerConfig {
            endpoint: endpoint.clone(),
            tls,
            token: token.clone(),
            snapshot_file: config.snapshot_file.clone(),
            backoff: backoff.clone(),
        },
        metrics.clone(),
    );
    let restored = follower.restore();
    let catalog = follower.subscribe();
    let staleness = follower.staleness();
    tasks.push(tokio::spawn(follower.run(shutdown.clone())));

    tasks.push(tokio::spawn(
        register::Registrar {
            client: client.clone(),
            record,
            interval: config.heartbeat_interval,
            backoff: backoff.clone(),
            metrics: metrics.clone(),
        }
        .run(shutdown.clone()),
    ));

    tasks.push(tokio::spawn(
        trust::BundlePublisher {
            client: client.clone(),
            cluster: cluster.id.clone(),
            trust_domain: cluster.trust_domain.clone(),
            store: bundles,
            metrics: metrics.clone(),
            interval: config.bundle_interval,
        }
        .run(shutdown.clone()),
    ));

    let mut expected = Vec::new();
    if config.static_file.is_some() {
        expected.push("static");
    }
    if kubernetes.enabled {
        expected.push("kubernetes");
    }
    let sources = exports::ExportSources::new(&expected);
    let (statuses_tx, statuses_rx) = watch::channel(exports::ExportStatuses::new());
    let (local_tx, local) = watch::channel(LocalEndpoints::default());
    let local_sources = LocalSources::new(local_tx);
    let mut publish = false;
    if let Some(path) = &config.static_file {
        publish = true;
        tasks.push(tokio::spawn(
            static_file::StaticWatcher {
                path: path.clone(),
                default_zone: cluster.zone.clone(),
                interval: config.static_poll_interval,
                metrics: metrics.clone(),
                local: local_sources.clone(),
            }
            .run(sources.clone(), shutdown.clone()),
        ));
    }
    if kubernetes.enabled {
        publish = true;
        tasks.extend(kubernetes::spawn_in_cluster(
            kubernetes::ControllerConfig {
                cluster: cluster.id.clone(),
                default_zone: cluster.zone.clone(),
                kubernetes,
            },
            sources.clone(),
            local_sources,
            statuses_rx,
            catalog.clone(),
            shutdown.clone(),
        ));
    }
    if publish {
        tasks.push(tokio::spawn(
            exports::ExportPublisher {
                client,
                cluster: cluster.id,
                metrics,
                backoff,
                status_interval: std::time::Duration::from_secs(10),
                statuses: statuses_tx,
            }
            .run(sources, shutdown),
        ));
    }
    Ok(Agent {
        tasks,
        catalog,
        local,
        staleness,
        restored,
    })
}
