//! JWT-SVID issuance and validation.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use causeway_trust::bundle::JwtAuthority;
use causeway_trust::jwt::{JwtError, JwtSvidValidator};
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, Clock, ManualClock, TrustDomain,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// A hand-held ES256 key published in a td1 bundle under kid "k1", so tests
/// can sign whatever they like.
struct Signer {
    key: EncodingKey,
    x: String,
}

fn setup() -> (ManualClock, Arc<dyn Clock>, Signer, BundleStore) {
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = pair.public_key_raw();
    let (x, y) = (B64.encode(&raw[1..33]), B64.encode(&raw[33..65]));
    let mut td1_bundle = Bundle::new(1);
    td1_bundle
        .add_jwt_authority(JwtAuthority::new("k1", &x, &y).unwrap())
        .unwrap();
    // td2 publishes its own key under another kid.
    let td2 = Authority::with_clock(
        TrustDomain::new("td2.test").unwrap(),
        AuthorityConfig::default(),
        shared.clone(),
    )
    .unwrap();
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(TrustDomain::new("td1.test").unwrap(), td1_bundle)
            .unwrap()
            .with_bundle(TrustDomain::new("td2.test").unwrap(), td2.bundle())
            .unwrap(),
    );
    let signer = Signer {
        key: EncodingKey::from_ec_der(pair.serialized_der()),
        x,
    };
    (clock, shared, signer, store)
}

fn claims(clock: &ManualClock, sub: &str) -> Value {
    let now = clock.now().unix_timestamp();
    json!({"sub": sub, "aud": ["gateway"], "exp": now + 300, "iat": now})
}

fn sign(signer: &Signer, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &signer.key).unwrap()
}

fn with_header(token: &str, header: Value) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", B64.encode(header.to_string()))
}

#[test]
fn issued_jwt_svid_validates() {
    let clock = ManualClock::starting_now();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let td = TrustDomain::new("td1.test").unwrap();
    let a = Authority::with_clock(td.clone(), AuthorityConfig::default(), shared.clone()).unwrap();
    let id = td.spiffe_id("/web").unwrap();
    let svid = a.issue_jwt_svid(&id, &["gateway", "api"]).unwrap();
    assert_eq!(svid.spiffe_id(), &id);
    let header = jsonwebtoken::decode_header(svid.token()).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert!(a.bundle().jwt_authority(&header.kid.unwrap()).is_some());

    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(td.clone(), a.bundle())
            .unwrap(),
    );
    let v = JwtSvidValidator::new(store).with_clock(shared);
    let claims = v.validate(svid.token(), "api").unwrap();
    assert_eq!(claims.spiffe_id, id);
    assert_eq!(
        claims.audience,
        vec!["gateway".to_string(), "api".to_string()]
    );
    assert_eq!(claims.expiry, svid.expiry());
    assert!(claims.issued_at.is_some());
    assert!(matches!(
        v.validate(svid.token(), "other"),
        Err(JwtError::WrongAudience { .. })
    ));
}

#[test]
fn every_bad_token_gets_its_own_error() {
    let (clock, shared, signer, store) = setup();
    let v = JwtSvidValidator::new(store).with_clock(shared);
    let good = sign(&signer, "k1", &claims(&clock, "spiffe://td1.test/web"));
    assert_eq!(
        v.validate(&good, "gateway").unwrap().spiffe_id.to_string(),
        "spiffe://td1.test/web"
    );

    // alg none, with and without a signature.
    let none = with_header(&good, json!({"alg": "none", "kid": "k1"}));
    assert_eq!(v.validate(&none, "gateway").unwrap_err(), JwtError::AlgNone);
    let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert_eq!(
        v.validate(&unsigned, "gateway").unwrap_err(),
        JwtError::AlgNone
    );

    // Header alg differs from the key's (classic HS256 key-confusion).
    let hs = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let c = claims(&clock, "spiffe://td1.test/web");
        jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(signer.x.as_bytes())).unwrap()
    };
    assert!(matches!(
        v.validate(&hs, "gateway").unwrap_err(),
        JwtError::AlgorithmMismatch { header, .. } if header == "HS256"
    ));
    let es384 = with_header(&good, json!({"alg": "ES384", "kid": "k1"}));
    assert!(matches!(
        v.validate(&es384, "gateway"),
        Err(JwtError::AlgorithmMismatch { .. })
    ));

    // Unknown kid, missing kid.
    let unknown = sign(&signer, "nope", &claims(&clock, "spiffe://td1.test/web"));
    assert!(matches!(
        v.validate(&unknown, "gateway"),
        Err(JwtError::UnknownKid { .. })
    ));
    let no_kid = with_header(&good, json!({"alg": "ES256"}));
    assert_eq!(
        v.validate(&no_kid, "gateway").unwrap_err(),
        JwtError::MissingKid
    );

    // Wrong audience.
    assert!(matches!(
        v.validate(&good, "someone-else"),
        Err(JwtError::WrongAudience { .. })
    ));

    // td1's key speaking for a td2 subject.
    let foreign = sign(&signer, "k1", &claims(&clock, "spiffe://td2.test/web"));
    assert!(matches!(
        v.validate(&foreign, "gateway").unwrap_err(),
        JwtError::ForeignKey { key_trust_domain, .. } if key_trust_domain.name() == "td1.test"
    ));
    let unfederated = sign(&signer, "k1", &claims(&clock, "spiffe://td3.test/web"));
    assert!(matches!(
        v.validate(&unfederated, "gateway"),
        Err(JwtError::UnknownTrustDomain(_))
    ));
    let not_spiffe = sign(&signer, "k1", &claims(&clock, "https://td1.test/web"));
    assert!(matches!(
        v.validate(&not_spiffe, "gateway"),
        Err(JwtError::InvalidSubject { .. })
    ));

    // Tampered claims break the signature.
    let (head, rest) = good.split_once('.').unwrap();
    let sig = rest.split_once('.').unwrap().1;
    let mut c = claims(&clock, "spiffe://td1.test/admin");
    c["aud"] = json!(["gateway"]);
    let tampered = format!("{head}.{}.{sig}", B64.encode(c.to_string()));
    assert_eq!(
        v.validate(&tampered, "gateway").unwrap_err(),
        JwtError::BadSignature
    );

    // Required claims.
    for missing in ["sub", "aud", "exp"] {
        let mut c = claims(&clock, "spiffe://td1.test/web");
        c.as_object_mut().unwrap().remove(missing);
        let t = sign(&signer, "k1", &c);
        let err = v.validate(&t, "gateway").unwrap_err();
        let expected = ["sub", "aud", "exp"]
            .into_iter()
            .find(|m| *m == missing)
            .unwrap();
        assert_eq!(err, JwtError::MissingClaim(expected));
    }
    // A single-string aud is accepted.
    let mut c = claims(&clock, "spiffe://td1.test/web");
    c["aud"] = json!("gateway");
    assert!(v.validate(&sign(&signer, "k1", &c), "gateway").is_ok());

    // Garbage.
    assert!(matches!(
        v.validate("a.b", "gateway"),
        Err(JwtError::Malformed(_))
    ));
    assert!(matches!(
        v.validate("!!.!!.!!", "gateway"),
        Err(JwtError::Malformed(_))
    ));
}

#[test]
fn expiry_uses_the_injected_clock_and_leeway() {
    let (clock, shared, signer, store) = setup();
    let token = sign(&signer, "k1", &claims(&clock, "spiffe://td1.test/web"));
    let v = JwtSvidValidator::new(store).with_clock(shared);
    clock.advance(Duration::from_secs(300 + 20));
    assert!(
        v.validate(&token, "gateway").is_ok(),
        "inside the default 30 s leeway"
    );
    clock.advance(Duration::from_secs(20));
    assert!(matches!(
        v.validate(&token, "gateway"),
        Err(JwtError::Expired { .. })
    ));
    let strict = v.clone().with_leeway(Duration::ZERO);
    assert!(matches!(
        strict.validate(&token, "gateway"),
        Err(JwtError::Expired { .. })
    ));

    let mut c = claims(&clock, "spiffe://td1.test/web");
    c["nbf"] = json!(clock.now().unix_timestamp() + 120);
    c["exp"] = json!(clock.now().unix_timestamp() + 600);
    let early = sign(&signer, "k1", &c);
    assert!(matches!(
        v.validate(&early, "gateway"),
        Err(JwtError::NotYetValid { .. })
    ));
}
