//! ServiceImport derivation (MCS / KEP-1645), a pure function.
//!
//! - Namespace sameness: every export of the same `namespace/name` is one
//!   service.
//! - Conflicts are resolved by the oldest export (by `createdAt`, exports
//!   without a creation time count as newest, ties broken by cluster id).
//! - Ports are the union by port number; the same port number with a
//!   different protocol is a `PortConflict` on the younger export, and the
//!   oldest export's protocol is used.
//! - The type is the oldest export's; disagreeing exports get
//!   `Conflict=True` with reason `TypeConflict`.
//! - Session affinity (type and client IP timeout) is the oldest export's;
//!   disagreeing exports get `Conflict=True` with reason
//!   `SessionAffinityConflict`.
//! - Every export gets `Valid=True (Valid)` and `Ready=True (Exported)`;
//!   exports without a conflict get `Conflict=False (NoConflicts)`.

use std::collections::BTreeMap;

use crate::model::{
    ApiVersion, Cluster, ClusterId, Condition, ConditionStatus, ConditionType, ExportKey,
    ImportCluster, ImportMeta, ServiceExport, ServiceImport, ServiceImportKind, ServiceImportSpec,
    ServiceImportStatus, ServicePort, reason,
};

/// Conditions computed for each export, by export key.
pub type ExportConditions = Vec<(ExportKey, Vec<Condition>)>;

/// Derives the import of one service from its exports (all of the same
/// `namespace/name`; exports of other services than the oldest one's are
/// ignored) and the cluster records. Returns `None` when there are no
/// exports. `cluster_of` looks a cluster record up by id.
///
/// An [`ImportCluster`] is `stale` when its export is stale, when its
/// cluster is not connected, or when the cluster record is missing.
pub fn derive_import<'c>(
    exports: &[ServiceExport],
    cluster_of: impl Fn(&ClusterId) -> Option<&'c Cluster>,
) -> Option<(ServiceImport, ExportConditions)> {
    let mut sorted: Vec<&ServiceExport> = exports.iter().collect();
    sorted.sort_by(|a, b| age_key(a).cmp(&age_key(b)));
    let oldest = *sorted.first()?;
    let service = oldest.service();
    sorted.retain(|e| e.service() == service);
    let total = sorted.len();
    let oldest_cluster = &oldest.metadata.cluster;

    // Ports: union by number, oldest first; a different protocol on the same
    // number is a conflict of the younger export.
    let mut ports: BTreeMap<u16, ServicePort> = BTreeMap::new();
    let mut port_conflicts: BTreeMap<&ClusterId, Vec<(u16, String, String)>> = BTreeMap::new();
    for e in &sorted {
        for p in &e.spec.ports {
            match ports.get(&p.port) {
                None => {
                    ports.insert(p.port, p.clone());
                }
                Some(existing) if existing.protocol != p.protocol => {
                    port_conflicts
                        .entry(&e.metadata.cluster)
                        .or_default()
                        .push((
                            p.port,
                            p.protocol.to_string(),
                            existing.protocol.to_string(),
                        ));
                }
                Some(_) => {}
            }
        }
    }

    let type_ = oldest.spec.type_;
    let type_disagree = sorted.iter().filter(|e| e.spec.type_ != type_).count();
    let port_disagree = port_conflicts.len();
    let affinity = (
        oldest.spec.session_affinity,
        oldest.spec.session_affinity_timeout_seconds,
    );
    let affinity_of = |e: &ServiceExport| {
        (
            e.spec.session_affinity,
            e.spec.session_affinity_timeout_seconds,
        )
    };
    let affinity_disagree = sorted.iter().filter(|e| affinity_of(e) != affinity).count();
    let affinity_text = |(a, t): (crate::model::SessionAffinity, Option<u32>)| match t {
        Some(t) => format!("{a} (timeoutSeconds {t})"),
        None => a.to_string(),
    };

    let mut conditions = Vec::with_capacity(total);
    let mut import_conflict: Option<Condition> = None;
    for e in &sorted {
        let mut messages = Vec::new();
        let mut conflict_reason = None;
        if e.spec.type_ != type_ {
            conflict_reason = Some(reason::TYPE_CONFLICT);
            messages.push(format!(
                "Conflicting type. Using \"{type_}\" from oldest service export in \"{oldest_cluster}\". {type_disagree}/{total} clusters disagree."
            ));
        }
        if let Some(conflicts) = port_conflicts.get(&e.metadata.cluster) {
            conflict_reason.get_or_insert(reason::PORT_CONFLICT);
            for (port, proto, theirs) in conflicts {
                messages.push(format!(
                    "Conflicting port {port}: protocol {proto} differs. Using \"{theirs}\" from oldest service export in \"{oldest_cluster}\". {port_disagree}/{total} clusters disagree."
                ));
            }
        }
        if affinity_of(e) != affinity {
            conflict_reason.get_or_insert(reason::SESSION_AFFINITY_CONFLICT);
            messages.push(format!(
                "Conflicting session affinity. Using \"{}\" from oldest service export in \"{oldest_cluster}\". {affinity_disagree}/{total} clusters disagree.",
                affinity_text(affinity)
            ));
        }
        let conflict = match conflict_reason {
            Some(r) => {
                let c = Condition::new(
                    ConditionType::Conflict,
                    ConditionStatus::True,
                    r,
                    messages.join(" "),
                );
                import_conflict.get_or_insert_with(|| c.clone());
                c
            }
            None => Condition::new(
                ConditionType::Conflict,
                ConditionStatus::False,
                reason::NO_CONFLICTS,
                "",
            ),
        };
        conditions.push((
            e.key(),
            vec![
                Condition::new(
                    ConditionType::Valid,
                    ConditionStatus::True,
                    reason::VALID,
                    "",
                ),
                Condition::new(
                    ConditionType::Ready,
                    ConditionStatus::True,
                    reason::EXPORTED,
                    "",
                ),
                conflict,
            ],
        ));
    }

    let mut import_clusters: Vec<ImportCluster> = sorted
        .iter()
        .map(|e| {
            let cluster = cluster_of(&e.metadata.cluster);
            let connected = cluster
                .map(|c| c.status.as_ref().is_none_or(|s| s.connected))
                .unwrap_or(false);
            let stale = e.status.as_ref().is_some_and(|s| s.stale) || !connected;
            ImportCluster {
                cluster: e.metadata.cluster.clone(),
                region: cluster.map(|c| c.spec.region.clone()).unwrap_or_default(),
                zone: cluster.map(|c| c.spec.zone.clone()).unwrap_or_default(),
                jurisdictions: cluster
                    .map(|c| c.spec.jurisdictions.clone())
                    .unwrap_or_default(),
                weight: e.spec.weight,
                ready: e.spec.ready(),
                endpoints: e.spec.endpoints.clone(),
                stale,
            }
        })
        .collect();
    import_clusters.sort_by(|a, b| a.cluster.cmp(&b.cluster));

    let resource_version = sorted
        .iter()
        .filter_map(|e| e.metadata.resource_version)
        .max();
    let created_at = sorted.iter().filter_map(|e| e.metadata.created_at).min();

    let import = ServiceImport {
        api_version: ApiVersion,
        kind: ServiceImportKind,
        metadata: ImportMeta {
            name: service.name.clone(),
            namespace: service.namespace.clone(),
            resource_version,
            created_at,
            labels: Default::default(),
        },
        spec: ServiceImportSpec {
            ports: ports.into_values().collect(),
            type_,
            clusters: import_clusters,
            labels: oldest.spec.exported_labels.clone(),
            annotations: oldest.spec.exported_annotations.clone(),
            session_affinity: affinity.0,
            session_affinity_timeout_seconds: affinity.1,
        },
        status: Some(ServiceImportStatus {
            conditions: vec![
                Condition::new(
                    ConditionType::Ready,
                    ConditionStatus::True,
                    reason::EXPORTED,
                    "",
                ),
                import_conflict.unwrap_or_else(|| {
                    Condition::new(
                        ConditionType::Conflict,
                        ConditionStatus::False,
                        reason::NO_CONFLICTS,
                        "",
                    )
                }),
            ],
        }),
    };
    Some((import, conditions))
}

/// Sort key for "oldest first": creation time (missing = newest), then
/// cluster id.
fn age_key(e: &ServiceExport) -> (bool, Option<time::OffsetDateTime>, &ClusterId) {
    (
        e.metadata.created_at.is_none(),
        e.metadata.created_at,
        &e.metadata.cluster,
    )
}

#[cfg(test)]
mod tests;
