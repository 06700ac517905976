//! The `Cluster` resource: a member of the federation and its east-west
//! gateway.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::meta::{ApiVersion, ClusterKind, ClusterMeta, Timestamp};
use super::names::{ClusterId, NameError, TrustDomainName, check_label};

/// A member cluster (Kubernetes cluster, cloud or VM site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    /// Always `causeway.dev/v1`.
    pub api_version: ApiVersion,
    /// Always `Cluster`.
    pub kind: ClusterKind,
    /// The name is the cluster id.
    pub metadata: ClusterMeta,
    /// The desired description of the cluster.
    pub spec: ClusterSpec,
    /// Observed state, written by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ClusterStatus>,
}

impl Cluster {
    /// Builds a cluster resource with empty metadata and no status.
    pub fn new(id: ClusterId, spec: ClusterSpec) -> Self {
        Self {
            api_version: ApiVersion,
            kind: ClusterKind,
            metadata: ClusterMeta::new(id),
            spec,
            status: None,
        }
    }

    /// The cluster id.
    pub fn id(&self) -> &ClusterId {
        &self.metadata.name
    }
}

/// Locality, residency and gateway of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpec {
    /// The cloud or site kind (`aws`, `gcp`, `azure`, `vm`, ...).
    #[serde(default)]
    pub cloud: String,
    /// The region (e.g. `eu-west-1`).
    #[serde(default)]
    pub region: String,
    /// The default zone (e.g. `eu-west-1a`).
    #[serde(default)]
    pub zone: String,
    /// Residency labels, lowercase RFC 1123 labels (e.g. `["eu", "de"]`).
    #[serde(default, deserialize_with = "deserialize_labels")]
    pub jurisdictions: Vec<String>,
    /// Free-form locality labels usable in failover priorities.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The cluster's east-west gateway.
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// The SPIFFE trust domain of the cluster's workloads and gateway.
    pub trust_domain: TrustDomainName,
}

/// The east-west gateway of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// `host:port` addresses of the east-west (mTLS) listener.
    #[serde(default)]
    pub endpoints: Vec<HostPort>,
}

/// Observed state of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterStatus {
    /// Whether the cluster's heartbeat lease is alive.
    #[serde(default)]
    pub connected: bool,
    /// The last heartbeat received.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_heartbeat: Option<Timestamp>,
}

/// Deserializes a list of lowercase RFC 1123 labels (jurisdictions).
pub(crate) fn deserialize_labels<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for s in &v {
        check_label("jurisdiction", s, 63).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

/// A `host:port` address: a DNS name, an IPv4 address or a bracketed IPv6
/// address, and a non-zero port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The host part (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for HostPort {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let err = |rule: &str| NameError {
            what: "host:port",
            value: s.to_owned(),
            rule: rule.to_owned(),
        };
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| err("must have the form host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| err("port must be a number between 1 and 65535"))?;
        if port == 0 {
            return Err(err("port must be a number between 1 and 65535"));
        }
        let host = if let Some(inner) = host.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| err("IPv6 host must be enclosed in brackets"))?;
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| err("invalid IPv6 address"))?;
            inner.to_owned()
        } else {
            if host.is_empty() || host.len() > 253 {
                return Err(err("host must be 1 to 253 characters"));
            }
            if host.parse::<std::net::Ipv4Addr>().is_err() {
                let ok = host.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                });
                if !ok {
                    return Err(err("host must be a DNS name or an IP address"));
                }
            }
            host.to_owned()
        };
        Ok(Self { host, port })
    }
}

impl TryFrom<String> for HostPort {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<HostPort> for String {
    fn from(h: HostPort) -> String {
        h.to_string()
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl utoipa::PartialSchema for HostPort {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A `host:port` address."))
            .examples([serde_json::json!("gw.eu-west-1.example.com:15443")])
            .into()
    }
}

impl utoipa::ToSchema for HostPort {}
