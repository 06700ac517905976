//! One cluster: its definition (locality, services) and its running parts.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use causeway_gateway::config::{ClusterConfig, GatewayConfig, IdentityConfig, IdentitySource};
use causeway_trust::TrustDomain;

use super::Timings;
use crate::echo::EchoServer;
use crate::gateway::GatewayProcess;
use crate::site::SiteFile;

/// A service a cluster runs (an echo backend) and, usually, exports.
#[derive(Debug, Clone)]
pub struct ServiceDef {
    /// `namespace/name`.
    pub service: String,
    /// Whether the cluster exports it.
    pub export: bool,
    /// The export's relative weight.
    pub weight: u32,
    /// The exported port's `appProtocol` (`http`, or `tcp` for a raw TCP
    /// service peers may tunnel to).
    pub app_protocol: &'static str,
}

/// What a cluster is: id, locality, residency labels, services.
#[derive(Debug, Clone)]
pub struct ClusterDef {
    /// Cluster id, e.g. `eu-west-1`.
    pub id: String,
    /// Region, e.g. `eu-west`.
    pub region: String,
    /// Zone, e.g. `eu-west-1a`.
    pub zone: String,
    /// Residency labels, e.g. `["eu"]`.
    pub jurisdictions: Vec<String>,
    /// Services with a local echo backend.
    pub services: Vec<ServiceDef>,
    /// Lifetime of the gateway's X.509-SVID (rotated at half-life).
    pub svid_ttl: Option<Duration>,
    /// CA lifetime and prepare-ahead of the gateway's in-process CA.
    pub ca_rotation: Option<(Duration, Duration)>,
    /// Imported TCP services (`namespace/name`) given a local egress port each.
    pub tcp_imports: Vec<String>,
    /// The gateway's `callers` section (who is calling its egress).
    pub callers: causeway_gateway::callers::CallersConfig,
    /// Whether the cluster has a (fake) Kubernetes API server its agent's
    /// MCS controllers run against.
    pub kubernetes: bool,
    /// Gateway replicas (default 1): each its own process and listeners,
    /// all of them the cluster's gateway endpoints; with Kubernetes they
    /// elect a leader on the cluster's API server.
    pub replicas: usize,
}

impl ClusterDef {
    /// A cluster without services.
    pub fn new(id: &str, region: &str, zone: &str, jurisdictions: &[&str]) -> Self {
        Self {
            id: id.to_owned(),
            region: region.to_owned(),
            zone: zone.to_owned(),
            jurisdictions: jurisdictions.iter().map(|s| (*s).to_owned()).collect(),
            services: Vec::new(),
            svid_ttl: None,
            ca_rotation: None,
            tcp_imports: Vec::new(),
            callers: causeway_gateway::callers::CallersConfig::default(),
            kubernetes: false,
            replicas: 1,
        }
    }

    /// Sets the gateway's `callers` section.
    pub fn callers(mut self, callers: causeway_gateway::callers::CallersConfig) -> Self {
        self.callers = callers;
        self
    }

    /// Gives the cluster a Kubernetes API server (the wire-true fake, one
    /// per cluster): its agent exports the `ServiceExport`s created there
    /// and writes `ServiceImport`s and EndpointSlices for remote services.
    pub fn kubernetes(mut self) -> Self {
        self.kubernetes = true;
        self
    }

    /// Runs `n` gateway replicas (see [`ClusterDef::replicas`]).
    pub fn replicas(mut self, n: usize) -> Self {
        self.replicas = n.max(1);
        self
    }

    /// Runs and exports `service` (`namespace/name`) with weight 100.
    pub fn service(self, service: &str) -> Self {
        self.weighted_service(service, 100)
    }

    /// Runs and exports `service` with `weight`.
    pub fn weighted_service(mut self, service: &str, weight: u32) -> Self {
        self.services.push(ServiceDef {
            service: service.to_owned(),
            export: true,
            weight,
            app_protocol: "http",
        });
        self
    }

    /// Runs and exports `service` as a raw TCP service (`appProtocol: tcp`),
    /// which peers reach through an mTLS tunnel.
    pub fn tcp_service(mut self, service: &str) -> Self {
        self.services.push(ServiceDef {
            service: service.to_owned(),
            export: true,
            weight: 100,
            app_protocol: "tcp",
        });
        self
    }

    /// Gives callers in this cluster a TCP egress port for `service` (port 8080).
    pub fn tcp_import(mut self, service: &str) -> Self {
        self.tcp_imports.push(service.to_owned());
        self
    }

    /// Gives the gateway SVIDs that live `ttl` (rotation every `ttl / 2`).
    pub fn svid_ttl(mut self, ttl: Duration) -> Self {
        self.svid_ttl = Some(ttl);
        self
    }

    /// Gives the gateway a CA that lives `ttl` and publishes its successor
    /// `prepare_ahead` before it signs (rotation every `ttl / 2`).
    pub fn ca_rotation(mut self, ttl: Duration, prepare_ahead: Duration) -> Self {
        self.ca_rotation = Some((ttl, prepare_ahead));
        self
    }

    /// The CA settings of the gateway's in-process authority.
    pub fn authority_config(&self) -> causeway_trust::AuthorityConfig {
        let mut c = causeway_trust::AuthorityConfig::default();
        if let Some(ttl) = self.svid_ttl {
            c.x509_svid_ttl = ttl;
        }
        if let Some((ttl, prepare_ahead)) = self.ca_rotation {
            c.ca_ttl = ttl;
            c.prepare_ahead = Some(prepare_ahead);
        }
        c
    }

    /// The trust domain: `<id>.causeway.test`.
    pub fn trust_domain(&self) -> String {
        format!("{}.causeway.test", self.id)
    }

    /// The gateway configuration (the harness adds the agent section and
    /// the local endpoints).
    pub fn gateway_config(
        &self,
        egress: SocketAddr,
        ingress: SocketAddr,
        admin: SocketAddr,
        dir: &Path,
        t: &Timings,
    ) -> GatewayConfig {
        let cluster = ClusterConfig {
            id: self
                .id
                .parse()
                .expect("cluster ids of the harness are valid"),
            region: self.region.clone(),
            zone: self.zone.clone(),
            jurisdictions: self.jurisdictions.clone(),
            trust_domain: TrustDomain::new(&self.trust_domain())
                .expect("trust domains of the harness are valid"),
        };
        let identity = IdentityConfig::new(IdentitySource::Authority {
            dir: dir.join("ca"),
        });
        let mut c = GatewayConfig::new(cluster, identity);
        c.listeners.egress = egress;
        c.listeners.ingress = ingress;
        c.listeners.admin = admin;
        if let Some(ttl) = self.svid_ttl {
            c.identity.svid_ttl = ttl;
        }
        if let Some((ttl, prepare_ahead)) = self.ca_rotation {
            c.identity.ca_ttl = ttl;
            c.identity.ca_prepare_ahead = Some(prepare_ahead);
        }
        c.federation.reload_interval = t.reload_interval;
        c.upstream.connect_timeout = t.connect_timeout;
        c.upstream.request_timeout = Duration::from_secs(5);
        c.upstream.probe_interval = t.probe_interval;
        c.observability.access_log = true;
        c.observability.audit_log = Some(causeway_gateway::audit::AuditConfig {
            path: dir.join("audit.log"),
            max_bytes: 16 * 1024 * 1024,
            keep: 2,
        });
        c.callers = self.callers.clone();
        c.observability.log_level = "warn".parse().expect("a valid filter");
        c.threads = 1;
        c
    }
}

/// A running cluster.
#[derive(Debug)]
pub struct ClusterHandle {
    /// Its definition.
    pub def: ClusterDef,
    /// Its gateway's address (in its network namespace, or on loopback).
    pub ip: IpAddr,
    /// Where its echo backends listen (the host side of the network).
    pub backend_ip: IpAddr,
    /// Its gateway process.
    pub gateway: GatewayProcess,
    /// Its static discovery file (the services its agent exports).
    pub site: SiteFile,
    /// Echo backends by `namespace/name`.
    pub backends: BTreeMap<String, EchoServer>,
    /// Its Kubernetes API server, if it has one (dropped after the gateway).
    pub kube: Option<causeway_agent::testing::FakeKube>,
    /// Its other gateway replicas (`replicas` > 1), `gateway` being the first.
    pub more_replicas: Vec<GatewayProcess>,
}

impl ClusterHandle {
    /// A Kubernetes client of the cluster's API server.
    pub fn kube_client(&self) -> anyhow::Result<kube::Client> {
        self.kube
            .as_ref()
            .map(causeway_agent::testing::FakeKube::client)
            .ok_or_else(|| anyhow::anyhow!("cluster {} has no kubernetes", self.def.id))
    }

    /// The local TCP egress port of an imported TCP service.
    pub fn tcp_egress(&self, service: &str) -> Option<SocketAddr> {
        self.gateway
            .config
            .tcp
            .iter()
            .find(|t| t.service.to_string() == service)
            .map(|t| t.listen)
    }

    /// The egress address callers in this cluster use.
    pub fn egress(&self) -> SocketAddr {
        self.gateway.egress()
    }
}

impl Drop for ClusterHandle {
    fn drop(&mut self) {
        for b in self.backends.values() {
            b.abort();
        }
    }
}
