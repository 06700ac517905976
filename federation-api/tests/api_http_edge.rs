//! The REST API over the server binary: `PATCH` with a JSON merge patch,
//! `304 Not Modified`, problem `instance` and request ids, `GET /v1/version`,
//! and their description in `/v1/openapi.json`.
#![allow(clippy::unwrap_used)]

#[path = "support/process.rs"]
mod process;

use causeway_api::client::{Client, RawResponse};
use causeway_api::wire::{MERGE_PATCH_JSON, Problem};
use http::{Method, StatusCode, header};
use process::ServerProcess;
use serde_json::{Value, json};

async fn send(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(header::HeaderName, &str)],
) -> RawResponse {
    let headers: Vec<(header::HeaderName, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), (*v).to_owned()))
        .collect();
    c.raw(
        method,
        path,
        body.map(|b| serde_json::to_vec(b).unwrap()),
        &headers,
    )
    .await
    .unwrap()
}

fn json_of(r: &RawResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn etag(r: &RawResponse) -> String {
    r.headers
        .get(header::ETAG)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

async fn patch(c: &Client, path: &str, body: &Value, if_match: Option<&str>) -> RawResponse {
    let mut h = vec![(header::CONTENT_TYPE, MERGE_PATCH_JSON)];
    if let Some(m) = if_match {
        h.push((header::IF_MATCH, m));
    }
    send(c, Method::PATCH, path, Some(body), &h).await
}

fn cluster(id: &str) -> Value {
    json!({"apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": id},
        "spec": {"cloud": "aws", "region": "eu-west-1", "zone": "eu-west-1a", "jurisdictions": ["eu"],
                 "labels": {"tier": "gold", "team": "payments"}, "trustDomain": format!("{id}.example.org")}})
}

async fn put(c: &Client, path: &str, body: &Value) -> RawResponse {
    let r = send(c, Method::PUT, path, Some(body), &[]).await;
    assert!(r.status.is_success(), "{path}: {}", json_of(&r));
    r
}

async fn revision(c: &Client) -> u64 {
    json_of(&send(c, Method::GET, "/v1/clusters", None, &[]).await)["revision"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_patch_goes_through_put_validation_and_authorization() {
    let s = ServerProcess::start().await;
    let admin = s.admin();
    put(&admin, "/v1/clusters/eu-1", &cluster("eu-1")).await;
    put(&admin, "/v1/clusters/us-1", &cluster("us-1")).await;
    put(
        &admin,
        "/v1/policies/export/shop",
        &json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy", "metadata": {"name": "shop"},
                "spec": {"namespaces": ["shop"], "clusters": ["eu-1"]}}),
    )
    .await;
    let export = json!({"apiVersion": "causeway.dev/v1", "kind": "ServiceExport",
        "metadata": {"name": "cart", "namespace": "shop", "cluster": "eu-1"},
        "spec": {"ports": [{"name": "http", "port": 8080}], "weight": 10}});
    put(&admin, "/v1/clusters/eu-1/exports/shop/cart", &export).await;
    let eu = s.client(&["cluster:eu-1"]);
    let us = s.client(&["cluster:us-1"]);

    // RFC 7396: members merge, null removes, the rest stays.
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"spec": {"labels": {"tier": null, "ring": "canary"}}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", json_of(&r));
    let v = json_of(&r);
    assert_eq!(
        v["spec"]["labels"],
        json!({"team": "payments", "ring": "canary"})
    );
    assert_eq!(v["spec"]["region"], "eu-west-1");
    assert_eq!(v["status"]["connected"], false, "answered as a PUT is");
    let tag = etag(&r);
    assert_eq!(
        tag,
        format!("\"{}\"", v["metadata"]["resourceVersion"].as_str().unwrap())
    );
    // A patch that changes nothing writes nothing.
    let rev = revision(&admin).await;
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"spec": {"labels": {"ring": "canary"}}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(etag(&r), tag);
    assert_eq!(revision(&admin).await, rev);

    // Validation: the merged resource must be valid; the field is named.
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"spec": {"jurisdictions": ["EU!"]}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let p: Problem = serde_json::from_slice(&r.body).unwrap();
    assert!(
        p.errors
            .iter()
            .any(|e| e.field.starts_with("spec.jurisdictions")),
        "{p:?}"
    );
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"spec": {"trustDomain": null}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", json_of(&r));
    // Authorization: another cluster's token, and the ExportPolicy.
    let r = patch(
        &us,
        "/v1/clusters/eu-1",
        &json!({"spec": {"zone": "x"}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = patch(&us, "/v1/clusters/eu-1", &json!({}), None).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a no-op needs the write permission too"
    );
    let r = patch(
        &us,
        "/v1/policies/export/shop",
        &json!({"spec": {"clusters": ["eu-1", "us-1"]}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "policies are admin-only");
    // A cluster may claim no other cluster's trust domain through PATCH either.
    let r = patch(
        &us,
        "/v1/clusters/us-1",
        &json!({"spec": {"trustDomain": "eu-1.example.org"}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", json_of(&r));
    // Exports: arrays are replaced whole; path and body must agree.
    let r = patch(
        &eu,
        "/v1/clusters/eu-1/exports/shop/cart",
        &json!({"spec": {"ports": [{"name": "grpc", "port": 9090}]}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", json_of(&r));
    assert_eq!(json_of(&r)["spec"]["ports"][0]["port"], 9090);
    assert_eq!(json_of(&r)["spec"]["ports"].as_array().unwrap().len(), 1);
    assert_eq!(json_of(&r)["spec"]["weight"], 10);
    let r = patch(
        &eu,
        "/v1/clusters/eu-1/exports/shop/cart",
        &json!({"metadata": {"cluster": "us-1"}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Preconditions: If-Match, and resourceVersion in the patch (409 as a PUT).
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"spec": {"zone": "eu-west-1c"}}),
        Some("\"1\""),
    )
    .await;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"metadata": {"resourceVersion": "1"}, "spec": {"zone": "eu-west-1c"}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", json_of(&r));
    let cur = etag(&send(&eu, Method::GET, "/v1/clusters/eu-1", None, &[]).await);
    let r = patch(
        &eu,
        "/v1/clusters/eu-1",
        &json!({"spec": {"zone": "eu-west-1c"}}),
        Some(&cur),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(json_of(&r)["spec"]["zone"], "eu-west-1c");

    // Media type, body shape, missing resources, unpatchable kinds.
    let r = send(
        &eu,
        Method::PATCH,
        "/v1/clusters/eu-1",
        Some(&json!({})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        json_of(&r)["detail"]
            .as_str()
            .unwrap()
            .contains(MERGE_PATCH_JSON)
    );
    let r = patch(&eu, "/v1/clusters/eu-1", &json!([1]), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = patch(&admin, "/v1/clusters/nope", &json!({}), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = patch(
        &admin,
        "/v1/trust-domains/eu-1.example.org/bundle",
        &json!({}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_get_answers_304_while_the_resource_version_holds() {
    let s = ServerProcess::start().await;
    let admin = s.admin();
    put(&admin, "/v1/clusters/eu-1", &cluster("eu-1")).await;
    let policy = json!({"apiVersion": "causeway.dev/v1", "kind": "TrafficPolicy",
        "metadata": {"name": "cart"}, "spec": {"service": "shop/cart"}});
    put(&admin, "/v1/policies/traffic/cart", &policy).await;
    for path in ["/v1/clusters/eu-1", "/v1/policies/traffic/cart"] {
        let r = send(&admin, Method::GET, path, None, &[]).await;
        let tag = etag(&r);
        let r = send(
            &admin,
            Method::GET,
            path,
            None,
            &[(header::IF_NONE_MATCH, &tag)],
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(r.body.is_empty());
        assert_eq!(etag(&r), tag);
        // A list of tags, weak tags and `*` match too; another tag does not.
        for inm in [format!("\"0\", {tag}"), format!("W/{tag}"), "*".into()] {
            let r = send(
                &admin,
                Method::GET,
                path,
                None,
                &[(header::IF_NONE_MATCH, &inm)],
            )
            .await;
            assert_eq!(r.status, StatusCode::NOT_MODIFIED, "{path} {inm}");
        }
        let r = send(
            &admin,
            Method::GET,
            path,
            None,
            &[(header::IF_NONE_MATCH, "\"0\"")],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    // A write moves the ETag on: the old tag gets the new resource.
    let old = etag(&send(&admin, Method::GET, "/v1/policies/traffic/cart", None, &[]).await);
    let r = patch(
        &admin,
        "/v1/policies/traffic/cart",
        &json!({"spec": {"weights": {"eu-1": 100}}}),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", json_of(&r));
    let r = send(
        &admin,
        Method::GET,
        "/v1/policies/traffic/cart",
        None,
        &[(header::IF_NONE_MATCH, &old)],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(json_of(&r)["spec"]["weights"]["eu-1"], 100);
    assert_ne!(etag(&r), old);
    // Authentication still comes first, and errors are never 304.
    let anon = Client::new(&s.base, None).unwrap();
    let r = send(
        &anon,
        Method::GET,
        "/v1/clusters/eu-1",
        None,
        &[(header::IF_NONE_MATCH, "*")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &admin,
        Method::GET,
        "/v1/clusters/nope",
        None,
        &[(header::IF_NONE_MATCH, "*")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_name_the_request_path_and_id() {
    let s = ServerProcess::start().await;
    let admin = s.admin();
    // A client's id is echoed in the header and the problem.
    let r = send(
        &admin,
        Method::GET,
        "/v1/clusters/Bad_Name?x=1",
        None,
        &[(header::HeaderName::from_static("x-request-id"), "req-42")],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.headers["x-request-id"], "req-42");
    let p: Problem = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(p.instance.as_deref(), Some("/v1/clusters/Bad_Name"));
    assert_eq!(p.request_id.as_deref(), Some("req-42"));
    assert_eq!(p.errors[0].field, "cluster");
    // Without one (or with an unusable one) the server makes one up.
    for sent in [None, Some("has spaces")] {
        let h: Vec<(header::HeaderName, &str)> = sent
            .map(|v| vec![(header::HeaderName::from_static("x-request-id"), v)])
            .unwrap_or_default();
        let r = send(&admin, Method::GET, "/v1/nothing-here", None, &h).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let id = r.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{id}");
        let p: Problem = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(p.request_id.as_deref(), Some(id.as_str()));
        assert_eq!(p.instance.as_deref(), Some("/v1/nothing-here"));
    }
    // Successes carry an id too; auth failures, 405 and 413 carry the path.
    let r = send(&admin, Method::GET, "/v1/clusters", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-request-id"));
    let anon = Client::new(&s.base, None).unwrap();
    let r = send(&anon, Method::GET, "/v1/imports", None, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json_of(&r)["instance"], "/v1/imports");
    let r = send(&admin, Method::POST, "/v1/clusters", None, &[]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json_of(&r)["instance"], "/v1/clusters");
    // The client shows the problem as before.
    let e = admin.get::<Value>("/v1/clusters/nope").await.unwrap_err();
    assert_eq!(e.status(), Some(404));
    // Last, on a client of its own: the server closes a connection whose
    // body it refused, and a pooled connection may not notice in time.
    let big = json!({"pad": "x".repeat(2 * 1024 * 1024)});
    let r = send(
        &s.admin(),
        Method::PUT,
        "/v1/clusters/eu-1",
        Some(&big),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json_of(&r)["instance"], "/v1/clusters/eu-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_endpoint_and_the_openapi_document() {
    let s = ServerProcess::start().await;
    let anon = Client::new(&s.base, None).unwrap();
    let v = anon.version().await.unwrap();
    assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
    let r = send(&anon, Method::GET, "/v1/openapi.json", None, &[]).await;
    let doc = json_of(&r);
    let paths = &doc["paths"];
    assert!(paths["/v1/version"]["get"].is_object());
    for p in [
        "/v1/clusters/{cluster}",
        "/v1/clusters/{cluster}/exports/{ns}/{name}",
        "/v1/policies/{kind}/{name}",
    ] {
        let patch = &paths[p]["patch"];
        assert!(
            patch["requestBody"]["content"][MERGE_PATCH_JSON].is_object(),
            "{p}: {patch}"
        );
        let get = &paths[p]["get"];
        assert!(get["responses"]["304"].is_object(), "{p}");
        assert!(
            get["responses"]["200"]["headers"]["ETag"].is_object(),
            "{p}"
        );
        assert!(
            get["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "If-None-Match"),
            "{p}"
        );
    }
    assert!(paths["/v1/trust-domains/{td}/bundle"]["patch"].is_null());
    assert!(paths["/v1/imports/{ns}/{name}"]["get"]["responses"]["304"].is_null());
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    assert!(problem["instance"].is_object() && problem["requestId"].is_object());
    assert!(
        paths["/v1/clusters"]["get"]["responses"]["200"]["headers"]["x-request-id"].is_object()
    );
}

/// A residency policy that classifies by claim is checked by the server:
/// each mistake in `spec.match` is refused (400) with its field path, and a
/// complete one is stored and read back as written.
#[tokio::test]
async fn residency_claim_classification_is_validated_with_field_paths() {
    let s = ServerProcess::start().await;
    let admin = s.admin();
    let doc = |m: Value| {
        json!({"apiVersion": "causeway.dev/v1", "kind": "ResidencyPolicy",
               "metadata": {"name": "eu-claim"},
               "spec": {"allowedJurisdictions": ["eu"], "match": m}})
    };
    let path = "/v1/policies/residency/eu-claim";
    for (m, field) in [
        (
            json!({"jwtClaim": "r", "values": ["eu"], "onUnverified": "allow"}),
            "spec.match.onUnverified",
        ),
        (
            json!({"jwtClaim": "r", "values": ["eu"], "oidc": {"issuer": "i", "audience": "a", "jwksUrl": "file:///etc/passwd"}}),
            "spec.match.oidc.jwksUrl",
        ),
        (
            json!({"jwtClaim": "r", "values": ["eu"], "oidc": {"issuer": "", "audience": "a", "jwksUrl": "https://idp/jwks"}}),
            "spec.match.oidc.issuer",
        ),
        (
            json!({"header": "x", "values": ["eu"], "oidc": {"issuer": "i", "audience": "a", "jwksUrl": "https://idp/jwks"}}),
            "spec.match",
        ),
    ] {
        let r = send(&admin, Method::PUT, path, Some(&doc(m.clone())), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{m}");
        let p: Problem = serde_json::from_slice(&r.body).unwrap();
        assert!(
            p.errors.iter().any(|e| e.field.starts_with(field)),
            "{m}: {p:?}"
        );
    }
    let good = doc(
        json!({"jwtClaim": "data_region", "values": ["eu"], "onUnverified": "unclassified",
                          "oidc": {"issuer": "https://idp", "audience": "shop", "jwksUrl": "https://idp/jwks"}}),
    );
    let r = send(&admin, Method::PUT, path, Some(&good), &[]).await;
    assert!(r.status.is_success(), "{:?}", json_of(&r));
    let r = send(&admin, Method::GET, path, None, &[]).await;
    let v = json_of(&r);
    assert_eq!(v["spec"]["match"]["onUnverified"], "unclassified", "{v}");
    assert_eq!(
        v["spec"]["match"]["oidc"]["jwksUrl"], "https://idp/jwks",
        "{v}"
    );
}
