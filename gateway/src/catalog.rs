//! The catalog as the request path reads it: an immutable [`CatalogState`]
//! (catalog snapshot, routing snapshot, local exports and access rules)
//! built off the request path and swapped atomically.
//!
//! Until the agent's federation watch lands, the catalog comes from a file
//! (`federation.catalogFile`), reloaded when it changes or on SIGHUP.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_api::model::{
    AccessRule, CatalogSnapshot, Protocol, ServiceExport, ServicePort, ServiceRef,
};
use imbl::OrdMap;
use imbl::ordmap::DiffItem;

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

/// A service this cluster exports, as the east-west ingress authorizes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalExport {
    /// Who may call it.
    pub rules: AccessRules,
    /// The exported ports, sorted.
    pub ports: Arc<[ExportedPort]>,
}

impl LocalExport {
    /// The exported port `port`, if any.
    pub fn port(&self, port: u16) -> Option<&ExportedPort> {
        self.ports.iter().find(|p| p.port == port)
    }
}

/// One exported port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExportedPort {
    /// The port number.
    pub port: u16,
    /// Whether peers may open a raw TCP tunnel to it: a TCP port whose
    /// `appProtocol` names a protocol that is not HTTP (`tcp`,
    /// `postgresql`, ...). Ports without an `appProtocol` are not
    /// tunnelable: most of them carry HTTP, which must go through the HTTP
    /// ingress (identity headers stripped, framing checked).
    pub tunnel: bool,
}

impl ExportedPort {
    fn of(p: &ServicePort) -> Self {
        let tunnel =
            p.protocol == Protocol::Tcp && p.app_protocol.as_deref().is_some_and(|a| !is_http(a));
        Self {
            port: p.port,
            tunnel,
        }
    }
}

/// Whether an `appProtocol` names HTTP in any of its forms.
fn is_http(app_protocol: &str) -> bool {
    let a = app_protocol.to_ascii_lowercase();
    let a = a.strip_prefix("kubernetes.io/").unwrap_or(&a);
    matches!(
        a,
        "http" | "https" | "h2c" | "h2" | "http2" | "grpc" | "grpc-web" | "ws" | "wss"
    )
}

/// One catalog revision, ready for the request path.
#[derive(Debug)]
pub struct CatalogState {
    /// The catalog as loaded.
    pub catalog: Arc<CatalogSnapshot>,
    /// The routing view of it for this cluster.
    pub routing: Arc<RoutingSnapshot>,
    /// When it was loaded.
    pub loaded_at: Instant,
    /// `namespace/name` of services this cluster exports, with their
    /// ports and access rules.
    pub local_exports: HashMap<Box<str>, LocalExport>,
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
        let local_cluster = match catalog.clusters.iter().find(|(id, _)| *id == &local.id) {
            Some((_, c)) => LocalCluster::from_cluster(c),
            None => LocalCluster {
                id: local.id.to_string(),
                region: local.region.clone(),
                zone: local.zone.clone(),
                jurisdictions: local.jurisdictions.clone(),
                labels: Default::default(),
            },
        };
        let routing = RoutingSnapshot::from_catalog(&catalog, local_cluster);
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
        let mut state = Self {
            catalog: Arc::clone(&catalog),
            routing: Arc::new(routing),
            loaded_at: Instant::now(),
            local_exports: HashMap::new(),
            cluster_trust_domains,
            timeouts: HashMap::new(),
            h2_services: HashSet::new(),
        };
        // Exports are sorted by service: one run per service.
        let exports: Vec<&ServiceExport> = catalog.exports.values().collect();
        for run in exports.chunk_by(|a, b| {
            a.metadata.namespace == b.metadata.namespace && a.metadata.name == b.metadata.name
        }) {
            state.refresh_service(&run[0].service(), run, &local.id);
        }
        state
    }

    /// The state for `catalog`, the next revision after `self`'s (both as
    /// seen from `local`). When only exports changed, which is what
    /// nearly every change is, only the services whose exports changed are
    /// recomputed and the rest is shared with `self`: a change costs about
    /// the same with 10 or 10,000 services. Anything else is a full build.
    pub fn next(&self, catalog: Arc<CatalogSnapshot>, local: &ClusterConfig) -> Self {
        let Some(changed) = changed_services(&self.catalog, &catalog) else {
            return Self::build(catalog, local);
        };
        let routing = self.routing.with_changed_services(&catalog, &changed);
        let mut state = Self {
            catalog: Arc::clone(&catalog),
            routing: Arc::new(routing),
            loaded_at: Instant::now(),
            local_exports: self.local_exports.clone(),
            cluster_trust_domains: self.cluster_trust_domains.clone(),
            timeouts: self.timeouts.clone(),
            h2_services: self.h2_services.clone(),
        };
        for svc in &changed {
            state.refresh_service(svc, &catalog.exports_of(svc), &local.id);
        }
        state
    }

    /// Recomputes the per-service tables of `service` from its `exports`
    /// (none when it is no longer exported); `routing` must be current.
    fn refresh_service(&mut self, service: &ServiceRef, exports: &[&ServiceExport], local: &str) {
        let key: Box<str> = service.to_string().into_boxed_str();
        let (ns, name) = (service.namespace.as_str(), service.name.as_str());
        let timeouts = self
            .routing
            .traffic_policy(ns, name)
            .and_then(|p| self.catalog.policies.traffic.get(p))
            .map(|p| Timeouts {
                connect: p.spec.timeouts.connect,
                request: p.spec.timeouts.request,
            });
        match timeouts {
            Some(t) => self.timeouts.insert(key.clone(), t),
            None => self.timeouts.remove(&key),
        };
        let h2 = exports.iter().any(|e| {
            e.spec.ports.iter().any(|p| {
                p.app_protocol
                    .as_deref()
                    .is_some_and(|a| matches!(a, "h2c" | "grpc" | "http2" | "kubernetes.io/h2c"))
            })
        });
        if h2 {
            self.h2_services.insert(key.clone());
        } else {
            self.h2_services.remove(&key);
        }
        if let Some(own) = exports
            .iter()
            .find(|e| e.metadata.cluster.as_str() == local)
        {
            let mut selected = false;
            let mut rules = Vec::new();
            for p in self.catalog.policies.access.values() {
                if p.spec.services.matches(service) {
                    selected = true;
                    rules.extend(p.spec.allow.iter().cloned());
                }
            }
            let rules: AccessRules = selected.then(|| rules.into());
            let mut ports: Vec<ExportedPort> =
                own.spec.ports.iter().map(ExportedPort::of).collect();
            ports.sort();
            ports.dedup_by_key(|p| p.port);
            self.local_exports.insert(
                key,
                LocalExport {
                    rules,
                    ports: ports.into(),
                },
            );
        } else {
            self.local_exports.remove(&key);
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

/// The services whose exports differ between two catalogs, or `None` when
/// anything that shapes every service (clusters, residency, traffic or
/// access policies) changed too. Persistent maps make this cheap: subtrees
/// the two revisions share are skipped.
fn changed_services(
    prev: &CatalogSnapshot,
    next: &CatalogSnapshot,
) -> Option<BTreeSet<ServiceRef>> {
    fn unchanged<K: Ord + Clone, V: Clone + PartialEq>(a: &OrdMap<K, V>, b: &OrdMap<K, V>) -> bool {
        a.diff(b).next().is_none()
    }
    let (p, n) = (&prev.policies, &next.policies);
    let same = unchanged(&prev.clusters, &next.clusters)
        && unchanged(&p.residency, &n.residency)
        && unchanged(&p.traffic, &n.traffic)
        && unchanged(&p.access, &n.access);
    if !same {
        return None;
    }
    Some(
        prev.exports
            .diff(&next.exports)
            .map(|d| match d {
                DiffItem::Add(k, _) | DiffItem::Remove(k, _) => k.service.clone(),
                DiffItem::Update { new: (k, _), .. } => k.service.clone(),
            })
            .collect(),
    )
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
        let local = ClusterConfig::new(
            "eu-1".parse().unwrap(),
            causeway_trust::TrustDomain::new("eu-1.example").unwrap(),
        );
        let state = CatalogState::build(catalog, &local);
        assert_eq!(state.revision(), 1);
        assert_eq!(state.routing.service_count(), 1);
        assert!(state.local_exports.is_empty());
        assert_eq!(
            state.cluster_trust_domains.get("us-1").map(|s| &**s),
            Some("us-1.example")
        );
        let us = ClusterConfig::new(
            "us-1".parse().unwrap(),
            causeway_trust::TrustDomain::new("test.example").unwrap(),
        );
        let state = CatalogState::build(load_catalog_file(&path).unwrap(), &us);
        let export = state.local_exports.get("demo/echo").unwrap();
        assert_eq!(export.rules, None);
        assert_eq!(
            *export.ports,
            [ExportedPort {
                port: 8080,
                tunnel: false
            }]
        );
    }

    /// Everything a `CatalogState` answers with, in a comparable form.
    fn observable(s: &CatalogState) -> String {
        let mut index: Vec<_> = s
            .routing
            .index
            .iter()
            .flat_map(|(ns, m)| m.iter().map(move |(n, i)| (ns.clone(), n.clone(), *i)))
            .collect();
        index.sort();
        fn sorted<V: std::fmt::Debug>(m: &HashMap<Box<str>, V>) -> Vec<String> {
            let mut v: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            v.sort();
            v
        }
        let mut h2: Vec<_> = s.h2_services.iter().collect();
        h2.sort();
        format!(
            "rev={} services={:?} index={index:?} clusters={:?} rules={:?} local={:?} timeouts={:?} h2={h2:?} trust={:?}",
            s.routing.revision,
            s.routing.services,
            s.routing.clusters,
            s.routing.rules,
            sorted(&s.local_exports),
            sorted(&s.timeouts),
            sorted(&s.cluster_trust_domains),
        )
    }

    fn walk_catalog() -> CatalogSnapshot {
        serde_json::from_value(serde_json::json!({
            "revision": 1,
            "clusters": {
                "eu-1": {"apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": "eu-1"},
                         "spec": {"region": "eu-west", "zone": "eu-west-1a", "jurisdictions": ["eu"],
                                  "gateway": {"endpoints": ["127.0.0.1:15443"]}, "trustDomain": "eu-1.example"}},
                "eu-2": {"apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": "eu-2"},
                         "spec": {"region": "eu-central", "zone": "eu-central-1a", "jurisdictions": ["eu"],
                                  "gateway": {"endpoints": ["127.0.0.1:16443"]}, "trustDomain": "eu-2.example"}},
                "us-1": {"apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": "us-1"},
                         "spec": {"region": "us-east", "zone": "us-east-1a", "jurisdictions": ["us"],
                                  "gateway": {"endpoints": ["127.0.0.1:25443"]}, "trustDomain": "us-1.example"}}
            },
            "policies": {
                "residency": {"eu-only": {"apiVersion": "causeway.dev/v1", "kind": "ResidencyPolicy", "metadata": {"name": "eu-only"},
                              "spec": {"services": ["demo/s0"], "allowedJurisdictions": ["eu"]}}},
                "traffic": {"t1": {"apiVersion": "causeway.dev/v1", "kind": "TrafficPolicy", "metadata": {"name": "t1"},
                           "spec": {"service": "demo/s1", "timeouts": {"connect": "2s", "request": "7s"}}}},
                "access": {"a1": {"apiVersion": "causeway.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "a1"},
                          "spec": {"services": ["demo/s2"], "allow": [{"clusters": ["us-1"]}]}}}
            }
        }))
        .unwrap()
    }

    fn walk_export(cluster: &str, service: &str, weight: u32, grpc: bool) -> ServiceExport {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "causeway.dev/v1", "kind": "ServiceExport",
            "metadata": {"name": service, "namespace": "demo", "cluster": cluster},
            "spec": {"ports": [{"name": "p", "port": 8080 + weight % 3, "appProtocol": if grpc { "grpc" } else { "http" }}],
                     "weight": weight, "endpoints": [{"zone": "z", "ready": weight % 4}]}
        }))
        .unwrap()
    }

    /// The incremental path (`next`) answers exactly like a full build after
    /// every step of a random walk of export changes (with an occasional
    /// policy or cluster change, which takes the full path), and shares the
    /// routes of services that did not change.
    #[test]
    fn next_matches_a_full_build_over_a_random_walk() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let local = ClusterConfig::new(
            "eu-1".parse().unwrap(),
            causeway_trust::TrustDomain::new("eu-1.example").unwrap(),
        );
        let mut catalog = walk_catalog();
        let mut state = CatalogState::build(catalog.clone(), &local);
        let clusters = ["eu-1", "eu-2", "us-1", "gone-1"];
        let mut shared_checks = 0;
        for step in 0..400u64 {
            catalog.revision += 1;
            let service = format!("s{}", rng.random_range(0..6));
            let cluster = clusters[rng.random_range(0..clusters.len())];
            match rng.random_range(0..10) {
                0..=5 => {
                    let e = walk_export(
                        cluster,
                        &service,
                        rng.random_range(0..5),
                        rng.random_bool(0.3),
                    );
                    catalog.exports.insert(e.key(), e);
                }
                6..=8 => {
                    let e = walk_export(cluster, &service, 0, false);
                    catalog.exports.remove(&e.key());
                }
                _ if step % 2 == 0 => {
                    let key = catalog.policies.traffic.keys().next().cloned().unwrap();
                    let p = catalog.policies.traffic.get_mut(&key).unwrap();
                    p.spec.timeouts.request += Duration::from_secs(1);
                }
                _ => {
                    let key = catalog.clusters.keys().next().cloned().unwrap();
                    let c = catalog.clusters.get_mut(&key).unwrap();
                    c.spec.zone = format!("zone-{step}");
                }
            }
            let arc = Arc::new(catalog.clone());
            let next = state.next(Arc::clone(&arc), &local);
            let full = CatalogState::build(arc, &local);
            assert_eq!(observable(&next), observable(&full), "step {step}");
            // Routes of services whose exports did not change are shared.
            if let Some(changed) = changed_services(&state.catalog, &next.catalog) {
                for s in next.routing.services.iter() {
                    let unchanged = !changed.iter().any(|c| {
                        c.namespace.as_str() == &*s.namespace && c.name.as_str() == &*s.name
                    });
                    if unchanged {
                        let old = state.routing.service(&s.namespace, &s.name).unwrap();
                        assert!(std::ptr::eq(old, &**s), "step {step}: {} rebuilt", s.name);
                        shared_checks += 1;
                    }
                }
            }
            state = next;
        }
        assert!(shared_checks > 500, "{shared_checks}");
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
