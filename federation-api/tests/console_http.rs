//! The web console's HTTP surface: every page needs a token that can read,
//! the read scope suffices, sign-in keeps the token in an HttpOnly cookie,
//! no page offers a write, and the live stream reports catalog changes.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::time::Duration;

use causeway_api::client::{Client, Precondition, Versioned};
use http::{Method, header};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VIEWS: [&str; 5] = [
    "/ui/map",
    "/ui/traffic",
    "/ui/services",
    "/ui/residency",
    "/ui/trust",
];

async fn get(
    s: &TestServer,
    token: Option<String>,
    path: &str,
    extra: &[(header::HeaderName, String)],
) -> (u16, http::HeaderMap, String) {
    let c = Client::new(&s.base, token).unwrap();
    let r = c.raw(Method::GET, path, None, extra).await.unwrap();
    (
        r.status.as_u16(),
        r.headers,
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

async fn seed(s: &TestServer) {
    let _: Versioned<Value> = s
        .admin()
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu.example.org", "eu-west"),
            Precondition::None,
        )
        .await
        .unwrap();
    let _: Versioned<Value> = s
        .admin()
        .put(
            &export_path("eu-1", "shop", "cart"),
            &export("eu-1", "shop", "cart", 80, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn console_pages_need_a_token_and_show_the_sign_in_form() {
    let s = TestServer::start().await;
    for path in VIEWS {
        let (st, h, body) = get(&s, None, path, &[]).await;
        assert_eq!(st, 401, "{path}");
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(body.contains("action=\"/ui/login\""), "{body}");
        assert!(!body.contains("Sign out"), "{body}");
    }
    // A forged cookie is refused like a forged header.
    let (st, _, body) = get(
        &s,
        None,
        "/ui/map",
        &[(header::COOKIE, "causeway_console=not.a.jwt".into())],
    )
    .await;
    assert_eq!(st, 401);
    assert!(body.contains("sign in again"), "{body}");
    // The live stream too.
    let (st, _, _) = get(&s, None, "/ui/events", &[]).await;
    assert_eq!(st, 401);
}

#[tokio::test]
async fn console_read_scope_suffices_for_every_view() {
    let s = TestServer::start().await;
    seed(&s).await;
    let read = s.token(&["read"]);
    for path in VIEWS {
        let (st, h, body) = get(&s, Some(read.clone()), path, &[]).await;
        assert_eq!(st, 200, "{path}: {body}");
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(h.contains_key(header::CONTENT_SECURITY_POLICY), "{path}");
        assert!(body.contains("aria-current=\"page\""), "{path}");
    }
    let (_, _, map) = get(&s, Some(read.clone()), "/ui/map", &[]).await;
    assert!(map.contains("data-cluster=\"eu-1\""), "{map}");
    assert!(map.contains("Region eu-west"), "{map}");
    // Never heartbeated: its gateway is stale.
    assert!(map.contains("data-status=\"stale\""), "{map}");
    let (_, _, services) = get(&s, Some(read.clone()), "/ui/services", &[]).await;
    assert!(
        services.contains("data-service=\"shop/cart\""),
        "{services}"
    );
    let (_, _, trust) = get(&s, Some(read), "/ui/trust", &[]).await;
    assert!(trust.contains("No trust bundle"), "{trust}");
    // A token without any scope is refused, as by the API.
    let (st, _, body) = get(&s, Some(s.token(&[])), "/ui/map", &[]).await;
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("no valid scope"), "{body}");
    // A heartbeat turns the cluster connected.
    s.client(&["cluster:eu-1"]).heartbeat("eu-1").await.unwrap();
    let (_, _, map) = get(&s, Some(s.token(&["read"])), "/ui/map", &[]).await;
    assert!(map.contains("data-status=\"connected\""), "{map}");
}

#[tokio::test]
async fn console_sign_in_keeps_the_token_in_an_http_only_cookie() {
    let s = TestServer::start().await;
    seed(&s).await;
    let anon = Client::new(&s.base, None).unwrap();
    let form = |t: &str| format!("token={t}").into_bytes();
    let ct = (
        header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".to_owned(),
    );
    let bad = anon
        .raw(
            Method::POST,
            "/ui/login",
            Some(form("nope")),
            std::slice::from_ref(&ct),
        )
        .await
        .unwrap();
    assert_eq!(bad.status.as_u16(), 401);
    assert!(!bad.headers.contains_key(header::SET_COOKIE));
    let ok = anon
        .raw(
            Method::POST,
            "/ui/login",
            Some(form(&s.token(&["read"]))),
            &[ct],
        )
        .await
        .unwrap();
    assert_eq!(ok.status.as_u16(), 303);
    let cookie = ok.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("Path=/ui"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let (st, _, body) = get(&s, None, "/ui/map", &[(header::COOKIE, pair.clone())]).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("data-cluster=\"eu-1\""));
    assert!(body.contains("action=\"/ui/logout\""));
    // The cookie is no key to the REST API.
    let (st, _, _) = get(&s, None, "/v1/clusters", &[(header::COOKIE, pair)]).await;
    assert_eq!(st, 401);
    let out = anon
        .raw(Method::POST, "/ui/logout", None, &[])
        .await
        .unwrap();
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn console_offers_no_write() {
    let s = TestServer::start().await;
    seed(&s).await;
    let admin = s.token(&["admin"]);
    for path in VIEWS {
        let (_, _, body) = get(&s, Some(admin.clone()), path, &[]).await;
        for form in body.split("<form").skip(1) {
            let tag = form.split('>').next().unwrap();
            let reads = tag.contains("method=\"get\"");
            let session =
                tag.contains("action=\"/ui/logout\"") || tag.contains("action=\"/ui/login\"");
            assert!(reads || session, "{path}: a form that writes: <form{tag}>");
        }
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let c = Client::new(&s.base, Some(admin.clone())).unwrap();
            let r = c
                .raw(m.clone(), path, Some(b"{}".to_vec()), &[])
                .await
                .unwrap();
            assert_eq!(r.status.as_u16(), 405, "{m} {path}");
        }
    }
    let (st, h, js) = get(&s, None, "/ui/assets/console.js", &[]).await;
    assert_eq!(st, 200);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    for verb in ["\"POST\"", "\"PUT\"", "\"DELETE\"", "\"PATCH\"", "method:"] {
        assert!(!js.contains(verb), "console.js uses {verb}");
    }
    let (st, _, css) = get(&s, None, "/ui/assets/console.css", &[]).await;
    assert_eq!(st, 200);
    assert!(css.contains(":focus-visible"));
}

/// Reads from a raw HTTP/1.1 response until `needle` shows up.
async fn read_until(stream: &mut tokio::net::TcpStream, seen: &mut String, needle: &str) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(needle) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => return false,
        }
    }
    true
}

#[tokio::test]
async fn console_events_report_catalog_changes() {
    let s = TestServer::start_with(memory_store(), |c| {
        // Long enough that the only event after hello is the change.
        c.console.refresh = Duration::from_secs(3600);
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "GET /ui/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nAuthorization: Bearer {}\r\n\r\n",
        s.token(&["read"])
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    assert!(
        read_until(&mut stream, &mut seen, "event: hello").await,
        "{seen}"
    );
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(!seen.contains("event: change"), "{seen}");
    seed(&s).await;
    assert!(
        read_until(&mut stream, &mut seen, "event: change").await,
        "{seen}"
    );
}

#[tokio::test]
async fn console_services_show_conflicts_with_their_mcs_reason() {
    let s = TestServer::start().await;
    seed(&s).await;
    let (_, _, body) = get(&s, Some(s.token(&["read"])), "/ui/services", &[]).await;
    assert!(body.contains("Conflicts: none."), "{body}");
    let _: Versioned<Value> = s
        .admin()
        .put(
            "/v1/clusters/us-1",
            &cluster("us-1", "us.example.org", "us-east"),
            Precondition::None,
        )
        .await
        .unwrap();
    let _: Versioned<Value> = s
        .admin()
        .put(
            &export_path("us-1", "shop", "cart"),
            &export("us-1", "shop", "cart", 80, "TCP", "Headless"),
            Precondition::None,
        )
        .await
        .unwrap();
    let (_, _, body) = get(&s, Some(s.token(&["read"])), "/ui/services", &[]).await;
    assert!(body.contains("<strong>TypeConflict</strong>"), "{body}");
    assert!(
        body.contains("from oldest service export in &quot;eu-1&quot;"),
        "{body}"
    );
    assert!(!body.contains("Conflicts: none."), "{body}");
}
