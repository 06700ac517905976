//! CA rotation driven by a manual clock: peers that lag one bundle refresh
//! behind never fail a handshake, old CAs leave only after their last SVID
//! expired, and the bundle sequence only grows.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use causeway_trust::jwt::JwtSvidValidator;
use causeway_trust::tls::{TlsOptions, client_config_with, server_config_with};
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, Clock, ManualClock, PeerPolicy,
    RotationEvent, TrustDomain, X509Svid, peer_spiffe_id,
};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

async fn handshake(
    server: rustls::ServerConfig,
    client: rustls::ClientConfig,
) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("server: {e}"))?;
        tls.write_all(b"k").await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1];
        let _ = tls.read(&mut buf).await;
        Ok::<_, String>(())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let client = async {
        let connector = TlsConnector::from(Arc::new(client));
        let mut tls = connector
            .connect(ServerName::try_from("td1.test").unwrap(), tcp)
            .await
            .map_err(|e| format!("client: {e}"))?;
        peer_spiffe_id(tls.get_ref().1.peer_certificates().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 1];
        tls.read_exact(&mut buf)
            .await
            .map_err(|e| format!("client read: {e}"))?;
        tls.write_all(b"k").await.map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    };
    let client = client.await;
    let server = server.await.unwrap();
    server.and(client)
}

fn store_with(td1: &TrustDomain, b1: Bundle, td2: &TrustDomain, b2: Bundle) -> BundleStore {
    BundleStore::new(
        BundleSet::new()
            .with_bundle(td1.clone(), b1)
            .unwrap()
            .with_bundle(td2.clone(), b2)
            .unwrap(),
    )
}

fn ca_certs(bundle: &Bundle) -> Vec<CertificateDer<'static>> {
    bundle
        .x509_authorities()
        .map(|a| a.cert_der().clone())
        .collect()
}

#[tokio::test]
async fn rotation_never_breaks_a_peer_one_refresh_behind() {
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let config = AuthorityConfig::default();
    let refresh = config.refresh_hint;
    let td1 = TrustDomain::new("td1.test").unwrap();
    let td2 = TrustDomain::new("td2.test").unwrap();
    let a1 = Authority::with_clock(td1.clone(), config.clone(), shared.clone()).unwrap();
    // The peer domain's CA lives long enough for the whole run.
    let peer_config = AuthorityConfig {
        ca_ttl: Duration::from_secs(30 * 86400),
        ..AuthorityConfig::default()
    };
    let a2 = Authority::with_clock(td2.clone(), peer_config, shared.clone()).unwrap();
    let client_svid = a2
        .issue_x509_svid_with_ttl(
            &td2.spiffe_id("/client").unwrap(),
            Duration::from_secs(5 * 86400),
        )
        .unwrap();
    let options = TlsOptions {
        clock: Some(shared.clone()),
        ..TlsOptions::default()
    };

    let gateway = td1.spiffe_id("/gateway").unwrap();
    let mut svid: X509Svid = a1.issue_x509_svid(&gateway).unwrap();
    // Which CA signed what, to check retirement.
    let mut issued_by: HashMap<Vec<u8>, Vec<time::OffsetDateTime>> = HashMap::new();
    issued_by
        .entry(a1.active_ca_cert().to_vec())
        .or_default()
        .push(svid.not_after());

    let mut previous = a1.bundle();
    let lagging = store_with(&td1, previous.clone(), &td2, a2.bundle());
    let mut prepared_at = HashMap::new();
    let (mut activations, mut retirements) = (0, 0);
    let steps = 2 * 86400 / refresh.as_secs();
    for step in 0..steps {
        clock.advance(refresh);
        let now = clock.now();
        for event in a1.tick().unwrap() {
            match event {
                RotationEvent::Prepared { slot, .. } => {
                    prepared_at.insert(slot, now);
                }
                RotationEvent::Activated { slot } => {
                    activations += 1;
                    // Published well before it signs anything.
                    if let Some(at) = prepared_at.get(&slot) {
                        assert!(
                            now - *at >= config.prepare_ahead(),
                            "slot {slot} activated early"
                        );
                    }
                }
                RotationEvent::Retired { .. } => retirements += 1,
            }
        }
        let current = a1.bundle();
        // The sequence only grows, and grows on every change.
        assert!(current.sequence() >= previous.sequence());
        if current.keys() != previous.keys() {
            assert!(
                current.sequence() > previous.sequence(),
                "step {step}: change without bump"
            );
        }
        // An old CA leaves only after everything it signed expired.
        let still = ca_certs(&current);
        for gone in ca_certs(&previous).iter().filter(|c| !still.contains(c)) {
            for not_after in issued_by.get(gone.as_ref()).into_iter().flatten() {
                assert!(
                    *not_after < now,
                    "step {step}: ca retired before its svid expired"
                );
            }
        }
        // The workload renews its SVID at half life.
        if now >= svid.not_before() + (svid.not_after() - svid.not_before()) / 2 {
            svid = a1.issue_x509_svid(&gateway).unwrap();
            issued_by
                .entry(a1.active_ca_cert().to_vec())
                .or_default()
                .push(svid.not_after());
        }

        // A client one refresh behind verifies the freshly signed SVID.
        let server_store = store_with(&td1, current.clone(), &td2, a2.bundle());
        let server =
            server_config_with(&svid, server_store, PeerPolicy::AnyFederated, &options).unwrap();
        let client = client_config_with(
            &client_svid,
            lagging.clone(),
            PeerPolicy::AnyFederated,
            &options,
        )
        .unwrap();
        handshake(server.clone(), client)
            .await
            .unwrap_or_else(|e| panic!("step {step} (lagging client): {e}"));
        // A client with the newest bundle verifies the SVID still in use.
        let fresh = store_with(&td1, current.clone(), &td2, a2.bundle());
        let client =
            client_config_with(&client_svid, fresh, PeerPolicy::AnyFederated, &options).unwrap();
        handshake(server, client)
            .await
            .unwrap_or_else(|e| panic!("step {step} (fresh client): {e}"));

        // JWT-SVIDs: signed now, validated with the lagging bundle.
        let jwt = a1.issue_jwt_svid(&gateway, &["td2"]).unwrap();
        JwtSvidValidator::new(lagging.clone())
            .with_clock(shared.clone())
            .validate(jwt.token(), "td2")
            .unwrap_or_else(|e| panic!("step {step}: jwt: {e}"));

        // The lagging client catches up (the store refuses regressions).
        lagging.update(&td1, current.clone()).unwrap();
        previous = current;
    }
    assert!(activations >= 3, "activations: {activations}");
    assert!(retirements >= 2, "retirements: {retirements}");
    // At rest the bundle holds the active CA, maybe a prepared one, and at
    // most one retiring one.
    assert!(a1.bundle().x509_authorities().count() <= 3);
}

#[test]
fn expired_active_ca_is_replaced_on_the_next_tick() {
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let td = TrustDomain::new("td1.test").unwrap();
    let a = Authority::with_clock(td.clone(), AuthorityConfig::default(), shared).unwrap();
    let id = td.spiffe_id("/w").unwrap();
    let seq = a.bundle().sequence();
    clock.advance(Duration::from_secs(3 * 86400));
    assert!(a.issue_x509_svid(&id).is_err(), "expired ca must not sign");
    let events = a.tick().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RotationEvent::Activated { .. }))
    );
    assert!(a.bundle().sequence() > seq);
    let svid = a.issue_x509_svid(&id).unwrap();
    assert!(svid.not_after() > clock.now());
    // Nothing else is due right after.
    assert!(a.tick().unwrap().is_empty());
}

#[test]
fn svids_never_outlive_their_ca_and_ids_are_checked() {
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let td = TrustDomain::new("td1.test").unwrap();
    let a = Authority::with_clock(td.clone(), AuthorityConfig::default(), shared).unwrap();
    let long = a
        .issue_x509_svid_with_ttl(
            &td.spiffe_id("/w").unwrap(),
            Duration::from_secs(10 * 86400),
        )
        .unwrap();
    assert_eq!(long.not_after(), a.active_ca_not_after());
    let other = TrustDomain::new("td2.test")
        .unwrap()
        .spiffe_id("/w")
        .unwrap();
    assert!(matches!(
        a.issue_x509_svid(&other),
        Err(causeway_trust::AuthorityError::ForeignId { .. })
    ));
    assert!(matches!(
        a.issue_x509_svid(&td.id()),
        Err(causeway_trust::AuthorityError::EmptyPath { .. })
    ));
    assert!(matches!(
        a.issue_jwt_svid(&td.spiffe_id("/w").unwrap(), &[]),
        Err(causeway_trust::AuthorityError::EmptyAudience)
    ));
}

#[test]
fn state_persists_with_private_keys_at_0600() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let td = TrustDomain::new("td1.test").unwrap();
    let config = AuthorityConfig::default();
    let a =
        Authority::load_or_create(dir.path(), td.clone(), config.clone(), shared.clone()).unwrap();
    // Move into the middle of a rotation so that every role is on disk.
    clock.advance(Duration::from_secs(12 * 3600 - 600));
    let id = td.spiffe_id("/w").unwrap();
    a.issue_x509_svid(&id).unwrap();
    a.tick().unwrap();
    clock.advance(Duration::from_secs(1200));
    a.tick().unwrap();
    a.save(dir.path()).unwrap();

    let mut keys = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".key.pem") {
            keys += 1;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
    assert!(keys >= 4, "two slots, two keys each: {keys}");

    let b = Authority::load(dir.path(), config.clone(), shared.clone()).unwrap();
    assert_eq!(b.bundle(), a.bundle());
    assert_eq!(b.active_ca_cert(), a.active_ca_cert());
    // The loaded authority signs with the same CA: the old bundle verifies.
    let svid = b.issue_x509_svid(&id).unwrap();
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(td.clone(), a.bundle())
            .unwrap(),
    );
    let verifier = causeway_trust::SpiffeClientVerifier::new(store, PeerPolicy::AnyFederated)
        .with_clock(shared.clone());
    let now = rustls_pki_types::UnixTime::now();
    assert_eq!(
        verifier.verify_chain(svid.leaf_der(), &[], now).unwrap(),
        id
    );
    // JWT keys survive too.
    let jwt = b.issue_jwt_svid(&id, &["x"]).unwrap();
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(td.clone(), a.bundle())
            .unwrap(),
    );
    assert!(
        JwtSvidValidator::new(store)
            .with_clock(shared.clone())
            .validate(jwt.token(), "x")
            .is_ok()
    );
    // Rotation state survives: the next tick behaves identically on both.
    clock.advance(Duration::from_secs(2 * 86400));
    assert_eq!(a.tick().unwrap(), b.tick().unwrap());

    // load_or_create refuses another trust domain's state.
    let other = TrustDomain::new("td2.test").unwrap();
    assert!(matches!(
        Authority::load_or_create(dir.path(), other, config.clone(), shared.clone()),
        Err(causeway_trust::AuthorityError::TrustDomainMismatch { .. })
    ));
    // Corrupt state is a typed error, not a panic.
    std::fs::write(dir.path().join("authority.json"), b"{not json").unwrap();
    assert!(matches!(
        Authority::load(dir.path(), config, shared),
        Err(causeway_trust::AuthorityError::CorruptState(_))
    ));
}

/// Control for the rotation test: without publishing ahead, a peer one
/// refresh behind does reject the first SVID of the new CA.
#[test]
fn without_prepare_ahead_a_lagging_peer_would_fail() {
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let td = TrustDomain::new("td1.test").unwrap();
    let config = AuthorityConfig {
        prepare_ahead: Some(Duration::ZERO),
        ..Default::default()
    };
    let a = Authority::with_clock(td.clone(), config, shared.clone()).unwrap();
    let lagging = BundleStore::new(
        BundleSet::new()
            .with_bundle(td.clone(), a.bundle())
            .unwrap(),
    );
    clock.advance(Duration::from_secs(12 * 3600 + 60));
    let events = a.tick().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RotationEvent::Activated { .. }))
    );
    let svid = a.issue_x509_svid(&td.spiffe_id("/w").unwrap()).unwrap();
    let verifier = causeway_trust::SpiffeServerVerifier::new(lagging, PeerPolicy::AnyFederated)
        .with_clock(shared);
    let err = verifier.verify_chain(svid.leaf_der(), &[], rustls_pki_types::UnixTime::now());
    assert!(
        matches!(err, Err(causeway_trust::VerifyError::UntrustedChain { .. })),
        "{err:?}"
    );
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Authority>();
    check::<BundleStore>();
    check::<causeway_trust::SpiffeClientVerifier>();
    check::<causeway_trust::SpiffeServerVerifier>();
    check::<JwtSvidValidator>();
    check::<X509Svid>();
}
