//! The state shared by every listener and background task.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use causeway_trust::JwtSvidValidator;
use prometheus_client::registry::Registry;

use crate::catalog::CatalogState;
use crate::config::GatewayConfig;
use crate::health::HealthRegistry;
use crate::identity::Identity;
use crate::metrics::{Label, Metrics};
use crate::upstream::RemoteConnectors;

/// Local endpoints of one service with a round-robin cursor: the ready ones
/// or, when none is ready, the draining ones (never both empty).
#[derive(Debug)]
pub struct LocalEndpoints {
    addrs: Box<[SocketAddr]>,
    cursor: AtomicUsize,
}

impl LocalEndpoints {
    /// The next endpoint, round robin.
    pub fn pick(&self) -> SocketAddr {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.addrs[i % self.addrs.len()]
    }
}

/// Local endpoints by `namespace/name`.
pub type LocalTable = HashMap<Box<str>, LocalEndpoints>;

/// Endpoint lists by `namespace/name`.
pub type EndpointLists = BTreeMap<String, Vec<SocketAddr>>;

/// Builds the local table from ready endpoint lists (the config's
/// `localServices` and the agent's static discovery; a service listed twice
/// gets the union) and draining ones, used for a service only when it has no
/// ready endpoint. A service with neither is left out.
pub fn local_table<'a>(
    ready: impl IntoIterator<Item = (&'a String, &'a Vec<SocketAddr>)>,
    draining: &EndpointLists,
) -> LocalTable {
    let mut merged: BTreeMap<&str, Vec<SocketAddr>> = BTreeMap::new();
    for (key, addrs) in ready {
        let all = merged.entry(key.as_str()).or_default();
        for addr in addrs {
            if !all.contains(addr) {
                all.push(*addr);
            }
        }
    }
    for (key, addrs) in draining {
        let all = merged.entry(key.as_str()).or_default();
        if all.is_empty() {
            all.extend(addrs);
        }
    }
    merged
        .into_iter()
        .filter(|(_, addrs)| !addrs.is_empty())
        .map(|(key, addrs)| {
            let endpoints = LocalEndpoints {
                addrs: addrs.into_boxed_slice(),
                cursor: AtomicUsize::new(0),
            };
            (Box::from(key), endpoints)
        })
        .collect()
}

/// Everything the request path shares.
pub struct Shared {
    /// The configuration.
    pub config: Arc<GatewayConfig>,
    /// This cluster's id as a metric label.
    pub cluster_label: Label,
    /// The metrics.
    pub metrics: Metrics,
    /// The registry the metrics are registered in.
    pub registry: Registry,
    /// The current catalog.
    pub catalog: ArcSwap<CatalogState>,
    /// The gateway's identity.
    pub identity: Arc<Identity>,
    /// Validates caller JWT-SVIDs against the bundle store.
    pub jwt_validator: JwtSvidValidator,
    /// This trust domain's SPIFFE ID string (the audience of caller JWT-SVIDs sent to us).
    pub jwt_audience: String,
    /// Health of targets (outlier detection, breakers, probes, rate limits).
    pub health: HealthRegistry,
    /// East-west connectors per remote cluster.
    pub remotes: RemoteConnectors,
    /// Ready local endpoints by `namespace/name` (config plus static discovery).
    local: ArcSwap<LocalTable>,
    /// Metrics of the cluster agent (registered even when it is off).
    pub agent_metrics: crate::agent::AgentMetrics,
    /// Whether the gateway has a catalog and its listeners are up.
    pub ready: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Builds the shared state.
    pub fn new(
        config: GatewayConfig,
        identity: Identity,
        catalog: CatalogState,
    ) -> std::io::Result<Arc<Self>> {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics
            .catalog_revision
            .set(i64::try_from(catalog.revision()).unwrap_or(i64::MAX));
        let agent_metrics = crate::agent::AgentMetrics::register(&mut registry);
        let local = local_table(&config.local_services, &EndpointLists::new());
        let identity = Arc::new(identity);
        let jwt_validator = JwtSvidValidator::new(identity.bundles.clone());
        let jwt_audience = identity.trust_domain.id().to_string();
        let health = HealthRegistry::new(&config, &catalog, metrics.clone());
        let remotes = RemoteConnectors::new(identity.clone(), config.upstream.clone())?;
        Ok(Arc::new(Self {
            cluster_label: Label::from(config.cluster.id.as_str()),
            config: Arc::new(config),
            metrics,
            registry,
            catalog: ArcSwap::from_pointee(catalog),
            identity,
            jwt_validator,
            jwt_audience,
            health,
            remotes,
            local: ArcSwap::from_pointee(local),
            agent_metrics,
            ready: AtomicBool::new(false),
        }))
    }

    /// A ready local endpoint of `namespace/name` (round robin), if any.
    pub fn local_endpoint(&self, service: &str) -> Option<SocketAddr> {
        self.local.load().get(service).map(LocalEndpoints::pick)
    }

    /// How many ready local endpoints `namespace/name` has.
    pub fn local_endpoint_count(&self, service: &str) -> usize {
        self.local.load().get(service).map_or(0, |l| l.addrs.len())
    }

    /// Whether `namespace/name` has a ready local endpoint.
    pub fn has_local(&self, service: &str) -> bool {
        self.local.load().contains_key(service)
    }

    /// Replaces the local endpoints from discovery (ready and draining); the
    /// config's `localServices` stay in force beside them.
    pub fn set_discovered_local(&self, ready: &EndpointLists, draining: &EndpointLists) {
        let table = local_table(self.config.local_services.iter().chain(ready), draining);
        tracing::info!(services = table.len(), "local endpoints updated");
        self.local.store(Arc::new(table));
    }

    /// Installs a new catalog revision (in-flight requests keep the old one).
    pub fn install_catalog(&self, state: CatalogState) {
        self.health.sync_targets(&state);
        let revision = state.revision();
        self.catalog.store(Arc::new(state));
        self.metrics
            .catalog_revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
        tracing::info!(revision, "catalog installed");
    }
}
