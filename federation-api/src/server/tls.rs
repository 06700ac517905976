//! TLS on the API listener (`tls:` in the config): the server certificate
//! and key are PEM files re-read when they change (cert-manager renews them
//! in place), and a client may present an X.509-SVID instead of a bearer
//! token. A client certificate is optional; when one is presented it must
//! verify against the trust bundle of its trust domain as published in the
//! catalog (`TrustBundle` resources, refreshed every `reloadInterval`), or
//! the handshake fails. Which cluster an SVID acts for is decided per
//! request ([`svid_principal`]): the path must be
//! `/causeway/gateway/<cluster>` and the trust domain the one that cluster
//! registered.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use causeway_api::model::{ClusterId, Resource};
use causeway_trust::{
    BundleSet, BundleStore, PeerPolicy, SpiffeClientVerifier, SpiffeId, TrustDomain,
};
use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use crate::token::{Principal, Scope};

/// `tls:` of the server configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// PEM certificate chain of the server, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key of the certificate (PKCS#8, SEC1 or PKCS#1).
    pub key_file: PathBuf,
    /// How often the files and the catalog's trust bundles are checked for
    /// changes (default 10 s).
    #[serde(default = "default_reload", with = "humantime_serde")]
    pub reload_interval: Duration,
}

fn default_reload() -> Duration {
    Duration::from_secs(10)
}

/// The SPIFFE ID of the client certificate of the connection a request came
/// on (a request extension; absent without TLS or without a certificate).
#[derive(Debug, Clone)]
pub struct PeerSvid(pub SpiffeId);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the certificate and key files into a certified key.
pub(crate) fn load_certified(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("private key: {e}"))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| format!("the key does not match the certificate: {e}"))?;
    Ok(Arc::new(ck))
}

fn mtimes(c: &TlsConfig) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (m(&c.cert_file), m(&c.key_file))
}

/// The server certificate, swapped when its files change.
#[derive(Debug)]
pub(crate) struct CertReloader {
    config: TlsConfig,
    current: ArcSwap<CertifiedKey>,
    seen: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl CertReloader {
    pub(crate) fn new(config: TlsConfig) -> Result<Self, String> {
        let seen = mtimes(&config);
        let current = load_certified(&config.cert_file, &config.key_file)?;
        Ok(Self {
            config,
            current: ArcSwap::new(current),
            seen: Mutex::new(seen),
        })
    }

    /// Re-reads the files if they changed; a broken pair is logged and the
    /// previous certificate kept. Returns whether the certificate changed.
    pub(crate) fn reload(&self) -> bool {
        let now = mtimes(&self.config);
        let Ok(mut seen) = self.seen.lock() else {
            return false;
        };
        if *seen == now {
            return false;
        }
        match load_certified(&self.config.cert_file, &self.config.key_file) {
            Ok(ck) => {
                self.current.store(ck);
                *seen = now;
                tracing::info!(cert = %self.config.cert_file.display(), "federation api certificate reloaded");
                true
            }
            // A renewal writes two files: retry on the next tick.
            Err(e) => {
                tracing::warn!(error = %e, "federation api certificate not reloaded, keeping the current one");
                false
            }
        }
    }
}

impl ResolvesServerCert for CertReloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The SPIFFE client verifier with the certificate optional.
#[derive(Debug)]
struct OptionalSvid(SpiffeClientVerifier);

impl ClientCertVerifier for OptionalSvid {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The rustls server config: TLS 1.3 and 1.2, ALPN h2 and http/1.1, the
/// reloading certificate, optional SVID client certificates.
pub(crate) fn server_config(
    certs: Arc<CertReloader>,
    bundles: BundleStore,
) -> Result<rustls::ServerConfig, rustls::Error> {
    let verifier =
        SpiffeClientVerifier::new(bundles, PeerPolicy::AnyFederated).with_provider(&provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(OptionalSvid(verifier)))
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The trust bundles of the catalog, as a bundle set.
pub(crate) async fn catalog_bundles(state: &AppState) -> Result<BundleSet, ApiError> {
    let catalog = &state.0.catalog;
    let mut set = BundleSet::new();
    for s in catalog.list_all(&catalog.keys().bundles()).await? {
        if let Resource::TrustBundle(b) = s.resource
            && let Ok(td) = TrustDomain::new(b.trust_domain().as_str())
            && let Ok(next) = set.with_bundle(td, b.spec.bundle)
        {
            set = next;
        }
    }
    Ok(set)
}

/// The principal of a request authenticated by its connection's X.509-SVID:
/// `spiffe://<td>/causeway/gateway/<cluster>` acts for `<cluster>` if that
/// cluster is registered with trust domain `<td>`.
pub(crate) async fn svid_principal(state: &AppState, id: &SpiffeId) -> Result<Principal, ApiError> {
    let refused = |why: &str| ApiError::unauthorized(format!("client certificate {id}: {why}"));
    let cluster = id
        .path()
        .strip_prefix("/causeway/gateway/")
        .filter(|c| !c.is_empty() && !c.contains('/'))
        .ok_or_else(|| refused("not a gateway ID (/causeway/gateway/<cluster>)"))?;
    let cid: ClusterId = cluster
        .parse()
        .map_err(|_| refused("the path does not name a valid cluster id"))?;
    let catalog = &state.0.catalog;
    let stored = catalog
        .get(&catalog.keys().cluster(&cid))
        .await?
        .ok_or_else(|| refused("no such registered cluster"))?;
    let Resource::Cluster(c) = stored.resource else {
        return Err(refused("no such registered cluster"));
    };
    if c.spec.trust_domain.as_str() != id.trust_domain().name() {
        return Err(refused(
            "the cluster is registered with another trust domain",
        ));
    }
    Ok(Principal {
        subject: Some(id.to_string()),
        scopes: vec![Scope::Cluster(cluster.to_owned())],
    })
}
