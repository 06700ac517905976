//! Errors of the certificate authority.

use crate::bundle::BundleError;
use crate::id::{SpiffeId, TrustDomain};

/// Why an [`Authority`](super::Authority) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorityError {
    /// The configuration is inconsistent.
    #[error("invalid authority config: {0}")]
    Config(String),
    /// The SVID's ID is not in the authority's trust domain.
    #[error("{id} is not in trust domain {trust_domain}")]
    ForeignId {
        /// Requested ID.
        id: SpiffeId,
        /// The authority's trust domain.
        trust_domain: TrustDomain,
    },
    /// SVIDs need an ID with a path; the trust domain's own ID is not a
    /// workload.
    #[error("{id} has no path; svids are issued to workloads only")]
    EmptyPath {
        /// Requested ID.
        id: SpiffeId,
    },
    /// A JWT-SVID needs at least one non-empty audience.
    #[error("jwt-svid audience must not be empty")]
    EmptyAudience,
    /// The active CA expired; call `tick()` to rotate.
    #[error("active ca expired at {not_after}; rotation has not run")]
    CaExpired {
        /// Expiry of the active CA.
        not_after: time::OffsetDateTime,
    },
    /// Key generation or certificate signing failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// JWT signing failed.
    #[error("jwt signing failed: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    /// The authority produced a bundle that does not validate (a bug).
    #[error("generated bundle is invalid: {0}")]
    Bundle(#[from] BundleError),
    /// Reading or writing the state directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The saved state is malformed.
    #[error("saved authority state is invalid: {0}")]
    CorruptState(String),
    /// The saved state belongs to another trust domain.
    #[error("saved authority is for {found}, expected {expected}")]
    TrustDomainMismatch {
        /// Trust domain asked for.
        expected: TrustDomain,
        /// Trust domain on disk.
        found: TrustDomain,
    },
}
