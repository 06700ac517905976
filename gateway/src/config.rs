//! The gateway's configuration file: one serde struct per subsystem, every
//! field documented in `docs/gateway-config.md`.
//!
//! The file is YAML (JSON is valid YAML). Unknown fields are rejected so that a
//! typo is an error, not a silently ignored setting.

mod load;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use load::{ConfigError, Overrides, load_file, parse_str};

/// The whole gateway configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GatewayConfig {
    /// Who this gateway is: its cluster, locality and trust domain.
    pub cluster: ClusterConfig,
    /// Listener addresses for the egress, east-west ingress and admin ports.
    pub listeners: ListenersConfig,
    /// Where this gateway's X.509-SVID and key come from, and the caller JWT-SVID.
    pub identity: IdentityConfig,
    /// Federated trust bundles and the catalog source.
    pub federation: FederationConfig,
    /// Local endpoints per exported service, keyed by `namespace/name`.
    pub local_services: BTreeMap<String, Vec<SocketAddr>>,
    /// Timeouts, retries and health probing towards upstreams.
    pub upstream: UpstreamConfig,
    /// Protocol and resource limits that protect the gateway.
    pub limits: LimitsConfig,
    /// Access log and tracing.
    pub observability: ObservabilityConfig,
    /// TCP services: one egress port per imported TCP service port.
    pub tcp: Vec<TcpServiceConfig>,
    /// Runtime threads (0 = one per CPU; 1 = a single event loop).
    pub threads: usize,
    /// The cluster agent: registration, trust bundles, catalog sync from the
    /// federation API, local discovery. Off unless `agent.endpoint` is set.
    pub agent: causeway_agent::AgentConfig,
}

/// Identity and locality of the cluster this gateway runs in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// Cluster id (RFC 1123 label, < 64 chars), e.g. `eu-west-1`.
    pub id: String,
    /// Region of this cluster, e.g. `eu-west`.
    pub region: String,
    /// Zone of this cluster, e.g. `eu-west-1a`.
    pub zone: String,
    /// Residency labels of this cluster, e.g. `["eu", "de"]`.
    pub jurisdictions: Vec<String>,
    /// SPIFFE trust domain of this cluster, e.g. `eu.causeway.test`.
    pub trust_domain: String,
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

/// Where the gateway's own identity comes from.
///
/// Either `authorityDir` (development: an in-process CA that issues this
/// gateway's SVID) or `svidFile` + `keyFile` + `bundleFile`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct IdentityConfig {
    /// Directory of an in-process certificate authority (created if empty).
    pub authority_dir: Option<PathBuf>,
    /// PEM file with this gateway's X.509-SVID chain (leaf first).
    pub svid_file: Option<PathBuf>,
    /// PEM file with the private key of `svidFile`.
    pub key_file: Option<PathBuf>,
    /// SPIFFE bundle (JSON) of this gateway's own trust domain.
    pub bundle_file: Option<PathBuf>,
    /// PEM file with a JWT-SVID signing key (PKCS#8 EC P-256) when not using `authorityDir`.
    pub jwt_key_file: Option<PathBuf>,
    /// SPIFFE ID stated as the calling workload in the caller JWT-SVID;
    /// defaults to the gateway's own SPIFFE ID.
    pub workload_id: Option<String>,
    /// Lifetime of the caller JWT-SVIDs this gateway mints.
    #[serde(with = "humantime_serde")]
    pub caller_jwt_ttl: Duration,
    /// Lifetime of the X.509-SVID issued by `authorityDir`.
    #[serde(with = "humantime_serde")]
    pub svid_ttl: Duration,
    /// Lifetime of each CA certificate of `authorityDir`; the next CA
    /// signs from half of it on (applies to CAs created from now on).
    #[serde(with = "humantime_serde")]
    pub ca_ttl: Duration,
    /// How long a new CA is published in the bundle before it signs
    /// (default 15 minutes); must be less than half of `caTtl`.
    #[serde(with = "humantime_serde")]
    pub ca_prepare_ahead: Option<Duration>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            authority_dir: None,
            svid_file: None,
            key_file: None,
            bundle_file: None,
            jwt_key_file: None,
            workload_id: None,
            caller_jwt_ttl: Duration::from_secs(300),
            svid_ttl: Duration::from_secs(24 * 3600),
            ca_ttl: Duration::from_secs(24 * 3600),
            ca_prepare_ahead: None,
        }
    }
}

/// Federation inputs: bundles of other trust domains and the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FederationConfig {
    /// Federated SPIFFE bundle files, keyed by trust domain.
    pub bundles: BTreeMap<String, PathBuf>,
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
    pub h2_streams_per_connection: usize,
    /// Interval of active probes of remote gateways (`GET /healthz` over mTLS).
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            pool_idle_timeout: Duration::from_secs(90),
            h2_streams_per_connection: 100,
            probe_interval: Duration::from_secs(5),
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
    pub max_headers: usize,
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
    pub max_connections: usize,
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
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            h2_max_concurrent_streams: 256,
            rate_limit_rps: 0.0,
            rate_limit_burst: 0.0,
        }
    }
}

/// Access log and tracing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ObservabilityConfig {
    /// Write one JSON access-log line per request to stdout.
    pub access_log: bool,
    /// `tracing` filter for diagnostic logs (stderr), e.g. `info`.
    pub log_level: String,
    /// W3C trace context: `start` a trace when a request comes without a
    /// `traceparent`, or only `propagate` incoming ones.
    pub trace_context: TraceContextMode,
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
            log_level: "info".to_owned(),
            trace_context: TraceContextMode::Start,
        }
    }
}

/// One imported TCP service port exposed on a local egress port.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpServiceConfig {
    /// Service as `namespace/name`.
    pub service: String,
    /// Service port (must be exported by the serving cluster).
    pub port: u16,
    /// Local address the egress listens on for this service port.
    pub listen: SocketAddr,
}
