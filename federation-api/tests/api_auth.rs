//! The auth matrix: every rejected token is a 401 problem; scopes decide
//! 403s, and a refused write writes nothing.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use causeway_api::client::{Client, Precondition, Versioned};
use causeway_federation::token::{JwtKeys, Scope};
use http::Method;
use serde_json::{Value, json};
use support::*;

async fn status_with(
    s: &TestServer,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let c = Client::new(&s.base, token.map(str::to_owned)).unwrap();
    let r = c
        .raw(
            method,
            path,
            body.map(|b| serde_json::to_vec(b).unwrap()),
            &[],
        )
        .await
        .unwrap();
    if r.status.as_u16() >= 400 {
        assert_eq!(
            r.headers[http::header::CONTENT_TYPE],
            "application/problem+json",
            "{path}"
        );
    }
    (
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
    )
}

fn unsigned(claims: &Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    format!("{h}.{c}.")
}

#[tokio::test]
async fn bad_tokens_are_401() {
    let s = TestServer::start().await;
    let _: Versioned<Value> = s
        .admin()
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu.example.org", "r"),
            Precondition::None,
        )
        .await
        .unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    // No token.
    let (st, v) = status_with(&s, None, Method::GET, "/v1/clusters", None).await;
    assert_eq!(st, 401);
    assert_eq!(v["errors"][0]["field"], "Authorization");
    // alg: none.
    let none = unsigned(&json!({"aud": "causeway", "exp": now + 300, "scopes": ["admin"]}));
    assert_eq!(
        status_with(&s, Some(&none), Method::GET, "/v1/clusters", None)
            .await
            .0,
        401
    );
    // HS256 signed with the server's public key (algorithm confusion).
    let forged = JwtKeys::hs256(s.public_pem.as_bytes(), "causeway", None)
        .mint(&[Scope::Admin], Duration::from_secs(300), None)
        .unwrap();
    let (st, v) = status_with(&s, Some(&forged), Method::GET, "/v1/clusters", None).await;
    assert_eq!(st, 401);
    assert_eq!(v["detail"], "token algorithm not accepted");
    // Expired (beyond leeway) and not yet valid.
    let key = jsonwebtoken::EncodingKey::from_ec_pem(s.private_pem.as_bytes()).unwrap();
    let hdr = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    let expired = jsonwebtoken::encode(
        &hdr,
        &json!({"aud": "causeway", "exp": now - 600, "scopes": ["admin"]}),
        &key,
    )
    .unwrap();
    let (st, v) = status_with(&s, Some(&expired), Method::GET, "/v1/clusters", None).await;
    assert_eq!((st, v["detail"].as_str().unwrap()), (401, "token expired"));
    let future = jsonwebtoken::encode(
        &hdr,
        &json!({"aud": "causeway", "exp": now + 900, "nbf": now + 600, "scopes": ["admin"]}),
        &key,
    )
    .unwrap();
    let (st, v) = status_with(&s, Some(&future), Method::GET, "/v1/clusters", None).await;
    assert_eq!(
        (st, v["detail"].as_str().unwrap()),
        (401, "token not yet valid")
    );
    // Wrong audience; missing aud; missing exp; wrong claim types.
    let wrong_aud = jsonwebtoken::encode(
        &hdr,
        &json!({"aud": "other", "exp": now + 300, "scopes": ["admin"]}),
        &key,
    )
    .unwrap();
    assert_eq!(
        status_with(&s, Some(&wrong_aud), Method::GET, "/v1/clusters", None)
            .await
            .0,
        401
    );
    let no_aud =
        jsonwebtoken::encode(&hdr, &json!({"exp": now + 300, "scopes": ["admin"]}), &key).unwrap();
    assert_eq!(
        status_with(&s, Some(&no_aud), Method::GET, "/v1/clusters", None)
            .await
            .0,
        401
    );
    let no_exp =
        jsonwebtoken::encode(&hdr, &json!({"aud": "causeway", "scopes": ["admin"]}), &key).unwrap();
    assert_eq!(
        status_with(&s, Some(&no_exp), Method::GET, "/v1/clusters", None)
            .await
            .0,
        401
    );
    let bad_type = jsonwebtoken::encode(
        &hdr,
        &json!({"aud": "causeway", "exp": "tomorrow", "scopes": "admin"}),
        &key,
    )
    .unwrap();
    assert_eq!(
        status_with(&s, Some(&bad_type), Method::GET, "/v1/clusters", None)
            .await
            .0,
        401
    );
    // Garbage.
    assert_eq!(
        status_with(&s, Some("not.a.jwt"), Method::GET, "/v1/clusters", None)
            .await
            .0,
        401
    );
    // The good token works.
    assert_eq!(
        status_with(
            &s,
            Some(&s.token(&["read"])),
            Method::GET,
            "/v1/clusters",
            None
        )
        .await
        .0,
        200
    );
    // Unauthenticated endpoints.
    for p in ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"] {
        assert_eq!(
            status_with(&s, None, Method::GET, p, None).await.0,
            200,
            "{p}"
        );
    }
}

#[tokio::test]
async fn scopes_decide_writes_and_refused_writes_write_nothing() {
    let s = TestServer::start().await;
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
    let eu = s.token(&["cluster:eu-1"]);
    let read = s.token(&["read"]);
    // A cluster token writes its own records.
    let (st, _) = status_with(
        &s,
        Some(&eu),
        Method::PUT,
        &export_path("eu-1", "shop", "cart"),
        Some(&export("eu-1", "shop", "cart", 80, "TCP", "ClusterSetIP")),
    )
    .await;
    assert_eq!(st, 201);
    assert_eq!(
        status_with(
            &s,
            Some(&eu),
            Method::POST,
            "/v1/clusters/eu-1/heartbeat",
            None
        )
        .await
        .0,
        200
    );
    // ... but not another cluster's: 403, nothing written.
    let (st, _) = status_with(
        &s,
        Some(&eu),
        Method::PUT,
        &export_path("us-1", "shop", "cart"),
        Some(&export("us-1", "shop", "cart", 80, "TCP", "ClusterSetIP")),
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(
        admin
            .get::<Value>(&export_path("us-1", "shop", "cart"))
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let mut other = cluster("us-1", "us-1.example.org", "hijacked");
    other["spec"]["region"] = json!("hijacked");
    assert_eq!(
        status_with(
            &s,
            Some(&eu),
            Method::PUT,
            "/v1/clusters/us-1",
            Some(&other)
        )
        .await
        .0,
        403
    );
    let us: Versioned<Value> = admin.get("/v1/clusters/us-1").await.unwrap();
    assert_eq!(us.value["spec"]["region"], "r");
    assert_eq!(
        status_with(
            &s,
            Some(&eu),
            Method::POST,
            "/v1/clusters/us-1/heartbeat",
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        status_with(&s, Some(&eu), Method::DELETE, "/v1/clusters/us-1", None)
            .await
            .0,
        403
    );
    // A cluster token cannot write policies.
    let policy = json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy", "metadata": {"name": "shop"},
        "spec": {"namespaces": ["shop"], "clusters": ["eu-1"]}});
    assert_eq!(
        status_with(
            &s,
            Some(&eu),
            Method::PUT,
            "/v1/policies/export/shop",
            Some(&policy)
        )
        .await
        .0,
        403
    );
    // A read token reads everything and writes nothing.
    assert_eq!(
        status_with(&s, Some(&read), Method::GET, "/v1/clusters/us-1", None)
            .await
            .0,
        200
    );
    assert_eq!(
        status_with(&s, Some(&read), Method::GET, "/v1/imports", None)
            .await
            .0,
        200
    );
    assert_eq!(
        status_with(
            &s,
            Some(&read),
            Method::PUT,
            "/v1/clusters/us-1",
            Some(&other)
        )
        .await
        .0,
        403
    );
    assert_eq!(
        status_with(
            &s,
            Some(&read),
            Method::DELETE,
            &export_path("eu-1", "shop", "cart"),
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        status_with(
            &s,
            Some(&read),
            Method::POST,
            "/v1/clusters/eu-1/heartbeat",
            None
        )
        .await
        .0,
        403
    );
    // ExportPolicy: shop belongs to eu-1; us-1 may not export it, even with its own token.
    let (st, _) = status_with(
        &s,
        Some(&s.token(&["admin"])),
        Method::PUT,
        "/v1/policies/export/shop",
        Some(&policy),
    )
    .await;
    assert_eq!(st, 201);
    let us_tok = s.token(&["cluster:us-1"]);
    let (st, v) = status_with(
        &s,
        Some(&us_tok),
        Method::PUT,
        &export_path("us-1", "shop", "cart"),
        Some(&export("us-1", "shop", "cart", 80, "TCP", "ClusterSetIP")),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    assert_eq!(v["errors"][0]["field"], "metadata.namespace");
    assert_eq!(
        admin
            .get::<Value>(&export_path("us-1", "shop", "cart"))
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    // Namespaces no policy covers stay open.
    let (st, _) = status_with(
        &s,
        Some(&us_tok),
        Method::PUT,
        &export_path("us-1", "web", "front"),
        Some(&export("us-1", "web", "front", 80, "TCP", "ClusterSetIP")),
    )
    .await;
    assert_eq!(st, 201);
}

#[tokio::test]
async fn bundles_only_by_their_trust_domain_and_sequence_grows() {
    let s = TestServer::start().await;
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
    let bundle = |seq: u64| causeway_trust::Bundle::new(seq).to_json();
    let eu = s.token(&["cluster:eu-1"]);
    let bare = |seq| serde_json::from_str::<Value>(&bundle(seq)).unwrap();
    // The owner publishes the bare SPIFFE bundle.
    let (st, v) = status_with(
        &s,
        Some(&eu),
        Method::PUT,
        "/v1/trust-domains/eu-1.example.org/bundle",
        Some(&bare(2)),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["spec"]["ownerCluster"], "eu-1");
    // Another cluster cannot.
    let us = s.token(&["cluster:us-1"]);
    assert_eq!(
        status_with(
            &s,
            Some(&us),
            Method::PUT,
            "/v1/trust-domains/eu-1.example.org/bundle",
            Some(&bare(3))
        )
        .await
        .0,
        403
    );
    // The sequence must grow: 409 naming it.
    let (st, v) = status_with(
        &s,
        Some(&eu),
        Method::PUT,
        "/v1/trust-domains/eu-1.example.org/bundle",
        Some(&bare(1)),
    )
    .await;
    assert_eq!(st, 409);
    assert_eq!(v["errors"][0]["field"], "spec.bundle.spiffe_sequence");
    let (st, _) = status_with(
        &s,
        Some(&eu),
        Method::PUT,
        "/v1/trust-domains/eu-1.example.org/bundle",
        Some(&bare(5)),
    )
    .await;
    assert_eq!(st, 200);
    // GET serves the bare bundle without auth.
    let r = s
        .anonymous()
        .raw(
            Method::GET,
            "/v1/trust-domains/eu-1.example.org/bundle",
            None,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.headers[http::header::CONTENT_TYPE], "application/json");
    let b = causeway_trust::Bundle::parse(&r.body).unwrap();
    assert_eq!(b.sequence(), 5);
    // The list needs a token.
    assert_eq!(
        status_with(&s, None, Method::GET, "/v1/trust-domains", None)
            .await
            .0,
        401
    );
    let tds: Vec<Value> = admin.list("/v1/trust-domains").await.unwrap();
    assert_eq!(tds.len(), 1);
}
