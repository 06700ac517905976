//! The state shared by every listener and background task.
//!
//! Two lifetimes live here. [`Shared`] holds what lasts as long as the
//! gateway (configuration, identity, metrics, connectors, the stateful
//! health registry). [`GatewayState`] is one immutable revision of what the
//! request path reads: the catalog's routing state, the local endpoints and
//! the per-service settings. It is rebuilt off the request path whenever the
//! catalog or the local endpoints change and swapped atomically; a request
//! loads it once, when its context is created, and keeps that revision to the
//! end.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use causeway_trust::JwtSvidValidator;
use prometheus_client::registry::Registry;

use crate::catalog::CatalogState;
use crate::config::GatewayConfig;
use crate::health::{HealthRegistry, ServiceHealth, ServiceMap};
use crate::identity::Identity;
use crate::metrics::{Label, Metrics};
use crate::upstream::RemoteConnectors;

/// Local endpoints of one service with a round-robin cursor: the ready ones
/// or, when none is ready, the draining ones (never empty).
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

    /// How many endpoints there are (at least one).
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Always false: a table never holds a service without endpoints.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Local endpoints by `namespace/name`.
pub type LocalTable = HashMap<Box<str>, Arc<LocalEndpoints>>;

/// Endpoint lists by `namespace/name`.
pub type EndpointLists = BTreeMap<String, Vec<SocketAddr>>;

/// Local endpoints per service port, by `namespace/name`: for services whose
/// discovery knows their ports (Kubernetes), so that a request for port 9090
/// reaches the pods' 9090 target port and not the first port's.
pub type PortTable = HashMap<Box<str>, HashMap<u16, Arc<LocalEndpoints>>>;

/// Builds the per-port table from discovery (ready first, draining only
/// when a port has no ready endpoint; ports with neither are left out).
pub fn port_table(
    ports: &BTreeMap<String, BTreeMap<u16, causeway_agent::PortEndpoints>>,
) -> PortTable {
    ports
        .iter()
        .map(|(key, by_port)| {
            let table = by_port
                .iter()
                .filter_map(|(port, e)| {
                    let addrs = if e.ready.is_empty() {
                        &e.draining
                    } else {
                        &e.ready
                    };
                    (!addrs.is_empty()).then(|| {
                        let endpoints = LocalEndpoints {
                            addrs: addrs.clone().into_boxed_slice(),
                            cursor: AtomicUsize::new(0),
                        };
                        (*port, Arc::new(endpoints))
                    })
                })
                .collect();
            (key.clone().into_boxed_str(), table)
        })
        .collect()
}

/// Builds the local table from ready endpoint lists (the config's
/// `localServices` and the agent's discovery; a service listed twice gets
/// the union) and draining ones, used for a service only when it has no
/// ready endpoint. A service with neither is left out.
pub fn local_table<'a>(
    ready: impl IntoIterator<Item = (String, &'a [SocketAddr])>,
    draining: &EndpointLists,
) -> LocalTable {
    let mut merged: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    for (key, addrs) in ready {
        let all = merged.entry(key).or_default();
        for addr in addrs {
            if !all.contains(addr) {
                all.push(*addr);
            }
        }
    }
    for (key, addrs) in draining {
        let all = merged.entry(key.clone()).or_default();
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
            (key.into_boxed_str(), Arc::new(endpoints))
        })
        .collect()
}

/// The configuration's `localServices`, as [`local_table`] takes them.
fn configured(config: &GatewayConfig) -> impl Iterator<Item = (String, &[SocketAddr])> {
    config
        .local_services
        .iter()
        .map(|(k, v)| (k.to_string(), v.addrs()))
}

/// One immutable revision of everything the request path reads.
#[derive(Debug)]
pub struct GatewayState {
    /// The catalog revision with its routing state.
    pub catalog: Arc<CatalogState>,
    /// Per-service settings and health handles, by `namespace/name`.
    services: Arc<ServiceMap>,
    /// Local endpoints, by `namespace/name`.
    local: Arc<LocalTable>,
    /// Local endpoints per service port, where discovery knows the ports.
    local_ports: Arc<PortTable>,
}

impl GatewayState {
    /// A state of `catalog` with `local` endpoints and no service settings
    /// (tests of the pure parts that read only the catalog and endpoints).
    pub fn without_services(catalog: CatalogState, local: LocalTable) -> Self {
        Self {
            catalog: Arc::new(catalog),
            services: Arc::default(),
            local: Arc::new(local),
            local_ports: Arc::default(),
        }
    }

    /// The settings and health of `namespace/name`, if the catalog knows it.
    pub fn service(&self, key: &str) -> Option<&Arc<ServiceHealth>> {
        self.services.get(key)
    }

    /// The local endpoints of `namespace/name`, if it has any.
    pub fn local(&self, key: &str) -> Option<&Arc<LocalEndpoints>> {
        self.local.get(key)
    }

    /// The local endpoints of `namespace/name` for a request to `port`:
    /// the port's own endpoints when discovery knows them, else the
    /// service's.
    pub fn local_for(&self, key: &str, port: Option<u16>) -> Option<&Arc<LocalEndpoints>> {
        if let Some(p) = port
            && let Some(by_port) = self.local_ports.get(key)
            && let Some(e) = by_port.get(&p)
        {
            return Some(e);
        }
        self.local.get(key)
    }

    /// How many local endpoints `namespace/name` has.
    pub fn local_count(&self, key: &str) -> usize {
        self.local.get(key).map_or(0, |l| l.len())
    }

    /// The catalog revision.
    pub fn revision(&self) -> u64 {
        self.catalog.revision()
    }
}

/// Everything the listeners and background tasks share.
pub struct Shared {
    /// The configuration.
    pub config: Arc<GatewayConfig>,
    /// This cluster's id as a metric label.
    pub cluster_label: Label,
    /// The metrics.
    pub metrics: Metrics,
    /// The registry the metrics are registered in.
    pub registry: Registry,
    /// The current revision of the request path's state.
    state: ArcSwap<GatewayState>,
    /// The gateway's identity.
    pub identity: Arc<Identity>,
    /// Validates caller JWT-SVIDs against the bundle store.
    pub jwt_validator: JwtSvidValidator,
    /// This trust domain's SPIFFE ID string (the audience of caller JWT-SVIDs sent to us).
    pub jwt_audience: String,
    /// This gateway's SPIFFE ID string: the audience of JWT-SVIDs its
    /// workloads present to the egress.
    pub egress_audience: String,
    /// Keys of the OIDC issuers residency policies trust.
    pub jwks: crate::tokens::JwksCache,
    /// The residency audit log, when configured.
    pub audit: Option<crate::audit::AuditLog>,
    /// Health of targets (outlier detection, breakers, probes, rate limits).
    pub health: HealthRegistry,
    /// East-west connectors per remote cluster.
    pub remotes: RemoteConnectors,
    /// Whether the gateway has a catalog and its listeners are up.
    pub ready: AtomicBool,
    /// Set once SIGTERM (or a test) began the drain; readiness stays off.
    draining: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    /// Builds the shared state; `registry` already holds the metrics other
    /// components (the agent) registered.
    pub fn new(
        config: GatewayConfig,
        identity: Identity,
        catalog: CatalogState,
        mut registry: Registry,
    ) -> std::io::Result<Arc<Self>> {
        let metrics = Metrics::register(&mut registry);
        metrics
            .catalog_revision
            .set(i64::try_from(catalog.revision()).unwrap_or(i64::MAX));
        let local = local_table(configured(&config), &EndpointLists::new());
        let identity = Arc::new(identity);
        let jwt_validator = JwtSvidValidator::new(identity.bundles.clone());
        let jwt_audience = identity.trust_domain.id().to_string();
        let egress_audience = identity.spiffe_id.to_string();
        let audit = config
            .observability
            .audit_log
            .clone()
            .map(crate::audit::AuditLog::open)
            .transpose()?;
        let health = HealthRegistry::new(&config, metrics.clone());
        let services = health.sync_targets(&catalog);
        let remotes = RemoteConnectors::new(identity.clone(), config.upstream.clone())?;
        let state = GatewayState {
            catalog: Arc::new(catalog),
            services,
            local: Arc::new(local),
            local_ports: Arc::default(),
        };
        Ok(Arc::new(Self {
            cluster_label: Label::from(config.cluster.id.as_str()),
            config: Arc::new(config),
            metrics,
            registry,
            state: ArcSwap::from_pointee(state),
            identity,
            jwt_validator,
            jwt_audience,
            egress_audience,
            jwks: crate::tokens::JwksCache::new(),
            audit,
            health,
            remotes,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        }))
    }

    /// Whether the gateway serves: its listeners are up, it is not
    /// draining, and (with the agent on) it has a catalog, received or
    /// persisted. `Err` says why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if self.draining.load(Ordering::Relaxed) {
            return Err("draining");
        }
        self.serving()
    }

    /// Whether requests that reach this gateway are served: as
    /// [`Self::readiness`] but true while draining, when the listeners
    /// still take requests that come (peers' probes ask this: a cluster
    /// whose one replica drains is not down, and a cluster whose only
    /// replica drains stops accepting after `drain.delay`, which peers see).
    pub fn serving(&self) -> Result<(), &'static str> {
        if !self.ready.load(Ordering::Relaxed) {
            return Err("not ready");
        }
        if self.config.agent.enabled() && self.state.load().revision() == 0 {
            return Err("not ready: no catalog from the federation API yet");
        }
        Ok(())
    }

    /// Turns readiness off for good: the gateway is shutting down.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// The current state (a request keeps the revision it loaded).
    pub fn state(&self) -> Arc<GatewayState> {
        self.state.load_full()
    }

    /// The current catalog revision's state.
    pub fn catalog(&self) -> Arc<CatalogState> {
        self.state.load().catalog.clone()
    }

    /// Writes one residency audit record, if the audit log is on; a line
    /// that cannot be written is counted and logged with its content.
    pub fn audit(&self, rec: &crate::audit::AuditRecord<'_>) {
        let Some(log) = &self.audit else {
            return;
        };
        if let Err(e) = log.record(rec) {
            self.metrics.audit_write_errors.inc();
            tracing::error!(error = %e, record = ?rec, "residency audit line not written");
        }
    }

    /// Counts and logs a refused token.
    pub fn token_rejected(&self, source: &'static str, reason: crate::tokens::TokenRejection) {
        self.metrics
            .token_rejections
            .get_or_create(&crate::metrics::TokenLabels {
                source,
                reason: reason.as_str(),
            })
            .inc();
        tracing::info!(source, reason = reason.as_str(), "token refused");
    }

    /// Replaces the local endpoints from discovery (ready and draining, and
    /// per port where known); the config's `localServices` stay in force
    /// beside them.
    pub fn set_discovered_local(&self, local: &causeway_agent::LocalEndpoints) {
        let discovered = local.ready.iter().map(|(k, v)| (k.clone(), v.as_slice()));
        let table = Arc::new(local_table(
            configured(&self.config).chain(discovered),
            &local.draining,
        ));
        let ports = Arc::new(port_table(&local.ports));
        tracing::info!(services = table.len(), "local endpoints updated");
        self.state.rcu(|s| GatewayState {
            catalog: s.catalog.clone(),
            services: s.services.clone(),
            local: table.clone(),
            local_ports: ports.clone(),
        });
    }

    /// Installs a new catalog revision (in-flight requests keep the old one).
    pub fn install_catalog(&self, catalog: CatalogState) {
        let services = self.health.sync_targets(&catalog);
        let revision = catalog.revision();
        let catalog = Arc::new(catalog);
        self.state.rcu(|s| GatewayState {
            catalog: catalog.clone(),
            services: services.clone(),
            local: s.local.clone(),
            local_ports: s.local_ports.clone(),
        });
        self.metrics
            .catalog_revision
            .set(i64::try_from(revision).unwrap_or(i64::MAX));
        tracing::info!(revision, "catalog installed");
    }
}
