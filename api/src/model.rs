//! The Causeway data model (API group `causeway.dev/v1`).
//!
//! Resources are Kubernetes-shaped JSON documents
//! `{apiVersion, kind, metadata, spec, status?}`, strict (unknown fields are
//! rejected) and camelCase. Names are validated when parsed. See
//! [`decode`] / [`decode_resource`] for decoding with the path of the
//! offending field.

mod bundle;
mod cluster;
mod condition;
mod export;
pub mod keys;
mod meta;
mod names;
pub mod policy;
mod resource;
mod service_import;
mod snapshot;

pub use bundle::{TrustBundle, TrustBundleSpec};
pub use cluster::{Cluster, ClusterSpec, ClusterStatus, GatewaySpec, HostPort};
pub use condition::{
    Condition, ConditionStatus, ConditionType, find_condition, reason, set_condition,
};
pub use export::{
    ExportKey, Protocol, ServiceExport, ServiceExportSpec, ServiceExportStatus, ServicePort,
    ServiceType, ZoneEndpoints,
};
pub use keys::{DEFAULT_PREFIX, KeyLayout, ParsedKey, parse_relative_key, relative_key};
pub use meta::{
    API_VERSION, AccessPolicyKind, ApiVersion, BundleMeta, ClusterKind, ClusterMeta, ExportMeta,
    ExportPolicyKind, ImportMeta, PolicyMeta, ResidencyPolicyKind, Revision, ServiceExportKind,
    ServiceImportKind, Timestamp, TrafficPolicyKind, TrustBundleKind, resource_version,
};
pub use names::{
    ClusterId, NameError, Namespace, PolicyName, ServiceName, ServiceRef, TrustDomainName,
    is_dns_label,
};
pub use policy::{
    AccessPolicy, AccessPolicySpec, AccessRule, Caller, CircuitBreaker, ExportPolicy,
    ExportPolicySpec, NamespacePattern, OidcIssuer, OnUnverified, OutlierDetection, Percent,
    PolicyKind, RateLimit, Ratio, RequestClassification, ResidencyPolicy, ResidencyPolicySpec,
    RetryCondition, RetryPolicy, RollbackGuard, ServicePattern, ServiceSelector,
    SuccessRateEjection, Timeouts, TrafficPolicy, TrafficPolicySpec, export_allowed,
};
pub use resource::{DecodeError, Kind, ObjectRef, Resource, decode, decode_resource, decode_value};
pub use service_import::{ImportCluster, ServiceImport, ServiceImportSpec, ServiceImportStatus};
pub use snapshot::{Applied, CatalogEvent, CatalogSnapshot, PolicySet};

#[cfg(test)]
mod tests;
