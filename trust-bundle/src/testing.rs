//! Certificate factories for tests, including deliberately invalid
//! certificates (expired, not yet valid, CA as leaf, several or non-SPIFFE
//! URI SANs, foreign trust domain). Enabled by the `testing` feature; never
//! use in production code.
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! use causeway_trust::testing::{LeafSpec, TestCa};
//! use causeway_trust::TrustDomain;
//!
//! let td = TrustDomain::new("td1.test").unwrap();
//! let ca = TestCa::new(&td).unwrap();
//! let expired = ca.issue(&LeafSpec::svid("spiffe://td1.test/web").expired()).unwrap();
//! let two_uris = ca
//!     .issue(&LeafSpec::svid("spiffe://td1.test/a").with_uri("spiffe://td1.test/b"))
//!     .unwrap();
//! # let _ = (expired, two_uris, ca.bundle());
//! ```

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::authority::X509Svid;
use crate::bundle::Bundle;
use crate::id::TrustDomain;

/// A test CA for one trust domain: self-signed (a root), or an
/// intermediate signed by another `TestCa` (as SPIRE with an
/// UpstreamAuthority issues SVIDs).
pub struct TestCa {
    trust_domain: TrustDomain,
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    /// This CA's certificate and those above it, up to and excluding the
    /// root (empty for a root): what a leaf's chain carries after the leaf.
    chain_up: Vec<CertificateDer<'static>>,
    root: CertificateDer<'static>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

/// What a test leaf certificate should look like.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// URI SANs (normally exactly one SPIFFE ID).
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Mark the leaf as a CA (basicConstraints CA=true).
    pub is_ca: bool,
}

impl LeafSpec {
    /// A valid SVID spec for `uri`, valid from an hour ago for two hours.
    pub fn svid(uri: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            uris: vec![uri.to_owned()],
            dns_names: Vec::new(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(3600),
            is_ca: false,
        }
    }

    /// Adds another URI SAN.
    pub fn with_uri(mut self, uri: &str) -> Self {
        self.uris.push(uri.to_owned());
        self
    }

    /// Expired an hour ago.
    pub fn expired(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now - Duration::from_secs(7200);
        self.not_after = now - Duration::from_secs(3600);
        self
    }

    /// Valid only from an hour from now.
    pub fn not_yet_valid(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now + Duration::from_secs(3600);
        self.not_after = now + Duration::from_secs(7200);
        self
    }

    /// With basicConstraints CA=true.
    pub fn as_ca(mut self) -> Self {
        self.is_ca = true;
        self
    }
}

/// A certificate chain (leaf first, then the issuing intermediates) and its
/// private key.
#[derive(Debug)]
pub struct TestLeaf {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 private key.
    pub key: PrivatePkcs8KeyDer<'static>,
}

impl TestLeaf {
    /// The key in the form rustls takes.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// As an [`X509Svid`]; fails unless the leaf has exactly one SPIFFE URI.
    pub fn to_svid(&self) -> Result<X509Svid, crate::authority::SvidError> {
        X509Svid::from_der(self.chain.clone(), self.key.clone_key())
    }
}

impl TestCa {
    /// A CA valid from a day ago for ten years.
    pub fn new(trust_domain: &TrustDomain) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("test ca {trust_domain}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(86400);
        params.not_after = now + Duration::from_secs(86400 * 3650);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            trust_domain: trust_domain.clone(),
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            chain_up: Vec::new(),
            root: cert.der().clone(),
        })
    }

    /// An intermediate CA signed by this CA (valid from a day ago for a
    /// year, with the trust domain's SPIFFE ID as URI SAN, as SPIRE's are).
    /// Leaves it issues carry it (and any intermediates above it) in their
    /// chain; the bundle holds only the root.
    pub fn intermediate(&self) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("test intermediate {}", self.trust_domain),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .subject_alt_names
            .push(SanType::URI(self.trust_domain.id().to_string().try_into()?));
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(86400);
        params.not_after = now + Duration::from_secs(86400 * 365);
        let cert = params.signed_by(&key, &self.issuer)?;
        let mut chain_up = vec![cert.der().clone()];
        chain_up.extend(self.chain_up.iter().cloned());
        Ok(Self {
            trust_domain: self.trust_domain.clone(),
            issuer: Issuer::new(params, key),
            cert: cert.der().clone(),
            chain_up,
            root: self.root.clone(),
        })
    }

    /// The intermediates a leaf of this CA carries after itself (empty for
    /// a root).
    pub fn chain_up(&self) -> &[CertificateDer<'static>] {
        &self.chain_up
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The CA certificate.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// A bundle (sequence 1) holding this CA, or for an intermediate, the
    /// root above it.
    pub fn bundle(&self) -> Bundle {
        let mut bundle = Bundle::new(1);
        // A CA generated above always forms a valid x509 authority.
        let _ = bundle.add_x509_authority(self.root_der().clone());
        bundle
    }

    /// The root certificate (this CA's own for a root).
    pub fn root_der(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// Issues a leaf as described by `spec` (anything goes: that is the
    /// point).
    pub fn issue(&self, spec: &LeafSpec) -> Result<TestLeaf, rcgen::Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.is_ca = if spec.is_ca {
            IsCa::Ca(BasicConstraints::Unconstrained)
        } else {
            IsCa::ExplicitNoCa
        };
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if spec.is_ca {
            params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        for uri in &spec.uris {
            params
                .subject_alt_names
                .push(SanType::URI(uri.clone().try_into()?));
        }
        for dns in &spec.dns_names {
            params
                .subject_alt_names
                .push(SanType::DnsName(dns.clone().try_into()?));
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain_up.iter().cloned());
        Ok(TestLeaf {
            chain,
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}
