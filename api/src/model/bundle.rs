//! The `TrustBundle` resource: the SPIFFE bundle of one trust domain.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::meta::{ApiVersion, BundleMeta, TrustBundleKind};
use super::names::{ClusterId, TrustDomainName};

/// The federated SPIFFE bundle of one trust domain, keyed by the trust
/// domain. Bundles of different trust domains are never merged, and a bundle's
/// `spiffe_sequence` only grows (enforced by the server on update).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustBundle {
    /// Always `causeway.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `TrustBundle`.
    pub kind: TrustBundleKind,
    /// The name is the trust domain.
    pub metadata: BundleMeta,
    /// The owner and the bundle document.
    pub spec: TrustBundleSpec,
}

impl TrustBundle {
    /// Builds a bundle resource with empty metadata.
    pub fn new(
        trust_domain: TrustDomainName,
        owner_cluster: ClusterId,
        bundle: causeway_trust::Bundle,
    ) -> Self {
        Self {
            api_version: ApiVersion,
            kind: TrustBundleKind,
            metadata: BundleMeta::new(trust_domain),
            spec: TrustBundleSpec {
                owner_cluster,
                bundle,
            },
        }
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomainName {
        &self.metadata.name
    }

    /// The bundle's `spiffe_sequence`.
    pub fn sequence(&self) -> u64 {
        self.spec.bundle.sequence()
    }
}

/// The bundle and the cluster that owns (publishes) it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustBundleSpec {
    /// The cluster whose CA issues in this trust domain; only its token may
    /// update the bundle.
    pub owner_cluster: ClusterId,
    /// The SPIFFE bundle document (JWK set with `spiffe_sequence`), parsed and
    /// validated by `causeway-trust`.
    #[schema(value_type = Object)]
    pub bundle: causeway_trust::Bundle,
}
