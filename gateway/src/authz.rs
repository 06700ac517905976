//! Authorization at the east-west ingress: one pure decision for HTTP
//! requests and TCP tunnels alike, so that neither path can be a way around
//! the other.
//!
//! A peer gateway (its SPIFFE ID verified against its own trust domain's
//! bundle during the handshake) may reach a service when, in order:
//! 1. this cluster exports the service and has an endpoint for it;
//! 2. the requested port is one this cluster exports (a tunnel: a port
//!    exported as TCP, never an HTTP one);
//! 3. the calling workload, if stated, belongs to the peer's trust domain;
//! 4. no residency policy forbids this cluster from serving the request
//!    (the source should never have sent it; a misconfigured or compromised
//!    source is refused here);
//! 5. an `AccessPolicy` rule allows the caller, or no policy selects the
//!    service.

use std::sync::Arc;

use causeway_api::model::policy::Caller;
use causeway_trust::SpiffeId;

use crate::denial::Denial;
use crate::identity::cluster_of_gateway;
use crate::proxy::ServiceKey;
use crate::routing::{Headers, RouteRequest};
use crate::state::GatewayState;

/// What the peer asks for.
#[derive(Clone, Copy)]
pub enum Access<'a> {
    /// An HTTP request through the ingress proxy.
    Http {
        /// The request path.
        path: &'a str,
        /// The request method.
        method: &'a str,
        /// The request headers (residency classification).
        headers: Headers<'a>,
    },
    /// A raw TCP tunnel (SNI `tcp-<port>.<name>.<ns>.causeway.internal`).
    Tunnel,
}

impl std::fmt::Debug for Access<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Access::Http { path, method, .. } => f
                .debug_struct("Http")
                .field("path", path)
                .field("method", method)
                .finish_non_exhaustive(),
            Access::Tunnel => f.write_str("Tunnel"),
        }
    }
}

/// A granted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    /// The peer's cluster, when its gateway ID names one the catalog places
    /// in the peer's trust domain.
    pub source_cluster: Option<Arc<str>>,
}

/// The peer's cluster: the gateway ID names it, and the catalog must agree
/// that the cluster belongs to the peer's trust domain.
pub fn source_cluster<'a>(state: &GatewayState, peer: &'a SpiffeId) -> Option<&'a str> {
    let td = peer.trust_domain().name();
    cluster_of_gateway(peer).filter(|c| {
        state
            .catalog
            .cluster_trust_domains
            .get(*c)
            .is_some_and(|t| &**t == td)
    })
}

/// Decides whether `peer` (and the workload `caller` it states, verified)
/// may reach `service` through this ingress.
pub fn authorize(
    state: &GatewayState,
    peer: &SpiffeId,
    service: &ServiceKey,
    caller: Option<&SpiffeId>,
    access: Access<'_>,
) -> Result<Authorized, Denial> {
    let key = service.as_str();
    let export = state
        .catalog
        .local_exports
        .get(key)
        .filter(|_| state.local(key).is_some())
        .ok_or(Denial::NotExported)?;
    match (access, service.port) {
        (Access::Tunnel, Some(port)) => match export.port(port) {
            Some(p) if p.tunnel => {}
            Some(_) => return Err(Denial::NotTunnelable { port }),
            None => return Err(Denial::PortNotExported { port }),
        },
        (Access::Tunnel, None) => return Err(Denial::NotExported),
        (Access::Http { .. }, Some(port)) if export.port(port).is_none() => {
            return Err(Denial::PortNotExported { port });
        }
        (Access::Http { .. }, _) => {}
    }
    let td = peer.trust_domain();
    if caller.is_some_and(|c| c.trust_domain() != td) {
        return Err(Denial::CallerTrustDomainMismatch);
    }
    let headers = match access {
        Access::Http { headers, .. } => headers,
        Access::Tunnel => Headers::None,
    };
    let req = RouteRequest::service(service.namespace(), service.name()).with_headers(headers);
    if let Some(policy) =
        state
            .catalog
            .routing
            .residency_forbids_local(service.namespace(), service.name(), &req)
    {
        return Err(Denial::ResidencyForbidsLocal { policy });
    }
    let cluster = source_cluster(state, peer);
    if let Some(rules) = &export.rules {
        let caller_id = caller.map(|c| c.to_string());
        let (path, method) = match access {
            Access::Http { path, method, .. } => (Some(path), Some(method)),
            Access::Tunnel => (None, None),
        };
        let who = Caller {
            trust_domain: td.name(),
            cluster,
            spiffe_id: caller_id.as_deref(),
            path,
            method,
        };
        if !rules.iter().any(|r| r.matches(&who)) {
            return Err(Denial::AccessDenied);
        }
    }
    Ok(Authorized {
        source_cluster: cluster.map(Arc::from),
    })
}

#[cfg(test)]
mod tests;
