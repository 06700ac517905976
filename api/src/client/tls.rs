//! How the client trusts an `https://` server: the system's CA store plus,
//! optionally, the PEM CA certificates of one file (a private CA).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::ClientError;

/// A client certificate presented to `https://` servers (a gateway's
/// X.509-SVID, kept current by its resolver). Equal when it is the same
/// resolver.
#[derive(Debug, Clone)]
pub struct ClientCert(pub Arc<dyn rustls::client::ResolvesClientCert>);

impl PartialEq for ClientCert {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ClientCert {}

/// Trust settings for `https://` servers (ignored for `http://`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file with extra CA certificates, trusted beside the system's.
    pub ca_file: Option<PathBuf>,
    /// A client certificate to present (none by default).
    pub client_cert: Option<ClientCert>,
}

impl TlsOptions {
    /// Trust the system store and the CA certificates in `ca_file`.
    pub fn with_ca_file(ca_file: impl Into<PathBuf>) -> Self {
        Self {
            ca_file: Some(ca_file.into()),
            client_cert: None,
        }
    }

    /// A rustls client configuration (ring provider, TLS 1.2+; the connector
    /// sets ALPN).
    pub(crate) fn client_config(&self) -> Result<rustls::ClientConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        // Unreadable system certificates are skipped, as every TLS client does.
        let system = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(system.certs);
        if let Some(path) = &self.ca_file {
            for cert in read_ca_file(path)? {
                roots.add(cert).map_err(|e| {
                    ClientError::InvalidServer(format!("CA file {}: {e}", path.display()))
                })?;
            }
        }
        if roots.is_empty() {
            return Err(ClientError::InvalidServer(
                "no CA certificates to verify https servers: the system store is empty and no CA file is set".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::InvalidServer(format!("tls: {e}")))?
            .with_root_certificates(roots);
        Ok(match &self.client_cert {
            Some(c) => builder.with_client_cert_resolver(c.0.clone()),
            None => builder.with_no_client_auth(),
        })
    }
}

fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let bad =
        |msg: String| ClientError::InvalidServer(format!("CA file {}: {msg}", path.display()));
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsOptions::with_ca_file(dir.path().join("nope.pem"));
        let e = missing.client_config().unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = TlsOptions::with_ca_file(&empty)
            .client_config()
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
