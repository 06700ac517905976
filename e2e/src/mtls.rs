//! A raw mTLS client for the east-west listener: present any SVID, see
//! whether the handshake and a request get through.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use causeway_trust::{
    Authority, AuthorityConfig, BundleSet, BundleStore, PeerPolicy, SpiffeId, SystemClock,
    TrustDomain, X509Svid,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What happened to one east-west attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The handshake or the first read failed: the peer was refused.
    Refused(String),
    /// An HTTP response came back (its status line).
    Answered(String),
}

/// Loads the authority persisted in `dir` (a cluster's `ca` directory).
pub fn load_authority(dir: &Path) -> anyhow::Result<Authority> {
    Ok(Authority::load(
        dir,
        AuthorityConfig::default(),
        Arc::new(SystemClock),
    )?)
}

/// A fresh authority for `trust_domain` (not federated with anyone).
pub fn rogue_authority(trust_domain: &str) -> anyhow::Result<Authority> {
    Ok(Authority::new(
        TrustDomain::new(trust_domain)?,
        AuthorityConfig::default(),
    )?)
}

/// A gateway SVID of `authority` for `cluster`.
pub fn gateway_svid(authority: &Authority, cluster: &str) -> anyhow::Result<X509Svid> {
    let id: SpiffeId = authority
        .trust_domain()
        .spiffe_id(&format!("/causeway/gateway/{cluster}"))?;
    Ok(authority.issue_x509_svid(&id)?)
}

/// Connects to `ingress` presenting `svid`, trusting `server` (the target
/// cluster's authority), and sends `GET /` for `host` over HTTP/1.1.
pub async fn attempt(
    ingress: SocketAddr,
    svid: &X509Svid,
    server: &Authority,
    host: &str,
) -> anyhow::Result<Attempt> {
    attempt_with(ingress, svid, server, host, &[]).await
}

/// [`attempt`] with extra request headers; an answer carries the status
/// line and the body.
pub async fn attempt_with(
    ingress: SocketAddr,
    svid: &X509Svid,
    server: &Authority,
    host: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Attempt> {
    let store = BundleStore::new(
        BundleSet::new().with_bundle(server.trust_domain().clone(), server.bundle())?,
    );
    let mut config = causeway_trust::client_config(svid, store, PeerPolicy::AnyFederated)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(ingress).await?;
    let name = rustls_pki_types::ServerName::try_from("gateway.causeway.internal")?.to_owned();
    let run = async {
        let mut tls = match connector.connect(name, tcp).await {
            Ok(t) => t,
            Err(e) => return Attempt::Refused(format!("handshake: {e}")),
        };
        let extra: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
        if let Err(e) = tls.write_all(req.as_bytes()).await {
            return Attempt::Refused(format!("write: {e}"));
        }
        let mut buf = Vec::new();
        match tls.read_to_end(&mut buf).await {
            Err(e) if buf.is_empty() => Attempt::Refused(format!("read: {e}")),
            _ if buf.is_empty() => Attempt::Refused("closed without a response".into()),
            _ => {
                let text = String::from_utf8_lossy(&buf);
                if headers.is_empty() {
                    Attempt::Answered(text.lines().next().unwrap_or_default().to_owned())
                } else {
                    Attempt::Answered(text.into_owned())
                }
            }
        }
    };
    Ok(tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap_or_else(|_| Attempt::Refused("timed out".into())))
}

/// The DER leaf certificate `ingress` presents to a client holding `svid`,
/// verified against `server`'s whole bundle.
pub async fn peer_certificate(
    ingress: SocketAddr,
    svid: &X509Svid,
    server: &Authority,
) -> anyhow::Result<Vec<u8>> {
    peer_certificate_verified_by(ingress, svid, server, server.bundle()).await
}

/// The DER leaf certificate `ingress` presents, verified against `server`'s
/// active CA only: fails while the server still presents an SVID from an
/// older CA.
pub async fn peer_certificate_from_active_ca(
    ingress: SocketAddr,
    svid: &X509Svid,
    server: &Authority,
) -> anyhow::Result<Vec<u8>> {
    let mut bundle = causeway_trust::Bundle::new(1);
    bundle.add_x509_authority(server.active_ca_cert())?;
    peer_certificate_verified_by(ingress, svid, server, bundle).await
}

async fn peer_certificate_verified_by(
    ingress: SocketAddr,
    svid: &X509Svid,
    server: &Authority,
    bundle: causeway_trust::Bundle,
) -> anyhow::Result<Vec<u8>> {
    let store =
        BundleStore::new(BundleSet::new().with_bundle(server.trust_domain().clone(), bundle)?);
    let mut config = causeway_trust::client_config(svid, store, PeerPolicy::AnyFederated)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(ingress).await?;
    let name = rustls_pki_types::ServerName::try_from("gateway.causeway.internal")?.to_owned();
    let tls = tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp)).await??;
    let (_, conn) = tls.get_ref();
    let leaf = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| anyhow::anyhow!("no peer certificate"))?;
    Ok(leaf.as_ref().to_vec())
}
