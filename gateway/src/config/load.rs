//! Reading, overriding and validating the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::GatewayConfig;

/// Why a configuration could not be used. The message names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML/JSON for the schema (unknown field, wrong type).
    #[error("invalid config: {0}")]
    Parse(String),
    /// A field has an invalid value.
    #[error("invalid config field `{field}`: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `cluster.id`.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// Values from flags or `CAUSEWAY_GATEWAY_*` environment variables that
/// override the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Overrides `cluster.id`.
    pub cluster_id: Option<String>,
    /// Overrides `listeners.egress`.
    pub egress: Option<SocketAddr>,
    /// Overrides `listeners.ingress`.
    pub ingress: Option<SocketAddr>,
    /// Overrides `listeners.admin`.
    pub admin: Option<SocketAddr>,
    /// Overrides `federation.catalogFile`.
    pub catalog_file: Option<PathBuf>,
    /// Overrides `observability.accessLog`.
    pub access_log: Option<bool>,
    /// Overrides `observability.logLevel`.
    pub log_level: Option<String>,
    /// Overrides `agent.endpoint`.
    pub federation_endpoint: Option<String>,
    /// Overrides `agent.tokenFile`.
    pub token_file: Option<PathBuf>,
}

impl GatewayConfig {
    /// Applies flag/env overrides on top of the file.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = &o.cluster_id {
            self.cluster.id.clone_from(v);
        }
        if let Some(v) = o.egress {
            self.listeners.egress = v;
        }
        if let Some(v) = o.ingress {
            self.listeners.ingress = v;
        }
        if let Some(v) = o.admin {
            self.listeners.admin = v;
        }
        if let Some(v) = &o.catalog_file {
            self.federation.catalog_file = Some(v.clone());
        }
        if let Some(v) = o.access_log {
            self.observability.access_log = v;
        }
        if let Some(v) = &o.log_level {
            self.observability.log_level.clone_from(v);
        }
        if let Some(v) = &o.federation_endpoint {
            self.agent.endpoint = Some(v.clone());
        }
        if let Some(v) = &o.token_file {
            self.agent.token_file = Some(v.clone());
        }
    }

    /// Checks every field that serde cannot check; names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if !is_dns_label(&self.cluster.id) {
            return invalid(
                "cluster.id",
                "must be an RFC 1123 label (lowercase alphanumerics and '-', 1-63 chars)",
            );
        }
        if self.cluster.trust_domain.is_empty()
            || !self
                .cluster
                .trust_domain
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c))
        {
            return invalid(
                "cluster.trustDomain",
                "must be a SPIFFE trust domain name (lowercase letters, digits, '.', '-', '_')",
            );
        }
        let id = &self.identity;
        let files = [&id.svid_file, &id.key_file, &id.bundle_file];
        match (
            &id.authority_dir,
            files.iter().filter(|f| f.is_some()).count(),
        ) {
            (Some(_), 0) | (None, 3) => {}
            (Some(_), _) => {
                return invalid(
                    "identity.authorityDir",
                    "set either authorityDir or svidFile+keyFile+bundleFile, not both",
                );
            }
            (None, _) => {
                return invalid(
                    "identity.svidFile",
                    "set svidFile, keyFile and bundleFile (or authorityDir for development)",
                );
            }
        }
        if id.caller_jwt_ttl.as_secs() == 0 {
            return invalid("identity.callerJwtTtl", "must be at least 1s");
        }
        let prepare_ahead = id
            .ca_prepare_ahead
            .unwrap_or(causeway_trust::AuthorityConfig::default().prepare_ahead());
        if id.ca_ttl.as_secs() == 0 || prepare_ahead * 2 >= id.ca_ttl {
            return invalid(
                "identity.caTtl",
                &format!(
                    "must be more than twice identity.caPrepareAhead ({}s)",
                    prepare_ahead.as_secs()
                ),
            );
        }
        for td in self.federation.bundles.keys() {
            if td == &self.cluster.trust_domain {
                return invalid(
                    "federation.bundles",
                    "must not contain this cluster's own trust domain (use identity)",
                );
            }
        }
        for (key, endpoints) in &self.local_services {
            let ok = key
                .split_once('/')
                .is_some_and(|(ns, name)| is_dns_label(ns) && is_dns_label(name));
            if !ok {
                return invalid(
                    "localServices",
                    &format!("key {key:?} is not `namespace/name`"),
                );
            }
            if endpoints.is_empty() {
                return invalid("localServices", &format!("{key:?} has no endpoints"));
            }
        }
        let l = &self.listeners;
        let clash = |a: SocketAddr, b: SocketAddr| a == b && a.port() != 0;
        if clash(l.egress, l.ingress) || clash(l.egress, l.admin) || clash(l.ingress, l.admin) {
            return invalid("listeners", "egress, ingress and admin must differ");
        }
        for t in &self.tcp {
            let ok = t
                .service
                .split_once('/')
                .is_some_and(|(ns, name)| is_dns_label(ns) && is_dns_label(name));
            if !ok || t.port == 0 {
                return invalid(
                    "tcp",
                    &format!("{:?} needs `namespace/name` and a port", t.service),
                );
            }
        }
        if self.upstream.h2_streams_per_connection == 0 {
            return invalid("upstream.h2StreamsPerConnection", "must be at least 1");
        }
        if self.limits.max_connections == 0 {
            return invalid("limits.maxConnections", "must be at least 1");
        }
        if self.limits.max_headers == 0 || self.limits.max_header_bytes < 256 {
            return invalid("limits.maxHeaders", "header limits are too small");
        }
        if self.limits.rate_limit_rps < 0.0 || self.limits.rate_limit_burst < 0.0 {
            return invalid("limits.rateLimitRps", "must not be negative");
        }
        self.validate_agent()
    }

    fn validate_agent(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        let agent = &self.agent;
        let Some(endpoint) = &agent.endpoint else {
            if agent.static_file.is_some() || agent.kubernetes.enabled {
                return invalid(
                    "agent.endpoint",
                    "is required when agent.staticFile or agent.kubernetes is set",
                );
            }
            return Ok(());
        };
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return invalid(
                "agent.endpoint",
                "must be an http:// or https:// URL of the federation API",
            );
        }
        if self.federation.catalog_file.is_some() {
            return invalid(
                "federation.catalogFile",
                "must not be set together with agent.endpoint (both would install catalogs)",
            );
        }
        for gw in &agent.gateway_endpoints {
            let ok = gw
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                return invalid(
                    "agent.gatewayEndpoints",
                    &format!("{gw:?} is not host:port"),
                );
            }
        }
        let zero = std::time::Duration::ZERO;
        if agent.heartbeat_interval == zero
            || agent.bundle_interval == zero
            || agent.static_poll_interval == zero
        {
            return invalid(
                "agent.heartbeatInterval",
                "agent intervals must be greater than zero",
            );
        }
        if agent.backoff_base == zero || agent.backoff_cap < agent.backoff_base {
            return invalid(
                "agent.backoffBase",
                "must be greater than zero and at most agent.backoffCap",
            );
        }
        Ok(())
    }
}

/// Parses a configuration document (YAML or JSON) without validating it.
pub fn parse_str(text: &str) -> Result<GatewayConfig, ConfigError> {
    serde_norway::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))
}

/// Reads and parses a configuration file.
pub fn load_file(path: &Path) -> Result<GatewayConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text)
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MIN: &str =
        "cluster: { id: eu-1, trustDomain: eu.test }\nidentity: { authorityDir: /tmp/x }\n";

    #[test]
    fn minimal_config_is_valid() {
        let c = parse_str(MIN).unwrap();
        c.validate().unwrap();
        assert_eq!(c.listeners.egress.port(), 15001);
        assert_eq!(c.upstream.max_retries, 2);
    }

    #[test]
    fn unknown_field_is_rejected_by_name() {
        let e = parse_str("cluster: { id: a, trustDomian: x }").unwrap_err();
        assert!(e.to_string().contains("trustDomian"), "{e}");
    }

    #[test]
    fn bad_cluster_id_names_the_field() {
        let c = parse_str(&MIN.replace("eu-1", "EU_1")).unwrap();
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("cluster.id"), "{e}");
    }

    #[test]
    fn identity_needs_one_source() {
        let c = parse_str("cluster: { id: a, trustDomain: t }").unwrap();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("identity.svidFile")
        );
    }

    #[test]
    fn overrides_win() {
        let mut c = parse_str(MIN).unwrap();
        c.apply(&Overrides {
            cluster_id: Some("other".into()),
            egress: Some("127.0.0.1:1".parse().unwrap()),
            ..Overrides::default()
        });
        assert_eq!(c.cluster.id, "other");
        assert_eq!(c.listeners.egress.port(), 1);
    }

    #[test]
    fn agent_is_off_by_default_and_checked_when_on() {
        let c = parse_str(MIN).unwrap();
        assert!(!c.agent.enabled());
        let on = format!(
            "{MIN}agent: {{ endpoint: \"http://api:8080\", gatewayEndpoints: [\"gw.example:15443\"] }}\n"
        );
        parse_str(&on).unwrap().validate().unwrap();
        let https = on.replace("http://", "https://");
        parse_str(&https).unwrap().validate().unwrap();
        let ftp = on.replace("http://", "ftp://");
        let e = parse_str(&ftp).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("agent.endpoint"), "{e}");
        let bad_gw = on.replace("gw.example:15443", "gw.example");
        let e = parse_str(&bad_gw).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("agent.gatewayEndpoints"), "{e}");
        let both = format!("{on}federation: {{ catalogFile: /tmp/c.json }}\n");
        let e = parse_str(&both).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("federation.catalogFile"), "{e}");
        let orphan = format!("{MIN}agent: {{ staticFile: /tmp/s.yaml }}\n");
        let e = parse_str(&orphan).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("agent.endpoint"), "{e}");
    }

    #[test]
    fn durations_parse_humantime() {
        let c = parse_str(&format!("{MIN}upstream: {{ connectTimeout: 250ms }}\n")).unwrap();
        assert_eq!(c.upstream.connect_timeout.as_millis(), 250);
    }
}
