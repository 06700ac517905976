//! The cluster agent: background services of the gateway that connect it to
//! the federation.
//!
//! - **Registration** ([`register`]): puts this cluster's record (locality,
//!   jurisdictions, gateway endpoints, trust domain) and keeps its heartbeat
//!   lease alive.
//! - **Trust** ([`trust`]): ticks the in-process CA (or re-reads a
//!   SPIRE-written bundle file) and publishes the bundle when its sequence
//!   changes; swaps the federated bundles of the catalog into the gateway's
//!   `BundleStore` (read per handshake, so live connections are untouched).
//!   The gateway's own SVID is re-issued before expiry by
//!   `Identity::refresh` (proxy background task).
//! - **Catalog sync** ([`sync`]): follows the gRPC watch, applies changes
//!   atomically, persists them ([`persist`]), reconnects with jittered
//!   back-off ([`backoff`]) and serves the last known catalog while the API
//!   is gone (`causeway_agent_catalog_staleness_seconds`).
//! - **Local services** ([`exports`], [`static_file`], [`kubernetes`]):
//!   exports from a watched static file or from MCS `ServiceExport`s, and
//!   `ServiceImport`s + EndpointSlices for remote services.
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
pub mod trust;

use std::sync::Arc;

use causeway_api::client::Client;
use causeway_api::model::{CatalogSnapshot, ClusterId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::config::{AgentConfig, KubernetesConfig};
pub use self::metrics::AgentMetrics;
pub use self::sync::CatalogSink;
use crate::state::Shared;

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

/// Installs applied catalogs into a running gateway: federated bundles first
/// (so new peers verify), then the routing state, then east-west connectors
/// for new clusters (off the request path).
#[derive(Debug, Clone)]
pub struct GatewaySink {
    shared: Arc<Shared>,
}

impl GatewaySink {
    /// A sink for `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl CatalogSink for GatewaySink {
    fn install(&self, snapshot: Arc<CatalogSnapshot>) {
        let id = &self.shared.identity;
        trust::apply_bundles(&id.trust_domain, &id.bundles, &snapshot);
        // The previous revision's state: only the services that changed
        // are rebuilt.
        let state = self
            .shared
            .catalog()
            .next(snapshot, &self.shared.config.cluster);
        self.shared.install_catalog(state);
        let shared = self.shared.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::spawn_blocking(move || crate::gateway::prepare_remotes(&shared));
        }
    }
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    /// Its tasks (they stop when the shutdown channel turns true).
    pub tasks: Vec<JoinHandle<()>>,
    /// Every catalog applied.
    pub catalog: watch::Receiver<Arc<CatalogSnapshot>>,
    /// The static discovery state (exports and local endpoints for the proxy).
    pub static_state: watch::Receiver<static_file::StaticState>,
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

/// Starts every service `config` enables, installing catalogs into `shared`.
/// The persisted catalog (if any) is installed before this returns, so the
/// gateway serves it even if the API never answers. Must be called inside a
/// tokio runtime.
pub fn spawn(
    config: &AgentConfig,
    shared: Arc<Shared>,
    metrics: AgentMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<Agent, AgentError> {
    let endpoint = config
        .endpoint
        .clone()
        .ok_or_else(|| AgentError::Config("agent.endpoint is required".into()))?;
    let token = read_token(config)?;
    let tls = causeway_api::client::TlsOptions {
        ca_file: config.ca_file.clone(),
    };
    let client = Client::with_tls(&endpoint, token.clone(), &tls)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let cluster_cfg = &shared.config.cluster;
    let cluster: ClusterId = cluster_cfg
        .id
        .parse()
        .map_err(|e| AgentError::Config(format!("cluster.id: {e}")))?;
    let record = register::cluster_record(cluster_cfg, config)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let backoff = backoff::Backoff::new(config.backoff_base, config.backoff_cap);
    let mut kubernetes = config.kubernetes.clone();
    if kubernetes.enabled && kubernetes.egress_addresses.is_empty() {
        match std::env::var("POD_IP").ok().and_then(|ip| ip.parse().ok()) {
            Some(ip) => kubernetes.egress_addresses.push(ip),
            None => {
                return Err(AgentError::Config(
                    "agent.kubernetes.egressAddresses is empty and POD_IP is not set".into(),
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
        Arc::new(GatewaySink::new(shared.clone())),
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

    let source = match (
        shared.identity.authority(),
        &shared.config.identity.bundle_file,
    ) {
        (Some(a), _) => Some(trust::BundleSource::Authority {
            authority: a.clone(),
            dir: shared.config.identity.authority_dir.clone(),
        }),
        (None, Some(f)) => Some(trust::BundleSource::File(f.clone())),
        (None, None) => None,
    };
    if let Some(source) = source {
        tasks.push(tokio::spawn(
            trust::BundlePublisher {
                client: client.clone(),
                cluster: cluster.clone(),
                trust_domain: shared.identity.trust_domain.clone(),
                source,
                store: shared.identity.bundles.clone(),
                metrics: metrics.clone(),
                interval: config.bundle_interval,
            }
            .run(shutdown.clone()),
        ));
    }

    let mut expected = Vec::new();
    if config.static_file.is_some() {
        expected.push("static");
    }
    if kubernetes.enabled {
        expected.push("kubernetes");
    }
    let sources = exports::ExportSources::new(&expected);
    let (statuses_tx, statuses_rx) = watch::channel(exports::ExportStatuses::new());
    let (static_tx, static_state) = watch::channel(static_file::StaticState::default());
    let mut publish = false;
    if let Some(path) = &config.static_file {
        publish = true;
        tasks.push(tokio::spawn(
            static_file::StaticWatcher {
                path: path.clone(),
                default_zone: cluster_cfg.zone.clone(),
                interval: config.static_poll_interval,
                metrics: metrics.clone(),
                state: static_tx,
            }
            .run(sources.clone(), shutdown.clone()),
        ));
    }
    if kubernetes.enabled {
        publish = true;
        tasks.extend(kubernetes::spawn_in_cluster(
            kubernetes::ControllerConfig {
                cluster: cluster.clone(),
                default_zone: cluster_cfg.zone.clone(),
                kubernetes,
            },
            sources.clone(),
            statuses_rx,
            catalog.clone(),
            shutdown.clone(),
        ));
    }
    if publish {
        tasks.push(tokio::spawn(
            exports::ExportPublisher {
                client,
                cluster,
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
        static_state,
        staleness,
        restored,
    })
}
