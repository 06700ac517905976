//! Abuse: peer certificates crafted to be mistaken for a federated identity.
//! Each one is refused by the SPIFFE verifier (client and server side) with
//! the precise reason, and a real mTLS handshake with one of them fails.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use causeway_trust::testing::{LeafSpec, TestCa, TestLeaf};
use causeway_trust::{
    BundleSet, BundleStore, PeerPolicy, SpiffeClientVerifier, SpiffeServerVerifier, TrustDomain,
    VerifyError, X509Svid, client_config, server_config,
};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

struct Zoo {
    td1: TestCa,
    td2: TestCa,
    /// Not federated: no bundle in the store.
    td3: TestCa,
    store: BundleStore,
    /// An rcgen issuer holding td1's CA key, for hand-made SAN extensions.
    raw1: (Issuer<'static, KeyPair>, CertificateDer<'static>),
}

fn td(s: &str) -> TrustDomain {
    TrustDomain::new(s).unwrap()
}

/// A CA usable to sign leaves with arbitrary (hand-encoded) SAN bytes.
fn raw_ca() -> (Issuer<'static, KeyPair>, CertificateDer<'static>) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let cert = p.self_signed(&key).unwrap();
    (Issuer::new(p, key), cert.der().clone())
}

/// A leaf whose subjectAltName holds exactly `uri` (raw bytes, so NUL and
/// non-ASCII are possible) as a uniformResourceIdentifier.
fn raw_leaf(issuer: &Issuer<'static, KeyPair>, uri: &[u8]) -> CertificateDer<'static> {
    fn len(n: usize) -> Vec<u8> {
        if n < 128 {
            vec![n as u8]
        } else {
            vec![0x81, n as u8]
        }
    }
    let mut gn = vec![0x86];
    gn.extend(len(uri.len()));
    gn.extend(uri);
    let mut san = vec![0x30];
    san.extend(len(gn.len()));
    san.extend(gn);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 17], san);
    ext.set_criticality(false);
    p.custom_extensions.push(ext);
    p.signed_by(&key, issuer).unwrap().der().clone()
}

fn zoo() -> Zoo {
    let td1 = TestCa::new(&td("td1.test")).unwrap();
    let td2 = TestCa::new(&td("td2.test")).unwrap();
    let td3 = TestCa::new(&td("td3.test")).unwrap();
    let raw1 = raw_ca();
    let mut b1 = td1.bundle();
    b1.add_x509_authority(raw1.1.clone()).unwrap();
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(td("td1.test"), b1)
            .unwrap()
            .with_bundle(td("td2.test"), td2.bundle())
            .unwrap(),
    );
    Zoo {
        td1,
        td2,
        td3,
        store,
        raw1,
    }
}

/// Verifies `leaf` as a client and as a server certificate; both must fail
/// the same way. Returns the error.
fn refused(z: &Zoo, what: &str, leaf: &CertificateDer<'_>) -> VerifyError {
    let now = UnixTime::now();
    let c = SpiffeClientVerifier::new(z.store.clone(), PeerPolicy::AnyFederated).verify_chain(
        leaf,
        &[],
        now,
    );
    let s = SpiffeServerVerifier::new(z.store.clone(), PeerPolicy::AnyFederated).verify_chain(
        leaf,
        &[],
        now,
    );
    let c = c
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted as a client"));
    let s = s
        .err()
        .unwrap_or_else(|| panic!("{what}: accepted as a server"));
    assert_eq!(
        std::mem::discriminant(&c),
        std::mem::discriminant(&s),
        "{what}"
    );
    c
}

fn issue(ca: &TestCa, spec: &LeafSpec) -> CertificateDer<'static> {
    ca.issue(spec).unwrap().chain[0].clone()
}

#[test]
fn forged_and_malformed_peer_identities_are_refused() {
    let z = zoo();
    // Control: the genuine article passes.
    let ok = issue(&z.td1, &LeafSpec::svid("spiffe://td1.test/gw"));
    let id = SpiffeClientVerifier::new(z.store.clone(), PeerPolicy::AnyFederated)
        .verify_chain(&ok, &[], UnixTime::now())
        .unwrap();
    assert_eq!(id.to_string(), "spiffe://td1.test/gw");
    let raw_ok = raw_leaf(&z.raw1.0, b"spiffe://td1.test/raw");
    assert!(
        SpiffeClientVerifier::new(z.store.clone(), PeerPolicy::AnyFederated)
            .verify_chain(&raw_ok, &[], UnixTime::now())
            .is_ok(),
        "the hand-made SAN encoding itself is sound"
    );

    let e = refused(
        &z,
        "non-federated td",
        &issue(&z.td3, &LeafSpec::svid("spiffe://td3.test/gw")),
    );
    assert!(matches!(e, VerifyError::UnknownTrustDomain { .. }), "{e:?}");
    let e = refused(
        &z,
        "td2 id by td1 ca",
        &issue(&z.td1, &LeafSpec::svid("spiffe://td2.test/gw")),
    );
    assert!(matches!(e, VerifyError::UntrustedChain { .. }), "{e:?}");
    let e = refused(
        &z,
        "td1 id by td3 ca",
        &issue(&z.td3, &LeafSpec::svid("spiffe://td1.test/gw")),
    );
    assert!(matches!(e, VerifyError::UntrustedChain { .. }), "{e:?}");
    let e = refused(
        &z,
        "ca as leaf",
        &issue(&z.td1, &LeafSpec::svid("spiffe://td1.test/gw").as_ca()),
    );
    assert!(matches!(e, VerifyError::LeafIsCa { .. }), "{e:?}");
    // The CA's own certificate (no SPIFFE ID) presented as a leaf.
    let e = refused(&z, "ca cert itself", z.td1.cert_der());
    assert!(
        matches!(e, VerifyError::NoUriSan | VerifyError::LeafIsCa { .. }),
        "{e:?}"
    );
    let e = refused(
        &z,
        "two uri sans",
        &issue(
            &z.td1,
            &LeafSpec::svid("spiffe://td1.test/a").with_uri("spiffe://td2.test/b"),
        ),
    );
    assert!(
        matches!(e, VerifyError::MultipleUriSans { count: 2 }),
        "{e:?}"
    );
    let e = refused(
        &z,
        "same id twice",
        &issue(
            &z.td1,
            &LeafSpec::svid("spiffe://td1.test/a").with_uri("spiffe://td1.test/a"),
        ),
    );
    assert!(matches!(e, VerifyError::MultipleUriSans { .. }), "{e:?}");
    let mut dns_only = LeafSpec::svid("spiffe://td1.test/a");
    dns_only.uris.clear();
    dns_only.dns_names.push("td1.test".into());
    let e = refused(&z, "dns san only", &issue(&z.td1, &dns_only));
    assert!(matches!(e, VerifyError::NoUriSan), "{e:?}");
    let e = refused(
        &z,
        "expired",
        &issue(&z.td1, &LeafSpec::svid("spiffe://td1.test/gw").expired()),
    );
    assert!(matches!(e, VerifyError::Expired { .. }), "{e:?}");
    let e = refused(
        &z,
        "not yet valid",
        &issue(
            &z.td1,
            &LeafSpec::svid("spiffe://td1.test/gw").not_yet_valid(),
        ),
    );
    assert!(matches!(e, VerifyError::NotYetValid { .. }), "{e:?}");
    // Odd encodings of a SAN, all signed by a trusted td1 CA.
    let odd: &[(&str, &[u8])] = &[
        ("nul in td", b"spiffe://td1.test\0.td2.test/gw"),
        ("nul in path", b"spiffe://td1.test/gw\0/admin"),
        ("trailing nul", b"spiffe://td1.test/gw\0"),
        ("uppercase scheme", b"SPIFFE://td1.test/gw"),
        ("uppercase td", b"spiffe://TD1.test/gw"),
        ("percent-encoded td", b"spiffe://td1%2Etest/gw"),
        ("percent-encoded path", b"spiffe://td1.test/g%77"),
        ("percent-encoded slash", b"spiffe://td1.test/a%2Fb"),
        ("userinfo", b"spiffe://td2.test@td1.test/gw"),
        ("port", b"spiffe://td1.test:443/gw"),
        ("dot segments", b"spiffe://td1.test/a/../gw"),
        ("query", b"spiffe://td1.test/gw?x=1"),
        ("fragment", b"spiffe://td1.test/gw#x"),
        ("unicode td", "spiffe://td1.tést/gw".as_bytes()),
        ("unicode homoglyph", "spiffe://td1.tеst/gw".as_bytes()),
        ("unicode path", "spiffe://td1.test/gw\u{202e}".as_bytes()),
        ("invalid utf-8", b"spiffe://td1.test/\xff\xfe"),
        ("whitespace", b" spiffe://td1.test/gw"),
        ("empty", b""),
        ("no td", b"spiffe:///gw"),
    ];
    for (what, uri) in odd {
        let leaf = raw_leaf(&z.raw1.0, uri);
        let e = refused(&z, what, &leaf);
        assert!(
            matches!(
                e,
                VerifyError::NotSpiffe { .. }
                    | VerifyError::Malformed { .. }
                    | VerifyError::NoUriSan
            ),
            "{what}: {e:?}"
        );
    }
    let _ = &z.td2;
}

#[tokio::test]
async fn a_non_federated_peer_fails_the_real_handshake() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let z = zoo();
    let server_leaf: TestLeaf = z
        .td1
        .issue(&LeafSpec::svid("spiffe://td1.test/gw"))
        .unwrap();
    let server_svid: X509Svid = server_leaf.to_svid().unwrap();
    let server = server_config(&server_svid, z.store.clone(), PeerPolicy::AnyFederated).unwrap();
    // The attacker trusts everything it needs, but its own identity is from td3.
    let attacker: X509Svid = z
        .td3
        .issue(&LeafSpec::svid("spiffe://td3.test/gw"))
        .unwrap()
        .to_svid()
        .unwrap();
    let client = client_config(&attacker, z.store.clone(), PeerPolicy::AnyFederated).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match acceptor.accept(tcp).await {
            Ok(mut tls) => {
                let mut b = [0u8; 16];
                let n = tls.read(&mut b).await.unwrap_or(0);
                Ok(n)
            }
            Err(e) => Err(e),
        }
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cli = async {
        let mut tls = connector
            .connect(ServerName::try_from("td1.test").unwrap(), tcp)
            .await?;
        tls.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await?;
        Ok::<_, std::io::Error>(())
    };
    let cli = tokio::time::timeout(Duration::from_secs(10), cli)
        .await
        .unwrap();
    assert!(cli.is_err(), "the client got an answer");
    let srv = tokio::time::timeout(Duration::from_secs(10), srv)
        .await
        .unwrap()
        .unwrap();
    let err = srv.expect_err("the server accepted a non-federated peer");
    assert!(
        matches!(
            VerifyError::find(&err),
            Some(VerifyError::UnknownTrustDomain { .. })
        ),
        "{err:?}"
    );
}

/// SVIDs issued under intermediate CAs (SPIRE with an UpstreamAuthority):
/// the chain the peer sends verifies up to the root in the bundle, one or
/// two levels deep, as client and server; without its intermediate, or with
/// an intermediate of another root, it is refused as an untrusted chain.
#[test]
fn chains_through_intermediate_cas_verify_and_a_missing_intermediate_is_refused() {
    let z = zoo();
    let one = z.td1.intermediate().unwrap();
    let two = one.intermediate().unwrap();
    assert_eq!(two.chain_up().len(), 2);
    for (what, ca) in [("one intermediate", &one), ("two intermediates", &two)] {
        let leaf = ca.issue(&LeafSpec::svid("spiffe://td1.test/gw")).unwrap();
        assert_eq!(leaf.chain.len(), ca.chain_up().len() + 1);
        let now = UnixTime::now();
        let c = SpiffeClientVerifier::new(z.store.clone(), PeerPolicy::AnyFederated)
            .verify_chain(&leaf.chain[0], &leaf.chain[1..], now)
            .unwrap_or_else(|e| panic!("{what}: client refused: {e}"));
        let s = SpiffeServerVerifier::new(z.store.clone(), PeerPolicy::AnyFederated)
            .verify_chain(&leaf.chain[0], &leaf.chain[1..], now)
            .unwrap_or_else(|e| panic!("{what}: server refused: {e}"));
        assert_eq!(c.to_string(), "spiffe://td1.test/gw");
        assert_eq!(s, c);
        assert!(
            matches!(
                refused(&z, what, &leaf.chain[0]),
                VerifyError::UntrustedChain { .. }
            ),
            "{what}: without its intermediates"
        );
        let partial = SpiffeClientVerifier::new(z.store.clone(), PeerPolicy::AnyFederated)
            .verify_chain(&leaf.chain[0], &leaf.chain[2..], now);
        if ca.chain_up().len() == 2 {
            assert!(
                matches!(partial, Err(VerifyError::UntrustedChain { .. })),
                "{what}: a missing middle intermediate: {partial:?}"
            );
        }
    }
    // An intermediate under an unknown root claiming td1 names.
    let foreign = TestCa::new(&td("td1.test"))
        .unwrap()
        .intermediate()
        .unwrap();
    let leaf = foreign
        .issue(&LeafSpec::svid("spiffe://td1.test/gw"))
        .unwrap();
    let r = SpiffeClientVerifier::new(z.store.clone(), PeerPolicy::AnyFederated).verify_chain(
        &leaf.chain[0],
        &leaf.chain[1..],
        UnixTime::now(),
    );
    assert!(
        matches!(r, Err(VerifyError::UntrustedChain { .. })),
        "{r:?}"
    );
}
