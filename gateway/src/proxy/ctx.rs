//! The per-request context of both proxies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::health::ServiceHealth;
use crate::metrics::Label;
use crate::resilience::BreakerPermit;
use crate::routing::{Target, Tier};
use crate::trace::TraceContext;

/// A service as `namespace/name` (one allocation) and the requested port.
#[derive(Debug, Clone)]
pub struct ServiceKey {
    key: Box<str>,
    ns_len: usize,
    /// The requested port, if any.
    pub port: Option<u16>,
}

impl ServiceKey {
    /// A key for `namespace/name`.
    pub fn new(namespace: &str, name: &str, port: Option<u16>) -> Self {
        let mut key = String::with_capacity(namespace.len() + name.len() + 1);
        key.push_str(namespace);
        key.push('/');
        key.push_str(name);
        Self {
            key: key.into_boxed_str(),
            ns_len: namespace.len(),
            port,
        }
    }

    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.key[..self.ns_len]
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.key[self.ns_len + 1..]
    }
}

/// What a proxy knows about one request.
pub struct RequestCtx {
    /// When the request header was read.
    pub start: Instant,
    /// Trace context forwarded upstream.
    pub trace: Option<TraceContext>,
    /// The destination service's health state (and label).
    pub service: Option<Arc<ServiceHealth>>,
    /// The destination service.
    pub service_ref: Option<ServiceKey>,
    /// The chosen destination cluster.
    pub destination: Option<Arc<str>>,
    /// Whether the destination is served by local endpoints.
    pub local: bool,
    /// The routed target.
    pub route_target: Option<Target>,
    /// The tier of the chosen target.
    pub tier: Option<Tier>,
    /// Why it was chosen (or denied), for the access log.
    pub reason: Option<String>,
    /// The residency policy that governed the decision.
    pub policy: Option<Arc<str>>,
    /// Clusters tried (retries exclude them).
    pub tried: Vec<Arc<str>>,
    /// Failed tries of local endpoints; once every local endpoint failed,
    /// the local cluster is excluded like a failed remote one.
    pub local_failures: u32,
    /// Upstream tries so far.
    pub attempts: u32,
    /// When the current upstream try started.
    pub upstream_start: Option<Instant>,
    /// Time to the upstream response header.
    pub upstream_duration: Option<Duration>,
    /// The verified source identity (ingress: peer gateway / caller workload).
    pub source_identity: Option<Arc<str>>,
    /// Source cluster as a metric label.
    pub source_cluster: Label,
    /// Verified caller workload (ingress).
    pub caller: Option<Arc<str>>,
    /// Circuit-breaker permit held while the request is in flight.
    pub permit: Option<BreakerPermit>,
    /// Whether the local upstream is spoken to over h2c (gRPC or an HTTP/2 `appProtocol`).
    pub h2: bool,
    /// Response status as sent.
    pub status: u16,
    /// Whether the upstream answered (response header received).
    pub responded: bool,
}

impl RequestCtx {
    /// A fresh context with `source_cluster`.
    pub fn new(source_cluster: Label) -> Self {
        Self {
            start: Instant::now(),
            trace: None,
            service: None,
            service_ref: None,
            destination: None,
            local: false,
            route_target: None,
            tier: None,
            reason: None,
            policy: None,
            tried: Vec::new(),
            local_failures: 0,
            attempts: 0,
            upstream_start: None,
            upstream_duration: None,
            source_identity: None,
            source_cluster,
            caller: None,
            permit: None,
            h2: false,
            status: 0,
            responded: false,
        }
    }
}
