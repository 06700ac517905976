//! Full mTLS handshakes per second (in memory, no resumption): the SPIFFE
//! verifiers against rustls' stock WebPKI verifiers, same certificates.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;

use causeway_trust::testing::{LeafSpec, TestCa, TestLeaf};
use causeway_trust::tls::{TlsOptions, client_config_from_parts, server_config_from_parts};
use causeway_trust::{
    BundleSet, BundleStore, PeerPolicy, SpiffeClientVerifier, SpiffeServerVerifier, TrustDomain,
};
use criterion::{Criterion, criterion_group, criterion_main};
use rustls::client::WebPkiServerVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier as _;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::{ServerName, UnixTime};

struct Fixture {
    server_leaf: TestLeaf,
    client_leaf: TestLeaf,
    ca1: TestCa,
    ca2: TestCa,
}

fn fixture() -> Fixture {
    let td1 = TrustDomain::new("td1.test").unwrap();
    let td2 = TrustDomain::new("td2.test").unwrap();
    let ca1 = TestCa::new(&td1).unwrap();
    let ca2 = TestCa::new(&td2).unwrap();
    // One URI SAN (SPIFFE) and one DNS SAN so that the stock verifier's
    // hostname check passes on the very same certificates.
    let mut server = LeafSpec::svid("spiffe://td1.test/gateway");
    server.dns_names.push("td1.test".into());
    let mut client = LeafSpec::svid("spiffe://td2.test/client");
    client.dns_names.push("td2.test".into());
    Fixture {
        server_leaf: ca1.issue(&server).unwrap(),
        client_leaf: ca2.issue(&client).unwrap(),
        ca1,
        ca2,
    }
}

fn spiffe_configs(f: &Fixture) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(f.ca1.trust_domain().clone(), f.ca1.bundle())
            .unwrap()
            .with_bundle(f.ca2.trust_domain().clone(), f.ca2.bundle())
            .unwrap(),
    );
    let options = TlsOptions::default();
    let server = server_config_from_parts(
        f.server_leaf.chain.clone(),
        f.server_leaf.private_key_der(),
        Arc::new(SpiffeClientVerifier::new(
            store.clone(),
            PeerPolicy::AnyFederated,
        )),
        &options,
    )
    .unwrap();
    let client = client_config_from_parts(
        f.client_leaf.chain.clone(),
        f.client_leaf.private_key_der(),
        Arc::new(SpiffeServerVerifier::new(store, PeerPolicy::AnyFederated)),
        &options,
    )
    .unwrap();
    (Arc::new(server), Arc::new(client))
}

fn webpki_configs(f: &Fixture) -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let provider = causeway_trust::tls::ring_provider();
    let mut roots = RootCertStore::empty();
    roots.add(f.ca1.cert_der().clone()).unwrap();
    roots.add(f.ca2.cert_der().clone()).unwrap();
    let roots = Arc::new(roots);
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .unwrap();
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(f.server_leaf.chain.clone(), f.server_leaf.private_key_der())
        .unwrap();
    server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .unwrap();
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_webpki_verifier(server_verifier)
        .with_client_auth_cert(f.client_leaf.chain.clone(), f.client_leaf.private_key_der())
        .unwrap();
    client.resumption = rustls::client::Resumption::disabled();
    (Arc::new(server), Arc::new(client))
}

fn pump(
    from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
    to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl Sized>>,
) {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).unwrap();
    }
    let mut slice = &buf[..];
    while !slice.is_empty() {
        to.read_tls(&mut slice).unwrap();
        to.process_new_packets().unwrap();
    }
}

fn handshake(server: &Arc<ServerConfig>, client: &Arc<ClientConfig>) {
    let name = ServerName::try_from("td1.test").unwrap();
    let mut c = ClientConnection::new(client.clone(), name).unwrap();
    let mut s = ServerConnection::new(server.clone()).unwrap();
    while c.is_handshaking() || s.is_handshaking() {
        pump(&mut c, &mut s);
        pump(&mut s, &mut c);
    }
    assert!(s.peer_certificates().is_some());
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let spiffe = spiffe_configs(&f);
    let webpki = webpki_configs(&f);
    // Both must succeed before they are timed.
    handshake(&spiffe.0, &spiffe.1);
    handshake(&webpki.0, &webpki.1);
    let mut group = c.benchmark_group("mtls_handshake");
    group.bench_function("spiffe_verifiers", |b| {
        b.iter(|| handshake(&spiffe.0, &spiffe.1))
    });
    group.bench_function("webpki_verifiers", |b| {
        b.iter(|| handshake(&webpki.0, &webpki.1))
    });
    group.finish();

    // The verification step alone (no TLS), same client certificate.
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(f.ca2.trust_domain().clone(), f.ca2.bundle())
            .unwrap(),
    );
    let ours = SpiffeClientVerifier::new(store, PeerPolicy::AnyFederated);
    let mut roots = RootCertStore::empty();
    roots.add(f.ca2.cert_der().clone()).unwrap();
    let stock = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        causeway_trust::tls::ring_provider(),
    )
    .build()
    .unwrap();
    let leaf = &f.client_leaf.chain[0];
    let mut group = c.benchmark_group("verify_client_cert");
    group.bench_function("spiffe", |b| {
        b.iter(|| ours.verify_client_cert(leaf, &[], UnixTime::now()).unwrap())
    });
    group.bench_function("webpki", |b| {
        b.iter(|| {
            stock
                .verify_client_cert(leaf, &[], UnixTime::now())
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
