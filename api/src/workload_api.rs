//! A client of the SPIFFE Workload API (`proto/spiffe/workload/workload.proto`,
//! the protocol SPIRE agents serve on their Unix socket): connect over the
//! socket, the mandatory `workload.spiffe.io: true` metadata, and the
//! decoding of its messages into [`X509Svid`]s and [`Bundle`]s.
//!
//! The generated stubs are in [`pb`]: the client the gateway uses, and the
//! server the tests' fake Workload API is built on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use causeway_trust::{Bundle, JwtAuthority, SpiffeId, TrustDomain, X509Svid};
use rustls_pki_types::{CertificateDer, PrivatePkcs8KeyDer};

/// Generated messages and stubs (no protobuf package: the service is
/// `/SpiffeWorkloadAPI/...`).
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// The metadata key every Workload API call must carry (value `true`); a
/// server refuses calls without it.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";

/// Why talking to the Workload API or decoding its answer failed. The
/// variant name is the typed reason the gateway logs and counts.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadApiError {
    /// The socket address is not `unix:///path`, `unix:/path` or a path.
    #[error("workload api address {0:?}: only unix sockets are supported")]
    Address(String),
    /// The socket could not be reached.
    #[error("workload api {socket}: {message}")]
    Unreachable {
        /// The socket path.
        socket: PathBuf,
        /// Why.
        message: String,
    },
    /// A call failed with a gRPC status (e.g. `PERMISSION_DENIED` when the
    /// agent has no registration entry for this workload yet).
    #[error("workload api call: {0}")]
    Status(String),
    /// The stream ended.
    #[error("workload api stream ended")]
    StreamEnded,
    /// The response holds no SVID.
    #[error("workload api response holds no x509-svid")]
    NoSvid,
    /// A certificate, key or bundle in the response is malformed.
    #[error("workload api response: {0}")]
    Malformed(String),
}

impl WorkloadApiError {
    /// A short stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Address(_) => "address",
            Self::Unreachable { .. } => "unreachable",
            Self::Status(_) => "status",
            Self::StreamEnded => "stream_ended",
            Self::NoSvid => "no_svid",
            Self::Malformed(_) => "malformed",
        }
    }
}

/// The socket path of a Workload API address (`SPIFFE_ENDPOINT_SOCKET`
/// form: `unix:///run/spire/agent.sock`, `unix:/run/...`, or a plain path).
pub fn socket_path(address: &str) -> Result<PathBuf, WorkloadApiError> {
    let path = address
        .strip_prefix("unix://")
        .or_else(|| address.strip_prefix("unix:"))
        .unwrap_or(address);
    if path.starts_with('/') && !path.contains('?') && !path.contains('#') {
        Ok(PathBuf::from(path))
    } else {
        Err(WorkloadApiError::Address(address.to_owned()))
    }
}

/// A connected Workload API client.
pub type Client =
    pb::spiffe_workload_api_client::SpiffeWorkloadApiClient<tonic::transport::Channel>;

/// Connects to the Workload API on the Unix socket `socket`.
pub async fn connect(socket: &Path) -> Result<Client, WorkloadApiError> {
    let path = socket.to_owned();
    let connector = tower::service_fn(move |_: http::Uri| {
        let path = path.clone();
        async move {
            let stream = tokio::net::UnixStream::connect(path).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    // The authority is not used: the connector dials the socket.
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await
        .map_err(|e| WorkloadApiError::Unreachable {
            socket: socket.to_owned(),
            message: format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ),
        })?;
    Ok(pb::spiffe_workload_api_client::SpiffeWorkloadApiClient::new(channel))
}

/// A request carrying the security metadata.
pub fn request<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut().insert(
        SECURITY_HEADER,
        tonic::metadata::MetadataValue::from_static("true"),
    );
    r
}

/// Whether a server-side request carries the security metadata.
pub fn has_security_header<T>(request: &tonic::Request<T>) -> bool {
    request
        .metadata()
        .get(SECURITY_HEADER)
        .is_some_and(|v| v.as_bytes() == b"true")
}

/// Splits concatenated ASN.1 DER values (certificate chains and bundles in
/// Workload API messages).
pub fn split_der(mut bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, WorkloadApiError> {
    let bad = |m: &str| WorkloadApiError::Malformed(format!("der: {m}"));
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes[0] != 0x30 || bytes.len() < 2 {
            return Err(bad("not a SEQUENCE"));
        }
        let (len, header) = match bytes[1] {
            l if l < 0x80 => (usize::from(l), 2),
            0x81..=0x84 => {
                let n = usize::from(bytes[1] & 0x7f);
                let digits = bytes.get(2..2 + n).ok_or_else(|| bad("truncated length"))?;
                (
                    digits
                        .iter()
                        .fold(0usize, |acc, d| (acc << 8) | usize::from(*d)),
                    2 + n,
                )
            }
            _ => return Err(bad("unsupported length")),
        };
        let end = header
            .checked_add(len)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| bad("truncated value"))?;
        out.push(CertificateDer::from(bytes[..end].to_vec()));
        bytes = &bytes[end..];
    }
    Ok(out)
}

/// Concatenated DER of `certs` (how the Workload API carries chains).
pub fn concat_der<'a>(certs: impl IntoIterator<Item = &'a CertificateDer<'a>>) -> Vec<u8> {
    certs
        .into_iter()
        .flat_map(|c| c.as_ref().to_vec())
        .collect()
}

/// The trust domain a Workload API map key names (`spiffe://td` or `td`).
pub fn trust_domain_key(key: &str) -> Result<TrustDomain, WorkloadApiError> {
    TrustDomain::new(key.strip_prefix("spiffe://").unwrap_or(key))
        .map_err(|e| WorkloadApiError::Malformed(format!("trust domain {key:?}: {e}")))
}

/// A bundle (sequence 0) holding the X.509 authorities in concatenated DER.
pub fn x509_bundle(der: &[u8]) -> Result<Bundle, WorkloadApiError> {
    let mut bundle = Bundle::new(0);
    for cert in split_der(der)? {
        bundle
            .add_x509_authority(cert)
            .map_err(|e| WorkloadApiError::Malformed(format!("bundle: {e}")))?;
    }
    if bundle.is_empty() {
        return Err(WorkloadApiError::Malformed("empty bundle".into()));
    }
    Ok(bundle)
}

/// The JWT authorities of a JWK set from `FetchJWTBundles` (keys without a
/// `use` are JWT-SVID keys: that is all a JWT bundle holds).
pub fn jwt_authorities(jwks: &[u8]) -> Result<Vec<JwtAuthority>, WorkloadApiError> {
    let bad = |m: String| WorkloadApiError::Malformed(format!("jwt bundle: {m}"));
    let mut doc: serde_json::Value =
        serde_json::from_slice(jwks).map_err(|e| bad(e.to_string()))?;
    let keys = doc
        .get_mut("keys")
        .and_then(|k| k.as_array_mut())
        .ok_or_else(|| bad("no keys array".into()))?;
    for key in keys.iter_mut() {
        if let Some(obj) = key.as_object_mut() {
            obj.entry("use").or_insert_with(|| "jwt-svid".into());
        }
    }
    let bundle = Bundle::parse(doc.to_string().as_bytes()).map_err(|e| bad(e.to_string()))?;
    Ok(bundle.jwt_authorities().cloned().collect())
}

/// One `FetchX509SVID` message, decoded: the chosen SVID, the bundle of its
/// trust domain and the federated bundles.
#[derive(Debug, Clone)]
pub struct X509Context {
    /// The SVID (chain as sent, leaf first, intermediates included).
    pub svid: X509Svid,
    /// The X.509 authorities of the SVID's trust domain (sequence 0).
    pub bundle: Bundle,
    /// Foreign trust domains' X.509 authorities (sequence 0).
    pub federated: BTreeMap<TrustDomain, Bundle>,
}

impl X509Context {
    /// Decodes `response`, choosing the SVID whose ID is `prefer` if the
    /// workload is entitled to it, else the first (the default SVID).
    pub fn decode(
        response: &pb::X509svidResponse,
        prefer: Option<&SpiffeId>,
    ) -> Result<Self, WorkloadApiError> {
        let chosen = prefer
            .and_then(|p| response.svids.iter().find(|s| s.spiffe_id == p.to_string()))
            .or_else(|| response.svids.first())
            .ok_or(WorkloadApiError::NoSvid)?;
        let chain = split_der(&chosen.x509_svid)?;
        let svid = X509Svid::from_der(
            chain,
            PrivatePkcs8KeyDer::from(chosen.x509_svid_key.clone()),
        )
        .map_err(|e| WorkloadApiError::Malformed(format!("svid: {e}")))?;
        if !chosen.spiffe_id.is_empty() && svid.spiffe_id().to_string() != chosen.spiffe_id {
            return Err(WorkloadApiError::Malformed(format!(
                "svid: the message names {} but the certificate is {}",
                chosen.spiffe_id,
                svid.spiffe_id()
            )));
        }
        let bundle = x509_bundle(&chosen.bundle)?;
        let mut federated = BTreeMap::new();
        for (key, der) in &response.federated_bundles {
            federated.insert(trust_domain_key(key)?, x509_bundle(der)?);
        }
        Ok(Self {
            svid,
            bundle,
            federated,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn socket_addresses() {
        assert_eq!(
            socket_path("unix:///run/spire/agent.sock").unwrap(),
            PathBuf::from("/run/spire/agent.sock")
        );
        assert_eq!(
            socket_path("unix:/run/a.sock").unwrap(),
            PathBuf::from("/run/a.sock")
        );
        assert_eq!(
            socket_path("/run/a.sock").unwrap(),
            PathBuf::from("/run/a.sock")
        );
        assert!(socket_path("tcp://127.0.0.1:8081").is_err());
        assert!(socket_path("relative.sock").is_err());
    }

    #[test]
    fn der_values_split_and_truncation_is_refused() {
        let a = [0x30, 0x03, 1, 2, 3];
        let mut long = vec![0x30, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let both: Vec<u8> = a.iter().chain(long.iter()).copied().collect();
        let parts = split_der(&both).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].as_ref(), &a[..]);
        assert_eq!(parts[1].as_ref(), &long[..]);
        assert!(split_der(&both[..both.len() - 1]).is_err());
        assert!(split_der(&[0x02, 0x01, 0x00]).is_err());
        assert!(split_der(&[]).unwrap().is_empty());
    }
}
