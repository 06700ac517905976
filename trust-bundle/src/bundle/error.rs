//! Errors of bundle parsing and of bundle-set updates.

use crate::id::TrustDomain;

/// Why a bundle document was rejected. `index` is the position in `keys`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The document is not JSON, or a top-level member has the wrong type
    /// (`keys` not an array of objects, `spiffe_sequence` not an unsigned
    /// integer, ...).
    #[error("malformed bundle document: {0}")]
    Json(#[source] serde_json::Error),
    /// A known key member has the wrong JSON type.
    #[error("keys[{index}].{field} must be {expected}")]
    WrongFieldType {
        /// Key position.
        index: usize,
        /// Member name.
        field: &'static str,
        /// Expected JSON type.
        expected: &'static str,
    },
    /// A key has no `use` member.
    #[error("keys[{index}] has no \"use\"")]
    MissingUse {
        /// Key position.
        index: usize,
    },
    /// A key's `use` is neither `x509-svid` nor `jwt-svid`.
    #[error("keys[{index}].use is {value:?}, expected \"x509-svid\" or \"jwt-svid\"")]
    UnknownUse {
        /// Key position.
        index: usize,
        /// The value found.
        value: String,
    },
    /// A key has no `kty` member.
    #[error("keys[{index}] has no \"kty\"")]
    MissingKty {
        /// Key position.
        index: usize,
    },
    /// A key carries private key material (`d`, `p` or `k`).
    #[error("keys[{index}] contains private key material")]
    PrivateKeyMaterial {
        /// Key position.
        index: usize,
    },
    /// An X.509 authority carries a `kid`.
    #[error("keys[{index}] is an x509-svid authority and must not have a \"kid\"")]
    X509KidPresent {
        /// Key position.
        index: usize,
    },
    /// An X.509 authority's `x5c` does not hold exactly one certificate.
    #[error("keys[{index}].x5c holds {count} certificates, exactly one is required")]
    X509CertCount {
        /// Key position.
        index: usize,
        /// Number of certificates found.
        count: usize,
    },
    /// An `x5c` entry is not valid standard base64.
    #[error("keys[{index}].x5c[0] is not valid base64")]
    X509Base64 {
        /// Key position.
        index: usize,
        /// Decoder error.
        #[source]
        source: base64::DecodeError,
    },
    /// An `x5c` entry is not a parseable X.509 certificate.
    #[error("keys[{index}].x5c[0] is not a valid certificate: {reason}")]
    X509Malformed {
        /// Key position.
        index: usize,
        /// Parser message.
        reason: String,
    },
    /// An `x5c` certificate is not a CA (basicConstraints CA=true missing).
    #[error("keys[{index}].x5c[0] is not a CA certificate")]
    X509NotCa {
        /// Key position.
        index: usize,
    },
    /// A JWT authority has no (or an empty) `kid`.
    #[error("keys[{index}] is a jwt-svid authority and needs a \"kid\"")]
    JwtMissingKid {
        /// Key position.
        index: usize,
    },
    /// A JWT authority is not an EC P-256 key.
    #[error("keys[{index}] has kty {kty:?} crv {crv:?}; only EC P-256 jwt-svid keys are supported")]
    JwtUnsupportedKey {
        /// Key position.
        index: usize,
        /// `kty` found.
        kty: String,
        /// `crv` found (empty if absent).
        crv: String,
    },
    /// A JWT authority's public key coordinates are missing or invalid.
    #[error("keys[{index}].{field} is not a valid P-256 coordinate")]
    JwtBadKey {
        /// Key position.
        index: usize,
        /// Offending member.
        field: &'static str,
    },
    /// Two JWT authorities share a `kid`.
    #[error("duplicate jwt-svid kid {kid:?}")]
    DuplicateKid {
        /// The duplicated key id.
        kid: String,
    },
}

/// Why a [`BundleSet`](super::BundleSet) update was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleSetError {
    /// The new bundle's sequence is lower than the current one.
    #[error(
        "bundle for {trust_domain} has sequence {new}, lower than the current {current}; refusing to go backwards"
    )]
    SequenceRegression {
        /// Trust domain of the bundle.
        trust_domain: TrustDomain,
        /// Sequence currently held.
        current: u64,
        /// Sequence offered.
        new: u64,
    },
    /// The new bundle has the same sequence as the current one but different
    /// keys.
    #[error("bundle for {trust_domain} changed keys without raising sequence {sequence}")]
    SequenceConflict {
        /// Trust domain of the bundle.
        trust_domain: TrustDomain,
        /// The shared sequence.
        sequence: u64,
    },
}
