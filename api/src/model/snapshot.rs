//! The catalog snapshot consumed by gateways, and pure application of watch
//! events to it.

use imbl::OrdMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bundle::TrustBundle;
use super::cluster::Cluster;
use super::export::{ExportKey, ServiceExport};
use super::meta::Revision;
use super::names::{ClusterId, PolicyName, ServiceRef, TrustDomainName};
use super::policy::{
    AccessPolicy, ExportPolicy, PolicyKind, ResidencyPolicy, TrafficPolicy, export_allowed,
};
use super::resource::{ObjectRef, Resource};
use super::service_import::ServiceImport;
use crate::import::derive_import;

/// Every policy, grouped by kind and keyed by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySet {
    /// Residency policies.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, ResidencyPolicy>)]
    pub residency: OrdMap<PolicyName, ResidencyPolicy>,
    /// Traffic policies.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, TrafficPolicy>)]
    pub traffic: OrdMap<PolicyName, TrafficPolicy>,
    /// Access policies.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, AccessPolicy>)]
    pub access: OrdMap<PolicyName, AccessPolicy>,
    /// Export (ownership) policies.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, ExportPolicy>)]
    pub export: OrdMap<PolicyName, ExportPolicy>,
}

/// The whole catalog at one etcd revision. Maps are keyed by the resource
/// identity (`cluster`, `ns/name/cluster`, `ns/name`, trust domain, policy
/// name), serialized as JSON object keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogSnapshot {
    /// The etcd revision the snapshot reflects.
    pub revision: Revision,
    /// Clusters by id.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Cluster>)]
    pub clusters: OrdMap<ClusterId, Cluster>,
    /// Exports by `namespace/name/cluster`.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, ServiceExport>)]
    pub exports: OrdMap<ExportKey, ServiceExport>,
    /// Exports the current ExportPolicies forbid (written before the policy
    /// that forbids them), by `namespace/name/cluster`: kept out of
    /// `exports` and of the imports, so nothing routes to them, and moved
    /// back when a policy change allows them again.
    #[serde(default, skip_serializing_if = "OrdMap::is_empty")]
    #[schema(value_type = BTreeMap<String, ServiceExport>)]
    pub withheld: OrdMap<ExportKey, ServiceExport>,
    /// Imports by `namespace/name`, derived from the exports.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, ServiceImport>)]
    pub imports: OrdMap<ServiceRef, ServiceImport>,
    /// Trust bundles by trust domain.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, TrustBundle>)]
    pub bundles: OrdMap<TrustDomainName, TrustBundle>,
    /// Policies by kind.
    #[serde(default)]
    pub policies: PolicySet,
}

/// One change of the catalog, as carried by the watch stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum CatalogEvent {
    /// A resource was created or updated.
    Put {
        /// The etcd revision of the change.
        revision: Revision,
        /// The new state.
        resource: Box<Resource>,
    },
    /// A resource was deleted.
    Delete {
        /// The etcd revision of the change.
        revision: Revision,
        /// What was deleted.
        #[schema(value_type = Object)]
        object: ObjectRef,
    },
}

impl CatalogEvent {
    /// The revision of the change.
    pub fn revision(&self) -> Revision {
        match self {
            CatalogEvent::Put { revision, .. } | CatalogEvent::Delete { revision, .. } => *revision,
        }
    }
}

/// What [`CatalogSnapshot::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The snapshot changed.
    Changed,
    /// The event is older than the snapshot and was ignored.
    Stale,
}

impl CatalogSnapshot {
    /// Builds a snapshot from a full listing at `revision`, deriving the
    /// imports.
    pub fn from_resources(
        revision: Revision,
        resources: impl IntoIterator<Item = Resource>,
    ) -> Self {
        let mut s = Self {
            revision,
            ..Self::default()
        };
        for r in resources {
            s.insert(r);
        }
        s.repartition();
        s.rederive_all();
        s
    }

    /// Applies one watch event. Events older than the snapshot's revision are
    /// ignored (several events may share one revision, so an event at the
    /// snapshot's revision is applied). Imports are re-derived for every
    /// service touched by an export or cluster change; explicit
    /// `ServiceImport` events replace the derived import.
    pub fn apply(&mut self, event: &CatalogEvent) -> Applied {
        if event.revision() < self.revision {
            return Applied::Stale;
        }
        self.revision = event.revision();
        match event {
            CatalogEvent::Put { resource, .. } => {
                let r = (**resource).clone();
                match &r {
                    Resource::ServiceExport(e) => {
                        let svc = e.service();
                        self.insert(r);
                        self.rederive(&svc);
                    }
                    Resource::Cluster(c) => {
                        let id = c.id().clone();
                        self.insert(r);
                        self.rederive_cluster(&id);
                    }
                    Resource::ExportPolicy(_) => {
                        self.insert(r);
                        self.reapply_export_policies();
                    }
                    _ => self.insert(r),
                }
            }
            CatalogEvent::Delete { object, .. } => match object {
                ObjectRef::Cluster { name } => {
                    self.clusters.remove(name);
                    self.rederive_cluster(name);
                }
                ObjectRef::ServiceExport { key } => {
                    self.exports.remove(key);
                    self.withheld.remove(key);
                    self.rederive(&key.service);
                }
                ObjectRef::ServiceImport { service } => {
                    self.imports.remove(service);
                }
                ObjectRef::TrustBundle { name } => {
                    self.bundles.remove(name);
                }
                ObjectRef::Policy { policy, name } => {
                    match policy {
                        PolicyKind::Residency => self.policies.residency.remove(name).map(drop),
                        PolicyKind::Traffic => self.policies.traffic.remove(name).map(drop),
                        PolicyKind::Access => self.policies.access.remove(name).map(drop),
                        PolicyKind::Export => self.policies.export.remove(name).map(drop),
                    };
                    if *policy == PolicyKind::Export {
                        self.reapply_export_policies();
                    }
                }
            },
        }
        Applied::Changed
    }

    /// The exports of one service.
    pub fn exports_of(&self, service: &ServiceRef) -> Vec<&ServiceExport> {
        // "0" is the smallest valid cluster id, so this starts at the
        // service's first export.
        let Ok(min) = ClusterId::new("0") else {
            return Vec::new();
        };
        let start = ExportKey {
            service: service.clone(),
            cluster: min,
        };
        self.exports
            .range(start..)
            .take_while(|(k, _)| &k.service == service)
            .map(|(_, e)| e)
            .collect()
    }

    fn insert(&mut self, r: Resource) {
        match r {
            Resource::Cluster(c) => {
                self.clusters.insert(c.id().clone(), c);
            }
            Resource::ServiceExport(e) => {
                let key = e.key();
                if self.export_allowed(&e) {
                    self.withheld.remove(&key);
                    self.exports.insert(key, e);
                } else {
                    self.exports.remove(&key);
                    self.withheld.insert(key, e);
                }
            }
            Resource::ServiceImport(i) => {
                self.imports.insert(i.service(), i);
            }
            Resource::TrustBundle(b) => {
                self.bundles.insert(b.trust_domain().clone(), b);
            }
            Resource::ResidencyPolicy(p) => {
                self.policies.residency.insert(p.name().clone(), p);
            }
            Resource::TrafficPolicy(p) => {
                self.policies.traffic.insert(p.name().clone(), p);
            }
            Resource::AccessPolicy(p) => {
                self.policies.access.insert(p.name().clone(), p);
            }
            Resource::ExportPolicy(p) => {
                self.policies.export.insert(p.name().clone(), p);
            }
        }
    }

    /// Whether the ExportPolicies allow `e`.
    pub fn export_allowed(&self, e: &ServiceExport) -> bool {
        export_allowed(
            self.policies.export.values(),
            e.metadata.namespace.as_str(),
            &e.metadata.cluster,
        )
    }

    /// Moves every export to `exports` or `withheld` as the policies say;
    /// returns the services whose exports moved.
    fn repartition(&mut self) -> std::collections::BTreeSet<ServiceRef> {
        let mut moved = std::collections::BTreeSet::new();
        let denied: Vec<ExportKey> = self
            .exports
            .values()
            .filter(|e| !self.export_allowed(e))
            .map(ServiceExport::key)
            .collect();
        let allowed: Vec<ExportKey> = self
            .withheld
            .values()
            .filter(|e| self.export_allowed(e))
            .map(ServiceExport::key)
            .collect();
        for k in denied {
            if let Some(e) = self.exports.remove(&k) {
                moved.insert(k.service.clone());
                self.withheld.insert(k, e);
            }
        }
        for k in allowed {
            if let Some(e) = self.withheld.remove(&k) {
                moved.insert(k.service.clone());
                self.exports.insert(k, e);
            }
        }
        moved
    }

    /// After an ExportPolicy change: withdraws the exports it now forbids,
    /// restores those it allows again, and re-derives their imports.
    fn reapply_export_policies(&mut self) {
        for s in self.repartition() {
            self.rederive(&s);
        }
    }

    fn rederive(&mut self, service: &ServiceRef) {
        let exports: Vec<ServiceExport> = self.exports_of(service).into_iter().cloned().collect();
        match derive_import(&exports, |id| self.clusters.get(id)) {
            Some((import, _)) => {
                self.imports.insert(service.clone(), import);
            }
            None => {
                self.imports.remove(service);
            }
        }
    }

    fn rederive_cluster(&mut self, cluster: &ClusterId) {
        let services: Vec<ServiceRef> = self
            .exports
            .keys()
            .filter(|k| &k.cluster == cluster)
            .map(|k| k.service.clone())
            .collect();
        for s in services {
            self.rederive(&s);
        }
    }

    fn rederive_all(&mut self) {
        let services: std::collections::BTreeSet<ServiceRef> =
            self.exports.keys().map(|k| k.service.clone()).collect();
        for s in services {
            self.rederive(&s);
        }
    }
}
