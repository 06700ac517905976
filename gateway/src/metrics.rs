//! Prometheus metrics of the proxy (every metric is listed in `docs/metrics.md`).
//!
//! Labels are bounded: service names and cluster ids come from the catalog,
//! status is a class (`2xx` ... `5xx`), a gRPC status one of 17 codes
//! or `none`/`invalid`/`missing`. Label values are `Arc<str>` so that
//! recording a request does not allocate.

use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// A cheap-to-clone label value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Label(pub Arc<str>);

impl Label {
    /// A label from a static string.
    pub fn from_static(s: &'static str) -> Self {
        Self(Arc::from(s))
    }

    /// `unknown` (shared: the request path clones it instead of allocating).
    pub fn unknown() -> Self {
        static L: LazyLock<Label> = LazyLock::new(|| Label::from_static("unknown"));
        L.clone()
    }

    /// `none` (shared, like [`Label::unknown`]).
    pub fn none() -> Self {
        static L: LazyLock<Label> = LazyLock::new(|| Label::from_static("none"));
        L.clone()
    }
}

impl From<&str> for Label {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl EncodeLabelValue for Label {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

/// Labels of request metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `egress` or `ingress`.
    pub listener: &'static str,
    /// `namespace/name` of the destination service (or `unknown`).
    pub service: Label,
    /// Cluster the request came from.
    pub source_cluster: Label,
    /// Cluster that served it (or `none`).
    pub destination_cluster: Label,
    /// `1xx` .. `5xx`.
    pub status_class: &'static str,
    /// The gRPC status code (`0` .. `16`), `none` for other protocols,
    /// `invalid` or `missing` when a gRPC response's status was unusable.
    pub grpc_status: &'static str,
}

/// Labels of duration histograms.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DurationLabels {
    /// `egress` or `ingress`.
    pub listener: &'static str,
    /// `namespace/name` of the destination service.
    pub service: Label,
    /// Cluster that served it.
    pub destination_cluster: Label,
}

/// Labels naming one listener.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ListenerLabels {
    /// `egress`, `ingress`, `admin` or `tcp`.
    pub listener: &'static str,
}

/// Labels naming one upstream target cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TargetLabels {
    /// Destination cluster id (`local` endpoints use the local id).
    pub destination_cluster: Label,
}

/// Labels naming one service in one cluster (outlier detection is per
/// service per cluster).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ServiceTargetLabels {
    /// `namespace/name`.
    pub service: Label,
    /// Destination cluster id.
    pub destination_cluster: Label,
}

/// Labels of residency denials and rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ServiceLabels {
    /// `namespace/name`.
    pub service: Label,
}

/// Labels of denials.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DenyLabels {
    /// `namespace/name`.
    pub service: Label,
    /// Machine-readable reason.
    pub reason: &'static str,
}

/// Labels of refused tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TokenLabels {
    /// `jwt_svid` (a workload's, at the egress), `oidc` or `caller_jwt`
    /// (a peer gateway's, at the ingress).
    pub source: &'static str,
    /// Typed reason (`expired`, `bad_signature`, `alg_none`, ...).
    pub reason: &'static str,
}

/// Labels of the certificate expiry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CertLabels {
    /// `x509-svid`.
    pub kind: &'static str,
}

/// Labels of identity source errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IdentitySourceLabels {
    /// `workload_api`.
    pub source: &'static str,
    /// Typed reason (`unreachable`, `status`, `stream_ended`, `no_svid`,
    /// `malformed`, `svid_not_verified`, `wrong_trust_domain`).
    pub reason: &'static str,
}

/// Labels of identity updates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct IdentityUpdateLabels {
    /// `x509_svid`, `bundle` (own X.509 authorities), `federated_bundle` or
    /// `jwt_bundle`.
    pub kind: &'static str,
}

/// Every metric of the gateway.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Requests by outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Total request duration.
    pub request_duration: Family<DurationLabels, Histogram>,
    /// Time to the upstream response header.
    pub upstream_duration: Family<DurationLabels, Histogram>,
    /// Open downstream connections.
    pub active_connections: Family<ListenerLabels, Gauge>,
    /// Accepted downstream connections.
    pub connections: Family<ListenerLabels, Counter>,
    /// Connections refused because the connection cap was reached.
    pub connections_refused: Family<ListenerLabels, Counter>,
    /// Connections closed by the header deadline or handshake timeout.
    pub slow_clients: Family<ListenerLabels, Counter>,
    /// Upstream connect failures.
    pub upstream_connect_errors: Family<TargetLabels, Counter>,
    /// Retries.
    pub retries: Family<ServiceLabels, Counter>,
    /// 1 when the circuit breaker of a target is open.
    pub circuit_open: Family<TargetLabels, Gauge>,
    /// 1 when a service's target (cluster) is ejected by outlier detection.
    pub ejected: Family<ServiceTargetLabels, Gauge>,
    /// 1 when the active probe of a peer cluster's gateway fails.
    pub probe_failing: Family<TargetLabels, Gauge>,
    /// Residency-governed denials.
    pub residency_denials: Family<DenyLabels, Counter>,
    /// Presented tokens that did not verify.
    pub token_rejections: Family<TokenLabels, Counter>,
    /// Audit lines that could not be written.
    pub audit_write_errors: Counter,
    /// Requests denied for any other routing or policy reason.
    pub denials: Family<DenyLabels, Counter>,
    /// Requests refused by the local rate limit.
    pub rate_limited: Family<ServiceLabels, Counter>,
    /// Rollback-guard trips.
    pub rollbacks: Family<ServiceLabels, Counter>,
    /// Revision of the catalog in use.
    pub catalog_revision: Gauge,
    /// Seconds since the catalog in use was loaded.
    pub catalog_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// When the gateway's certificate expires (Unix seconds).
    pub cert_expiry: Family<CertLabels, Gauge>,
    /// Identity source failures (the last good identity keeps serving).
    pub identity_source_errors: Family<IdentitySourceLabels, Counter>,
    /// Identity material taken from a source (rotations).
    pub identity_updates: Family<IdentityUpdateLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Metrics {
    /// Creates and registers every metric under the `causeway_gateway`
    /// prefix, and `causeway_build_info`.
    pub fn register(registry: &mut Registry) -> Self {
        registry.register(
            "causeway_build",
            "The running build: version and commit labels, value 1",
            prometheus_client::metrics::info::Info::new(
                causeway_api::wire::VersionInfo::this_build().labels(),
            ),
        );
        let r = registry.sub_registry_with_prefix("causeway_gateway");
        let m = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            upstream_duration: Family::new_with_constructor(latency_histogram),
            active_connections: Family::default(),
            connections: Family::default(),
            connections_refused: Family::default(),
            slow_clients: Family::default(),
            upstream_connect_errors: Family::default(),
            retries: Family::default(),
            circuit_open: Family::default(),
            ejected: Family::default(),
            probe_failing: Family::default(),
            residency_denials: Family::default(),
            token_rejections: Family::default(),
            audit_write_errors: Counter::default(),
            denials: Family::default(),
            rate_limited: Family::default(),
            rollbacks: Family::default(),
            catalog_revision: Gauge::default(),
            catalog_age: Gauge::default(),
            cert_expiry: Family::default(),
            identity_source_errors: Family::default(),
            identity_updates: Family::default(),
        };
        r.register(
            "identity_source_errors",
            "Identity source failures by typed reason; the last good identity keeps serving",
            Described(m.identity_source_errors.clone()),
        );
        r.register(
            "identity_updates",
            "Identity material taken from the Workload API: SVID rotations and bundle updates",
            Described(m.identity_updates.clone()),
        );
        r.register(
            "requests",
            "Requests by outcome",
            Described(m.requests.clone()),
        );
        r.register(
            "request_duration_seconds",
            "Total request duration",
            Described(m.request_duration.clone()),
        );
        r.register(
            "upstream_duration_seconds",
            "Time from sending the request upstream to its response header",
            Described(m.upstream_duration.clone()),
        );
        r.register(
            "active_connections",
            "Open downstream connections",
            Described(m.active_connections.clone()),
        );
        r.register(
            "connections",
            "Accepted downstream connections",
            Described(m.connections.clone()),
        );
        r.register(
            "connections_refused",
            "Connections refused at the connection cap",
            Described(m.connections_refused.clone()),
        );
        r.register(
            "slow_clients",
            "Connections closed by the header deadline or TLS handshake timeout",
            Described(m.slow_clients.clone()),
        );
        r.register(
            "upstream_connect_errors",
            "Upstream connect failures",
            Described(m.upstream_connect_errors.clone()),
        );
        r.register("retries", "Request retries", Described(m.retries.clone()));
        r.register(
            "circuit_breaker_open",
            "1 when the circuit breaker of a target is open",
            Described(m.circuit_open.clone()),
        );
        r.register(
            "target_ejected",
            "1 when a service in a cluster is ejected by outlier detection",
            Described(m.ejected.clone()),
        );
        r.register(
            "peer_probe_failing",
            "1 when the active probe of a peer cluster's gateway fails",
            Described(m.probe_failing.clone()),
        );
        r.register(
            "residency_denials",
            "Requests refused because residency left no allowed healthy cluster",
            Described(m.residency_denials.clone()),
        );
        r.register(
            "token_rejections",
            "Presented tokens (workload JWT-SVIDs, OIDC tokens, caller tokens) that did not verify",
            Described(m.token_rejections.clone()),
        );
        r.register(
            "audit_write_errors",
            "Residency audit lines that could not be written",
            Described(m.audit_write_errors.clone()),
        );
        r.register(
            "denials",
            "Requests refused for a routing or access-policy reason",
            Described(m.denials.clone()),
        );
        r.register(
            "rate_limited",
            "Requests refused by the local rate limit",
            Described(m.rate_limited.clone()),
        );
        r.register(
            "rollback_guard_trips",
            "Times the rollback guard pulled a canary back",
            Described(m.rollbacks.clone()),
        );
        r.register(
            "catalog_revision",
            "Revision of the catalog in use",
            m.catalog_revision.clone(),
        );
        r.register(
            "catalog_age_seconds",
            "Seconds since the catalog in use was loaded",
            m.catalog_age.clone(),
        );
        r.register(
            "certificate_expiration_timestamp_seconds",
            "When the gateway's certificate expires, in Unix seconds",
            Described(m.cert_expiry.clone()),
        );
        m
    }
}

/// A family whose `# HELP` and `# TYPE` lines are served before its first
/// sample. prometheus-client leaves empty families out (as Go's client
/// does); OpenMetrics allows them, and with them every family the gateway
/// registers is visible from the first scrape (metadata for dashboards, and
/// the check of docs/metrics.md against `/metrics`).
#[derive(Debug)]
struct Described<M>(M);

impl<M: EncodeMetric> EncodeMetric for Described<M> {
    fn encode(&self, encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// The status class label of a status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
