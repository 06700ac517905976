//! Issued identities: [`X509Svid`] and [`JwtSvid`].

use base64::Engine as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Serialize;
use time::OffsetDateTime;

use crate::id::SpiffeId;
use crate::verify::{VerifyError, peer_spiffe_id};

/// Why an externally supplied X.509-SVID was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SvidError {
    /// The chain is empty.
    #[error("certificate chain is empty")]
    EmptyChain,
    /// The leaf does not carry exactly one SPIFFE ID.
    #[error("leaf certificate: {0}")]
    Identity(#[from] VerifyError),
    /// The PEM input holds no certificate or no private key.
    #[error("pem input: {0}")]
    Pem(String),
}

/// An X.509-SVID: a leaf certificate with one SPIFFE URI SAN, its chain (up
/// to, not including, the bundle's CA) and its private key.
#[derive(Clone)]
pub struct X509Svid {
    spiffe_id: SpiffeId,
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for X509Svid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X509Svid")
            .field("spiffe_id", &self.spiffe_id)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl X509Svid {
    pub(crate) fn new_unchecked(
        spiffe_id: SpiffeId,
        chain: Vec<CertificateDer<'static>>,
        key_pkcs8: Vec<u8>,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Self {
        Self {
            spiffe_id,
            chain,
            key_pkcs8,
            not_before,
            not_after,
        }
    }

    /// Builds an SVID from a DER chain (leaf first) and a PKCS#8 DER key,
    /// e.g. one delivered by SPIRE. The leaf must carry exactly one SPIFFE
    /// URI SAN. The key is not checked against the certificate here; rustls
    /// does that when a config is built.
    pub fn from_der(
        chain: Vec<CertificateDer<'static>>,
        key_pkcs8: PrivatePkcs8KeyDer<'static>,
    ) -> Result<Self, SvidError> {
        let leaf = chain.first().ok_or(SvidError::EmptyChain)?;
        let spiffe_id = peer_spiffe_id(&chain)?;
        let (not_before, not_after) = crate::verify::validity(leaf)?;
        Ok(Self::new_unchecked(
            spiffe_id,
            chain,
            key_pkcs8.secret_pkcs8_der().to_vec(),
            not_before,
            not_after,
        ))
    }

    /// Builds an SVID from PEM certificates (leaf first) and a PEM PKCS#8
    /// private key.
    pub fn from_pem(certs_pem: &str, key_pem: &str) -> Result<Self, SvidError> {
        use rustls_pki_types::pem::PemObject as _;
        let chain = CertificateDer::pem_slice_iter(certs_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SvidError::Pem(e.to_string()))?;
        let key = PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| SvidError::Pem(e.to_string()))?;
        Self::from_der(chain, key)
    }

    /// The SPIFFE ID in the leaf's URI SAN.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The certificate chain, leaf first, in DER.
    pub fn cert_chain_der(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The leaf certificate in DER.
    pub fn leaf_der(&self) -> &CertificateDer<'static> {
        // Invariant: every constructor ensures a non-empty chain.
        &self.chain[0]
    }

    /// The certificate chain, leaf first, as PEM.
    pub fn cert_chain_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| pem_encode("CERTIFICATE", c.as_ref()))
            .collect()
    }

    /// The private key (PKCS#8) for rustls or any other TLS stack.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()))
    }

    /// The private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> String {
        pem_encode("PRIVATE KEY", &self.key_pkcs8)
    }

    /// Start of the leaf's validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// End of the leaf's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A signed JWT-SVID.
#[derive(Clone)]
pub struct JwtSvid {
    token: String,
    spiffe_id: SpiffeId,
    audience: Vec<String>,
    expiry: OffsetDateTime,
}

impl std::fmt::Debug for JwtSvid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSvid")
            .field("spiffe_id", &self.spiffe_id)
            .field("audience", &self.audience)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

impl JwtSvid {
    pub(crate) fn new(
        token: String,
        spiffe_id: SpiffeId,
        audience: Vec<String>,
        expiry: OffsetDateTime,
    ) -> Self {
        Self {
            token,
            spiffe_id,
            audience,
            expiry,
        }
    }

    /// The compact JWS (`header.claims.signature`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The subject.
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The audience.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }

    /// The `exp` claim.
    pub fn expiry(&self) -> OffsetDateTime {
        self.expiry
    }
}

#[derive(Serialize)]
pub(super) struct JwtClaimsOut {
    pub(super) sub: String,
    pub(super) aud: Vec<String>,
    pub(super) exp: i64,
    pub(super) iat: i64,
}
