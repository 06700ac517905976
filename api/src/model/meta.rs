//! The Kubernetes-shaped envelope: `apiVersion`, `kind` and `metadata`.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::names::{ClusterId, Namespace, PolicyName, ServiceName, TrustDomainName};

/// The API group and version of every Causeway resource.
pub const API_VERSION: &str = "causeway.dev/v1";

/// A point in time, serialized as RFC 3339 (e.g. `2026-01-02T03:04:05Z`).
pub type Timestamp = OffsetDateTime;

/// The etcd mod revision of a stored resource.
pub type Revision = u64;

/// The `apiVersion` field: always `causeway.dev/v1`; any other value is
/// rejected when deserializing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ApiVersion;

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(API_VERSION)
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s == API_VERSION {
            Ok(ApiVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported apiVersion {s:?}, expected {API_VERSION:?}"
            )))
        }
    }
}

impl utoipa::PartialSchema for ApiVersion {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some([API_VERSION]))
            .into()
    }
}

impl utoipa::ToSchema for ApiVersion {}

/// Declares a zero-sized marker type that (de)serializes as one fixed `kind`
/// string.
macro_rules! kind_marker {
    ($(#[$meta:meta])* $name:ident = $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl $name {
            /// The `kind` string.
            pub const KIND: &'static str = $kind;
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($kind)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                if s == $kind {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "unexpected kind {s:?}, expected {:?}",
                        $kind
                    )))
                }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$kind]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

kind_marker!(
    /// `kind: Cluster`.
    ClusterKind = "Cluster"
);
kind_marker!(
    /// `kind: ServiceExport`.
    ServiceExportKind = "ServiceExport"
);
kind_marker!(
    /// `kind: ServiceImport`.
    ServiceImportKind = "ServiceImport"
);
kind_marker!(
    /// `kind: TrustBundle`.
    TrustBundleKind = "TrustBundle"
);
kind_marker!(
    /// `kind: ResidencyPolicy`.
    ResidencyPolicyKind = "ResidencyPolicy"
);
kind_marker!(
    /// `kind: TrafficPolicy`.
    TrafficPolicyKind = "TrafficPolicy"
);
kind_marker!(
    /// `kind: AccessPolicy`.
    AccessPolicyKind = "AccessPolicy"
);
kind_marker!(
    /// `kind: ExportPolicy`.
    ExportPolicyKind = "ExportPolicy"
);

/// Serde helpers for `resourceVersion`: written as a decimal JSON string (as
/// Kubernetes does, and safe for JavaScript clients); read from a string or a
/// number.
pub mod resource_version {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes an optional revision as a decimal string.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Deserializes an optional revision from a decimal string or a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Rv {
            N(u64),
            S(String),
        }
        match Option::<Rv>::deserialize(d)? {
            None => Ok(None),
            Some(Rv::N(n)) => Ok(Some(n)),
            Some(Rv::S(s)) => s.parse().map(Some).map_err(|_| {
                serde::de::Error::custom(format!(
                    "resourceVersion must be a decimal revision, got {s:?}"
                ))
            }),
        }
    }
}

/// Declares one metadata struct; they differ only in their identity fields.
macro_rules! metadata {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
            /// The etcd mod revision of the stored object; set by the server,
            /// ignored on create, compared on update when present (`If-Match`).
            #[serde(
                default,
                with = "resource_version",
                skip_serializing_if = "Option::is_none"
            )]
            #[schema(value_type = Option<String>, example = "42")]
            pub resource_version: Option<Revision>,
            /// When the object was first stored; set by the server.
            #[serde(
                default,
                with = "time::serde::rfc3339::option",
                skip_serializing_if = "Option::is_none"
            )]
            #[schema(value_type = Option<String>, format = DateTime)]
            pub created_at: Option<Timestamp>,
            /// Free-form labels.
            #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
            pub labels: BTreeMap<String, String>,
        }

        impl $name {
            /// Builds metadata with no revision, creation time or labels.
            pub fn new($($field: $ty),*) -> Self {
                Self {
                    $($field,)*
                    resource_version: None,
                    created_at: None,
                    labels: BTreeMap::new(),
                }
            }
        }
    };
}

metadata!(
    /// Metadata of a [`Cluster`](super::Cluster): the name is the cluster id.
    ClusterMeta {
        /// The cluster id.
        name: ClusterId,
    }
);

metadata!(
    /// Metadata of a [`ServiceExport`](super::ServiceExport), keyed by
    /// (namespace, name, cluster).
    ExportMeta {
        /// The exported service's name.
        name: ServiceName,
        /// The exported service's namespace.
        namespace: Namespace,
        /// The cluster that exports the service.
        cluster: ClusterId,
    }
);

metadata!(
    /// Metadata of a [`ServiceImport`](super::ServiceImport), keyed by
    /// (namespace, name).
    ImportMeta {
        /// The service name.
        name: ServiceName,
        /// The service namespace.
        namespace: Namespace,
    }
);

metadata!(
    /// Metadata of a [`TrustBundle`](super::TrustBundle): the name is the
    /// trust domain.
    BundleMeta {
        /// The trust domain.
        name: TrustDomainName,
    }
);

metadata!(
    /// Metadata of a policy: the name is unique per policy kind.
    PolicyMeta {
        /// The policy name.
        name: PolicyName,
    }
);
