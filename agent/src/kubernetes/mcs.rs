//! The Multi-Cluster Services API types (`multicluster.x-k8s.io/v1alpha1`,
//! KEP-1645) and `ClusterProperty` (`about.k8s.io/v1alpha1`, KEP-2149) as
//! kube custom resources. The CRDs in `charts/causeway-crds` are generated
//! from these types (`causeway-crdgen`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Marks a service of this cluster for export to the cluster set
/// (`ServiceExport` has the name and namespace of the exported `Service`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1alpha1",
    kind = "ServiceExport",
    doc = "ServiceExport declares that the Service with the same name and namespace as this export should be consumable from other clusters.",
    plural = "serviceexports",
    shortname = "svcexport",
    shortname = "svcex",
    category = "multicluster",
    namespaced,
    status = "ServiceExportStatus",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportSpec {
    /// Labels to copy to the derived `ServiceImport`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_labels: BTreeMap<String, String>,
    /// Annotations to copy to the derived `ServiceImport`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_annotations: BTreeMap<String, String>,
}

/// The observed state of a `ServiceExport`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceExportStatus {
    /// `Valid`, `Ready` and `Conflict` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// A service imported from the cluster set (created by the agent).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "multicluster.x-k8s.io",
    version = "v1alpha1",
    kind = "ServiceImport",
    doc = "ServiceImport describes a service imported from clusters in a ClusterSet.",
    plural = "serviceimports",
    shortname = "svcim",
    shortname = "svcimport",
    category = "multicluster",
    namespaced,
    status = "ServiceImportStatus",
    printcolumn = r#"{"name":"Type","type":"string","description":"The type of this ServiceImport.","jsonPath":".spec.type"}"#,
    printcolumn = r#"{"name":"IP","type":"string","description":"The VIP for this ServiceImport.","jsonPath":".spec.ips"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportSpec {
    /// The union of the exported ports.
    #[schemars(extend("x-kubernetes-list-type" = "atomic"))]
    pub ports: Vec<ServicePort>,
    /// IP addresses of the service in this cluster (set by the DNS/IP allocator, if any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub ips: Vec<String>,
    /// `ClusterSetIP` or `Headless`.
    #[serde(rename = "type")]
    pub type_: ServiceImportType,
    /// `None` or `ClientIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity: Option<String>,
    /// Session affinity settings (`core/v1` `SessionAffinityConfig`:
    /// `clientIP.timeoutSeconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_config: Option<SessionAffinityConfig>,
    /// The IP families of the service (`IPv4`, `IPv6`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_families: Vec<String>,
}

/// The MCS service type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceImportType {
    /// A cluster-set virtual IP.
    #[default]
    ClusterSetIP,
    /// No virtual IP.
    Headless,
}

/// Session affinity settings: the `core/v1` type itself, so the wire
/// form (`clientIP`) is the Service's.
pub use k8s_openapi::api::core::v1::SessionAffinityConfig;

/// One port of an imported service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name (unique within the service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP` (default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The port number.
    pub port: i32,
}

/// The observed state of a `ServiceImport`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportStatus {
    /// The clusters that export the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["cluster"]))]
    pub clusters: Vec<ClusterStatus>,
    /// Conditions of the import (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// One exporting cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The cluster id.
    pub cluster: String,
}

/// A property of this cluster; `cluster.clusterset.k8s.io` holds its id.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "about.k8s.io",
    version = "v1alpha1",
    kind = "ClusterProperty",
    doc = "ClusterProperty is a resource provides a way to store identification related, cluster scoped information for multi-cluster tools.",
    plural = "clusterproperties"
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPropertySpec {
    /// The value of the property.
    pub value: String,
}

/// Name of the `ClusterProperty` holding the cluster id.
pub const CLUSTER_ID_PROPERTY: &str = "cluster.clusterset.k8s.io";
