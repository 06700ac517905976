//! The derived, read-only `ServiceImport` resource.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::condition::Condition;
use super::export::{ServicePort, ServiceType, SessionAffinity, ZoneEndpoints};
use super::meta::{ApiVersion, ImportMeta, ServiceImportKind};
use super::names::{ClusterId, ServiceRef};

/// A service as seen by the whole cluster set: the merge of every cluster's
/// export of the same `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceImport {
    /// Always `causeway.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `ServiceImport`.
    pub kind: ServiceImportKind,
    /// Namespace and name.
    pub metadata: ImportMeta,
    /// Merged ports, type and the exporting clusters.
    pub spec: ServiceImportSpec,
    /// Conditions of the merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceImportStatus>,
}

impl ServiceImport {
    /// The `namespace/name` of the service.
    pub fn service(&self) -> ServiceRef {
        ServiceRef::new(self.metadata.namespace.clone(), self.metadata.name.clone())
    }
}

/// The merged view of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceImportSpec {
    /// The union of the exported ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// The type of the oldest export.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Every exporting cluster with its locality, weight and capacity.
    #[serde(default)]
    pub clusters: Vec<ImportCluster>,
    /// Labels from the oldest export.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations from the oldest export.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Session affinity of the oldest export.
    #[serde(default, skip_serializing_if = "SessionAffinity::is_none")]
    pub session_affinity: SessionAffinity,
    /// Its client IP timeout, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_timeout_seconds: Option<u32>,
}

/// One cluster that serves an imported service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportCluster {
    /// The exporting cluster.
    pub cluster: ClusterId,
    /// Its region (empty when the cluster record is missing).
    #[serde(default)]
    pub region: String,
    /// Its default zone.
    #[serde(default)]
    pub zone: String,
    /// Its residency labels.
    #[serde(default)]
    pub jurisdictions: Vec<String>,
    /// The export's weight.
    pub weight: u32,
    /// Total ready backends.
    pub ready: u32,
    /// Ready backends per zone.
    #[serde(default)]
    pub endpoints: Vec<ZoneEndpoints>,
    /// True when the cluster's heartbeat was lost (or it is unknown).
    #[serde(default)]
    pub stale: bool,
}

/// The observed state of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceImportStatus {
    /// Conditions (`Ready`, `Conflict`).
    #[serde(default)]
    pub conditions: Vec<Condition>,
}
