//! The east-west transport: dials a remote gateway and runs the rustls
//! handshake (verifying the peer's SPIFFE ID against the federated bundle of
//! its trust domain, presenting this gateway's X.509-SVID). Used by the
//! relays that Pingora's pooled HTTP/2 connections go through
//! ([`super::relay`]), by active probes and by TCP tunnels.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Dials a remote gateway over mTLS.
pub struct SpiffeConnector {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// Expected ALPN (`h2` or `http/1.1`), checked after the handshake.
    alpn: &'static [u8],
}

impl std::fmt::Debug for SpiffeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeConnector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl SpiffeConnector {
    /// A connector using `config` (which carries the SPIFFE server verifier
    /// and this gateway's client certificate). `alpn` must be one of the
    /// protocols in `config.alpn_protocols`.
    pub fn new(
        config: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        alpn: &'static [u8],
    ) -> Self {
        Self {
            connector: TlsConnector::from(config),
            server_name,
            alpn,
        }
    }

    /// Dials `addr` and completes the mTLS handshake.
    pub async fn handshake(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?;
        let negotiated = tls.get_ref().1.alpn_protocol();
        if negotiated != Some(self.alpn) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "remote gateway did not negotiate the expected ALPN protocol",
            ));
        }
        Ok(tls)
    }
}

impl SpiffeConnector {
    /// Opens an mTLS stream to `addr` presenting `sni` (TCP tunnels: the
    /// remote ingress routes by SNI). ALPN is not checked.
    pub async fn tunnel(
        &self,
        addr: std::net::SocketAddr,
        sni: ServerName<'static>,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        self.connector.connect(sni, tcp).await
    }

    /// Active probe: mTLS handshake, then `GET /healthz` (HTTP/1.1) answered
    /// by the remote gateway itself. Use with the HTTP/1.1 connector.
    pub async fn probe(&self, addr: std::net::SocketAddr) -> std::io::Result<bool> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self.handshake(addr).await?;
        let req = format!(
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            crate::headers::PROBE_HOST
        );
        tls.write_all(req.as_bytes()).await?;
        let mut buf = [0u8; 12];
        tls.read_exact(&mut buf).await?;
        Ok(&buf == b"HTTP/1.1 200")
    }
}
