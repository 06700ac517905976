//! Parsing of MCS clusterset host names: `<svc>.<ns>.svc.clusterset.local[:port]`.

use std::borrow::Cow;

use causeway_api::model::is_dns_label;

/// The DNS suffix of multi-cluster services (KEP-1645).
pub const CLUSTERSET_SUFFIX: &str = "svc.clusterset.local";

/// A parsed clusterset host: service name, namespace and optional port.
///
/// Names are lower-cased; they borrow from the input when it already was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRef<'a> {
    /// The service name (first label).
    pub name: Cow<'a, str>,
    /// The namespace (second label).
    pub namespace: Cow<'a, str>,
    /// The port after `:`, if present.
    pub port: Option<u16>,
}

/// Why a host is not a clusterset service host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The host is empty.
    #[error("empty host")]
    Empty,
    /// The port after `:` is not a number in 1..=65535.
    #[error("invalid port")]
    InvalidPort,
    /// The host does not end in `.svc.clusterset.local`.
    #[error("host is not a clusterset service name (<svc>.<ns>.svc.clusterset.local)")]
    NotClusterset,
    /// The service name or namespace is not an RFC 1123 label.
    #[error("service name or namespace is not an RFC 1123 label")]
    InvalidLabel,
}

/// Parses `<svc>.<ns>.svc.clusterset.local[:port]`: ASCII case-insensitive, a
/// trailing dot accepted. Pure and allocation-free unless the host contains
/// upper-case letters.
pub fn parse_host(host: &str) -> Result<HostRef<'_>, HostError> {
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if host.starts_with('[') {
        return Err(HostError::NotClusterset);
    }
    let (name_part, port) = match host.rsplit_once(':') {
        Some((h, p)) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HostError::InvalidPort);
            }
            let port: u16 = p.parse().map_err(|_| HostError::InvalidPort)?;
            if port == 0 {
                return Err(HostError::InvalidPort);
            }
            (h, Some(port))
        }
        None => (host, None),
    };
    let fqdn = name_part.strip_suffix('.').unwrap_or(name_part);
    let mut labels = fqdn.splitn(3, '.');
    let (Some(name), Some(namespace), Some(suffix)) = (labels.next(), labels.next(), labels.next())
    else {
        return Err(HostError::NotClusterset);
    };
    if !suffix.eq_ignore_ascii_case(CLUSTERSET_SUFFIX) {
        return Err(HostError::NotClusterset);
    }
    let (name, namespace) = (lower(name), lower(namespace));
    if !is_dns_label(&name) || !is_dns_label(&namespace) {
        return Err(HostError::InvalidLabel);
    }
    Ok(HostRef {
        name,
        namespace,
        port,
    })
}

fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}
