//! Any resource: the `Kind` enum, the `Resource` enum dispatched on `kind`,
//! object identities and strict decoding that names the offending field.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::bundle::TrustBundle;
use super::cluster::Cluster;
use super::export::{ExportKey, ServiceExport};
use super::meta::{Revision, Timestamp};
use super::names::{ClusterId, PolicyName, ServiceRef, TrustDomainName};
use super::policy::{AccessPolicy, ExportPolicy, PolicyKind, ResidencyPolicy, TrafficPolicy};
use super::service_import::ServiceImport;

/// Every resource kind.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Kind {
    /// [`Cluster`].
    Cluster,
    /// [`ServiceExport`].
    ServiceExport,
    /// [`ServiceImport`] (derived, read-only).
    ServiceImport,
    /// [`TrustBundle`].
    TrustBundle,
    /// [`ResidencyPolicy`].
    ResidencyPolicy,
    /// [`TrafficPolicy`].
    TrafficPolicy,
    /// [`AccessPolicy`].
    AccessPolicy,
    /// [`ExportPolicy`].
    ExportPolicy,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 8] = [
        Kind::Cluster,
        Kind::ServiceExport,
        Kind::ServiceImport,
        Kind::TrustBundle,
        Kind::ResidencyPolicy,
        Kind::TrafficPolicy,
        Kind::AccessPolicy,
        Kind::ExportPolicy,
    ];

    /// The `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Cluster => "Cluster",
            Kind::ServiceExport => "ServiceExport",
            Kind::ServiceImport => "ServiceImport",
            Kind::TrustBundle => "TrustBundle",
            Kind::ResidencyPolicy => "ResidencyPolicy",
            Kind::TrafficPolicy => "TrafficPolicy",
            Kind::AccessPolicy => "AccessPolicy",
            Kind::ExportPolicy => "ExportPolicy",
        }
    }

    /// The policy kind, for the four policy kinds.
    pub fn policy_kind(self) -> Option<PolicyKind> {
        match self {
            Kind::ResidencyPolicy => Some(PolicyKind::Residency),
            Kind::TrafficPolicy => Some(PolicyKind::Traffic),
            Kind::AccessPolicy => Some(PolicyKind::Access),
            Kind::ExportPolicy => Some(PolicyKind::Export),
            _ => None,
        }
    }
}

impl From<PolicyKind> for Kind {
    fn from(k: PolicyKind) -> Kind {
        match k {
            PolicyKind::Residency => Kind::ResidencyPolicy,
            PolicyKind::Traffic => Kind::TrafficPolicy,
            PolicyKind::Access => Kind::AccessPolicy,
            PolicyKind::Export => Kind::ExportPolicy,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = DecodeError;
    fn from_str(s: &str) -> Result<Self, DecodeError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| DecodeError {
                field: "kind".to_owned(),
                message: format!("unknown kind {s:?}"),
            })
    }
}

/// The identity of a stored object; also the identity of a deletion in a
/// watch event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all_fields = "camelCase")]
pub enum ObjectRef {
    /// A cluster.
    Cluster {
        /// The cluster id.
        name: ClusterId,
    },
    /// A service export.
    ServiceExport {
        /// `namespace/name/cluster`.
        key: ExportKey,
    },
    /// A derived service import.
    ServiceImport {
        /// `namespace/name`.
        service: ServiceRef,
    },
    /// A trust bundle.
    TrustBundle {
        /// The trust domain.
        name: TrustDomainName,
    },
    /// A policy.
    Policy {
        /// The policy kind.
        policy: PolicyKind,
        /// The policy name.
        name: PolicyName,
    },
}

impl ObjectRef {
    /// The kind of the object.
    pub fn kind(&self) -> Kind {
        match self {
            ObjectRef::Cluster { .. } => Kind::Cluster,
            ObjectRef::ServiceExport { .. } => Kind::ServiceExport,
            ObjectRef::ServiceImport { .. } => Kind::ServiceImport,
            ObjectRef::TrustBundle { .. } => Kind::TrustBundle,
            ObjectRef::Policy { policy, .. } => (*policy).into(),
        }
    }
}

/// Any Causeway resource. Serializes as the resource itself (its `kind`
/// field tells them apart); deserializes by dispatching on `kind`, with
/// errors that name the offending field (see [`decode_resource`]).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Resource {
    /// A cluster.
    Cluster(Cluster),
    /// A service export.
    ServiceExport(ServiceExport),
    /// A derived service import.
    ServiceImport(ServiceImport),
    /// A trust bundle.
    TrustBundle(TrustBundle),
    /// A residency policy.
    ResidencyPolicy(ResidencyPolicy),
    /// A traffic policy.
    TrafficPolicy(TrafficPolicy),
    /// An access policy.
    AccessPolicy(AccessPolicy),
    /// An export policy.
    ExportPolicy(ExportPolicy),
}

macro_rules! each_resource {
    ($self:expr, $r:ident => $e:expr) => {
        match $self {
            Resource::Cluster($r) => $e,
            Resource::ServiceExport($r) => $e,
            Resource::ServiceImport($r) => $e,
            Resource::TrustBundle($r) => $e,
            Resource::ResidencyPolicy($r) => $e,
            Resource::TrafficPolicy($r) => $e,
            Resource::AccessPolicy($r) => $e,
            Resource::ExportPolicy($r) => $e,
        }
    };
}

impl Resource {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Cluster(_) => Kind::Cluster,
            Resource::ServiceExport(_) => Kind::ServiceExport,
            Resource::ServiceImport(_) => Kind::ServiceImport,
            Resource::TrustBundle(_) => Kind::TrustBundle,
            Resource::ResidencyPolicy(_) => Kind::ResidencyPolicy,
            Resource::TrafficPolicy(_) => Kind::TrafficPolicy,
            Resource::AccessPolicy(_) => Kind::AccessPolicy,
            Resource::ExportPolicy(_) => Kind::ExportPolicy,
        }
    }

    /// The identity of the resource.
    pub fn object_ref(&self) -> ObjectRef {
        match self {
            Resource::Cluster(r) => ObjectRef::Cluster {
                name: r.metadata.name.clone(),
            },
            Resource::ServiceExport(r) => ObjectRef::ServiceExport { key: r.key() },
            Resource::ServiceImport(r) => ObjectRef::ServiceImport {
                service: r.service(),
            },
            Resource::TrustBundle(r) => ObjectRef::TrustBundle {
                name: r.metadata.name.clone(),
            },
            Resource::ResidencyPolicy(r) => ObjectRef::Policy {
                policy: PolicyKind::Residency,
                name: r.metadata.name.clone(),
            },
            Resource::TrafficPolicy(r) => ObjectRef::Policy {
                policy: PolicyKind::Traffic,
                name: r.metadata.name.clone(),
            },
            Resource::AccessPolicy(r) => ObjectRef::Policy {
                policy: PolicyKind::Access,
                name: r.metadata.name.clone(),
            },
            Resource::ExportPolicy(r) => ObjectRef::Policy {
                policy: PolicyKind::Export,
                name: r.metadata.name.clone(),
            },
        }
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<Revision> {
        each_resource!(self, r => r.metadata.resource_version)
    }

    /// Sets `metadata.resourceVersion`.
    pub fn set_resource_version(&mut self, rv: Option<Revision>) {
        each_resource!(self, r => r.metadata.resource_version = rv)
    }

    /// `metadata.createdAt`.
    pub fn created_at(&self) -> Option<Timestamp> {
        each_resource!(self, r => r.metadata.created_at)
    }

    /// Sets `metadata.createdAt`.
    pub fn set_created_at(&mut self, t: Option<Timestamp>) {
        each_resource!(self, r => r.metadata.created_at = t)
    }
}

macro_rules! from_impls {
    ($($v:ident),*) => {$(
        impl From<$v> for Resource {
            fn from(r: $v) -> Resource {
                Resource::$v(r)
            }
        }
    )*};
}
from_impls!(
    Cluster,
    ServiceExport,
    ServiceImport,
    TrustBundle,
    ResidencyPolicy,
    TrafficPolicy,
    AccessPolicy,
    ExportPolicy
);

/// A rejected document: the JSON path of the offending field (e.g.
/// `spec.ports[0].protocol`, empty for the document itself) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
pub struct DecodeError {
    /// The JSON path of the offending field; empty for the whole document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Strictly decodes one JSON document into `T`, reporting the path of the
/// offending field.
pub fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, DecodeError> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    let value: T = serde_path_to_error::deserialize(de).map_err(path_error)?;
    Ok(value)
}

/// Strictly decodes a `serde_json::Value` into `T`, reporting the path of
/// the offending field.
pub fn decode_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> DecodeError {
    let field = e.path().to_string();
    DecodeError {
        field: if field == "." { String::new() } else { field },
        message: e.inner().to_string(),
    }
}

/// Decodes any resource from a JSON value, dispatching on its `kind`.
pub fn decode_resource(value: serde_json::Value) -> Result<Resource, DecodeError> {
    let kind = match value.get("kind") {
        Some(serde_json::Value::String(k)) => k.parse::<Kind>()?,
        Some(_) => {
            return Err(DecodeError {
                field: "kind".to_owned(),
                message: "kind must be a string".to_owned(),
            });
        }
        None => {
            return Err(DecodeError {
                field: "kind".to_owned(),
                message: "missing field `kind`".to_owned(),
            });
        }
    };
    Ok(match kind {
        Kind::Cluster => Resource::Cluster(decode_value(value)?),
        Kind::ServiceExport => Resource::ServiceExport(decode_value(value)?),
        Kind::ServiceImport => Resource::ServiceImport(decode_value(value)?),
        Kind::TrustBundle => Resource::TrustBundle(decode_value(value)?),
        Kind::ResidencyPolicy => Resource::ResidencyPolicy(decode_value(value)?),
        Kind::TrafficPolicy => Resource::TrafficPolicy(decode_value(value)?),
        Kind::AccessPolicy => Resource::AccessPolicy(decode_value(value)?),
        Kind::ExportPolicy => Resource::ExportPolicy(decode_value(value)?),
    })
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        decode_resource(value).map_err(serde::de::Error::custom)
    }
}
