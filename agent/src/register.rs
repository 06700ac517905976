//! Registration of this cluster in the federation and its heartbeat.

use causeway_api::client::{Client, Precondition};
use causeway_api::model::{Cluster, ClusterId, ClusterSpec};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;

use causeway_trust::TrustDomain;

use super::backoff::Backoff;
use super::config::AgentConfig;
use super::metrics::AgentMetrics;

/// This cluster as the agent registers it: identity and locality.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The cluster id.
    pub id: ClusterId,
    /// Its region.
    pub region: String,
    /// Its zone.
    pub zone: String,
    /// Its residency labels.
    pub jurisdictions: Vec<String>,
    /// Its SPIFFE trust domain.
    pub trust_domain: TrustDomain,
}

/// Why the cluster record could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid cluster record: {0}")]
pub struct RecordError(pub String);

/// The cluster record this gateway registers.
pub fn cluster_record(cluster: &ClusterInfo, agent: &AgentConfig) -> Result<Cluster, RecordError> {
    let id = cluster.id.clone();
    let spec: ClusterSpec = serde_json::from_value(serde_json::json!({
        "cloud": agent.cloud,
        "region": cluster.region,
        "zone": cluster.zone,
        "jurisdictions": cluster.jurisdictions,
        "labels": agent.labels,
        "gateway": {"endpoints": agent.gateway_endpoints},
        "trustDomain": cluster.trust_domain.name(),
    }))
    .map_err(|e| RecordError(e.to_string()))?;
    Ok(Cluster::new(id, spec))
}

/// Keeps the cluster registered and its heartbeat alive.
#[derive(Debug)]
pub struct Registrar {
    /// The API client.
    pub client: Client,
    /// The record to register.
    pub record: Cluster,
    /// Heartbeat interval.
    pub interval: std::time::Duration,
    /// Back-off between failed registrations.
    pub backoff: Backoff,
    /// Metrics.
    pub metrics: AgentMetrics,
}

impl Registrar {
    /// Registers (creates or replaces the spec of) the cluster record.
    pub async fn register(&self) -> Result<(), causeway_api::client::ClientError> {
        let mut record = self.record.clone();
        record.metadata.resource_version = None;
        let r = self.client.put_cluster(&record, Precondition::None).await;
        self.metrics.call("register", r.is_ok());
        r.map(|_| ())
    }

    /// Registers, then heartbeats every interval until shutdown; re-registers
    /// when the record disappeared (404) or the API came back.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut rng = StdRng::from_os_rng();
        let mut registered = false;
        loop {
            if !registered {
                match self.register().await {
                    Ok(()) => {
                        tracing::info!(cluster = %self.record.id(), "cluster registered");
                        registered = true;
                        self.backoff.reset();
                    }
                    Err(e) if e.status() == Some(403) => {
                        // Refused for good, e.g. an admin moved this cluster
                        // (region and jurisdictions are theirs to set): keep
                        // the stored record and heartbeat it, so the cluster
                        // stays connected; the operator fixes the config.
                        tracing::error!(cluster = %self.record.id(), error = %e,
                            "cluster registration refused; heartbeating the record as stored");
                        registered = true;
                    }
                    Err(e) => {
                        let delay = self.backoff.next_delay(&mut rng);
                        tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "cluster registration failed");
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => continue,
                            _ = shutdown.changed() => return,
                        }
                    }
                }
            }
            match self.client.heartbeat(self.record.id().as_str()).await {
                Ok(_) => self.metrics.call("heartbeat", true),
                Err(e) => {
                    self.metrics.call("heartbeat", false);
                    tracing::warn!(error = %e, "heartbeat failed");
                    if e.is_not_found() {
                        registered = false;
                        continue;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn record_carries_locality_endpoints_and_trust_domain() {
        let cluster = ClusterInfo {
            id: "eu-west-1".parse().unwrap(),
            region: "eu-west".into(),
            zone: "eu-west-1a".into(),
            jurisdictions: vec!["eu".into(), "de".into()],
            trust_domain: TrustDomain::new("eu.example").unwrap(),
        };
        let agent = AgentConfig {
            cloud: "aws".into(),
            gateway_endpoints: vec!["gw.eu.example:15443".into()],
            ..AgentConfig::default()
        };
        let c = cluster_record(&cluster, &agent).unwrap();
        assert_eq!(c.id().as_str(), "eu-west-1");
        assert_eq!(c.spec.cloud, "aws");
        assert_eq!(c.spec.jurisdictions, vec!["eu", "de"]);
        assert_eq!(
            c.spec.gateway.endpoints[0].to_string(),
            "gw.eu.example:15443"
        );
        assert_eq!(c.spec.trust_domain.as_str(), "eu.example");

        let bad = AgentConfig {
            gateway_endpoints: vec!["no-port".into()],
            ..AgentConfig::default()
        };
        assert!(cluster_record(&cluster, &bad).is_err());
    }
}
