//! Bundle document parsing, validation, round trips and bundle-set rules.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use causeway_trust::bundle::JwtAuthority;
use causeway_trust::testing::{LeafSpec, TestCa};
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleError, BundleSet, BundleSetError, BundleStore,
    TrustDomain,
};
use serde_json::{Value, json};

fn td(name: &str) -> TrustDomain {
    TrustDomain::new(name).unwrap()
}

fn ca_b64() -> String {
    let ca = TestCa::new(&td("td1.test")).unwrap();
    STANDARD.encode(ca.cert_der().as_ref())
}

fn leaf_b64() -> String {
    let ca = TestCa::new(&td("td1.test")).unwrap();
    let leaf = ca.issue(&LeafSpec::svid("spiffe://td1.test/a")).unwrap();
    STANDARD.encode(leaf.chain[0].as_ref())
}

/// A valid JWT key (coordinates of a real P-256 point).
fn jwt_key(kid: &str) -> Value {
    let authority = Authority::new(td("td1.test"), AuthorityConfig::default()).unwrap();
    let bundle = authority.bundle();
    let a = bundle.jwt_authorities().next().unwrap();
    json!({"use": "jwt-svid", "kty": "EC", "crv": "P-256", "kid": kid, "x": a.x(), "y": a.y()})
}

fn x509_key(cert_b64: &str) -> Value {
    json!({"use": "x509-svid", "kty": "EC", "x5c": [cert_b64]})
}

fn doc(keys: Vec<Value>) -> String {
    json!({"keys": keys, "spiffe_sequence": 7, "spiffe_refresh_hint": 300}).to_string()
}

fn parse(keys: Vec<Value>) -> Result<Bundle, BundleError> {
    Bundle::parse_str(&doc(keys))
}

#[test]
fn valid_document_parses_and_round_trips() {
    let ca = ca_b64();
    let mut extra = x509_key(&ca);
    extra["x-vendor"] = json!({"anything": true}); // unknown members are allowed
    let bundle = parse(vec![extra, jwt_key("k1")]).unwrap();
    assert_eq!(bundle.sequence(), 7);
    assert_eq!(bundle.refresh_hint().unwrap().as_secs(), 300);
    assert_eq!(bundle.x509_authorities().count(), 1);
    assert_eq!(bundle.trust_anchors().len(), 1);
    assert_eq!(bundle.jwt_authority("k1").unwrap().kid(), "k1");

    let json = bundle.to_json();
    let again = Bundle::parse_str(&json).unwrap();
    assert_eq!(again, bundle);
    assert_eq!(again.to_json(), json, "serialisation is stable");
    assert_eq!(again.keys(), bundle.keys());
    // serde goes through the same validation.
    let via_serde: Bundle = serde_json::from_str(&bundle.to_json_pretty()).unwrap();
    assert_eq!(via_serde, bundle);
    assert!(serde_json::from_str::<Bundle>(r#"{"keys":[{"use":"nope","kty":"EC"}]}"#).is_err());
}

#[test]
fn empty_keys_means_everything_revoked() {
    let bundle = Bundle::parse_str(r#"{"keys": []}"#).unwrap();
    assert!(bundle.is_empty());
    assert_eq!(bundle.sequence(), 0);
    assert!(bundle.refresh_hint().is_none());
    assert!(bundle.trust_anchors().is_empty());
}

#[test]
fn malformed_documents_are_rejected_with_their_reason() {
    let ca = ca_b64();
    let mut kid_on_x509 = x509_key(&ca);
    kid_on_x509["kid"] = json!("k");
    let mut jwt_no_kid = jwt_key("k");
    jwt_no_kid.as_object_mut().unwrap().remove("kid");
    let mut jwt_rsa = jwt_key("k");
    jwt_rsa["kty"] = json!("RSA");
    let mut jwt_bad_x = jwt_key("k");
    jwt_bad_x["x"] = json!("!!!");
    let mut jwt_short_y = jwt_key("k");
    jwt_short_y["y"] = json!("AAAA");
    let mut jwt_off_curve = jwt_key("k");
    jwt_off_curve["y"] = jwt_off_curve["x"].clone();
    let mut private = jwt_key("k");
    private["d"] = json!("c2VjcmV0");
    let mut use_number = x509_key(&ca);
    use_number["use"] = json!(5);
    let mut no_kty = x509_key(&ca);
    no_kty.as_object_mut().unwrap().remove("kty");
    let mut no_use = x509_key(&ca);
    no_use.as_object_mut().unwrap().remove("use");

    type Check = fn(&BundleError) -> bool;
    let cases: Vec<(&str, Vec<Value>, Check)> = vec![
        (
            "wrong use",
            vec![json!({"use": "tls", "kty": "EC"})],
            |e| matches!(e, BundleError::UnknownUse { index: 0, value } if value == "tls"),
        ),
        ("missing use", vec![no_use], |e| {
            matches!(e, BundleError::MissingUse { index: 0 })
        }),
        ("use not a string", vec![use_number], |e| {
            matches!(e, BundleError::WrongFieldType { field: "use", .. })
        }),
        ("missing kty", vec![no_kty], |e| {
            matches!(e, BundleError::MissingKty { .. })
        }),
        ("kid on x509", vec![x509_key(&ca), kid_on_x509], |e| {
            matches!(e, BundleError::X509KidPresent { index: 1 })
        }),
        (
            "two certs in x5c",
            vec![json!({"use": "x509-svid", "kty": "EC", "x5c": [ca, ca]})],
            |e| matches!(e, BundleError::X509CertCount { count: 2, .. }),
        ),
        (
            "no x5c",
            vec![json!({"use": "x509-svid", "kty": "EC"})],
            |e| matches!(e, BundleError::X509CertCount { count: 0, .. }),
        ),
        (
            "x5c not an array",
            vec![json!({"use": "x509-svid", "kty": "EC", "x5c": ca})],
            |e| matches!(e, BundleError::WrongFieldType { field: "x5c", .. }),
        ),
        (
            "x5c entry not a string",
            vec![json!({"use": "x509-svid", "kty": "EC", "x5c": [1]})],
            |e| matches!(e, BundleError::WrongFieldType { field: "x5c", .. }),
        ),
        ("bad base64", vec![x509_key("not base64 at all!")], |e| {
            matches!(e, BundleError::X509Base64 { .. })
        }),
        (
            "not a certificate",
            vec![x509_key(&STANDARD.encode(b"hello"))],
            |e| matches!(e, BundleError::X509Malformed { .. }),
        ),
        ("non-CA certificate", vec![x509_key(&leaf_b64())], |e| {
            matches!(e, BundleError::X509NotCa { index: 0 })
        }),
        ("jwt without kid", vec![jwt_no_kid], |e| {
            matches!(e, BundleError::JwtMissingKid { .. })
        }),
        ("jwt rsa", vec![jwt_rsa], |e| {
            matches!(e, BundleError::JwtUnsupportedKey { .. })
        }),
        ("jwt bad base64 x", vec![jwt_bad_x], |e| {
            matches!(e, BundleError::JwtBadKey { field: "x", .. })
        }),
        ("jwt short y", vec![jwt_short_y], |e| {
            matches!(e, BundleError::JwtBadKey { field: "y", .. })
        }),
        ("jwt point off curve", vec![jwt_off_curve], |e| {
            matches!(e, BundleError::JwtBadKey { .. })
        }),
        (
            "duplicate kid",
            vec![jwt_key("same"), jwt_key("same")],
            |e| matches!(e, BundleError::DuplicateKid { .. }),
        ),
        ("private key material", vec![private], |e| {
            matches!(e, BundleError::PrivateKeyMaterial { .. })
        }),
    ];
    for (name, keys, check) in cases {
        let err = parse(keys).unwrap_err();
        assert!(check(&err), "{name}: unexpected error {err:?}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn wrong_json_types_are_rejected() {
    for input in [
        "not json",
        "[]",
        r#"{}"#,
        r#"{"keys": {}}"#,
        r#"{"keys": ["x"]}"#,
        r#"{"keys": [], "spiffe_sequence": "1"}"#,
        r#"{"keys": [], "spiffe_sequence": -1}"#,
        r#"{"keys": [], "spiffe_refresh_hint": 1.5}"#,
    ] {
        let err = Bundle::parse_str(input).unwrap_err();
        assert!(matches!(err, BundleError::Json(_)), "{input}: {err:?}");
    }
}

#[test]
fn jwt_authority_constructor_validates() {
    let key = jwt_key("k");
    let a = JwtAuthority::new("k", key["x"].as_str().unwrap(), key["y"].as_str().unwrap());
    assert!(a.is_ok());
    assert!(JwtAuthority::new("", key["x"].as_str().unwrap(), key["y"].as_str().unwrap()).is_err());
    assert!(JwtAuthority::new("k", "AA", "BB").is_err());
}

#[test]
fn bundle_set_keeps_trust_domains_apart_and_refuses_regressions() {
    let (td1, td2) = (td("td1.test"), td("td2.test"));
    let ca1 = TestCa::new(&td1).unwrap();
    let ca2 = TestCa::new(&td2).unwrap();
    let set = BundleSet::new()
        .with_bundle(td1.clone(), ca1.bundle().with_sequence(5))
        .unwrap()
        .with_bundle(td2.clone(), ca2.bundle())
        .unwrap();
    assert_eq!(set.len(), 2);
    assert_eq!(set.get(&td1).unwrap().x509_authorities().count(), 1);
    assert_eq!(
        set.get(&td1)
            .unwrap()
            .x509_authorities()
            .next()
            .unwrap()
            .cert_der(),
        ca1.cert_der()
    );

    // Going backwards is refused, and the set is unchanged.
    let err = set
        .with_bundle(td1.clone(), ca2.bundle().with_sequence(4))
        .unwrap_err();
    assert_eq!(
        err,
        BundleSetError::SequenceRegression {
            trust_domain: td1.clone(),
            current: 5,
            new: 4
        }
    );
    // Same sequence, different keys: refused. Same bundle again: accepted.
    let err = set
        .with_bundle(td1.clone(), ca2.bundle().with_sequence(5))
        .unwrap_err();
    assert!(matches!(
        err,
        BundleSetError::SequenceConflict { sequence: 5, .. }
    ));
    assert_eq!(
        set.with_bundle(td1.clone(), ca1.bundle().with_sequence(5))
            .unwrap(),
        set
    );
    // Moving forward replaces only that trust domain.
    let next = set.with_bundle(td1.clone(), Bundle::new(6)).unwrap();
    assert!(next.get(&td1).unwrap().is_empty());
    assert_eq!(next.get(&td2), set.get(&td2));
    assert_eq!(
        set.get(&td1).unwrap().sequence(),
        5,
        "old snapshot unchanged"
    );
    assert!(!next.without(&td2).contains(&td2));

    // The store applies the same rules atomically.
    let store = BundleStore::new(set.clone());
    let seen_before = store.load();
    assert!(store.update(&td1, Bundle::new(1)).is_err());
    store.update(&td1, Bundle::new(9)).unwrap();
    assert_eq!(store.load().get(&td1).unwrap().sequence(), 9);
    assert_eq!(seen_before.get(&td1).unwrap().sequence(), 5);
    store.remove(&td2);
    assert!(!store.load().contains(&td2));
}
