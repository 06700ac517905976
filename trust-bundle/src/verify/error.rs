//! Why a peer certificate was rejected.

use std::error::Error as StdError;

use time::OffsetDateTime;

use crate::id::{SpiffeId, SpiffeIdError, TrustDomain};

/// Why a peer's X.509-SVID was rejected. Each rule has its own variant.
///
/// The verifiers hand this to rustls as
/// `Error::InvalidCertificate(CertificateError::Other(OtherError(Arc<VerifyError>)))`;
/// [`VerifyError::from_rustls`] and [`VerifyError::find`] recover it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The peer sent no certificate.
    #[error("peer sent no certificate")]
    NoCertificate,
    /// The leaf certificate could not be parsed.
    #[error("leaf certificate is malformed: {reason}")]
    Malformed {
        /// Parser message.
        reason: String,
    },
    /// The leaf has no URI SAN.
    #[error("leaf certificate has no uri san")]
    NoUriSan,
    /// The leaf has more than one URI SAN.
    #[error("leaf certificate has {count} uri sans, exactly one is allowed")]
    MultipleUriSans {
        /// Number of URI SANs.
        count: usize,
    },
    /// The leaf's URI SAN is not a valid SPIFFE ID.
    #[error("leaf uri san {uri:?} is not a spiffe id: {source}")]
    NotSpiffe {
        /// The URI found.
        uri: String,
        /// The SPIFFE-ID rule it breaks.
        #[source]
        source: SpiffeIdError,
    },
    /// The leaf is a CA certificate (basicConstraints CA=true).
    #[error("leaf certificate for {id} is a ca certificate")]
    LeafIsCa {
        /// The ID in the leaf.
        id: SpiffeId,
    },
    /// The leaf (or a certificate of its chain) has expired.
    #[error("certificate for {id} expired at {not_after} (now {now})")]
    Expired {
        /// The ID in the leaf.
        id: SpiffeId,
        /// Its expiry.
        not_after: OffsetDateTime,
        /// Verification time.
        now: OffsetDateTime,
    },
    /// The leaf (or a certificate of its chain) is not valid yet.
    #[error("certificate for {id} is not valid before {not_before} (now {now})")]
    NotYetValid {
        /// The ID in the leaf.
        id: SpiffeId,
        /// Start of validity.
        not_before: OffsetDateTime,
        /// Verification time.
        now: OffsetDateTime,
    },
    /// No bundle is held for the peer's trust domain (not federated).
    #[error("trust domain {trust_domain} of {id} is not federated")]
    UnknownTrustDomain {
        /// The peer's ID.
        id: SpiffeId,
        /// Its trust domain.
        trust_domain: TrustDomain,
    },
    /// The peer's trust domain bundle holds no X.509 authority (all revoked).
    #[error("bundle of {trust_domain} has no x509 authorities")]
    NoAuthorities {
        /// The trust domain.
        trust_domain: TrustDomain,
    },
    /// The chain does not lead to an authority of the peer's trust domain
    /// (unknown issuer, bad signature, foreign CA, ...).
    #[error("certificate for {id} does not chain to the {trust_domain} bundle: {reason}")]
    UntrustedChain {
        /// The peer's ID.
        id: SpiffeId,
        /// Its trust domain.
        trust_domain: TrustDomain,
        /// The path-validation error.
        reason: String,
    },
    /// The peer is authentic but the [`PeerPolicy`](super::PeerPolicy) does
    /// not allow it.
    #[error("peer {id} is not allowed by policy")]
    NotAllowed {
        /// The peer's ID.
        id: SpiffeId,
    },
}

impl VerifyError {
    /// The `VerifyError` inside a rustls error produced by this crate's
    /// verifiers.
    pub fn from_rustls(err: &rustls::Error) -> Option<&VerifyError> {
        match err {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
                other.0.downcast_ref::<VerifyError>()
            }
            _ => None,
        }
    }

    /// Searches an error and its sources (including an `io::Error` from
    /// tokio-rustls wrapping a rustls error) for a `VerifyError`.
    pub fn find<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a VerifyError> {
        let mut current = Some(err);
        while let Some(e) = current {
            if let Some(v) = e.downcast_ref::<VerifyError>() {
                return Some(v);
            }
            if let Some(r) = e.downcast_ref::<rustls::Error>()
                && let Some(v) = Self::from_rustls(r)
            {
                return Some(v);
            }
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && let Some(inner) = io.get_ref()
                && let Some(v) = Self::find(inner)
            {
                return Some(v);
            }
            current = e.source();
        }
        None
    }
}

impl From<VerifyError> for rustls::Error {
    fn from(err: VerifyError) -> Self {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            std::sync::Arc::new(err),
        )))
    }
}
