//! Policies: residency, traffic, access and export ownership.

mod access;
mod export_policy;
mod residency;
mod selector;
mod traffic;

pub use access::{AccessPolicy, AccessPolicySpec, AccessRule, Caller};
pub use export_policy::{ExportPolicy, ExportPolicySpec, export_allowed};
pub use residency::{
    OidcIssuer, OnUnverified, RequestClassification, ResidencyPolicy, ResidencyPolicySpec,
};
pub use selector::{NamespacePattern, ServicePattern, ServiceSelector};
pub use traffic::{
    CircuitBreaker, OutlierDetection, Percent, RateLimit, Ratio, RetryCondition, RetryPolicy,
    RollbackGuard, SuccessRateEjection, Timeouts, TrafficPolicy, TrafficPolicySpec,
};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The four policy kinds, as they appear in REST paths and etcd keys
/// (`/v1/policies/{kind}`, `/policies/<kind>/<name>`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    /// [`ResidencyPolicy`].
    Residency,
    /// [`TrafficPolicy`].
    Traffic,
    /// [`AccessPolicy`].
    Access,
    /// [`ExportPolicy`].
    Export,
}

impl PolicyKind {
    /// Every policy kind.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::Residency,
        PolicyKind::Traffic,
        PolicyKind::Access,
        PolicyKind::Export,
    ];

    /// The path segment: `residency`, `traffic`, `access` or `export`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Residency => "residency",
            PolicyKind::Traffic => "traffic",
            PolicyKind::Access => "access",
            PolicyKind::Export => "export",
        }
    }

    /// The resource `kind` string (e.g. `ResidencyPolicy`).
    pub fn kind_name(self) -> &'static str {
        match self {
            PolicyKind::Residency => "ResidencyPolicy",
            PolicyKind::Traffic => "TrafficPolicy",
            PolicyKind::Access => "AccessPolicy",
            PolicyKind::Export => "ExportPolicy",
        }
    }
}

impl std::fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown policy kind in a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy kind {0:?}, expected one of residency, traffic, access, export")]
pub struct UnknownPolicyKind(pub String);

impl std::str::FromStr for PolicyKind {
    type Err = UnknownPolicyKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PolicyKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownPolicyKind(s.to_owned()))
    }
}

/// Declares a policy resource `{apiVersion, kind, metadata{name}, spec}`.
macro_rules! policy_resource {
    ($(#[$meta:meta])* $name:ident, $kind:ty, $spec:ty) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            /// Always `causeway.dev/v1`.
            pub api_version: crate::model::ApiVersion,
            /// The policy kind.
            pub kind: $kind,
            /// The policy name.
            pub metadata: crate::model::PolicyMeta,
            /// The policy.
            pub spec: $spec,
        }

        impl $name {
            /// Builds the policy with empty metadata.
            pub fn new(name: crate::model::PolicyName, spec: $spec) -> Self {
                Self {
                    api_version: crate::model::ApiVersion,
                    kind: <$kind>::default(),
                    metadata: crate::model::PolicyMeta::new(name),
                    spec,
                }
            }

            /// The policy name.
            pub fn name(&self) -> &crate::model::PolicyName {
                &self.metadata.name
            }
        }
    };
}
pub(crate) use policy_resource;
