//! Every reason the gateway refuses a request or a tunnel, in one type: its
//! HTTP status, its metric label and its problem body are decided here and
//! nowhere else.

use std::fmt;
use std::sync::Arc;

use crate::routing::{Deny, DenyReason};

/// Why a request (or a TCP tunnel) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The connection carries no verified peer identity (403).
    Unauthenticated,
    /// The host is not `<svc>.<ns>.svc.clusterset.local[:port]` (400).
    InvalidHost,
    /// This cluster does not export the service, or has no endpoint for it (404).
    NotExported,
    /// The requested port is not a port this cluster exports (404).
    PortNotExported {
        /// The requested port.
        port: u16,
    },
    /// A TCP tunnel to a port exported for HTTP (or not as TCP): HTTP goes
    /// through the HTTP ingress, where identity headers are stripped and
    /// framing is checked (403).
    NotTunnelable {
        /// The requested port.
        port: u16,
    },
    /// The caller JWT-SVID names a workload of another trust domain than the
    /// peer gateway's (403).
    CallerTrustDomainMismatch,
    /// The caller JWT-SVID did not verify (403).
    InvalidCallerJwt,
    /// No `AccessPolicy` rule allows the caller (403).
    AccessDenied,
    /// Neither a JWT-SVID nor the address map identifies the caller, and
    /// `callers.unknown` is `refuse` (403).
    UnknownCaller,
    /// A residency policy classifies by a claim, the request presented the
    /// token it reads but the token did not verify, and the policy says
    /// `onUnverified: deny` (403).
    UnverifiedToken {
        /// The policy.
        policy: Arc<str>,
    },
    /// A residency policy forbids this cluster from serving the request: the
    /// destination's own check, whatever the source decided (403).
    ResidencyForbidsLocal {
        /// The policy.
        policy: Arc<str>,
    },
    /// The routing engine refused the request (egress; 400, 404 or 503).
    Route {
        /// Why.
        reason: DenyReason,
        /// The residency policy responsible, for residency denials.
        policy: Option<Arc<str>>,
        /// A human-readable explanation.
        message: String,
    },
}

impl From<Deny> for Denial {
    fn from(d: Deny) -> Self {
        Denial::Route {
            reason: d.reason,
            policy: d.policy,
            message: d.message,
        }
    }
}

impl Denial {
    /// The HTTP status the caller sees.
    pub fn status(&self) -> u16 {
        match self {
            Denial::InvalidHost => 400,
            Denial::NotExported | Denial::PortNotExported { .. } => 404,
            Denial::Unauthenticated
            | Denial::NotTunnelable { .. }
            | Denial::CallerTrustDomainMismatch
            | Denial::InvalidCallerJwt
            | Denial::AccessDenied
            | Denial::UnknownCaller
            | Denial::UnverifiedToken { .. }
            | Denial::ResidencyForbidsLocal { .. } => 403,
            Denial::Route { reason, .. } => reason.status(),
        }
    }

    /// The machine-readable reason: the metric label, the
    /// `x-causeway-deny-reason` header and the `reason` of the body.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::Unauthenticated => "unauthenticated",
            Denial::InvalidHost => "invalid_host",
            Denial::NotExported => "not_exported",
            Denial::PortNotExported { .. } => "port_not_exported",
            Denial::NotTunnelable { .. } => "not_tunnelable",
            Denial::CallerTrustDomainMismatch => "caller_trust_domain_mismatch",
            Denial::InvalidCallerJwt => "invalid_caller_jwt",
            Denial::AccessDenied => "access_denied",
            Denial::UnknownCaller => "unknown_caller",
            Denial::UnverifiedToken { .. } => "unverified_token",
            Denial::ResidencyForbidsLocal { .. } => "residency_forbids_destination",
            Denial::Route { reason, .. } => reason.as_str(),
        }
    }

    /// The reason callers see in the body and the `x-causeway-deny-reason`
    /// header: every residency denial is `residency`, so that clients need
    /// to know one word (the metric label keeps the detail).
    pub fn public_reason(&self) -> &'static str {
        if let Denial::UnverifiedToken { .. } = self {
            "unverified_token"
        } else if self.is_residency() {
            "residency"
        } else {
            self.reason()
        }
    }

    /// Whether a residency policy caused the denial (counted and audited
    /// as a residency decision).
    pub fn is_residency(&self) -> bool {
        match self {
            Denial::ResidencyForbidsLocal { .. } | Denial::UnverifiedToken { .. } => true,
            Denial::Route { reason, .. } => reason.is_residency(),
            _ => false,
        }
    }

    /// The residency policy responsible, if any.
    pub fn policy(&self) -> Option<&Arc<str>> {
        match self {
            Denial::ResidencyForbidsLocal { policy } | Denial::UnverifiedToken { policy } => {
                Some(policy)
            }
            Denial::Route { policy, .. } => policy.as_ref(),
            _ => None,
        }
    }

    /// The problem type URI of the body.
    pub fn problem_type(&self) -> String {
        format!(
            "https://causeway.dev/problems/gateway/{}",
            self.public_reason()
        )
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Unauthenticated => f.write_str("no verified peer identity"),
            Denial::InvalidHost => f.write_str("host is not a clusterset service name"),
            Denial::NotExported => f.write_str("this cluster does not export the service"),
            Denial::PortNotExported { port } => {
                write!(f, "this cluster does not export port {port} of the service")
            }
            Denial::NotTunnelable { port } => write!(
                f,
                "port {port} is not exported as a TCP port; use the HTTP ingress"
            ),
            Denial::CallerTrustDomainMismatch => {
                f.write_str("caller jwt-svid is not from the peer's trust domain")
            }
            Denial::InvalidCallerJwt => f.write_str("caller jwt-svid rejected"),
            Denial::AccessDenied => f.write_str("no access policy allows this caller"),
            Denial::UnknownCaller => f.write_str(
                "the calling workload is not identified (no valid JWT-SVID, address not mapped)",
            ),
            Denial::UnverifiedToken { policy } => write!(
                f,
                "residency policy {policy} classifies by a token claim and the presented token did not verify"
            ),
            Denial::ResidencyForbidsLocal { policy } => write!(
                f,
                "residency policy {policy} does not allow this cluster to serve the request"
            ),
            Denial::Route { message, .. } => f.write_str(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residency_denials_share_one_public_reason() {
        let local = Denial::ResidencyForbidsLocal {
            policy: Arc::from("eu-only"),
        };
        assert_eq!(local.status(), 403);
        assert_eq!(local.public_reason(), "residency");
        assert_eq!(local.reason(), "residency_forbids_destination");
        assert_eq!(local.policy().map(|p| &**p), Some("eu-only"));
        let routed = Denial::Route {
            reason: DenyReason::ResidencyNoAllowedCluster,
            policy: Some(Arc::from("eu-only")),
            message: "m".into(),
        };
        assert_eq!(routed.status(), 503);
        assert_eq!(routed.public_reason(), "residency");
        assert!(routed.is_residency());
        assert!(!Denial::AccessDenied.is_residency());
        assert_eq!(Denial::AccessDenied.public_reason(), "access_denied");
    }
}
