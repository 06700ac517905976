//! Read-time views: cluster connectivity, export conditions and staleness,
//! and the derived ServiceImports.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use super::Catalog;
use super::heartbeat::LastSeen;
use crate::server::error::ApiError;
use causeway_api::import::derive_import;
use causeway_api::model::{
    Cluster, ClusterId, ClusterStatus, Condition, ConditionStatus, ConditionType, ExportPolicy,
    ParsedKey, PolicyKind, Resource, ServiceExport, ServiceExportStatus, ServiceImport, ServiceRef,
    export_allowed, reason,
};

/// Which clusters heartbeat, and when they last did.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    /// Clusters whose heartbeat lease is alive.
    pub connected: BTreeSet<ClusterId>,
    /// The last heartbeat of each cluster.
    pub last_seen: BTreeMap<ClusterId, OffsetDateTime>,
}

impl Liveness {
    /// The status of a cluster.
    pub fn status_of(&self, id: &ClusterId) -> ClusterStatus {
        ClusterStatus {
            connected: self.connected.contains(id),
            last_heartbeat: self.last_seen.get(id).copied(),
        }
    }
}

impl Catalog {
    /// Reads the liveness of every cluster.
    pub async fn liveness(&self) -> Result<Liveness, ApiError> {
        let mut l = Liveness::default();
        for kv in self
            .range_raw(&self.keys.heartbeats(), crate::store::Page::all())
            .await?
            .kvs
        {
            if let Some(ParsedKey::Heartbeat(id)) = self.keys.parse(&kv.key) {
                l.connected.insert(id);
            }
        }
        let prefix = self.last_seen_prefix();
        for kv in self
            .range_raw(&prefix, crate::store::Page::all())
            .await?
            .kvs
        {
            let Some(Ok(id)) = kv.key.strip_prefix(&prefix).map(ClusterId::new) else {
                continue;
            };
            if let Ok(seen) = serde_json::from_slice::<LastSeen>(&kv.value) {
                l.last_seen.insert(id, seen.last_heartbeat);
            }
        }
        Ok(l)
    }

    /// Whether the exports of `cluster` are withdrawn from imports
    /// (`staleAfter` elapsed since its last heartbeat while disconnected).
    pub(crate) fn withdrawn(&self, live: &Liveness, cluster: &ClusterId) -> bool {
        let Some(after) = self.stale_after else {
            return false;
        };
        if live.connected.contains(cluster) {
            return false;
        }
        match live.last_seen.get(cluster) {
            Some(t) => self.now() - *t > after,
            None => true,
        }
    }

    /// Every cluster, with its status.
    pub async fn clusters(
        &self,
        live: &Liveness,
    ) -> Result<BTreeMap<ClusterId, Cluster>, ApiError> {
        let mut out = BTreeMap::new();
        for s in self.list_all(&self.keys.clusters()).await? {
            if let Resource::Cluster(mut c) = s.resource {
                c.status = Some(live.status_of(c.id()));
                out.insert(c.id().clone(), c);
            }
        }
        Ok(out)
    }

    /// Every export (as stored).
    pub async fn all_exports(&self) -> Result<Vec<ServiceExport>, ApiError> {
        Ok(self
            .list_all(&self.keys.exports())
            .await?
            .into_iter()
            .filter_map(|s| match s.resource {
                Resource::ServiceExport(e) => Some(e),
                _ => None,
            })
            .collect())
    }

    /// The exports of one service (as stored).
    pub async fn exports_of(&self, service: &ServiceRef) -> Result<Vec<ServiceExport>, ApiError> {
        Ok(self
            .list_all(&self.keys.exports_of_service(service))
            .await?
            .into_iter()
            .filter_map(|s| match s.resource {
                Resource::ServiceExport(e) => Some(e),
                _ => None,
            })
            .collect())
    }

    /// Every ExportPolicy.
    pub async fn export_policies(&self) -> Result<Vec<ExportPolicy>, ApiError> {
        Ok(self
            .list_all(&self.keys.policies(PolicyKind::Export))
            .await?
            .into_iter()
            .filter_map(|s| match s.resource {
                Resource::ExportPolicy(p) => Some(p),
                _ => None,
            })
            .collect())
    }

    /// Fills the status of exports that all belong to one service: MCS
    /// conditions computed across those the ExportPolicies allow, and
    /// `stale`. An export the policies forbid (written before the policy
    /// that forbids it) is `Valid=False` / `Ready=False` with reason
    /// `ExportPolicyDenied`: it is not part of the import.
    pub fn decorate_exports(
        &self,
        service_exports: &[ServiceExport],
        clusters: &BTreeMap<ClusterId, Cluster>,
        live: &Liveness,
        policies: &[ExportPolicy],
        targets: &mut [ServiceExport],
    ) {
        let allowed: Vec<ServiceExport> = service_exports
            .iter()
            .filter(|e| allowed_export(policies, e))
            .cloned()
            .collect();
        let conditions = derive_import(&allowed, |id| clusters.get(id))
            .map(|(_, c)| c)
            .unwrap_or_default();
        for t in targets {
            let key = t.key();
            let conds = if allowed_export(policies, t) {
                conditions
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, c)| c.clone())
                    .unwrap_or_default()
            } else {
                denied_conditions(t)
            };
            t.status = Some(ServiceExportStatus {
                conditions: conds,
                stale: !live.connected.contains(&t.metadata.cluster),
            });
        }
    }

    /// Derives the import of one service from its exports that are not
    /// withdrawn (stale, or forbidden by an ExportPolicy).
    pub fn derive(
        &self,
        exports: &[ServiceExport],
        clusters: &BTreeMap<ClusterId, Cluster>,
        live: &Liveness,
        policies: &[ExportPolicy],
    ) -> Option<ServiceImport> {
        let mut exports: Vec<ServiceExport> = exports.to_vec();
        exports
            .retain(|e| !self.withdrawn(live, &e.metadata.cluster) && allowed_export(policies, e));
        for e in &mut exports {
            e.status = Some(ServiceExportStatus {
                conditions: Vec::new(),
                stale: !live.connected.contains(&e.metadata.cluster),
            });
        }
        derive_import(&exports, |id| clusters.get(id)).map(|(i, _)| i)
    }

    /// Every import, by service.
    pub async fn imports(&self) -> Result<BTreeMap<ServiceRef, ServiceImport>, ApiError> {
        let live = self.liveness().await?;
        let clusters = self.clusters(&live).await?;
        let policies = self.export_policies().await?;
        let mut by_service: BTreeMap<ServiceRef, Vec<ServiceExport>> = BTreeMap::new();
        for e in self.all_exports().await? {
            by_service.entry(e.service()).or_default().push(e);
        }
        Ok(by_service
            .into_iter()
            .filter_map(|(svc, exports)| {
                self.derive(&exports, &clusters, &live, &policies)
                    .map(|i| (svc, i))
            })
            .collect())
    }
}

/// Whether the ExportPolicies allow `e`.
fn allowed_export(policies: &[ExportPolicy], e: &ServiceExport) -> bool {
    export_allowed(policies, e.metadata.namespace.as_str(), &e.metadata.cluster)
}

/// The MCS conditions of an export an ExportPolicy forbids.
fn denied_conditions(e: &ServiceExport) -> Vec<Condition> {
    let message = format!(
        "no ExportPolicy allows cluster {} to export in namespace {}; withdrawn from the import",
        e.metadata.cluster, e.metadata.namespace
    );
    vec![
        Condition::new(
            ConditionType::Valid,
            ConditionStatus::False,
            reason::EXPORT_POLICY_DENIED,
            &message,
        ),
        Condition::new(
            ConditionType::Ready,
            ConditionStatus::False,
            reason::EXPORT_POLICY_DENIED,
            &message,
        ),
    ]
}
