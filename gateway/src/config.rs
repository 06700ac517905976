//! The gateway's configuration file: one serde struct per subsystem, every
//! field documented in `docs/gateway-config.md`.
//!
//! The file is YAML (JSON is valid YAML). Unknown fields are rejected so that a
//! typo is an error, not a silently ignored setting. Values parse into domain
//! types (a [`ClusterId`], a [`TrustDomain`], a [`ServiceRef`], an
//! [`IdentitySource`]): a configuration that exists is valid field by field;
//! [`GatewayConfig::validate`] checks only what spans several fields.

mod identity;
mod load;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use causeway_api::model::{ClusterId, ServiceRef};
use causeway_trust::TrustDomain;
use serde::{Deserialize, Serialize};

pub use identity::{IdentityConfig, IdentitySource};
pub use load::{ConfigError, Overrides, load_file, parse_str};

/// The whole gateway configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    /// Who this gateway is: its cluster, locality and trust domain.
    pub cluster: ClusterConfig,
    /// Listener addresses for the egress, east-west ingress and admin ports.
    #[serde(default)]
    pub listeners: ListenersConfig,
    /// Where this gateway's X.509-SVID and key come from, and the caller JWT-SVID.
    pub identity: IdentityConfig,
    /// Federated trust bundles and the catalog source.
    #[serde(default)]
    pub federation: FederationConfig,
    /// Who is calling the egress: the address map and what an unidentified
    /// caller gets.
    #[serde(default)]
    pub callers: crate::callers::CallersConfig,
    /// Local endpoints per exported service, keyed by `namespace/name`.
    #[serde(default)]
    pub local_services: BTreeMap<ServiceRef, Endpoints>,
    /// Timeouts, retries and health probing towards upstreams.
    #[serde(default)]
    pub upstream: UpstreamConfig,
    /// Protocol and resource limits that protect the gateway.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Access log and tracing.
    #[serde(default)]
    pub observability: ObservabilityConfig,
    /// TCP services: one egress port per imported TCP service port.
    #[serde(default)]
    pub tcp: Vec<TcpServiceConfig>,
    /// What SIGTERM does: how long to keep accepting after readiness turns
    /// off, and how long in-flight requests and tunnels may take to finish.
    #[serde(default)]
    pub drain: DrainConfig,
    /// Runtime threads (0 = one per CPU; 1 = a single event loop).
    #[serde(default)]
    pub threads: usize,
    /// The cluster agent: registration, trust bundles, catalog sync from the
    /// federation API, local discovery. Off unless `agent.endpoint` is set.
    #[serde(default)]
    pub agent: causeway_agent::AgentConfig,
}

impl GatewayConfig {
    /// A configuration for `cluster` with `identity` and every other
    /// section at its default.
    pub fn new(cluster: ClusterConfig, identity: IdentityConfig) -> Self {
        Self {
            cluster,
            listeners: ListenersConfig::default(),
            identity,
            federation: FederationConfig::default(),
            callers: crate::callers::CallersConfig::default(),
            local_services: BTreeMap::new(),
            upstream: UpstreamConfig::default(),
            limits: LimitsConfig::default(),
            observability: ObservabilityConfig::default(),
            tcp: Vec::new(),
            drain: DrainConfig::default(),
            threads: 0,
            agent: causeway_agent::AgentConfig::default(),
        }
    }
}

/// Identity and locality of the cluster this gateway runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Cluster id (RFC 1123 label, < 64 chars), e.g. `eu-west-1`.
    pub id: ClusterId,
    /// Region of this cluster, e.g. `eu-west`.
    #[serde(default)]
    pub region: String,
    /// Zone of this cluster, e.g. `eu-west-1a`.
    #[serde(default)]
    pub zone: String,
    /// Residency labels of this cluster, e.g. `["eu", "de"]`.
    #[serde(default)]
    pub jurisdictions: Vec<String>,
    /// SPIFFE trust domain of this cluster, e.g. `eu.causeway.test`.
    pub trust_domain: TrustDomain,
}

impl ClusterConfig {
    /// A cluster without locality.
    pub fn new(id: ClusterId, trust_domain: TrustDomain) -> Self {
        Self {
            id,
            region: String::new(),
            zone: String::new(),
            jurisdictions: Vec::new(),
            trust_domain,
        }
    }
}

/// The endpoints of one local service: at least one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<SocketAddr>", into = "Vec<SocketAddr>")]
pub struct Endpoints(Vec<SocketAddr>);

impl Endpoints {
    /// The addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.0
    }

    /// Adds an address.
    pub fn push(&mut self, addr: SocketAddr) {
        self.0.push(addr);
    }
}

impl TryFrom<Vec<SocketAddr>> for Endpoints {
    type Error = &'static str;
    fn try_from(v: Vec<SocketAddr>) -> Result<Self, Self::Error> {
        if v.is_empty() {
            return Err("a local service needs at least one endpoint");
        }
        Ok(Self(v))
    }
}

impl From<Endpoints> for Vec<SocketAddr> {
    fn from(e: Endpoints) -> Self {
        e.0
    }
}

impl From<SocketAddr> for Endpoints {
    fn from(a: SocketAddr) -> Self {
        Self(vec![a])
    }
}

/// Listener addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenersConfig {
    /// In-cluster egress listener (HTTP/1.1, h2c, gRPC).
    pub egress: SocketAddr,
    /// East-west mTLS listener for peer gateways.
    pub ingress: SocketAddr,
    /// Admin listener (`/metrics`, `/healthz`, `/readyz`, `/debug/*`).
    pub admin: SocketAddr,
}

impl Default for ListenersConfig {
    fn default() -> Self {
        Self {
            egress: SocketAddr::from(([0, 0, 0, 0], 15001)),
            ingress: SocketAddr::from(([0, 0, 0, 0], 15443)),
            admin: SocketAddr::from(([127, 0, 0, 1], 15000)),
        }
    }
}

/// Federation inputs: bundles of other trust domains and the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FederationConfig {
    /// Federated SPIFFE bundle files, keyed by trust domain.
    pub bundles: BTreeMap<TrustDomain, PathBuf>,
    /// Catalog snapshot file (JSON or YAML `CatalogSnapshot`).
    pub catalog_file: Option<PathBuf>,
    /// How often the catalog and bundle files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            bundles: BTreeMap::new(),
            catalog_file: None,
            reload_interval: Duration::from_secs(2),
        }
    }
}

/// Upstream behaviour defaults (a `TrafficPolicy` overrides them per service).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamConfig {
    /// TCP (+TLS) connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Whole-request timeout (upstream read/write idle limit).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Maximum attempts per request beyond the first (connect failures).
    pub max_retries: usize,
    /// Idle time after which a pooled upstream connection is closed.
    #[serde(with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// Maximum concurrent HTTP/2 streams per pooled gateway connection.
    pub h2_streams_per_connection: NonZeroUsize,
    /// Interval of active probes of remote gateways (`GET /healthz` over mTLS).
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Each wait between probes of one gateway is `probeInterval` plus a
    /// random share of it up to this percentage (0..=100).
    pub probe_jitter_percent: u8,
    /// Passed probes in a row that mark a failing remote gateway healthy.
    pub probe_healthy_threshold: NonZeroU32,
    /// Failed probes in a row that mark a remote gateway failing.
    pub probe_unhealthy_threshold: NonZeroU32,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            pool_idle_timeout: Duration::from_secs(90),
            h2_streams_per_connection: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            probe_interval: Duration::from_secs(5),
            probe_jitter_percent: 10,
            probe_healthy_threshold: NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN),
            probe_unhealthy_threshold: NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN),
        }
    }
}

/// Limits that protect the gateway from misbehaving clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitsConfig {
    /// Maximum total size of request headers in bytes.
    pub max_header_bytes: usize,
    /// Maximum number of request headers.
    pub max_headers: NonZeroUsize,
    /// Deadline for receiving a complete request header on a new connection.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Deadline for receiving a whole request body, from the request's start.
    #[serde(with = "humantime_serde")]
    pub body_timeout: Duration,
    /// Idle timeout of downstream keep-alive connections.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Maximum concurrent downstream connections per listener.
    pub max_connections: NonZeroUsize,
    /// Maximum concurrent HTTP/2 streams per downstream connection.
    pub h2_max_concurrent_streams: u32,
    /// Local rate limit per destination service: sustained requests per second (0 = off).
    pub rate_limit_rps: f64,
    /// Local rate limit burst size.
    pub rate_limit_burst: f64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 * 1024,
            max_headers: NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN),
            h2_max_concurrent_streams: 256,
            rate_limit_rps: 0.0,
            rate_limit_burst: 0.0,
        }
    }
}

/// Graceful shutdown on SIGTERM.
///
/// `/readyz` answers 503 at once; the listeners keep accepting for `delay`
/// (load balancers and Kubernetes endpoints need that long to stop sending
/// new connections), then stop accepting, send HTTP/2 GOAWAY, turn
/// keep-alive off and let in-flight requests and tunnels finish for up to
/// `timeout`; what is still open then is cut and the process exits 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct DrainConfig {
    /// How long listeners keep accepting after readiness turns off.
    #[serde(with = "humantime_serde")]
    pub delay: Duration,
    /// How long in-flight requests and tunnels may take once listeners
    /// stopped accepting.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(5),
            timeout: Duration::from_secs(25),
        }
    }
}

/// Access log and tracing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservabilityConfig {
    /// Write one JSON access-log line per request to stdout.
    pub access_log: bool,
    /// `tracing` filter for diagnostic logs (stderr), e.g. `info` or
    /// `info,causeway_agent=debug`.
    pub log_level: LogFilter,
    /// W3C trace context: `start` a trace when a request comes without a
    /// `traceparent`, or only `propagate` incoming ones.
    pub trace_context: TraceContextMode,
    /// The residency audit log (JSON lines, rotated by size, never
    /// dropped); off when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<crate::audit::AuditConfig>,
}

/// What the gateway does with W3C `traceparent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TraceContextMode {
    /// Continue an incoming trace (new span id); start one when none came in.
    #[default]
    Start,
    /// Continue an incoming trace; add nothing when none came in.
    Propagate,
}

impl Default for ObservabilityConfig {
    fn default() -> Self {
        Self {
            access_log: false,
            log_level: LogFilter::default(),
            trace_context: TraceContextMode::Start,
            audit_log: None,
        }
    }
}

/// A `tracing` filter directive (`info`, `warn,causeway_agent=debug`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogFilter(String);

impl LogFilter {
    /// The directive.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LogFilter {
    fn default() -> Self {
        Self("info".to_owned())
    }
}

impl TryFrom<String> for LogFilter {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        tracing_subscriber::EnvFilter::try_new(&s)
            .map_err(|e| format!("invalid log filter {s:?}: {e}"))?;
        Ok(Self(s))
    }
}

impl std::str::FromStr for LogFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl From<LogFilter> for String {
    fn from(l: LogFilter) -> Self {
        l.0
    }
}

/// One imported TCP service port exposed on a local egress port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpServiceConfig {
    /// Service as `namespace/name`.
    pub service: ServiceRef,
    /// Service port (must be exported by the serving cluster).
    pub port: std::num::NonZeroU16,
    /// Local address the egress listens on for this service port.
    pub listen: SocketAddr,
}
