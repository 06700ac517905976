//! The API over TLS (`tls:` in the config), over real sockets: the server
//! certificate files are re-read when they change (new connections get the
//! new certificate), and a gateway may authenticate with its X.509-SVID
//! instead of a bearer token: the chain (with an intermediate CA) must verify
//! against its trust domain's bundle in the catalog, the path must be
//! `/causeway/gateway/<cluster>` and the trust domain the one the cluster
//! registered; it then acts for that cluster only.

#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use causeway_api::client::{Client, TlsOptions};
use causeway_api::model::TrustBundle;
use causeway_federation::server::tls::TlsConfig;
use causeway_trust::TrustDomain;
use causeway_trust::testing::{LeafSpec, TestCa, TestLeaf};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct ServerCa {
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
    pem: String,
}

fn server_ca() -> ServerCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    ServerCa {
        cert: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Writes a `localhost` certificate and key from `ca`; returns its DER.
fn write_server_cert(ca: &ServerCa, cert: &Path, key: &Path) -> CertificateDer<'static> {
    let k = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&k, &ca.issuer)
        .unwrap();
    // Key first: the reloader takes the pair once both changed and match.
    std::fs::write(key, k.serialize_pem()).unwrap();
    std::fs::write(cert, leaf.pem()).unwrap();
    leaf.der().clone()
}

/// One HTTP/1.1 request over a fresh TLS connection, optionally presenting
/// `svid`; returns the status (None if the handshake failed) and the
/// server's leaf.
async fn request(
    addr: SocketAddr,
    ca: &ServerCa,
    svid: Option<&TestLeaf>,
    method: &str,
    path: &str,
    body: &str,
) -> (Option<u16>, Option<CertificateDer<'static>>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match svid {
        Some(l) => builder
            .with_client_auth_cert(l.chain.clone(), PrivateKeyDer::Pkcs8(l.key.clone_key()))
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
    else {
        return (None, None);
    };
    let leaf = tls.get_ref().1.peer_certificates().map(|c| c[0].clone());
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // TLS 1.3: a refused client certificate surfaces on the first read.
    if tls.write_all(req.as_bytes()).await.is_err() {
        return (None, leaf);
    }
    let mut out = Vec::new();
    if tls.read_to_end(&mut out).await.is_err() && out.is_empty() {
        return (None, leaf);
    }
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    (status, leaf)
}

async fn put(
    addr: SocketAddr,
    ca: &ServerCa,
    svid: Option<&TestLeaf>,
    cluster: &str,
    body: &str,
) -> Option<u16> {
    let path = export_path(cluster, "shop", "cart");
    request(addr, ca, svid, "PUT", &path, body).await.0
}

/// Opens the gRPC catalog watch over TLS presenting `svid` (no token);
/// returns the status code of the call.
async fn grpc_watch(addr: SocketAddr, ca: &ServerCa, svid: &TestLeaf) -> tonic::Code {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            svid.chain.clone(),
            PrivateKeyDer::Pkcs8(svid.key.clone_key()),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://localhost:{}", addr.port()))
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: http::Uri| {
                let connector = connector.clone();
                async move {
                    let tcp = tokio::net::TcpStream::connect(addr).await?;
                    let tls = connector
                        .connect(ServerName::try_from("localhost").unwrap(), tcp)
                        .await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
                }
            }))
            .await
            .unwrap();
    let mut client = causeway_api::proto::catalog_client::CatalogClient::new(channel);
    match client
        .watch(causeway_api::proto::WatchRequest { since: None })
        .await
    {
        Ok(mut stream) => match stream.get_mut().message().await {
            Ok(Some(_)) => tonic::Code::Ok,
            Ok(None) => tonic::Code::Unknown,
            Err(s) => s.code(),
        },
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_listener_reloads_its_certificate_and_takes_gateway_svids() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ca = server_ca();
    let first = write_server_cert(&ca, &cert_file, &key_file);
    let tls = TlsConfig {
        cert_file: cert_file.clone(),
        key_file: key_file.clone(),
        reload_interval: Duration::from_millis(100),
    };
    let s = TestServer::start_with(memory_store(), |c| c.tls = Some(tls)).await;
    let addr: SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let https = format!("https://localhost:{}", addr.port());
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let admin = Client::with_tls(
        &https,
        Some(s.token(&["admin"])),
        &TlsOptions::with_ca_file(&ca_file),
    )
    .unwrap();

    // Plaintext is not served on a TLS listener.
    assert!(
        Client::new(&s.base, Some(s.token(&["admin"])))
            .unwrap()
            .get_opt::<serde_json::Value>("/v1/clusters/eu-1")
            .await
            .is_err()
    );

    // eu-1 (trust domain eu.test, SVIDs under an intermediate CA) and us-1
    // registered, with their bundles published.
    let eu_td = TrustDomain::new("eu.test").unwrap();
    let us_td = TrustDomain::new("us.test").unwrap();
    let eu_root = TestCa::new(&eu_td).unwrap();
    let eu_mid = eu_root.intermediate().unwrap();
    let us_root = TestCa::new(&us_td).unwrap();
    for (id, td, root) in [("eu-1", "eu.test", &eu_root), ("us-1", "us.test", &us_root)] {
        let _: serde_json::Value = admin
            .put(
                &format!("/v1/clusters/{id}"),
                &cluster(id, td, "r"),
                causeway_api::client::Precondition::None,
            )
            .await
            .unwrap()
            .value;
        admin
            .put_bundle(&TrustBundle::new(
                td.parse().unwrap(),
                id.parse().unwrap(),
                root.bundle(),
            ))
            .await
            .unwrap();
    }
    let eu_gw = eu_mid
        .issue(&LeafSpec::svid("spiffe://eu.test/causeway/gateway/eu-1"))
        .unwrap();
    let body = export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP").to_string();

    // The bundles reach the client verifier within a reload interval.
    assert!(
        eventually(5, || async {
            put(addr, &ca, Some(&eu_gw), "eu-1", &body).await == Some(201)
        })
        .await,
        "eu-1's gateway SVID writes eu-1's export"
    );
    let (status, _) = request(addr, &ca, Some(&eu_gw), "GET", "/v1/clusters/eu-1", "").await;
    assert_eq!(status, Some(200), "and reads the catalog");

    // The gRPC catalog watch takes the SVID too.
    assert_eq!(grpc_watch(addr, &ca, &eu_gw).await, tonic::Code::Ok);
    let workload_watch = eu_mid
        .issue(&LeafSpec::svid("spiffe://eu.test/ns/shop/sa/web"))
        .unwrap();
    assert_eq!(
        grpc_watch(addr, &ca, &workload_watch).await,
        tonic::Code::Unauthenticated
    );

    // It acts for eu-1 only.
    let us_body = export("us-1", "shop", "cart", 8080, "TCP", "ClusterSetIP").to_string();
    assert_eq!(
        put(addr, &ca, Some(&eu_gw), "us-1", &us_body).await,
        Some(403)
    );
    // A valid SVID whose path is not a gateway's, or that names a cluster
    // registered in another trust domain, or an unregistered cluster: 401.
    let workload = eu_mid
        .issue(&LeafSpec::svid("spiffe://eu.test/ns/shop/sa/web"))
        .unwrap();
    assert_eq!(
        put(addr, &ca, Some(&workload), "eu-1", &body).await,
        Some(401)
    );
    let us_claims_eu = us_root
        .issue(&LeafSpec::svid("spiffe://us.test/causeway/gateway/eu-1"))
        .unwrap();
    assert_eq!(
        put(addr, &ca, Some(&us_claims_eu), "eu-1", &body).await,
        Some(401)
    );
    let unregistered = eu_root
        .issue(&LeafSpec::svid("spiffe://eu.test/causeway/gateway/eu-9"))
        .unwrap();
    assert_eq!(
        put(addr, &ca, Some(&unregistered), "eu-9", &body).await,
        Some(401)
    );
    // A chain from a CA outside the catalog's bundles, or an expired SVID:
    // the handshake fails.
    let stranger = TestCa::new(&eu_td).unwrap();
    let forged = stranger
        .issue(&LeafSpec::svid("spiffe://eu.test/causeway/gateway/eu-1"))
        .unwrap();
    assert_eq!(put(addr, &ca, Some(&forged), "eu-1", &body).await, None);
    let expired = eu_mid
        .issue(&LeafSpec::svid("spiffe://eu.test/causeway/gateway/eu-1").expired())
        .unwrap();
    assert_eq!(put(addr, &ca, Some(&expired), "eu-1", &body).await, None);
    // Without an intermediate the chain does not verify.
    let mut no_mid = TestLeaf {
        chain: eu_gw.chain.clone(),
        key: eu_gw.key.clone_key(),
    };
    no_mid.chain.truncate(1);
    assert_eq!(put(addr, &ca, Some(&no_mid), "eu-1", &body).await, None);
    // No certificate, no token: 401; a token still works without one.
    assert_eq!(put(addr, &ca, None, "eu-1", &body).await, Some(401));
    assert!(
        admin
            .get_opt::<serde_json::Value>("/v1/clusters/eu-1")
            .await
            .unwrap()
            .is_some()
    );

    // The certificate files are replaced: new connections get the new one.
    let (_, presented) = request(addr, &ca, None, "GET", "/healthz", "").await;
    assert_eq!(presented.as_ref(), Some(&first));
    let second = write_server_cert(&ca, &cert_file, &key_file);
    assert_ne!(first, second);
    assert!(
        eventually(5, || async {
            request(addr, &ca, None, "GET", "/healthz", "")
                .await
                .1
                .as_ref()
                == Some(&second)
        })
        .await,
        "the renewed certificate was not served"
    );
    // A broken pair keeps the last good certificate.
    std::fs::write(&cert_file, "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        request(addr, &ca, None, "GET", "/healthz", "")
            .await
            .1
            .as_ref(),
        Some(&second)
    );
}
