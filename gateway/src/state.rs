//! The state shared by every listener and background task.

use std::collections::HashMap;
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

/// Local endpoints of one service with a round-robin cursor.
#[derive(Debug)]
pub struct LocalEndpoints {
    /// The endpoints.
    pub addrs: Arc<[SocketAddr]>,
    cursor: AtomicUsize,
}

impl LocalEndpoints {
    /// The next endpoint, round robin, skipping the `attempt`-th previous picks.
    pub fn pick(&self) -> SocketAddr {
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        self.addrs[i % self.addrs.len()]
    }
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
    /// Local endpoints by `namespace/name`.
    pub local: HashMap<Box<str>, LocalEndpoints>,
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
        let local = config
            .local_services
            .iter()
            .map(|(k, v)| {
                (
                    k.clone().into_boxed_str(),
                    LocalEndpoints {
                        addrs: v.clone().into(),
                        cursor: AtomicUsize::new(0),
                    },
                )
            })
            .collect();
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
            local,
            ready: AtomicBool::new(false),
        }))
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
