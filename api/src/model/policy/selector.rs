//! Service selectors shared by policies.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::model::names::{NameError, Namespace, ServiceRef};

/// One pattern: `ns/name` (one service) or `ns/*` (every service of a
/// namespace).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ServicePattern {
    /// Exactly one service.
    Service(ServiceRef),
    /// Every service in a namespace (`ns/*`).
    Namespace(Namespace),
}

impl ServicePattern {
    /// Whether the pattern selects `service`.
    pub fn matches(&self, service: &ServiceRef) -> bool {
        match self {
            ServicePattern::Service(s) => s == service,
            ServicePattern::Namespace(ns) => ns == &service.namespace,
        }
    }
}

impl FromStr for ServicePattern {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s.strip_suffix("/*") {
            Some(ns) => Ok(ServicePattern::Namespace(ns.parse()?)),
            None => Ok(ServicePattern::Service(s.parse()?)),
        }
    }
}

impl TryFrom<String> for ServicePattern {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<ServicePattern> for String {
    fn from(p: ServicePattern) -> String {
        p.to_string()
    }
}

impl fmt::Display for ServicePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServicePattern::Service(s) => write!(f, "{s}"),
            ServicePattern::Namespace(ns) => write!(f, "{ns}/*"),
        }
    }
}

/// A list of service patterns; an empty list selects every service.
/// Serialized as a JSON array of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceSelector(pub Vec<ServicePattern>);

impl ServiceSelector {
    /// Whether the selector selects `service` (always true when empty).
    pub fn matches(&self, service: &ServiceRef) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| p.matches(service))
    }

    /// Whether the selector selects every service.
    pub fn is_all(&self) -> bool {
        self.0.is_empty()
    }
}

impl utoipa::PartialSchema for ServiceSelector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some("`namespace/name` or `namespace/*`")),
            )
            .description(Some("Selected services; empty selects every service."))
            .into()
    }
}

impl utoipa::ToSchema for ServiceSelector {}

/// A namespace pattern: an exact namespace or a prefix ending in `*`
/// (e.g. `team-a-*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NamespacePattern {
    /// Exactly this namespace.
    Exact(Namespace),
    /// Every namespace starting with this prefix.
    Prefix(String),
}

impl NamespacePattern {
    /// Whether the pattern covers `namespace`.
    pub fn matches(&self, namespace: &str) -> bool {
        match self {
            NamespacePattern::Exact(ns) => ns.as_str() == namespace,
            NamespacePattern::Prefix(p) => namespace.starts_with(p.as_str()),
        }
    }
}

impl FromStr for NamespacePattern {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        match s.strip_suffix('*') {
            Some(prefix) => {
                let ok = prefix.len() < 63
                    && prefix
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !prefix.starts_with('-');
                if ok {
                    Ok(NamespacePattern::Prefix(prefix.to_owned()))
                } else {
                    Err(NameError {
                        what: "namespace pattern",
                        value: s.to_owned(),
                        rule: "a prefix pattern must be the start of an RFC 1123 label followed by `*`"
                            .to_owned(),
                    })
                }
            }
            None => Ok(NamespacePattern::Exact(s.parse()?)),
        }
    }
}

impl TryFrom<String> for NamespacePattern {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<NamespacePattern> for String {
    fn from(p: NamespacePattern) -> String {
        p.to_string()
    }
}

impl fmt::Display for NamespacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NamespacePattern::Exact(ns) => write!(f, "{ns}"),
            NamespacePattern::Prefix(p) => write!(f, "{p}*"),
        }
    }
}

impl utoipa::PartialSchema for NamespacePattern {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A namespace or a prefix pattern such as `team-a-*`."))
            .into()
    }
}

impl utoipa::ToSchema for NamespacePattern {}
