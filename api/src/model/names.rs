//! Validated names: cluster ids, namespaces, service names, policy names,
//! trust domains and `namespace/name` service references.
//!
//! Every type here is "parse, don't validate": a value that exists is valid.
//! They (de)serialize as plain JSON strings and reject invalid input during
//! deserialization, so a JSON path to the offending field is available.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a name was rejected. The message names the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {value:?}: {rule}")]
pub struct NameError {
    /// What kind of name was being parsed (e.g. `cluster id`).
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The rule that was broken, in words.
    pub rule: String,
}

impl NameError {
    fn new(what: &'static str, value: &str, rule: impl Into<String>) -> Self {
        Self {
            what,
            value: value.to_owned(),
            rule: rule.into(),
        }
    }
}

/// Whether `s` is an RFC 1123 DNS label (1..=63 chars of `[a-z0-9-]`,
/// starting and ending with an alphanumeric character): the one label rule
/// of the project (cluster ids, namespaces, service names, hosts, scopes).
pub fn is_dns_label(s: &str) -> bool {
    check_label("label", s, 63).is_ok()
}

/// Checks an RFC 1123 DNS label: 1..=`max` chars of `[a-z0-9-]`, starting and
/// ending with an alphanumeric character.
pub(crate) fn check_label(what: &'static str, s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new(
            what,
            s,
            "must not be empty (RFC 1123 label)",
        ));
    }
    if s.len() > max {
        return Err(NameError::new(
            what,
            s,
            format!(
                "must be at most {max} characters (RFC 1123 label), got {}",
                s.len()
            ),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(NameError::new(
            what,
            s,
            format!(
                "must consist of lowercase alphanumeric characters or '-' (RFC 1123 label), found {c:?}"
            ),
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(NameError::new(
            what,
            s,
            "must start and end with an alphanumeric character (RFC 1123 label)",
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 DNS subdomain: at most 253 chars, dot-separated
/// RFC 1123 labels.
pub(crate) fn check_subdomain(what: &'static str, s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::new(
            what,
            s,
            "must not be empty (RFC 1123 subdomain)",
        ));
    }
    if s.len() > 253 {
        return Err(NameError::new(
            what,
            s,
            format!(
                "must be at most 253 characters (RFC 1123 subdomain), got {}",
                s.len()
            ),
        ));
    }
    for label in s.split('.') {
        check_label(what, label, 63).map_err(|e| {
            NameError::new(
                what,
                s,
                format!(
                    "each dot-separated part {}",
                    e.rule.replace("RFC 1123 label", "RFC 1123 subdomain")
                ),
            )
        })?;
    }
    Ok(())
}

/// Checks a SPIFFE trust domain name with the rules of
/// [`causeway_trust::TrustDomain`], in its bare form (`example.org`, not
/// `spiffe://example.org`).
pub(crate) fn check_trust_domain(s: &str) -> Result<(), NameError> {
    const WHAT: &str = "trust domain";
    if s.contains("://") {
        return Err(NameError::new(
            WHAT,
            s,
            "must be a bare trust domain name, without `spiffe://`",
        ));
    }
    causeway_trust::TrustDomain::new(s)
        .map(|_| ())
        .map_err(|e| NameError::new(WHAT, s, e.to_string()))
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident, $what:literal, $check:expr, $example:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates a name.
            pub fn new(s: impl Into<String>) -> Result<Self, NameError> {
                let s = s.into();
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(&s)?;
                Ok(Self(s))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $what, ".")))
                    .examples([serde_json::json!($example)])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

name_type!(
    /// A cluster id: an RFC 1123 label of 1..=63 characters (e.g. `eu-west-1`).
    ClusterId,
    "cluster id (RFC 1123 label, at most 63 characters)",
    |s| check_label("cluster id", s, 63),
    "eu-west-1"
);

name_type!(
    /// A Kubernetes namespace: an RFC 1123 label of at most 63 characters.
    Namespace,
    "namespace (RFC 1123 label, at most 63 characters)",
    |s| check_label("namespace", s, 63),
    "payments"
);

name_type!(
    /// A service name: an RFC 1123 label of at most 63 characters.
    ServiceName,
    "service name (RFC 1123 label, at most 63 characters)",
    |s| check_label("service name", s, 63),
    "checkout"
);

name_type!(
    /// A policy name: an RFC 1123 subdomain of at most 253 characters.
    PolicyName,
    "policy name (RFC 1123 subdomain, at most 253 characters)",
    |s| check_subdomain("policy name", s),
    "eu-only"
);

name_type!(
    /// A SPIFFE trust domain name (e.g. `eu-west-1.causeway.dev`), validated
    /// with the rules of [`causeway_trust::TrustDomain`]; see
    /// [`TrustDomainName::to_trust_domain`].
    TrustDomainName,
    "SPIFFE trust domain name",
    check_trust_domain,
    "eu-west-1.causeway.dev"
);

/// A reference to a service by `namespace/name` (MCS namespace sameness: the
/// same reference in several clusters is one service). Serialized as the
/// string `ns/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceRef {
    /// The namespace.
    pub namespace: Namespace,
    /// The service name.
    pub name: ServiceName,
}

impl ServiceRef {
    /// Builds a reference from its parts.
    pub fn new(namespace: Namespace, name: ServiceName) -> Self {
        Self { namespace, name }
    }
}

impl FromStr for ServiceRef {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, NameError> {
        let Some((ns, name)) = s.split_once('/') else {
            return Err(NameError::new(
                "service reference",
                s,
                "must have the form `namespace/name`",
            ));
        };
        Ok(Self {
            namespace: ns.parse()?,
            name: name.parse()?,
        })
    }
}

impl TryFrom<String> for ServiceRef {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        s.parse()
    }
}

impl From<ServiceRef> for String {
    fn from(r: ServiceRef) -> String {
        r.to_string()
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl TrustDomainName {
    /// The trust crate's view of this trust domain.
    pub fn to_trust_domain(&self) -> causeway_trust::TrustDomain {
        // The same rules were checked on construction, so this cannot fail;
        // fall back to re-validation errors being impossible.
        match causeway_trust::TrustDomain::new(&self.0) {
            Ok(td) => td,
            Err(_) => unreachable!("trust domain validated on construction"),
        }
    }
}

impl From<causeway_trust::TrustDomain> for TrustDomainName {
    fn from(td: causeway_trust::TrustDomain) -> Self {
        Self(td.name().to_owned())
    }
}

impl utoipa::PartialSchema for ServiceRef {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A service reference `namespace/name`."))
            .examples([serde_json::json!("payments/checkout")])
            .into()
    }
}

impl utoipa::ToSchema for ServiceRef {}

#[cfg(test)]
mod tests;
