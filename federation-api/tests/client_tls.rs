//! The client (REST and gRPC watch) against an `https://` API: a TLS
//! terminator with a certificate from a private CA forwards to a real
//! server, as a cloud load balancer with a TLS listener does.

#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use causeway_api::client::{Client, Precondition, TlsOptions, Versioned, grpc_watch_tls};
use causeway_api::proto::EventType;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use support::*;
use tokio::net::{TcpListener, TcpStream};

/// A private CA (PEM file) and a TLS terminator for `localhost` in front of `upstream`.
struct Terminator {
    addr: SocketAddr,
    ca_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Terminator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn terminator(upstream: &str) -> Terminator {
    let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut up) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    Terminator {
        addr,
        ca_file,
        _dir: dir,
        task,
    }
}

#[tokio::test]
async fn rest_and_grpc_watch_work_over_https_with_a_private_ca() {
    let s = TestServer::start().await;
    let t = terminator(&s.base).await;
    let url = format!("https://localhost:{}", t.addr.port());
    let tls = TlsOptions::with_ca_file(&t.ca_file);
    let c = Client::with_tls(&url, Some(s.token(&["admin"])), &tls).unwrap();
    let put: Versioned<Value> = c
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu-1.example.org", "eu-west-1"),
            Precondition::None,
        )
        .await
        .unwrap();
    assert!(put.revision.is_some());
    let token = s.token(&["read"]);
    let mut watch = grpc_watch_tls(&url, Some(&token), None, &tls)
        .await
        .unwrap();
    let snap = watch.message().await.unwrap().unwrap();
    assert_eq!(snap.r#type, EventType::Snapshot as i32);
    assert_eq!(snap.resources.len(), 1);
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_refused() {
    let s = TestServer::start().await;
    let t = terminator(&s.base).await;
    let url = format!("https://localhost:{}", t.addr.port());
    // Only the system's CAs: the private CA is not among them.
    let c = Client::new(&url, Some(s.token(&["admin"]))).unwrap();
    let e = c
        .get::<Value>("/v1/clusters")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate"), "{e}");
    let token = s.token(&["read"]);
    let e = grpc_watch_tls(&url, Some(&token), None, &TlsOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("certificate"), "{e}");
}
