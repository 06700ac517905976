//! The `ServiceExport` resource: one cluster's export of a service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::condition::Condition;
use super::meta::{ApiVersion, ExportMeta, ServiceExportKind};
use super::names::{ClusterId, Namespace, ServiceName, ServiceRef};

/// A service exported by one cluster, keyed by (namespace, name, cluster).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceExport {
    /// Always `causeway.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `ServiceExport`.
    pub kind: ServiceExportKind,
    /// Namespace, name and exporting cluster.
    pub metadata: ExportMeta,
    /// What is exported.
    pub spec: ServiceExportSpec,
    /// MCS conditions, written by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceExportStatus>,
}

impl ServiceExport {
    /// Builds an export with empty metadata and no status.
    pub fn new(
        namespace: Namespace,
        name: ServiceName,
        cluster: ClusterId,
        spec: ServiceExportSpec,
    ) -> Self {
        Self {
            api_version: ApiVersion,
            kind: ServiceExportKind,
            metadata: ExportMeta::new(name, namespace, cluster),
            spec,
            status: None,
        }
    }

    /// The `namespace/name` of the exported service.
    pub fn service(&self) -> ServiceRef {
        ServiceRef::new(self.metadata.namespace.clone(), self.metadata.name.clone())
    }

    /// The (namespace, name, cluster) key of this export.
    pub fn key(&self) -> ExportKey {
        ExportKey {
            service: self.service(),
            cluster: self.metadata.cluster.clone(),
        }
    }
}

/// The identity of a service export: the service and the exporting cluster.
/// Serialized as the string `namespace/name/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExportKey {
    /// The exported service.
    pub service: ServiceRef,
    /// The exporting cluster.
    pub cluster: ClusterId,
}

impl std::fmt::Display for ExportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.service, self.cluster)
    }
}

impl std::str::FromStr for ExportKey {
    type Err = super::names::NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((svc, cluster)) = s.rsplit_once('/') else {
            return Err(super::names::NameError {
                what: "export key",
                value: s.to_owned(),
                rule: "must have the form `namespace/name/cluster`".to_owned(),
            });
        };
        Ok(Self {
            service: svc.parse()?,
            cluster: cluster.parse()?,
        })
    }
}

impl TryFrom<String> for ExportKey {
    type Error = super::names::NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ExportKey> for String {
    fn from(k: ExportKey) -> String {
        k.to_string()
    }
}

/// What a cluster exports for a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceExportSpec {
    /// The exported ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// `ClusterSetIP` (default) or `Headless`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Ready backend counts per zone.
    #[serde(default)]
    pub endpoints: Vec<ZoneEndpoints>,
    /// Relative weight of this cluster's backends (default 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Labels copied to the derived import.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_labels: BTreeMap<String, String>,
    /// Annotations copied to the derived import.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_annotations: BTreeMap<String, String>,
    /// The Service's session affinity (`None` or `ClientIP`); the oldest
    /// export's is the import's, a differing one is a
    /// `SessionAffinityConflict`.
    #[serde(default, skip_serializing_if = "SessionAffinity::is_none")]
    pub session_affinity: SessionAffinity,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` of a `ClientIP`
    /// service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_affinity_timeout_seconds: Option<u32>,
}

/// Session affinity of a service (`core/v1` `ServiceAffinity`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum SessionAffinity {
    /// No affinity (default).
    #[default]
    None,
    /// Requests from one client IP go to the same backend.
    #[serde(rename = "ClientIP")]
    ClientIp,
}

impl SessionAffinity {
    /// Whether this is the default, `None`.
    pub fn is_none(&self) -> bool {
        *self == SessionAffinity::None
    }
}

impl std::fmt::Display for SessionAffinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionAffinity::None => "None",
            SessionAffinity::ClientIp => "ClientIP",
        })
    }
}

impl Default for ServiceExportSpec {
    fn default() -> Self {
        Self {
            ports: Vec::new(),
            type_: ServiceType::default(),
            endpoints: Vec::new(),
            weight: default_weight(),
            exported_labels: BTreeMap::new(),
            exported_annotations: BTreeMap::new(),
            session_affinity: SessionAffinity::None,
            session_affinity_timeout_seconds: None,
        }
    }
}

impl ServiceExportSpec {
    /// The total number of ready backends over all zones.
    pub fn ready(&self) -> u32 {
        self.endpoints
            .iter()
            .fold(0u32, |a, e| a.saturating_add(e.ready))
    }

    /// Checks `exportedLabels` and `exportedAnnotations` with the Kubernetes
    /// label and annotation rules (they become a `ServiceImport`'s metadata
    /// in every importing cluster): the offending field (`exportedLabels` or
    /// `exportedAnnotations`, relative to the spec) and what is wrong.
    pub fn check_exported_metadata(&self) -> Result<(), (&'static str, String)> {
        super::kmeta::check_labels(&self.exported_labels)
            .map_err(|(_, m)| ("exportedLabels", m))?;
        super::kmeta::check_annotations(&self.exported_annotations)
            .map_err(|(_, m)| ("exportedAnnotations", m))?;
        Ok(())
    }
}

fn default_weight() -> u32 {
    100
}

/// One exported port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    /// The port name (required by Kubernetes when there are several ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The transport protocol (default TCP).
    #[serde(default)]
    pub protocol: Protocol,
    /// The application protocol (`http`, `h2c`, `grpc`, `tcp`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The port number.
    pub port: u16,
}

/// A transport protocol.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// TCP (default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

/// The MCS service type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ServiceType {
    /// One virtual IP for the cluster set (default).
    #[default]
    ClusterSetIP,
    /// No virtual IP; backends are addressed directly.
    Headless,
}

impl std::fmt::Display for ServiceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServiceType::ClusterSetIP => "ClusterSetIP",
            ServiceType::Headless => "Headless",
        })
    }
}

/// Ready backends in one zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneEndpoints {
    /// The zone (e.g. `eu-west-1a`).
    pub zone: String,
    /// The number of ready backends in that zone.
    pub ready: u32,
}

/// The observed state of an export.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceExportStatus {
    /// MCS conditions `Valid`, `Ready`, `Conflict`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// True when the exporting cluster's heartbeat was lost: routing treats
    /// its endpoints as last known, not live.
    #[serde(default)]
    pub stale: bool,
}
