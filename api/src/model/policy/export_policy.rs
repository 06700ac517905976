//! `ExportPolicy`: which clusters may export into which namespaces.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::selector::NamespacePattern;
use crate::model::{ClusterId, ExportPolicyKind};

super::policy_resource!(
    /// Namespace ownership. If any export policy covers a namespace, only the
    /// clusters listed by the covering policies may export services in it;
    /// namespaces covered by no export policy are open to every cluster.
    ExportPolicy,
    ExportPolicyKind,
    ExportPolicySpec
);

/// The namespaces and their owning clusters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportPolicySpec {
    /// Namespaces: exact names or prefixes ending in `*`.
    #[serde(default)]
    pub namespaces: Vec<NamespacePattern>,
    /// Clusters allowed to export in those namespaces.
    #[serde(default)]
    pub clusters: Vec<ClusterId>,
}

/// Whether `cluster` may export a service in `namespace` under `policies`.
pub fn export_allowed<'a>(
    policies: impl IntoIterator<Item = &'a ExportPolicy>,
    namespace: &str,
    cluster: &ClusterId,
) -> bool {
    let mut covered = false;
    for p in policies {
        if p.spec.namespaces.iter().any(|n| n.matches(namespace)) {
            if p.spec.clusters.contains(cluster) {
                return true;
            }
            covered = true;
        }
    }
    !covered
}
