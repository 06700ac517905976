//! Abuse: forged, stale and misdirected JWTs. Every token below is refused
//! (401, or 403 for a valid token of the wrong cluster) on a write, and the
//! store revision does not move.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use causeway_api::client::{Client, Precondition, Versioned};
use causeway_federation::token::{JwtKeys, Scope, generate_es256_pem};
use http::Method;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use support::*;

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

fn raw_token(header: &Value, claims: &Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap()),
        b64(sig)
    )
}

#[tokio::test]
async fn forged_and_invalid_tokens_write_nothing() {
    // The server requires `iss` too, so a missing or wrong issuer is tested.
    let (private_pem, public_pem) = generate_es256_pem().unwrap();
    let keys = JwtKeys::es256(
        public_pem.as_bytes(),
        Some(private_pem.as_bytes()),
        "causeway",
        Some("causeway-issuer"),
    )
    .unwrap();
    let s = TestServer::start_keys(
        memory_store(),
        keys,
        public_pem.clone(),
        private_pem.clone(),
        |_| {},
    )
    .await;
    let admin = s.admin();
    for id in ["eu-1", "us-1"] {
        let _: Versioned<Value> = admin
            .put(
                &format!("/v1/clusters/{id}"),
                &cluster(id, &format!("{id}.example.org"), "r"),
                Precondition::None,
            )
            .await
            .unwrap();
    }
    let now = jsonwebtoken::get_current_timestamp();
    let good =
        json!({"aud": "causeway", "iss": "causeway-issuer", "exp": now + 300, "scopes": ["admin"]});
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(k);
        c
    };
    let key = EncodingKey::from_ec_pem(private_pem.as_bytes()).unwrap();
    let es = |claims: &Value| encode(&Header::new(Algorithm::ES256), claims, &key).unwrap();
    let es_kid = |claims: &Value, kid: &str| {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(kid.to_owned());
        encode(&h, claims, &key).unwrap()
    };
    // A different ES256 key (an attacker's), and HS256 keyed with the
    // server's public key (algorithm confusion).
    let (other_private, _) = generate_es256_pem().unwrap();
    let other = EncodingKey::from_ec_pem(other_private.as_bytes()).unwrap();
    let hs_pub = EncodingKey::from_secret(public_pem.as_bytes());
    let real = es(&good);
    let parts: Vec<&str> = real.split('.').collect();
    let cases: Vec<(&str, String)> = vec![
        (
            "alg none",
            raw_token(&json!({"alg": "none", "typ": "JWT"}), &good, b""),
        ),
        ("alg None", raw_token(&json!({"alg": "None"}), &good, b"")),
        (
            "alg none with the real signature",
            format!("{}.{}.{}", b64(br#"{"alg":"none"}"#), parts[1], parts[2]),
        ),
        (
            "HS256 keyed with the public key",
            encode(&Header::new(Algorithm::HS256), &good, &hs_pub).unwrap(),
        ),
        (
            "another ES256 key",
            encode(&Header::new(Algorithm::ES256), &good, &other).unwrap(),
        ),
        ("unknown kid, attacker key", {
            let mut h = Header::new(Algorithm::ES256);
            h.kid = Some("attacker".into());
            encode(&h, &good, &other).unwrap()
        }),
        ("jwk header injection", {
            let mut h = serde_json::to_value(Header::new(Algorithm::ES256)).unwrap();
            h["jwk"] = json!({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"});
            h["jku"] = json!("http://attacker.invalid/jwks");
            let t = encode(&Header::new(Algorithm::ES256), &good, &other).unwrap();
            let p: Vec<&str> = t.split('.').collect();
            format!(
                "{}.{}.{}",
                b64(&serde_json::to_vec(&h).unwrap()),
                p[1],
                p[2]
            )
        }),
        (
            "claims swapped under a valid signature",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(&serde_json::to_vec(&with("scopes", json!(["admin", "x"]))).unwrap()),
                parts[2]
            ),
        ),
        (
            "truncated signature",
            format!(
                "{}.{}.{}",
                parts[0],
                parts[1],
                &parts[2][..parts[2].len() / 2]
            ),
        ),
        ("expired", es(&with("exp", json!(now - 600)))),
        ("future nbf", es(&with("nbf", json!(now + 600)))),
        (
            "exp as string",
            es(&with("exp", json!((now + 300).to_string()))),
        ),
        ("exp as float string", es(&with("exp", json!("1e12")))),
        ("exp negative", es(&with("exp", json!(-1)))),
        ("exp null", es(&with("exp", Value::Null))),
        ("nbf as string", es(&with("nbf", json!("0")))),
        ("missing exp", es(&without("exp"))),
        ("wrong aud", es(&with("aud", json!("other")))),
        (
            "aud array without ours",
            es(&with("aud", json!(["other", "x"]))),
        ),
        ("missing aud", es(&without("aud"))),
        ("wrong iss", es(&with("iss", json!("attacker")))),
        ("missing iss", es(&without("iss"))),
        ("scopes as string", es(&with("scopes", json!("admin")))),
        (
            "unknown scope only",
            es(&with("scopes", json!(["root", "cluster:*", "cluster:"]))),
        ),
        ("empty scopes", es(&with("scopes", json!([])))),
        (
            "unknown kid, our key but wrong payload",
            es_kid(&with("exp", json!(now - 3600)), "unknown"),
        ),
        ("garbage", "a.b.c".into()),
        ("empty", String::new()),
        ("huge", "x".repeat(6000)),
    ];
    let rev = s.store.current_revision().await.unwrap();
    let body = serde_json::to_vec(&cluster("eu-1", "eu-1.example.org", "hijacked")).unwrap();
    for (what, token) in &cases {
        let c = Client::new(&s.base, Some(token.clone())).unwrap();
        let r = c
            .raw(Method::PUT, "/v1/clusters/eu-1", Some(body.clone()), &[])
            .await
            .unwrap();
        assert!(
            r.status == 401 || r.status == 400 || r.status == 431,
            "{what}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            r.headers[http::header::CONTENT_TYPE],
            "application/problem+json",
            "{what}"
        );
        let r = c.raw(Method::GET, "/v1/clusters", None, &[]).await.unwrap();
        assert!(
            r.status == 401 || r.status == 400 || r.status == 431,
            "{what}: read {}",
            r.status
        );
    }
    // Odd Authorization shapes.
    for auth in [
        format!("Basic {real}"),
        format!("Bearer  {real} x"),
        "Bearer".into(),
        format!("Bearer {real}."),
    ] {
        let c = Client::new(&s.base, None).unwrap();
        let r = c
            .raw(
                Method::PUT,
                "/v1/clusters/eu-1",
                Some(body.clone()),
                &[(http::header::AUTHORIZATION, auth.clone())],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{auth}");
    }
    // A valid token of another cluster: authenticated, not authorized.
    let us = s
        .keys
        .mint(
            &[Scope::Cluster("us-1".into())],
            Duration::from_secs(60),
            None,
        )
        .unwrap();
    let r = Client::new(&s.base, Some(us))
        .unwrap()
        .raw(Method::PUT, "/v1/clusters/eu-1", Some(body.clone()), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(
        s.store.current_revision().await.unwrap(),
        rev,
        "a refused token wrote"
    );
    // Control: the genuine token writes.
    let r = Client::new(&s.base, Some(real))
        .unwrap()
        .raw(Method::PUT, "/v1/clusters/eu-1", Some(body), &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
