//! The per-request contexts: what both proxies record about a request
//! ([`Common`]: metrics and the access log read it) and what each one needs
//! for itself ([`EgressCtx`], [`IngressCtx`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::callers::VerifiedClaims;
use crate::health::ServiceHealth;
use crate::metrics::Label;
use crate::resilience::{BreakerPermit, GrpcStatus};
use crate::routing::{ResidencyVerdict, Target, Tier};
use crate::state::GatewayState;
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

/// What both proxies know about one request.
pub struct Common {
    /// When the request header was read.
    pub start: Instant,
    /// The state this request reads from start to end (loaded once).
    pub state: Arc<GatewayState>,
    /// Trace context forwarded upstream.
    pub trace: Option<TraceContext>,
    /// The destination service: its settings and health.
    pub service: Option<Arc<ServiceHealth>>,
    /// The destination service's key.
    pub service_ref: Option<ServiceKey>,
    /// The chosen destination cluster.
    pub destination: Option<Arc<str>>,
    /// Why it was chosen (or denied), for the access log.
    pub reason: Option<String>,
    /// The residency policy that governed the decision.
    pub policy: Option<Arc<str>>,
    /// Upstream tries so far.
    pub attempts: u32,
    /// When the current upstream try started.
    pub upstream_start: Option<Instant>,
    /// Time to the upstream response header.
    pub upstream_duration: Option<Duration>,
    /// Source cluster as a metric label.
    pub source_cluster: Label,
    /// Whether the local upstream is spoken to over h2c (gRPC or an HTTP/2 `appProtocol`).
    pub h2: bool,
    /// Response status as sent.
    pub status: u16,
    /// Whether the upstream answered (response header received).
    pub responded: bool,
    /// The calling workload, as established (egress) or verified (ingress).
    pub caller: Option<Arc<str>>,
    /// Every residency policy that governed the request, with what it
    /// allows (the verdict the egress signs for the destination).
    pub residency: Vec<ResidencyVerdict>,
    /// Whether an audit line was already written (a residency denial).
    pub audited: bool,
    /// The response's gRPC status, as far as seen (headers, then trailers).
    pub grpc: GrpcStatus,
}

impl Common {
    /// A fresh record over `state`, from `source_cluster`.
    pub fn new(state: Arc<GatewayState>, source_cluster: Label) -> Self {
        Self {
            start: Instant::now(),
            state,
            trace: None,
            service: None,
            service_ref: None,
            destination: None,
            reason: None,
            policy: None,
            attempts: 0,
            upstream_start: None,
            upstream_duration: None,
            source_cluster,
            h2: false,
            status: 0,
            responded: false,
            caller: None,
            residency: Vec::new(),
            audited: false,
            grpc: GrpcStatus::NotGrpc,
        }
    }

    /// The destination service as a metric label (`unknown` before it is known).
    pub fn service_label(&self) -> Label {
        self.service
            .as_ref()
            .map_or_else(Label::unknown, |s| s.label.clone())
    }
}

/// The egress proxy's context.
pub struct EgressCtx {
    /// What both proxies record.
    pub common: Common,
    /// The routed target.
    pub route_target: Option<Target>,
    /// The tier of the chosen target.
    pub tier: Option<Tier>,
    /// Whether the destination is served by local endpoints.
    pub local: bool,
    /// Clusters tried (retries exclude them).
    pub tried: Vec<Arc<str>>,
    /// Failed tries of local endpoints; once every local endpoint failed,
    /// the local cluster is excluded like a failed remote one.
    pub local_failures: u32,
    /// Circuit-breaker permit held while the request is in flight.
    pub permit: Option<BreakerPermit>,
    /// The claims of the tokens that verified (residency classification).
    pub claims: Arc<VerifiedClaims>,
    /// The calling workload's SPIFFE ID, stated in the caller token.
    pub caller_id: Option<causeway_trust::SpiffeId>,
    /// The `Authorization` header held a JWT-SVID for this gateway: it is
    /// not forwarded.
    pub consumed_authorization: bool,
    /// A response was turned into a retry (its status is in `retryOn`);
    /// the error it raised is retried without asking again.
    pub retry_response: bool,
    /// A gRPC response's outcome waits for its trailers.
    pub outcome_pending: bool,
}

impl EgressCtx {
    /// A fresh context.
    pub fn new(common: Common) -> Self {
        Self {
            common,
            route_target: None,
            tier: None,
            local: false,
            tried: Vec::new(),
            local_failures: 0,
            permit: None,
            claims: Arc::default(),
            caller_id: None,
            consumed_authorization: false,
            retry_response: false,
            outcome_pending: false,
        }
    }
}

/// The east-west ingress proxy's context.
pub struct IngressCtx {
    /// What both proxies record.
    pub common: Common,
    /// The verified peer gateway's SPIFFE ID.
    pub peer: Option<Arc<str>>,
    /// The verified calling workload (from the caller JWT-SVID).
    pub caller: Option<Arc<str>>,
    /// A gateway health probe, not traffic: neither counted nor logged.
    pub probe: bool,
}

impl IngressCtx {
    /// A fresh context.
    pub fn new(common: Common) -> Self {
        Self {
            common,
            peer: None,
            caller: None,
            probe: false,
        }
    }
}
