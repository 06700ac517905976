//! SPIFFE IDs and trust domains, parsed per the SPIFFE-ID standard.
//!
//! A [`SpiffeId`] or [`TrustDomain`] that exists is valid: fields are private
//! and every constructor (including deserialisation) validates.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[cfg(test)]
mod tests;

/// The URI scheme prefix of every SPIFFE ID.
pub const SCHEME_PREFIX: &str = "spiffe://";
/// Maximum length of a trust domain name in bytes.
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;
/// Maximum length of a whole SPIFFE ID in bytes.
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// Why a string is not a valid SPIFFE ID or trust domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpiffeIdError {
    /// The input is empty.
    #[error("spiffe id is empty")]
    Empty,
    /// The scheme is missing or is not exactly `spiffe`.
    #[error("scheme is missing or invalid: a spiffe id starts with \"spiffe://\"")]
    WrongScheme,
    /// The authority (trust domain) component is empty.
    #[error("trust domain is missing")]
    MissingTrustDomain,
    /// The trust domain is longer than 255 bytes.
    #[error("trust domain is {len} bytes long, the maximum is 255")]
    TrustDomainTooLong {
        /// Length of the offending trust domain in bytes.
        len: usize,
    },
    /// The whole ID is longer than 2048 bytes.
    #[error("spiffe id is {len} bytes long, the maximum is 2048")]
    TooLong {
        /// Length of the offending ID in bytes.
        len: usize,
    },
    /// The trust domain contains a character other than lowercase letters,
    /// digits, `.`, `-` and `_`.
    #[error(
        "trust domain character {ch:?} is not allowed: only lowercase letters, digits, '.', '-' and '_'"
    )]
    BadTrustDomainChar {
        /// The offending character.
        ch: char,
    },
    /// The authority carries a port (`:`).
    #[error("trust domain must not carry a port")]
    Port,
    /// The authority carries userinfo (`@`).
    #[error("trust domain must not carry userinfo")]
    UserInfo,
    /// A path segment contains a character other than letters, digits, `.`,
    /// `-` and `_`.
    #[error(
        "path character {ch:?} is not allowed: only letters, digits, '.', '-' and '_' (no percent-encoding)"
    )]
    BadPathChar {
        /// The offending character.
        ch: char,
    },
    /// The path contains an empty segment (`//`).
    #[error("path contains an empty segment")]
    EmptySegment,
    /// The path contains a `.` or `..` segment.
    #[error("path contains a dot segment ('.' or '..')")]
    DotSegment,
    /// The path ends with `/`.
    #[error("path must not end with a slash")]
    TrailingSlash,
    /// The ID has a query component (`?`).
    #[error("spiffe id must not have a query")]
    Query,
    /// The ID has a fragment component (`#`).
    #[error("spiffe id must not have a fragment")]
    Fragment,
}

/// A SPIFFE trust domain name such as `example.org`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrustDomain {
    name: String,
}

impl TrustDomain {
    /// Parses a trust domain name. Accepts the bare name (`example.org`) or a
    /// SPIFFE ID without path (`spiffe://example.org`).
    pub fn new(input: &str) -> Result<Self, SpiffeIdError> {
        if input.is_empty() {
            return Err(SpiffeIdError::MissingTrustDomain);
        }
        if input.contains("://") {
            let id = SpiffeId::new(input)?;
            if !id.path.is_empty() {
                return Err(SpiffeIdError::BadTrustDomainChar { ch: '/' });
            }
            return Ok(id.trust_domain);
        }
        validate_trust_domain(input)?;
        Ok(Self {
            name: input.to_owned(),
        })
    }

    /// The trust domain name, e.g. `example.org`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The SPIFFE ID of the trust domain itself, `spiffe://<name>`.
    pub fn id(&self) -> SpiffeId {
        SpiffeId {
            trust_domain: self.clone(),
            path: String::new(),
        }
    }

    /// Builds a SPIFFE ID in this trust domain from a path such as
    /// `/ns/default/sa/web` (the leading `/` is required).
    pub fn spiffe_id(&self, path: &str) -> Result<SpiffeId, SpiffeIdError> {
        validate_path(path)?;
        let id = SpiffeId {
            trust_domain: self.clone(),
            path: path.to_owned(),
        };
        let len = SCHEME_PREFIX.len() + self.name.len() + path.len();
        if len > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeIdError::TooLong { len });
        }
        Ok(id)
    }
}

/// A SPIFFE ID: `spiffe://<trust domain><path>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: TrustDomain,
    path: String,
}

impl SpiffeId {
    /// Parses a SPIFFE ID such as `spiffe://example.org/ns/default/sa/web`.
    pub fn new(input: &str) -> Result<Self, SpiffeIdError> {
        if input.is_empty() {
            return Err(SpiffeIdError::Empty);
        }
        if input.len() > MAX_SPIFFE_ID_LEN {
            return Err(SpiffeIdError::TooLong { len: input.len() });
        }
        let rest = input
            .strip_prefix(SCHEME_PREFIX)
            .ok_or(SpiffeIdError::WrongScheme)?;
        // Query and fragment are checked first so that their characters are
        // reported as what they are rather than as bad characters.
        if rest.contains('#') {
            return Err(SpiffeIdError::Fragment);
        }
        if rest.contains('?') {
            return Err(SpiffeIdError::Query);
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(SpiffeIdError::MissingTrustDomain);
        }
        validate_trust_domain(authority)?;
        validate_path(path)?;
        Ok(Self {
            trust_domain: TrustDomain {
                name: authority.to_owned(),
            },
            path: path.to_owned(),
        })
    }

    /// The trust domain of this ID.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The path, e.g. `/ns/default/sa/web`; empty for a trust domain's own ID.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether this ID belongs to `trust_domain`.
    pub fn is_member_of(&self, trust_domain: &TrustDomain) -> bool {
        &self.trust_domain == trust_domain
    }
}

fn validate_trust_domain(td: &str) -> Result<(), SpiffeIdError> {
    if td.len() > MAX_TRUST_DOMAIN_LEN {
        return Err(SpiffeIdError::TrustDomainTooLong { len: td.len() });
    }
    if td.contains('@') {
        return Err(SpiffeIdError::UserInfo);
    }
    if td.contains(':') {
        return Err(SpiffeIdError::Port);
    }
    match td.chars().find(|&c| !is_trust_domain_char(c)) {
        Some(ch) => Err(SpiffeIdError::BadTrustDomainChar { ch }),
        None => Ok(()),
    }
}

fn validate_path(path: &str) -> Result<(), SpiffeIdError> {
    if path.is_empty() {
        return Ok(());
    }
    let Some(segments) = path.strip_prefix('/') else {
        // Only reachable through `TrustDomain::spiffe_id`.
        return Err(SpiffeIdError::BadPathChar {
            ch: path.chars().next().unwrap_or('/'),
        });
    };
    if segments.contains('#') {
        return Err(SpiffeIdError::Fragment);
    }
    if segments.contains('?') {
        return Err(SpiffeIdError::Query);
    }
    let mut iter = segments.split('/').peekable();
    while let Some(segment) = iter.next() {
        let last = iter.peek().is_none();
        match segment {
            "" if last => return Err(SpiffeIdError::TrailingSlash),
            "" => return Err(SpiffeIdError::EmptySegment),
            "." | ".." => return Err(SpiffeIdError::DotSegment),
            _ => {}
        }
        if let Some(ch) = segment.chars().find(|&c| !is_path_char(c)) {
            return Err(SpiffeIdError::BadPathChar { ch });
        }
    }
    Ok(())
}

fn is_trust_domain_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_')
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME_PREFIX}{}{}", self.trust_domain.name, self.path)
    }
}

impl FromStr for TrustDomain {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<&str> for TrustDomain {
    type Error = SpiffeIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl TryFrom<&str> for SpiffeId {
    type Error = SpiffeIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl Serialize for TrustDomain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for TrustDomain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for SpiffeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpiffeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}
