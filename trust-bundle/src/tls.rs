//! rustls configs for SPIFFE mTLS, always built on an explicit ring
//! [`CryptoProvider`] (never the process default).

use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::authority::X509Svid;
use crate::bundle::BundleStore;
use crate::clock::Clock;
use crate::verify::{PeerPolicy, SpiffeClientVerifier, SpiffeServerVerifier};

/// Why a TLS config could not be built (e.g. the key does not match the
/// certificate).
#[derive(Debug, thiserror::Error)]
#[error("building tls config: {0}")]
pub struct TlsConfigError(#[from] pub rustls::Error);

/// Options shared by [`server_config_with`] and [`client_config_with`].
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// ALPN protocols, in preference order (e.g. `b"h2".to_vec()`).
    pub alpn_protocols: Vec<Vec<u8>>,
    /// Clock skew tolerated on peer certificate validity.
    pub skew: Duration,
    /// Clock for certificate validity (default: rustls' time provider).
    pub clock: Option<Arc<dyn Clock>>,
    /// Also offer TLS 1.2 (default: TLS 1.3 only).
    pub allow_tls12: bool,
    /// Allow session resumption (server: session cache and TLS 1.3 tickets;
    /// client: resumption store). Off by default: a resumed session skips
    /// certificate verification, so a bundle change or revocation would not
    /// apply to it.
    pub resumption: bool,
}

static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];

impl TlsOptions {
    fn versions(&self) -> &'static [&'static SupportedProtocolVersion] {
        if self.allow_tls12 {
            rustls::ALL_VERSIONS
        } else {
            TLS13_ONLY
        }
    }

    fn client_verifier(&self, store: BundleStore, policy: PeerPolicy) -> SpiffeClientVerifier {
        let v = SpiffeClientVerifier::new(store, policy).with_skew(self.skew);
        match &self.clock {
            Some(clock) => v.with_clock(clock.clone()),
            None => v,
        }
    }

    fn server_verifier(&self, store: BundleStore, policy: PeerPolicy) -> SpiffeServerVerifier {
        let v = SpiffeServerVerifier::new(store, policy).with_skew(self.skew);
        match &self.clock {
            Some(clock) => v.with_clock(clock.clone()),
            None => v,
        }
    }
}

/// The ring crypto provider every config of this crate is built with.
pub fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config presenting `svid` that requires client certificates
/// verified by [`SpiffeClientVerifier`] over `store` and `policy`.
pub fn server_config(
    svid: &X509Svid,
    store: BundleStore,
    policy: PeerPolicy,
) -> Result<ServerConfig, TlsConfigError> {
    server_config_with(svid, store, policy, &TlsOptions::default())
}

/// [`server_config`] with options (ALPN, skew, clock, TLS 1.2).
pub fn server_config_with(
    svid: &X509Svid,
    store: BundleStore,
    policy: PeerPolicy,
    options: &TlsOptions,
) -> Result<ServerConfig, TlsConfigError> {
    server_config_from_parts(
        svid.cert_chain_der().to_vec(),
        svid.private_key_der(),
        Arc::new(options.client_verifier(store, policy)),
        options,
    )
}

/// A server config from a raw chain and key and a given client verifier.
/// For callers that bring their own certificates (and for tests that present
/// deliberately broken ones).
pub fn server_config_from_parts(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<SpiffeClientVerifier>,
    options: &TlsOptions,
) -> Result<ServerConfig, TlsConfigError> {
    let mut config = ServerConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(options.versions())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = options.alpn_protocols.clone();
    if !options.resumption {
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// A client config presenting `svid` that verifies servers with
/// [`SpiffeServerVerifier`] over `store` and `policy`.
///
/// The server name passed to rustls is only used for SNI; the server is
/// authenticated by its SPIFFE ID.
pub fn client_config(
    svid: &X509Svid,
    store: BundleStore,
    policy: PeerPolicy,
) -> Result<ClientConfig, TlsConfigError> {
    client_config_with(svid, store, policy, &TlsOptions::default())
}

/// [`client_config`] with options (ALPN, skew, clock, TLS 1.2).
pub fn client_config_with(
    svid: &X509Svid,
    store: BundleStore,
    policy: PeerPolicy,
    options: &TlsOptions,
) -> Result<ClientConfig, TlsConfigError> {
    client_config_from_parts(
        svid.cert_chain_der().to_vec(),
        svid.private_key_der(),
        Arc::new(options.server_verifier(store, policy)),
        options,
    )
}

/// A client config from a raw chain and key and a given server verifier.
pub fn client_config_from_parts(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    verifier: Arc<SpiffeServerVerifier>,
    options: &TlsOptions,
) -> Result<ClientConfig, TlsConfigError> {
    let mut config = ClientConfig::builder_with_provider(ring_provider())
        .with_protocol_versions(options.versions())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = options.alpn_protocols.clone();
    if !options.resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(config)
}
