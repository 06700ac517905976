//! rustls verifiers that authenticate peers by SPIFFE ID, choosing the bundle
//! by the trust domain of the peer's ID.
//!
//! Both verifiers read the [`BundleStore`] on every handshake, so a bundle
//! swapped into the store applies to the next handshake without rebuilding
//! any listener or config.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;

use crate::bundle::BundleStore;
use crate::clock::Clock;
use crate::id::{SpiffeId, TrustDomain};

mod error;

pub use error::VerifyError;

/// Which authenticated peers are accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerPolicy {
    /// Any peer whose trust domain has a bundle in the store.
    #[default]
    AnyFederated,
    /// Peers of these trust domains (each still needs a bundle).
    TrustDomains(BTreeSet<TrustDomain>),
    /// Exactly these peers.
    Ids(BTreeSet<SpiffeId>),
}

impl PeerPolicy {
    /// Accepts peers of the given trust domains only.
    pub fn trust_domains(tds: impl IntoIterator<Item = TrustDomain>) -> Self {
        Self::TrustDomains(tds.into_iter().collect())
    }

    /// Accepts the given SPIFFE IDs only.
    pub fn ids(ids: impl IntoIterator<Item = SpiffeId>) -> Self {
        Self::Ids(ids.into_iter().collect())
    }

    /// Whether an authenticated peer with `id` is allowed.
    pub fn allows(&self, id: &SpiffeId) -> bool {
        match self {
            Self::AnyFederated => true,
            Self::TrustDomains(tds) => tds.contains(id.trust_domain()),
            Self::Ids(ids) => ids.contains(id),
        }
    }
}

/// The SPIFFE ID of a peer, read from the leaf (first) certificate.
///
/// Use it after the handshake on `conn.peer_certificates()`; the verifiers
/// have already checked the chain. Fails unless the leaf carries exactly one
/// URI SAN that is a valid SPIFFE ID.
pub fn peer_spiffe_id(certs: &[CertificateDer<'_>]) -> Result<SpiffeId, VerifyError> {
    let leaf = certs.first().ok_or(VerifyError::NoCertificate)?;
    let (_, parsed) = parse(leaf)?;
    spiffe_id_of(&parsed)
}

pub(crate) fn validity(
    cert: &CertificateDer<'_>,
) -> Result<(OffsetDateTime, OffsetDateTime), VerifyError> {
    let (_, parsed) = parse(cert)?;
    let v = parsed.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

fn parse<'a>(
    cert: &'a CertificateDer<'_>,
) -> Result<(&'a [u8], x509_parser::certificate::X509Certificate<'a>), VerifyError> {
    x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| VerifyError::Malformed {
        reason: e.to_string(),
    })
}

fn spiffe_id_of(
    cert: &x509_parser::certificate::X509Certificate<'_>,
) -> Result<SpiffeId, VerifyError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|e| VerifyError::Malformed {
            reason: e.to_string(),
        })?;
    let uris: Vec<&str> = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(VerifyError::NoUriSan),
        [uri] => SpiffeId::new(uri).map_err(|source| VerifyError::NotSpiffe {
            uri: (*uri).to_owned(),
            source,
        }),
        _ => Err(VerifyError::MultipleUriSans { count: uris.len() }),
    }
}

/// Shared verification logic of both verifiers.
struct Core {
    store: BundleStore,
    policy: PeerPolicy,
    skew: Duration,
    clock: Option<Arc<dyn Clock>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpiffeVerifier")
            .field("policy", &self.policy)
            .field("skew", &self.skew)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl Core {
    fn new(store: BundleStore, policy: PeerPolicy) -> Self {
        Self {
            store,
            policy,
            skew: Duration::ZERO,
            clock: None,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
    ) -> Result<SpiffeId, VerifyError> {
        let (_, parsed) = parse(end_entity)?;
        let id = spiffe_id_of(&parsed)?;
        if parsed.is_ca() {
            return Err(VerifyError::LeafIsCa { id });
        }
        let now = match &self.clock {
            Some(clock) => clock.now(),
            None => OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        let validity = parsed.validity();
        let not_before = validity.not_before.to_datetime();
        let not_after = validity.not_after.to_datetime();
        if now > not_after + self.skew {
            return Err(VerifyError::Expired { id, not_after, now });
        }
        if now < not_before - self.skew {
            return Err(VerifyError::NotYetValid {
                id,
                not_before,
                now,
            });
        }
        let trust_domain = id.trust_domain().clone();
        let set = self.store.load();
        let Some(bundle) = set.get(&trust_domain) else {
            return Err(VerifyError::UnknownTrustDomain { id, trust_domain });
        };
        if bundle.trust_anchors().is_empty() {
            return Err(VerifyError::NoAuthorities { trust_domain });
        }
        let cert =
            webpki::EndEntityCert::try_from(end_entity).map_err(|e| VerifyError::Malformed {
                reason: e.to_string(),
            })?;
        // The leaf is within `skew` of `now`; validate the path at the
        // nearest instant inside the leaf's validity so that the skew also
        // applies to webpki's own time checks.
        let at = now.clamp(not_before, not_after).unix_timestamp().max(0) as u64;
        let at = UnixTime::since_unix_epoch(Duration::from_secs(at));
        cert.verify_for_usage(
            self.algorithms.all,
            bundle.trust_anchors(),
            intermediates,
            at,
            usage,
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CaUsedAsEndEntity => VerifyError::LeafIsCa { id: id.clone() },
            webpki::Error::CertExpired { .. } => VerifyError::Expired {
                id: id.clone(),
                not_after,
                now,
            },
            webpki::Error::CertNotValidYet { .. } => VerifyError::NotYetValid {
                id: id.clone(),
                not_before,
                now,
            },
            other => VerifyError::UntrustedChain {
                id: id.clone(),
                trust_domain: trust_domain.clone(),
                reason: format!("{other:?}"),
            },
        })?;
        if !self.policy.allows(&id) {
            return Err(VerifyError::NotAllowed { id });
        }
        Ok(id)
    }

    fn verify_tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

macro_rules! builder_methods {
    () => {
        /// Tolerates this much clock skew on certificate validity (default 0).
        pub fn with_skew(mut self, skew: Duration) -> Self {
            self.core_mut().skew = skew;
            self
        }

        /// Reads the time from `clock` instead of rustls' time provider.
        pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
            self.core_mut().clock = Some(clock);
            self
        }

        /// Verifies signatures with `provider`'s algorithms (default: ring).
        pub fn with_provider(mut self, provider: &CryptoProvider) -> Self {
            self.core_mut().algorithms = provider.signature_verification_algorithms;
            self
        }

        /// The policy applied after authentication.
        pub fn policy(&self) -> &PeerPolicy {
            &self.core.policy
        }

        /// Verifies a peer chain as a handshake would, returning the peer's ID.
        pub fn verify_chain(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            now: UnixTime,
        ) -> Result<SpiffeId, VerifyError> {
            self.core
                .verify(end_entity, intermediates, now, Self::USAGE)
        }

        fn core_mut(&mut self) -> &mut Core {
            // Builders run before the verifier is shared; if it already is,
            // configure a private copy.
            if Arc::get_mut(&mut self.core).is_none() {
                let c = &self.core;
                self.core = Arc::new(Core {
                    store: c.store.clone(),
                    policy: c.policy.clone(),
                    skew: c.skew,
                    clock: c.clock.clone(),
                    algorithms: c.algorithms,
                });
            }
            Arc::get_mut(&mut self.core).unwrap_or_else(|| unreachable!("unique after copy"))
        }
    };
}

/// Verifies client certificates (server side of mTLS).
#[derive(Debug, Clone)]
pub struct SpiffeClientVerifier {
    core: Arc<Core>,
}

impl SpiffeClientVerifier {
    const USAGE: webpki::KeyUsage = webpki::KeyUsage::client_auth();

    /// A verifier that accepts clients authenticated by `store` and allowed
    /// by `policy`.
    pub fn new(store: BundleStore, policy: PeerPolicy) -> Self {
        Self {
            core: Arc::new(Core::new(store, policy)),
        }
    }

    builder_methods!();
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.verify_chain(end_entity, intermediates, now) {
            Ok(id) => {
                tracing::debug!(peer = %id, "client certificate verified");
                Ok(ClientCertVerified::assertion())
            }
            Err(err) => {
                tracing::info!(error = %err, "client certificate rejected");
                Err(err.into())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.core.algorithms.supported_schemes()
    }
}

/// Verifies server certificates (client side of mTLS). The server name the
/// connection was opened with is ignored: the server is identified by its
/// SPIFFE ID, which must satisfy the policy (e.g. the expected trust domain).
#[derive(Debug, Clone)]
pub struct SpiffeServerVerifier {
    core: Arc<Core>,
}

impl SpiffeServerVerifier {
    const USAGE: webpki::KeyUsage = webpki::KeyUsage::server_auth();

    /// A verifier that accepts servers authenticated by `store` and allowed by
    /// `policy`.
    pub fn new(store: BundleStore, policy: PeerPolicy) -> Self {
        Self {
            core: Arc::new(Core::new(store, policy)),
        }
    }

    builder_methods!();
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.verify_chain(end_entity, intermediates, now) {
            Ok(id) => {
                tracing::debug!(peer = %id, "server certificate verified");
                Ok(ServerCertVerified::assertion())
            }
            Err(err) => {
                tracing::info!(error = %err, "server certificate rejected");
                Err(err.into())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.core.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.core.algorithms.supported_schemes()
    }
}
