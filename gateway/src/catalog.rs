//! The catalog as the request path reads it: an immutable [`CatalogState`]
//! (catalog snapshot, routing snapshot, local exports and access rules)
//! built off the request path and swapped atomically.
//!
//! Until the agent's federation watch lands, the catalog comes from a file
//! (`federation.catalogFile`), reloaded when it changes or on SIGHUP.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_federation::model::{AccessRule, CatalogSnapshot, ServiceRef};

use crate::config::ClusterConfig;
use crate::routing::{LocalCluster, RoutingSnapshot};

/// Why a catalog file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid `CatalogSnapshot`.
    #[error("invalid catalog {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

/// Access rules of one exported service: `None` = no policy selects it
/// (open to every authenticated federation member).
pub type AccessRules = Option<Arc<[AccessRule]>>;

/// One catalog revision, ready for the request path.
#[derive(Debug)]
pub struct CatalogState {
    /// The catalog as loaded.
    pub catalog: Arc<CatalogSnapshot>,
    /// The routing view of it for this cluster.
    pub routing: Arc<RoutingSnapshot>,
    /// When it was loaded.
    pub loaded_at: Instant,
    /// `namespace/name` of services this cluster exports, with their access rules.
    pub local_exports: HashMap<Box<str>, AccessRules>,
    /// Trust domain of every cluster, by cluster id.
    pub cluster_trust_domains: HashMap<Box<str>, Box<str>>,
    /// `(connect, request)` timeouts from the `TrafficPolicy` of a service,
    /// by `namespace/name` (absent = gateway defaults).
    pub timeouts: HashMap<Box<str>, Timeouts>,
    /// `namespace/name` of services with a port whose `appProtocol` is
    /// HTTP/2 (`h2c`, `grpc`, `http2`, `kubernetes.io/h2c`): local endpoints
    /// are spoken to over h2c; others over HTTP/1.1 (unless the request is gRPC).
    pub h2_services: HashSet<Box<str>>,
}

/// Upstream timeouts of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Connect timeout.
    pub connect: Duration,
    /// Request (read/write idle) timeout.
    pub request: Duration,
}

impl CatalogState {
    /// Builds the state for `catalog` as seen from `local`.
    pub fn build(catalog: impl Into<Arc<CatalogSnapshot>>, local: &ClusterConfig) -> Self {
        // An Arc from the agent is shared, not copied: a catalog of 10,000
        // exports is megabytes of small allocations.
        let catalog: Arc<CatalogSnapshot> = catalog.into();
        let local_cluster = match catalog
            .clusters
            .iter()
            .find(|(id, _)| id.as_str() == local.id)
        {
            Some((_, c)) => LocalCluster::from_cluster(c),
            None => LocalCluster {
                id: local.id.clone(),
                region: local.region.clone(),
                zone: local.zone.clone(),
                jurisdictions: local.jurisdictions.clone(),
                labels: Default::default(),
            },
        };
        let routing = RoutingSnapshot::from_catalog(&catalog, local_cluster);
        let mut timeouts = HashMap::new();
        for (ns, name) in routing.services() {
            let spec = routing
                .traffic_policy(ns, name)
                .and_then(|p| catalog.policies.traffic.get(p))
                .map(|p| &p.spec.timeouts);
            if let Some(t) = spec {
                timeouts.insert(
                    format!("{ns}/{name}").into_boxed_str(),
                    Timeouts {
                        connect: t.connect,
                        request: t.request,
                    },
                );
            }
        }
        let mut h2_services = HashSet::new();
        for export in catalog.exports.values() {
            let h2 = export.spec.ports.iter().any(|p| {
                p.app_protocol
                    .as_deref()
                    .is_some_and(|a| matches!(a, "h2c" | "grpc" | "http2" | "kubernetes.io/h2c"))
            });
            if h2 {
                h2_services.insert(export.service().to_string().into_boxed_str());
            }
        }
        let mut local_exports = HashMap::new();
        let mut seen = HashSet::new();
        for export in catalog.exports.values() {
            let key = export.key();
            if key.cluster.as_str() != local.id {
                continue;
            }
            let service: ServiceRef = key.service.clone();
            if !seen.insert(service.to_string()) {
                continue;
            }
            let mut selected = false;
            let mut rules = Vec::new();
            for p in catalog.policies.access.values() {
                if p.spec.services.matches(&service) {
                    selected = true;
                    rules.extend(p.spec.allow.iter().cloned());
                }
            }
            let rules: AccessRules = selected.then(|| rules.into());
            local_exports.insert(service.to_string().into_boxed_str(), rules);
        }
        let cluster_trust_domains = catalog
            .clusters
            .iter()
            .map(|(id, c)| {
                (
                    id.as_str().into(),
                    c.spec.trust_domain.as_str().to_owned().into_boxed_str(),
                )
            })
            .collect();
        Self {
            catalog,
            routing: Arc::new(routing),
            loaded_at: Instant::now(),
            local_exports,
            cluster_trust_domains,
            timeouts,
            h2_services,
        }
    }

    /// An empty catalog (nothing routable).
    pub fn empty(local: &ClusterConfig) -> Self {
        Self::build(CatalogSnapshot::default(), local)
    }

    /// The catalog revision.
    pub fn revision(&self) -> u64 {
        self.routing.revision()
    }
}

/// Reads a `CatalogSnapshot` from a JSON or YAML file.
pub fn load_catalog_file(path: &Path) -> Result<CatalogSnapshot, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let parsed = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_norway::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|message| CatalogError::Parse {
        path: path.display().to_string(),
        message,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The catalog example of `docs/gateway.md`, with the residency policy.
    const DOC_CATALOG: &str = r#"
revision: 1
clusters:
  eu-1: { apiVersion: causeway.dev/v1, kind: Cluster, metadata: { name: eu-1 },
          spec: { region: eu-west, zone: eu-west-1a, jurisdictions: [eu],
                  gateway: { endpoints: ["127.0.0.1:15443"] }, trustDomain: eu-1.example } }
  us-1: { apiVersion: causeway.dev/v1, kind: Cluster, metadata: { name: us-1 },
          spec: { region: us-east, zone: us-east-1a, jurisdictions: [us],
                  gateway: { endpoints: ["127.0.0.1:25443"] }, trustDomain: us-1.example } }
exports:
  demo/echo/us-1: { apiVersion: causeway.dev/v1, kind: ServiceExport,
                    metadata: { namespace: demo, name: echo, cluster: us-1 },
                    spec: { ports: [{ name: http, port: 8080 }], endpoints: [{ zone: us-east-1a, ready: 1 }] } }
policies:
  residency:
    us-only: { apiVersion: causeway.dev/v1, kind: ResidencyPolicy, metadata: { name: us-only },
               spec: { services: ["demo/echo"], allowedJurisdictions: [us] } }
"#;

    #[test]
    fn documented_catalog_parses_and_routes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.yaml");
        std::fs::write(&path, DOC_CATALOG).unwrap();
        let catalog = load_catalog_file(&path).unwrap();
        let local = ClusterConfig {
            id: "eu-1".into(),
            trust_domain: "eu-1.example".into(),
            ..ClusterConfig::default()
        };
        let state = CatalogState::build(catalog, &local);
        assert_eq!(state.revision(), 1);
        assert_eq!(state.routing.service_count(), 1);
        assert!(state.local_exports.is_empty());
        assert_eq!(
            state.cluster_trust_domains.get("us-1").map(|s| &**s),
            Some("us-1.example")
        );
        let us = ClusterConfig {
            id: "us-1".into(),
            ..ClusterConfig::default()
        };
        let state = CatalogState::build(load_catalog_file(&path).unwrap(), &us);
        assert!(matches!(state.local_exports.get("demo/echo"), Some(None)));
    }

    #[test]
    fn invalid_catalog_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, r#"{"revision": 1, "clusterz": {}}"#).unwrap();
        let e = load_catalog_file(&path).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("clusterz"), "{e}");
    }
}
