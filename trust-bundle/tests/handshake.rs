//! Real TLS handshakes over loopback between two trust domains.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use causeway_trust::testing::{LeafSpec, TestCa, TestLeaf};
use causeway_trust::tls::{TlsOptions, client_config_from_parts, server_config_from_parts};
use causeway_trust::{
    Authority, AuthorityConfig, BundleSet, BundleStore, PeerPolicy, SpiffeClientVerifier, SpiffeId,
    SpiffeServerVerifier, TrustDomain, VerifyError, X509Svid, client_config, peer_spiffe_id,
    server_config,
};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

type Outcome = Result<SpiffeId, std::io::Error>;

/// Runs one handshake; returns what the server and the client concluded
/// (the peer's SPIFFE ID, or the error).
async fn handshake(server: ServerConfig, client: ClientConfig) -> (Outcome, Outcome) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let server_task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        let id = peer_spiffe_id(tls.get_ref().1.peer_certificates().unwrap_or_default())
            .map_err(std::io::Error::other)?;
        tls.write_all(b"k").await?;
        tls.flush().await?;
        let mut buf = [0u8; 1];
        let _ = tls.read(&mut buf).await;
        Ok::<_, std::io::Error>(id)
    });
    let connector = TlsConnector::from(Arc::new(client));
    let client = async {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from("td1.test").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        let id = peer_spiffe_id(tls.get_ref().1.peer_certificates().unwrap_or_default())
            .map_err(std::io::Error::other)?;
        // The server only decides on our certificate after our Finished;
        // wait for its first byte to learn the verdict.
        let mut buf = [0u8; 1];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"k").await?;
        Ok::<_, std::io::Error>(id)
    };
    let timeout = Duration::from_secs(10);
    let client = tokio::time::timeout(timeout, client).await.unwrap();
    let server = tokio::time::timeout(timeout, server_task)
        .await
        .unwrap()
        .unwrap();
    (server, client)
}

fn verify_error(outcome: &Outcome) -> VerifyError {
    let err = outcome.as_ref().unwrap_err();
    VerifyError::find(err)
        .cloned()
        .unwrap_or_else(|| panic!("no VerifyError in {err:?}"))
}

struct World {
    td1: TrustDomain,
    td2: TrustDomain,
    a1: Authority,
    a2: Authority,
    /// A second CA for td2 used to mint broken client certificates.
    bad2: TestCa,
}

impl World {
    fn new() -> Self {
        let td1 = TrustDomain::new("td1.test").unwrap();
        let td2 = TrustDomain::new("td2.test").unwrap();
        Self {
            a1: Authority::new(td1.clone(), AuthorityConfig::default()).unwrap(),
            a2: Authority::new(td2.clone(), AuthorityConfig::default()).unwrap(),
            bad2: TestCa::new(&td2).unwrap(),
            td1,
            td2,
        }
    }

    fn server_svid(&self) -> X509Svid {
        self.a1
            .issue_x509_svid(&self.td1.spiffe_id("/gateway").unwrap())
            .unwrap()
    }

    fn client_svid(&self) -> X509Svid {
        self.a2
            .issue_x509_svid(&self.td2.spiffe_id("/client").unwrap())
            .unwrap()
    }

    /// td1 and td2 (the authorities' bundles).
    fn federated(&self) -> BundleStore {
        BundleStore::new(
            BundleSet::new()
                .with_bundle(self.td1.clone(), self.a1.bundle())
                .unwrap()
                .with_bundle(self.td2.clone(), self.a2.bundle())
                .unwrap(),
        )
    }

    /// td1 (authority) and td2 (the test CA that mints broken leaves).
    fn federated_with_test_ca(&self) -> BundleStore {
        BundleStore::new(
            BundleSet::new()
                .with_bundle(self.td1.clone(), self.a1.bundle())
                .unwrap()
                .with_bundle(self.td2.clone(), self.bad2.bundle())
                .unwrap(),
        )
    }

    fn td1_only(&self) -> BundleStore {
        BundleStore::new(
            BundleSet::new()
                .with_bundle(self.td1.clone(), self.a1.bundle())
                .unwrap(),
        )
    }

    /// A td1 server that accepts any federated client from `store`.
    fn server(&self, store: BundleStore, policy: PeerPolicy) -> ServerConfig {
        server_config(&self.server_svid(), store, policy).unwrap()
    }

    /// A client presenting a crafted leaf, trusting td1's server.
    fn client_with_leaf(&self, leaf: &TestLeaf) -> ClientConfig {
        let verifier = SpiffeServerVerifier::new(self.td1_only(), PeerPolicy::AnyFederated);
        client_config_from_parts(
            leaf.chain.clone(),
            leaf.private_key_der(),
            Arc::new(verifier),
            &TlsOptions::default(),
        )
        .unwrap()
    }

    /// Handshake of a td1 server (trusting td1 + the td2 test CA) with a
    /// client presenting `spec`; returns the server's verdict.
    async fn bad_client(&self, spec: LeafSpec) -> VerifyError {
        let leaf = self.bad2.issue(&spec).unwrap();
        let server = self.server(self.federated_with_test_ca(), PeerPolicy::AnyFederated);
        let (server, client) = handshake(server, self.client_with_leaf(&leaf)).await;
        assert!(client.is_err(), "client must learn of the rejection");
        verify_error(&server)
    }
}

#[tokio::test]
async fn federated_peers_are_accepted_and_identified() {
    let w = World::new();
    let server = w.server(w.federated(), PeerPolicy::AnyFederated);
    let client = client_config(&w.client_svid(), w.federated(), PeerPolicy::AnyFederated).unwrap();
    let (server, client) = handshake(server, client).await;
    assert_eq!(server.unwrap().to_string(), "spiffe://td2.test/client");
    assert_eq!(client.unwrap().to_string(), "spiffe://td1.test/gateway");
}

#[tokio::test]
async fn unfederated_trust_domain_is_rejected() {
    let w = World::new();
    let server = w.server(w.td1_only(), PeerPolicy::AnyFederated);
    let client = client_config(&w.client_svid(), w.federated(), PeerPolicy::AnyFederated).unwrap();
    let (server, client) = handshake(server, client).await;
    assert!(client.is_err());
    assert!(matches!(
        verify_error(&server),
        VerifyError::UnknownTrustDomain { trust_domain, .. } if trust_domain == w.td2
    ));
}

#[tokio::test]
async fn bundles_swap_at_runtime_without_rebuilding_the_listener() {
    let w = World::new();
    let store = w.td1_only();
    let server = w.server(store.clone(), PeerPolicy::AnyFederated);
    let client = client_config(&w.client_svid(), w.federated(), PeerPolicy::AnyFederated).unwrap();
    let (s, _) = handshake(server.clone(), client.clone()).await;
    assert!(matches!(
        verify_error(&s),
        VerifyError::UnknownTrustDomain { .. }
    ));
    store.update(&w.td2, w.a2.bundle()).unwrap();
    let (s, c) = handshake(server.clone(), client.clone()).await;
    assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
    // Revocation: an empty bundle with a higher sequence.
    store
        .update(
            &w.td2,
            causeway_trust::Bundle::new(w.a2.bundle().sequence() + 1),
        )
        .unwrap();
    let (s, _) = handshake(server, client).await;
    assert!(matches!(
        verify_error(&s),
        VerifyError::NoAuthorities { .. }
    ));
}

#[tokio::test]
async fn policy_restricts_authenticated_peers() {
    let w = World::new();
    let client = client_config(&w.client_svid(), w.federated(), PeerPolicy::AnyFederated).unwrap();
    let only_td1 = PeerPolicy::trust_domains([w.td1.clone()]);
    let (s, _) = handshake(w.server(w.federated(), only_td1), client.clone()).await;
    assert!(matches!(verify_error(&s), VerifyError::NotAllowed { .. }));

    let exact = PeerPolicy::ids([w.td2.spiffe_id("/client").unwrap()]);
    let (s, _) = handshake(w.server(w.federated(), exact), client.clone()).await;
    assert!(s.is_ok());
    let other = PeerPolicy::ids([w.td2.spiffe_id("/other").unwrap()]);
    let (s, _) = handshake(w.server(w.federated(), other), client).await;
    assert!(matches!(verify_error(&s), VerifyError::NotAllowed { .. }));
}

#[tokio::test]
async fn client_checks_the_servers_trust_domain() {
    let w = World::new();
    let server = w.server(w.federated(), PeerPolicy::AnyFederated);
    // The client expects a td2 server but td1 answers.
    let expect_td2 = PeerPolicy::trust_domains([w.td2.clone()]);
    let client = client_config(&w.client_svid(), w.federated(), expect_td2).unwrap();
    let (_, c) = handshake(server.clone(), client).await;
    assert!(
        matches!(verify_error(&c), VerifyError::NotAllowed { id } if id.trust_domain() == &w.td1)
    );
    // The client does not federate with td1 at all.
    let td2_only = BundleStore::new(
        BundleSet::new()
            .with_bundle(w.td2.clone(), w.a2.bundle())
            .unwrap(),
    );
    let client = client_config(&w.client_svid(), td2_only, PeerPolicy::AnyFederated).unwrap();
    let (_, c) = handshake(server, client).await;
    assert!(matches!(
        verify_error(&c),
        VerifyError::UnknownTrustDomain { .. }
    ));
}

#[tokio::test]
async fn foreign_root_signing_another_domains_id_is_rejected() {
    let w = World::new();
    // The td2 test CA signs an ID of td1: checked against td1's bundle only.
    let err = w
        .bad_client(LeafSpec::svid("spiffe://td1.test/impostor"))
        .await;
    assert!(
        matches!(&err, VerifyError::UntrustedChain { trust_domain, .. } if trust_domain == &w.td1),
        "{err:?}"
    );
    // Sanity: the same CA signing its own domain's ID is accepted.
    let leaf = w
        .bad2
        .issue(&LeafSpec::svid("spiffe://td2.test/ok"))
        .unwrap();
    let server = w.server(w.federated_with_test_ca(), PeerPolicy::AnyFederated);
    let (s, c) = handshake(server, w.client_with_leaf(&leaf)).await;
    assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
}

#[tokio::test]
async fn ca_certificate_as_leaf_is_rejected() {
    let w = World::new();
    let err = w
        .bad_client(LeafSpec::svid("spiffe://td2.test/ca").as_ca())
        .await;
    assert!(matches!(err, VerifyError::LeafIsCa { .. }), "{err:?}");
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_rejected() {
    let w = World::new();
    let err = w
        .bad_client(LeafSpec::svid("spiffe://td2.test/old").expired())
        .await;
    assert!(matches!(err, VerifyError::Expired { .. }), "{err:?}");
    let err = w
        .bad_client(LeafSpec::svid("spiffe://td2.test/new").not_yet_valid())
        .await;
    assert!(matches!(err, VerifyError::NotYetValid { .. }), "{err:?}");
}

#[tokio::test]
async fn skew_tolerates_slightly_expired_certificates() {
    let w = World::new();
    let leaf = w
        .bad2
        .issue(&LeafSpec::svid("spiffe://td2.test/old").expired())
        .unwrap();
    let options = TlsOptions {
        skew: Duration::from_secs(2 * 3600),
        ..TlsOptions::default()
    };
    let verifier = SpiffeClientVerifier::new(w.federated_with_test_ca(), PeerPolicy::AnyFederated)
        .with_skew(options.skew);
    let svid = w.server_svid();
    let server = server_config_from_parts(
        svid.cert_chain_der().to_vec(),
        svid.private_key_der(),
        Arc::new(verifier),
        &options,
    )
    .unwrap();
    let (s, c) = handshake(server, w.client_with_leaf(&leaf)).await;
    assert!(s.is_ok() && c.is_ok(), "{s:?} {c:?}");
}

#[tokio::test]
async fn uri_san_rules_are_enforced() {
    let w = World::new();
    let err = w
        .bad_client(LeafSpec::svid("spiffe://td2.test/a").with_uri("spiffe://td2.test/b"))
        .await;
    assert_eq!(err, VerifyError::MultipleUriSans { count: 2 });
    let err = w.bad_client(LeafSpec::svid("https://td2.test/a")).await;
    assert!(matches!(err, VerifyError::NotSpiffe { .. }), "{err:?}");
    let mut dns_only = LeafSpec::svid("spiffe://td2.test/a");
    dns_only.uris.clear();
    dns_only.dns_names.push("td2.test".into());
    let err = w.bad_client(dns_only).await;
    assert_eq!(err, VerifyError::NoUriSan);
}

#[tokio::test]
async fn bad_server_certificates_are_rejected_by_the_client() {
    let w = World::new();
    let options = TlsOptions::default();
    for (spec, check) in [
        (
            LeafSpec::svid("spiffe://td2.test/gw").expired(),
            (|e: &VerifyError| matches!(e, VerifyError::Expired { .. }))
                as fn(&VerifyError) -> bool,
        ),
        (LeafSpec::svid("spiffe://td2.test/gw").as_ca(), |e| {
            matches!(e, VerifyError::LeafIsCa { .. })
        }),
        (LeafSpec::svid("spiffe://td1.test/gw"), |e| {
            matches!(e, VerifyError::UntrustedChain { .. })
        }),
    ] {
        let leaf = w.bad2.issue(&spec).unwrap();
        let verifier = Arc::new(SpiffeClientVerifier::new(
            w.federated(),
            PeerPolicy::AnyFederated,
        ));
        let server = server_config_from_parts(
            leaf.chain.clone(),
            leaf.private_key_der(),
            verifier,
            &options,
        )
        .unwrap();
        let client = client_config(
            &w.client_svid(),
            w.federated_with_test_ca(),
            PeerPolicy::AnyFederated,
        )
        .unwrap();
        let (_, c) = handshake(server, client).await;
        let err = verify_error(&c);
        assert!(check(&err), "{err:?}");
    }
}

#[test]
fn peer_spiffe_id_reads_the_leaf() {
    let w = World::new();
    let svid = w.client_svid();
    assert_eq!(
        peer_spiffe_id(svid.cert_chain_der()).unwrap(),
        *svid.spiffe_id()
    );
    assert_eq!(peer_spiffe_id(&[]).unwrap_err(), VerifyError::NoCertificate);
    let two = w
        .bad2
        .issue(&LeafSpec::svid("spiffe://td2.test/a").with_uri("spiffe://td2.test/b"))
        .unwrap();
    assert_eq!(
        peer_spiffe_id(&two.chain).unwrap_err(),
        VerifyError::MultipleUriSans { count: 2 }
    );
    // SVIDs round-trip through PEM.
    let again = X509Svid::from_pem(&svid.cert_chain_pem(), &svid.private_key_pem()).unwrap();
    assert_eq!(again.spiffe_id(), svid.spiffe_id());
    assert_eq!(again.not_after(), svid.not_after());
    assert!(two.to_svid().is_err());
}
