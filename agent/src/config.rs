//! Configuration of the cluster agent (the `agent:` section of the gateway
//! configuration file).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The cluster agent: registration, heartbeat, trust bundles, catalog sync
/// and local service discovery. Off unless `endpoint` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct AgentConfig {
    /// Base URL of the federation API, e.g. `https://federation.example.com`
    /// or `http://causeway-federation:8080`.
    /// Unset: the agent does not run.
    pub endpoint: Option<String>,
    /// File holding the bearer token (scope `cluster:<id>`); re-read on every start.
    pub token_file: Option<PathBuf>,
    /// PEM file with CA certificates trusted for an `https://` endpoint,
    /// beside the system's (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Present the gateway's X.509-SVID to the (`https://`) federation API;
    /// without `tokenFile` it is the only credential: the API must serve TLS
    /// itself, and the cluster and its bundle must already be in the catalog.
    pub authenticate_with_svid: bool,
    /// Cloud or site kind recorded in the cluster record (`aws`, `gcp`, `azure`, `vm`, ...).
    pub cloud: String,
    /// Free-form locality labels of the cluster record.
    pub labels: BTreeMap<String, String>,
    /// `host:port` addresses of this gateway's east-west listener as peers reach it
    /// (e.g. the cloud load balancer).
    pub gateway_endpoints: Vec<String>,
    /// Where the last applied catalog is persisted; at start, when the API is
    /// unreachable, the gateway serves from it.
    pub snapshot_file: Option<PathBuf>,
    /// Interval of `POST /v1/clusters/{id}/heartbeat` (well below the server's lease TTL).
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Interval of CA rotation checks (`Authority::tick`) and bundle publication.
    #[serde(with = "humantime_serde")]
    pub bundle_interval: Duration,
    /// First reconnect back-off ceiling (full jitter, doubling).
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    /// Largest reconnect back-off ceiling.
    #[serde(with = "humantime_serde")]
    pub backoff_cap: Duration,
    /// Static discovery file (VMs, legacy sites): services, ports and local endpoints.
    pub static_file: Option<PathBuf>,
    /// How often the static file's mtime and hash are checked.
    #[serde(with = "humantime_serde")]
    pub static_poll_interval: Duration,
    /// The Kubernetes MCS controllers.
    pub kubernetes: KubernetesConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            token_file: None,
            ca_file: None,
            authenticate_with_svid: false,
            cloud: String::new(),
            labels: BTreeMap::new(),
            gateway_endpoints: Vec::new(),
            snapshot_file: None,
            heartbeat_interval: Duration::from_secs(5),
            bundle_interval: Duration::from_secs(30),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(30),
            static_file: None,
            static_poll_interval: Duration::from_millis(500),
            kubernetes: KubernetesConfig::default(),
        }
    }
}

/// The Kubernetes side of the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesConfig {
    /// Run the `ServiceExport` and `ServiceImport` controllers (in-cluster
    /// credentials or `KUBECONFIG`).
    pub enabled: bool,
    /// Pod IPs (or service address) of this gateway's egress listener; the
    /// EndpointSlices of every `ServiceImport` point at them. Empty: the
    /// `POD_IP` environment variable (Kubernetes downward API).
    pub egress_addresses: Vec<IpAddr>,
    /// Port of the egress listener, written into the import EndpointSlices.
    pub egress_port: u16,
    /// `namespace/name` of the Service in front of the gateway replicas'
    /// egress (the chart's `...-gateway-egress`): the import EndpointSlices
    /// list every ready replica its EndpointSlices list, and follow them
    /// as replicas come and go. Unset: `egressAddresses`.
    pub egress_service: Option<String>,
    /// A kubeconfig file to reach the API server with (an agent outside
    /// the cluster). Unset: in-cluster credentials, else `KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// Leader election among the gateway's replicas: only the leader
    /// writes to the Kubernetes API.
    pub leader_election: LeaderElectionConfig,
    /// A label selector (`key=value,other`, as `kubectl -l`) choosing the
    /// `ServiceExport`s this agent acts on, so Causeway can share a cluster
    /// with another MCS controller. Empty: every `ServiceExport`.
    pub export_selector: String,
}

/// Leader election on a `coordination.k8s.io/v1` Lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElectionConfig {
    /// Elect a leader (off: this replica always writes; only for a single
    /// replica).
    pub enabled: bool,
    /// Namespace of the Lease; empty: `POD_NAMESPACE`, else `default`.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity; empty: `POD_NAME`, else the host name.
    pub identity: String,
    /// How long a Lease stays held without renewal (takeover bound).
    #[serde(with = "humantime_serde")]
    pub lease_duration: Duration,
    /// How long the leader keeps writing while renewals fail.
    #[serde(with = "humantime_serde")]
    pub renew_deadline: Duration,
    /// Interval of renewals and acquisition attempts.
    #[serde(with = "humantime_serde")]
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: String::new(),
            name: "causeway-agent".into(),
            identity: String::new(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            egress_addresses: Vec::new(),
            egress_port: 15001,
            egress_service: None,
            kubeconfig: None,
            leader_election: LeaderElectionConfig::default(),
            export_selector: String::new(),
        }
    }
}

/// A field of the `agent:` section with an invalid value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config field `{field}`: {message}")]
pub struct ConfigFieldError {
    /// Dotted path of the field, e.g. `agent.endpoint`.
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl AgentConfig {
    /// Whether the agent runs at all.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Checks the section; names the first bad field.
    pub fn validate(&self) -> Result<(), ConfigFieldError> {
        let invalid = |field, message: &str| {
            Err(ConfigFieldError {
                field,
                message: message.to_owned(),
            })
        };
        let Some(endpoint) = &self.endpoint else {
            if self.static_file.is_some() || self.kubernetes.enabled {
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
        for gw in &self.gateway_endpoints {
            if gw.parse::<causeway_api::model::HostPort>().is_err() {
                return invalid(
                    "agent.gatewayEndpoints",
                    &format!("{gw:?} is not host:port"),
                );
            }
        }
        let zero = Duration::ZERO;
        if self.heartbeat_interval == zero
            || self.bundle_interval == zero
            || self.static_poll_interval == zero
        {
            return invalid(
                "agent.heartbeatInterval",
                "agent intervals must be greater than zero",
            );
        }
        if let Some(svc) = &self.kubernetes.egress_service
            && svc.parse::<causeway_api::model::ServiceRef>().is_err()
        {
            return invalid(
                "agent.kubernetes.egressService",
                "must be namespace/name of a Service",
            );
        }
        if let Err(e) = check_selector(&self.kubernetes.export_selector) {
            return invalid("agent.kubernetes.exportSelector", &e);
        }
        let le = &self.kubernetes.leader_election;
        if le.enabled
            && (le.retry_period == zero
                || le.renew_deadline <= le.retry_period
                || le.lease_duration <= le.renew_deadline)
        {
            return invalid(
                "agent.kubernetes.leaderElection",
                "needs 0 < retryPeriod < renewDeadline < leaseDuration",
            );
        }
        if self.backoff_base == zero || self.backoff_cap < self.backoff_base {
            return invalid(
                "agent.backoffBase",
                "must be greater than zero and at most agent.backoffCap",
            );
        }
        Ok(())
    }
}

/// Checks an equality-based label selector (`a=b,c!=d,e,!f`), the form the
/// agent sends as `labelSelector`.
pub fn check_selector(selector: &str) -> Result<(), String> {
    use causeway_api::model::kmeta::{check_label_value, check_qualified_name};
    if selector.trim().is_empty() {
        return Ok(());
    }
    for term in selector.split(',') {
        let term = term.trim();
        let (key, value) = if let Some((k, v)) = term.split_once("!=") {
            (k, Some(v))
        } else if let Some((k, v)) = term.split_once("==") {
            (k, Some(v))
        } else if let Some((k, v)) = term.split_once('=') {
            (k, Some(v))
        } else {
            (term.strip_prefix('!').unwrap_or(term), None)
        };
        let key = key.trim();
        if key.contains(' ') {
            return Err(format!(
                "{term:?}: only equality-based terms (key=value, key!=value, key, !key) are supported"
            ));
        }
        check_qualified_name(key).map_err(|e| format!("{term:?}: label key {e}"))?;
        if let Some(v) = value {
            check_label_value(v.trim()).map_err(|e| format!("{term:?}: label value {e}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::check_selector;

    #[test]
    fn export_selectors_are_equality_label_selectors() {
        for ok in ["", "causeway.dev/export=true", "a==b, c!=d,e,!f", "tier="] {
            assert!(check_selector(ok).is_ok(), "{ok:?}");
        }
        for (bad, says) in [
            ("env in (a,b)", "equality-based"),
            ("Bad Key=x", "equality-based"),
            ("a=has space", "label value"),
            ("-a=b", "label key"),
        ] {
            let e = check_selector(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
