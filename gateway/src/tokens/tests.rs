#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use causeway_trust::{Authority, AuthorityConfig, BundleSet, BundleStore};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// An EC P-256 key with its JWK.
struct Key {
    kid: String,
    pair: rcgen::KeyPair,
}

impl Key {
    fn new(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
        }
    }

    fn jwk(&self) -> Value {
        let raw = self.pair.public_key_raw();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
               "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..])})
    }

    fn sign(&self, claims: &Value) -> String {
        let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
        h.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &h,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pair.serialize_der()),
        )
        .unwrap()
    }
}

/// A JWKS endpoint whose status and body the test sets; counts fetches.
struct JwksServer {
    url: String,
    body: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks_server(status: u16, body: String) -> JwksServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Mutex::new((status, body)));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (s, f) = (state.clone(), fetches.clone());
    let task = tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            let mut buf = vec![0u8; 4096];
            let _ = c.read(&mut buf).await;
            f.fetch_add(1, Ordering::SeqCst);
            let (status, body) = s.lock().unwrap().clone();
            let resp = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = c.write_all(resp.as_bytes()).await;
        }
    });
    JwksServer {
        url: format!("http://{addr}/.well-known/jwks.json"),
        body: state,
        fetches,
        task,
    }
}

fn issuer(url: &str) -> OidcIssuer {
    OidcIssuer {
        issuer: "https://idp.test".into(),
        audience: "causeway".into(),
        jwks_url: url.into(),
    }
}

fn claims(extra: Value) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut c = json!({"iss": "https://idp.test", "aud": "causeway", "exp": now + 300,
                       "iat": now, "sub": "user-1", "data_region": "eu"});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn jwks(keys: &[&Key]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

/// A valid token verifies; a key added by rotation is fetched when a token
/// names it; every bad token is refused with its own typed reason and never
/// yields its claims.
#[tokio::test]
async fn oidc_tokens_verify_against_the_issuer_jwks_and_bad_ones_are_typed() {
    let (k1, k2, other) = (Key::new("k1"), Key::new("k2"), Key::new("k1"));
    let server = jwks_server(200, jwks(&[&k1])).await;
    let cache = JwksCache::new().with_min_interval(Duration::from_millis(0));
    let issuers = [issuer(&server.url)];
    let (iss, c) = cache
        .verify(&k1.sign(&claims(json!({}))), &issuers)
        .await
        .unwrap();
    assert_eq!(iss.issuer, "https://idp.test");
    assert_eq!(c["data_region"], "eu");
    // Cached: a second token does not fetch again.
    cache
        .verify(&k1.sign(&claims(json!({}))), &issuers)
        .await
        .unwrap();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    // Rotation: the issuer publishes k2; a k2 token makes the cache fetch.
    server.body.lock().unwrap().1 = jwks(&[&k1, &k2]);
    cache
        .verify(&k2.sign(&claims(json!({}))), &issuers)
        .await
        .unwrap();
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#),
        URL_SAFE_NO_PAD.encode(claims(json!({})).to_string())
    );
    let cases: Vec<(&str, String, TokenRejection)> = vec![
        ("alg none", unsigned, TokenRejection::AlgNone),
        (
            "wrong key",
            other.sign(&claims(json!({}))),
            TokenRejection::BadSignature,
        ),
        (
            "expired",
            k1.sign(&claims(json!({"exp": now - 3600}))),
            TokenRejection::Expired,
        ),
        (
            "future",
            k1.sign(&claims(json!({"nbf": now + 3600}))),
            TokenRejection::NotYetValid,
        ),
        (
            "other audience",
            k1.sign(&claims(json!({"aud": "someone-else"}))),
            TokenRejection::WrongAudience,
        ),
        (
            "unconfigured issuer",
            k1.sign(&claims(json!({"iss": "https://evil.test"}))),
            TokenRejection::UnconfiguredIssuer,
        ),
        (
            "unknown kid",
            Key::new("k9").sign(&claims(json!({}))),
            TokenRejection::UnknownKey,
        ),
        ("garbage", "not-a-token".into(), TokenRejection::Malformed),
    ];
    for (what, token, want) in cases {
        assert_eq!(
            cache.verify(&token, &issuers).await.err(),
            Some(want),
            "{what}"
        );
    }
}

/// With the JWKS endpoint down or serving garbage, no token verifies
/// (`jwks_unavailable`); once keys were fetched, a failing endpoint keeps
/// the last good keys in use.
#[tokio::test]
async fn jwks_down_or_garbage_refuses_and_the_last_good_keys_keep_serving() {
    let k1 = Key::new("k1");
    let token = k1.sign(&claims(json!({})));
    // Nothing listens on this port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = JwksCache::new();
    assert_eq!(
        down.verify(&token, &[issuer(&format!("http://{closed}/jwks"))])
            .await
            .err(),
        Some(TokenRejection::JwksUnavailable)
    );
    for (status, body) in [
        (200, "<html>garbage</html>".to_owned()),
        (500, jwks(&[&k1])),
        (200, r#"{"keys":[]}"#.to_owned()),
    ] {
        let server = jwks_server(status, body).await;
        let cache = JwksCache::new();
        assert_eq!(
            cache.verify(&token, &[issuer(&server.url)]).await.err(),
            Some(TokenRejection::JwksUnavailable),
            "status {status}"
        );
    }
    let server = jwks_server(200, jwks(&[&k1])).await;
    let cache = JwksCache::new().with_min_interval(Duration::from_millis(0));
    let issuers = [issuer(&server.url)];
    cache.verify(&token, &issuers).await.unwrap();
    *server.body.lock().unwrap() = (200, "garbage".into());
    // An unknown kid forces a fetch, which fails: the old keys stay.
    assert_eq!(
        cache
            .verify(&Key::new("k2").sign(&claims(json!({}))), &issuers)
            .await
            .err(),
        Some(TokenRejection::UnknownKey)
    );
    cache.verify(&token, &issuers).await.unwrap();
}

/// A workload's JWT-SVID verifies for this gateway's audience and trust
/// domain only.
#[test]
fn workload_svids_verify_for_this_gateway_and_trust_domain_only() {
    let td = TrustDomain::new("eu.test").unwrap();
    let other_td = TrustDomain::new("us.test").unwrap();
    let ca = Authority::new(td.clone(), AuthorityConfig::default()).unwrap();
    let other = Authority::new(other_td.clone(), AuthorityConfig::default()).unwrap();
    let set = BundleSet::new()
        .with_bundle(td.clone(), ca.bundle())
        .unwrap()
        .with_bundle(other_td.clone(), other.bundle())
        .unwrap();
    let v = JwtSvidValidator::new(BundleStore::new(set));
    let gw = "spiffe://eu.test/causeway/gateway/eu-1";
    let web = td.spiffe_id("/ns/shop/sa/web").unwrap();
    let ok = ca.issue_jwt_svid(&web, &[gw]).unwrap();
    assert_eq!(
        verify_workload_svid(&v, ok.token(), gw, &td)
            .unwrap()
            .spiffe_id,
        web
    );
    assert!(looks_like_svid(ok.token()));
    let aud = ca.issue_jwt_svid(&web, &["spiffe://eu.test/else"]).unwrap();
    assert_eq!(
        verify_workload_svid(&v, aud.token(), gw, &td).err(),
        Some(TokenRejection::WrongAudience)
    );
    let foreign = other
        .issue_jwt_svid(&other_td.spiffe_id("/ns/x/sa/y").unwrap(), &[gw])
        .unwrap();
    assert_eq!(
        verify_workload_svid(&v, foreign.token(), gw, &td).err(),
        Some(TokenRejection::WrongTrustDomain),
        "a workload of another trust domain is not behind this gateway"
    );
    let mut parts: Vec<String> = ok.token().split('.').map(str::to_owned).collect();
    parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"x"}"#);
    parts[2] = String::new();
    assert_eq!(
        verify_workload_svid(&v, &parts.join("."), gw, &td).err(),
        Some(TokenRejection::AlgNone)
    );
}
