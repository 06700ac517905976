//! SPIFFE-native identity for Causeway: SPIFFE IDs, SPIFFE bundles, a
//! per-trust-domain certificate authority and rustls verifiers that pick the
//! bundle by the peer's trust domain.
//!
//! # Pieces
//!
//! - [`SpiffeId`] / [`TrustDomain`]: parsed per the SPIFFE-ID standard; a
//!   value that exists is valid.
//! - [`Bundle`]: the SPIFFE bundle document (JWKS with `spiffe_sequence` and
//!   `spiffe_refresh_hint`), validated on parse. [`BundleSet`] maps trust
//!   domains to bundles (never merged; sequences never go backwards) and
//!   [`BundleStore`] is the atomically swappable handle the verifiers read on
//!   every handshake.
//! - [`Authority`]: a per-trust-domain CA issuing [`X509Svid`]s and
//!   [`JwtSvid`]s, rotating prepare → activate → retire with an injected
//!   [`Clock`], persisted to a directory.
//! - [`SpiffeClientVerifier`] / [`SpiffeServerVerifier`]: rustls verifiers;
//!   [`server_config`] / [`client_config`] build complete rustls configs on
//!   the ring provider; [`peer_spiffe_id`] reads the verified peer's ID after
//!   the handshake.
//! - [`JwtSvidValidator`]: JWT-SVID validation against the same store.
//! - `testing` (cargo feature `testing`): certificate factories, including
//!   deliberately broken certificates, for tests of this and other crates.
//!
//! # Example
//!
//! Issue an SVID, publish the bundle, federate with another trust domain and
//! build a server config that accepts peers of both:
//!
//! ```no_run
//! use std::sync::Arc;
//! use causeway_trust::{
//!     Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, PeerPolicy, TrustDomain,
//!     peer_spiffe_id, server_config,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let td = TrustDomain::new("eu-west.causeway.example")?;
//! let ca = Authority::load_or_create(
//!     std::path::Path::new("/var/lib/causeway/ca"),
//!     td.clone(),
//!     AuthorityConfig::default(),
//!     Arc::new(causeway_trust::SystemClock),
//! )?;
//! ca.tick()?; // call periodically (e.g. every refresh hint) to rotate
//!
//! // Our identity, and our bundle to publish at /v1/trust-domains/{td}/bundle.
//! let svid = ca.issue_x509_svid(&td.spiffe_id("/gateway/eu-west-1")?)?;
//! let published: String = ca.bundle().to_json();
//!
//! // A federated trust domain's bundle, fetched from its bundle endpoint.
//! let remote_td = TrustDomain::new("us-east.causeway.example")?;
//! let remote: Bundle = Bundle::parse_str(r#"{"keys": [], "spiffe_sequence": 1}"#)?;
//!
//! let store = BundleStore::new(
//!     BundleSet::new()
//!         .with_bundle(td.clone(), ca.bundle())?
//!         .with_bundle(remote_td.clone(), remote)?,
//! );
//! // Accept any federated peer (or restrict with PeerPolicy::trust_domains / ids).
//! let config = server_config(&svid, store.clone(), PeerPolicy::AnyFederated)?;
//! # let _ = (config, published);
//!
//! // Later, a refreshed bundle is swapped in; listeners pick it up on the
//! // next handshake. A sequence that goes backwards is refused.
//! store.update(&td, ca.bundle())?;
//!
//! // After the handshake: who is the peer?
//! # let conn: rustls::ServerConnection = unimplemented!();
//! let peer = peer_spiffe_id(conn.peer_certificates().unwrap_or_default())?;
//! println!("peer {peer} in {}", peer.trust_domain());
//! # Ok(())
//! # }
//! ```
//!
//! Gateways that build their own TLS stack (e.g. Pingora) can use
//! [`SpiffeClientVerifier`] and [`X509Svid::private_key_der`] /
//! [`X509Svid::cert_chain_der`] directly. Rejections surface in rustls as
//! `Error::InvalidCertificate(CertificateError::Other(..))`;
//! [`VerifyError::find`] recovers the typed cause from a rustls or I/O error.

pub mod authority;
pub mod bundle;
pub mod clock;
pub mod id;
pub mod jwt;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod verify;

pub use authority::{
    Authority, AuthorityConfig, AuthorityError, JwtSvid, RotationEvent, SvidError, X509Svid,
};
pub use bundle::{
    Bundle, BundleError, BundleKey, BundleSet, BundleSetError, BundleStore, JwtAuthority,
    X509Authority,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use id::{SpiffeId, SpiffeIdError, TrustDomain};
pub use jwt::{JwtError, JwtSvidClaims, JwtSvidValidator};
pub use tls::{
    TlsConfigError, TlsOptions, client_config, client_config_with, server_config,
    server_config_with,
};
pub use verify::{
    PeerPolicy, SpiffeClientVerifier, SpiffeServerVerifier, VerifyError, peer_spiffe_id,
};
