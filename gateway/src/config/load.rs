//! Reading, overriding and validating the configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use causeway_api::model::ClusterId;

use super::{GatewayConfig, LogFilter};

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
    pub cluster_id: Option<ClusterId>,
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
    pub log_level: Option<LogFilter>,
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

    /// Checks what spans several fields (each field is valid once parsed);
    /// names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        let td = &self.cluster.trust_domain;
        if self.federation.bundles.contains_key(td) {
            return invalid(
                "federation.bundles",
                "must not contain this cluster's own trust domain (use identity)",
            );
        }
        if let Some(w) = &self.identity.workload_id
            && w.trust_domain() != td
        {
            return invalid(
                "identity.workloadId",
                &format!("{w} is not in this cluster's trust domain {td}"),
            );
        }
        if let Some(e) = self
            .callers
            .by_address
            .iter()
            .find(|e| e.spiffe_id.trust_domain() != td)
        {
            return invalid(
                "callers.byAddress",
                &format!("{} is not in this cluster's trust domain {td}", e.spiffe_id),
            );
        }
        if self
            .observability
            .audit_log
            .as_ref()
            .is_some_and(|a| a.max_bytes < 4096)
        {
            return invalid("observability.auditLog.maxBytes", "must be at least 4096");
        }
        let l = &self.listeners;
        let clash = |a: SocketAddr, b: SocketAddr| a == b && a.port() != 0;
        if clash(l.egress, l.ingress) || clash(l.egress, l.admin) || clash(l.ingress, l.admin) {
            return invalid("listeners", "egress, ingress and admin must differ");
        }
        if self.upstream.probe_jitter_percent > 100 {
            return invalid("upstream.probeJitterPercent", "must be at most 100");
        }
        if self.upstream.probe_interval.is_zero() {
            return invalid("upstream.probeInterval", "must be positive");
        }
        if self.limits.max_header_bytes < 256 {
            return invalid("limits.maxHeaderBytes", "must be at least 256");
        }
        if self.limits.rate_limit_rps < 0.0 || self.limits.rate_limit_burst < 0.0 {
            return invalid("limits.rateLimitRps", "must not be negative");
        }
        if self.agent.enabled() && self.federation.catalog_file.is_some() {
            return invalid(
                "federation.catalogFile",
                "must not be set together with agent.endpoint (both would install catalogs)",
            );
        }
        self.agent.validate().map_err(|e| ConfigError::Invalid {
            field: e.field,
            message: e.message,
        })
    }
}

/// Parses a configuration document (YAML or JSON); every field is checked
/// as it parses (errors name the field's path), cross-field rules are
/// [`GatewayConfig::validate`]'s.
pub fn parse_str(text: &str) -> Result<GatewayConfig, ConfigError> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ConfigError::Parse(inner.to_string())
        } else {
            ConfigError::Parse(format!("{path}: {inner}"))
        }
    })
}

/// Reads and parses a configuration file.
pub fn load_file(path: &Path) -> Result<GatewayConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text)
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
    fn bad_values_are_refused_when_parsed_naming_the_field() {
        for (bad, field) in [
            (MIN.replace("eu-1", "EU_1"), "cluster.id"),
            (MIN.replace("eu.test", "EU test"), "cluster.trustDomain"),
            (
                format!("{MIN}localServices: {{ \"nope\": [\"127.0.0.1:1\"] }}\n"),
                "localServices",
            ),
            (
                format!("{MIN}localServices: {{ \"a/b\": [] }}\n"),
                "localServices",
            ),
            (
                format!("{MIN}limits: {{ maxConnections: 0 }}\n"),
                "limits.maxConnections",
            ),
            (
                format!("{MIN}observability: {{ logLevel: \"info,=nope[\" }}\n"),
                "observability.logLevel",
            ),
            (
                format!("{MIN}tcp: [{{ service: nope, port: 5432, listen: \"127.0.0.1:1\" }}]\n"),
                "tcp",
            ),
        ] {
            let e = parse_str(&bad).unwrap_err().to_string();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }

    #[test]
    fn identity_needs_one_source() {
        let e = parse_str("cluster: { id: a, trustDomain: t }\nidentity: {}\n").unwrap_err();
        assert!(e.to_string().contains("svidFile"), "{e}");
        let e = parse_str(
            "cluster: { id: a, trustDomain: t }\nidentity: { authorityDir: /x, svidFile: /y }\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn a_workload_outside_the_own_trust_domain_is_refused() {
        let c = parse_str(&MIN.replace(
            "authorityDir: /tmp/x",
            "authorityDir: /tmp/x, workloadId: \"spiffe://other.test/ns/a/sa/b\"",
        ))
        .unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("identity.workloadId"), "{e}");
    }

    #[test]
    fn overrides_win() {
        let mut c = parse_str(MIN).unwrap();
        c.apply(&Overrides {
            cluster_id: Some("other".parse().unwrap()),
            egress: Some("127.0.0.1:1".parse().unwrap()),
            ..Overrides::default()
        });
        assert_eq!(c.cluster.id.as_str(), "other");
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
    fn probe_settings_parse_and_are_checked() {
        let c = parse_str(MIN).unwrap();
        assert_eq!(c.upstream.probe_healthy_threshold.get(), 2);
        assert_eq!(c.upstream.probe_unhealthy_threshold.get(), 2);
        assert_eq!(c.upstream.probe_jitter_percent, 10);
        let set = format!(
            "{MIN}upstream: {{ probeHealthyThreshold: 3, probeUnhealthyThreshold: 1, probeJitterPercent: 0 }}\n"
        );
        let c = parse_str(&set).unwrap();
        c.validate().unwrap();
        assert_eq!(c.upstream.probe_healthy_threshold.get(), 3);
        assert_eq!(c.upstream.probe_unhealthy_threshold.get(), 1);
        let zero = format!("{MIN}upstream: {{ probeUnhealthyThreshold: 0 }}\n");
        let e = parse_str(&zero).unwrap_err().to_string();
        assert!(e.contains("probeUnhealthyThreshold"), "{e}");
        let jitter = format!("{MIN}upstream: {{ probeJitterPercent: 101 }}\n");
        let e = parse_str(&jitter)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream.probeJitterPercent"), "{e}");
        let never = format!("{MIN}upstream: {{ probeInterval: 0s }}\n");
        let e = parse_str(&never)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("upstream.probeInterval"), "{e}");
    }

    #[test]
    fn durations_parse_humantime() {
        let c = parse_str(&format!("{MIN}upstream: {{ connectTimeout: 250ms }}\n")).unwrap();
        assert_eq!(c.upstream.connect_timeout.as_millis(), 250);
    }
}
