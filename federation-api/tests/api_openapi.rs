//! The OpenAPI document covers exactly the routes the router serves (both
//! directions, against DESIGN.md §3), and metrics count requests by route.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::collections::BTreeSet;

use http::Method;
use serde_json::Value;
use support::*;

/// DESIGN.md §3, with the HTTP methods of each path, plus `PATCH` (JSON
/// merge patch) and `/v1/version`.
const DESIGN: &[(&str, &[&str])] = &[
    ("/v1/clusters", &["get"]),
    ("/v1/clusters/{cluster}", &["get", "put", "delete", "patch"]),
    ("/v1/clusters/{cluster}/heartbeat", &["post"]),
    ("/v1/clusters/{cluster}/exports", &["get"]),
    (
        "/v1/clusters/{cluster}/exports/{ns}/{name}",
        &["get", "put", "delete", "patch"],
    ),
    ("/v1/imports", &["get"]),
    ("/v1/imports/{ns}/{name}", &["get"]),
    ("/v1/trust-domains", &["get"]),
    ("/v1/trust-domains/{td}/bundle", &["get", "put"]),
    ("/v1/policies/{kind}", &["get"]),
    (
        "/v1/policies/{kind}/{name}",
        &["get", "put", "delete", "patch"],
    ),
    ("/v1/watch", &["get"]),
    ("/v1/openapi.json", &["get"]),
    ("/v1/version", &["get"]),
    ("/healthz", &["get"]),
    ("/readyz", &["get"]),
    ("/metrics", &["get"]),
];

fn concrete(path: &str) -> String {
    path.replace("{cluster}", "eu-1")
        .replace("{ns}", "shop")
        .replace("{name}", "cart")
        .replace("{td}", "eu.example.org")
        .replace("{kind}", "traffic")
}

/// Whether the router has a route for (method, path): anything but the
/// fallback's "route not found" and the 405 fallback.
async fn served(s: &TestServer, method: &str, path: &str) -> bool {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let c = s.admin();
    let body = (m == Method::PUT).then(|| b"{}".to_vec());
    let path = if path == "/v1/watch" {
        "/v1/watch?since=abc".to_owned()
    } else {
        concrete(path)
    };
    let r = c.raw(m, &path, body, &[]).await.unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    !(r.status == 405 || (r.status == 404 && v["detail"] == "route not found"))
}

#[tokio::test]
async fn openapi_covers_every_served_route_and_nothing_else() {
    let s = TestServer::start().await;
    let r = s
        .anonymous()
        .raw(Method::GET, "/v1/openapi.json", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 200);
    let doc: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                documented.insert((path.clone(), method.clone()));
            }
        }
    }
    let design: BTreeSet<(String, String)> = DESIGN
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| ((*p).to_owned(), (*m).to_owned())))
        .collect();
    assert_eq!(
        documented, design,
        "the document lists exactly the DESIGN routes"
    );
    for (path, method) in &documented {
        assert!(
            served(&s, method, path).await,
            "{method} {path} documented but not served"
        );
    }
    // A method the document does not list is not served either.
    assert!(!served(&s, "post", "/v1/imports").await);
    assert!(!served(&s, "delete", "/v1/trust-domains/{td}/bundle").await);
    // Problem and resource schemas are present.
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["schemas"]["Cluster"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_status() {
    let s = TestServer::start().await;
    let c = s.admin();
    let _ = c.get::<Value>("/v1/clusters/nope").await;
    let _ = c.get::<Value>("/v1/clusters/nope").await;
    let r = s
        .anonymous()
        .raw(Method::GET, "/metrics", None, &[])
        .await
        .unwrap();
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("causeway_federation_http_requests_total{")
                && l.contains("route=\"/v1/clusters/{cluster}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with(" 2"), "{line}");
    assert!(text.contains("causeway_federation_store_operation_duration_seconds_bucket{"));
    assert!(text.contains("causeway_federation_http_request_duration_seconds_count{"));
}
