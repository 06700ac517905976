//! REST resources against the embedded store: CRUD, preconditions,
//! pagination, derived imports with conflicts, heartbeats, bundles and every
//! rejection as problem+json naming the field.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use causeway_api::client::{ClientError, Precondition, Versioned};
use http::Method;
use serde_json::{Value, json};
use support::*;

async fn raw_put(
    c: &causeway_api::client::Client,
    path: &str,
    body: &[u8],
    headers: &[(http::header::HeaderName, String)],
) -> (u16, Value, http::HeaderMap) {
    let r = c
        .raw(Method::PUT, path, Some(body.to_vec()), headers)
        .await
        .unwrap();
    let v = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    (r.status.as_u16(), v, r.headers)
}

fn field_of(v: &Value) -> String {
    v["errors"][0]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn cluster_crud_with_versions_and_created_at() {
    let s = TestServer::start().await;
    let c = s.admin();
    let created: Versioned<Value> = c
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu.example.org", "eu-west-1"),
            Precondition::MustNotExist,
        )
        .await
        .unwrap();
    let rv1 = created.revision.unwrap();
    assert_eq!(
        created.value["metadata"]["resourceVersion"],
        json!(rv1.to_string())
    );
    let created_at = created.value["metadata"]["createdAt"].clone();
    assert!(created_at.is_string());
    // Same create again: 412.
    let err = c
        .put::<_, Value>(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu.example.org", "eu-west-1"),
            Precondition::MustNotExist,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(412));
    // Replace with the right version keeps createdAt and bumps the version.
    let mut body = cluster("eu-1", "eu.example.org", "eu-west-2");
    let updated: Versioned<Value> = c
        .put("/v1/clusters/eu-1", &body, Precondition::Revision(rv1))
        .await
        .unwrap();
    assert!(updated.revision.unwrap() > rv1);
    assert_eq!(updated.value["metadata"]["createdAt"], created_at);
    assert_eq!(updated.value["spec"]["region"], "eu-west-2");
    // Stale If-Match: 412 naming If-Match, nothing written.
    body["spec"]["region"] = json!("us-east-1");
    let err = c
        .put::<_, Value>("/v1/clusters/eu-1", &body, Precondition::Revision(rv1))
        .await
        .unwrap_err();
    let ClientError::Api(p) = &err else {
        panic!("{err}")
    };
    assert_eq!(p.status, 412);
    assert_eq!(p.errors[0].field, "If-Match");
    let got: Versioned<Value> = c.get("/v1/clusters/eu-1").await.unwrap();
    assert_eq!(got.value["spec"]["region"], "eu-west-2");
    assert_eq!(got.value["status"]["connected"], false);
    // Delete, then 404.
    c.delete("/v1/clusters/eu-1", Precondition::None)
        .await
        .unwrap();
    let err = c.get::<Value>("/v1/clusters/eu-1").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn every_bad_input_is_a_problem_naming_the_field() {
    let s = TestServer::start_with(memory_store(), |c| c.max_body_bytes = 4096).await;
    let c = s.admin();
    let json_ct = [(http::header::CONTENT_TYPE, "application/json".to_owned())];
    // Unknown field.
    let mut body = cluster("eu-1", "eu.example.org", "eu-west-1");
    body["spec"]["colour"] = json!("blue");
    let (st, v, h) = raw_put(
        &c,
        "/v1/clusters/eu-1",
        &serde_json::to_vec(&body).unwrap(),
        &[],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(h[http::header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(field_of(&v), "spec.colour", "{v}");
    assert_eq!(v["type"], "https://causeway.dev/problems/validation");
    // Bad name in the path.
    let (st, v, _) = raw_put(
        &c,
        "/v1/clusters/EU_1",
        &serde_json::to_vec(&body).unwrap(),
        &json_ct,
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(field_of(&v), "cluster");
    // Bad name in the body.
    let bad = cluster("Not_A_Label", "eu.example.org", "eu-west-1");
    let (st, v, _) = raw_put(
        &c,
        "/v1/clusters/eu-1",
        &serde_json::to_vec(&bad).unwrap(),
        &[],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(field_of(&v), "metadata.name", "{v}");
    // Mismatched name.
    let other = cluster("eu-2", "eu.example.org", "eu-west-1");
    let (st, v, _) = raw_put(
        &c,
        "/v1/clusters/eu-1",
        &serde_json::to_vec(&other).unwrap(),
        &[],
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(field_of(&v), "metadata.name");
    // Oversize body.
    let mut big = cluster("eu-1", "eu.example.org", "eu-west-1");
    big["metadata"]["labels"] = json!({"k": "x".repeat(10_000)});
    let (st, v, _) = raw_put(
        &c,
        "/v1/clusters/eu-1",
        &serde_json::to_vec(&big).unwrap(),
        &[],
    )
    .await;
    assert_eq!(st, 413);
    assert_eq!(field_of(&v), "body");
    // Syntax error and wrong content type.
    let (st, v, _) = raw_put(&c, "/v1/clusters/eu-1", b"{\"kind\":", &[]).await;
    assert_eq!(st, 400, "{v}");
    let r = c
        .raw(
            Method::PUT,
            "/v1/clusters/eu-1",
            None,
            &[(http::header::CONTENT_TYPE, "text/plain".into())],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 415);
    // Garbage If-Match never matches: 412.
    let good = serde_json::to_vec(&cluster("eu-1", "eu.example.org", "eu-west-1")).unwrap();
    let (st, v, _) = raw_put(
        &c,
        "/v1/clusters/eu-1",
        &good,
        &[(http::header::IF_MATCH, "\"999\"".into())],
    )
    .await;
    assert_eq!(st, 412);
    assert_eq!(field_of(&v), "If-Match");
    // Bad query parameter.
    let r = c
        .raw(Method::GET, "/v1/clusters?limit=zero", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(field_of(&v), "limit");
    // Unknown policy kind; unknown route; wrong method.
    let r = c
        .raw(Method::GET, "/v1/policies/firewall", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(field_of(&serde_json::from_slice(&r.body).unwrap()), "kind");
    let r = c.raw(Method::GET, "/v1/nothing", None, &[]).await.unwrap();
    assert_eq!(r.status.as_u16(), 404);
    assert_eq!(
        r.headers[http::header::CONTENT_TYPE],
        "application/problem+json"
    );
    let r = c
        .raw(Method::POST, "/v1/clusters", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(
        r.headers[http::header::CONTENT_TYPE],
        "application/problem+json"
    );
    // Nothing was written by any of these.
    let items: Vec<Value> = c.list("/v1/clusters").await.unwrap();
    assert!(items.is_empty());
}

#[tokio::test]
async fn lists_paginate_with_continue_tokens() {
    let s = TestServer::start().await;
    let c = s.admin();
    for i in 0..7 {
        let id = format!("c-{i}");
        let _: Versioned<Value> = c
            .put(
                &format!("/v1/clusters/{id}"),
                &cluster(&id, "td.example.org", "r"),
                Precondition::None,
            )
            .await
            .unwrap();
    }
    let first: Versioned<Value> = c.get("/v1/clusters?limit=3").await.unwrap();
    assert_eq!(first.value["items"].as_array().unwrap().len(), 3);
    let token = first.value["continue"].as_str().unwrap().to_owned();
    let second: Versioned<Value> = c
        .get(&format!("/v1/clusters?limit=3&continue={token}"))
        .await
        .unwrap();
    assert_eq!(second.value["items"][0]["metadata"]["name"], "c-3");
    let all: Vec<Value> = c.list("/v1/clusters?limit=2").await.unwrap();
    let names: Vec<&str> = all
        .iter()
        .map(|v| v["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c-0", "c-1", "c-2", "c-3", "c-4", "c-5", "c-6"]);
    let r = c
        .raw(Method::GET, "/v1/clusters?continue=garbage", None, &[])
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
}

#[tokio::test]
async fn imports_are_derived_and_conflicts_reported_on_exports() {
    let s = TestServer::start().await;
    let c = s.admin();
    for (id, region) in [("eu-1", "eu-west-1"), ("us-1", "us-east-1")] {
        let _: Versioned<Value> = c
            .put(
                &format!("/v1/clusters/{id}"),
                &cluster(id, &format!("{id}.example.org"), region),
                Precondition::None,
            )
            .await
            .unwrap();
    }
    let _: Versioned<Value> = c
        .put(
            &export_path("eu-1", "shop", "cart"),
            &export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    let _: Versioned<Value> = c
        .put(
            &export_path("us-1", "shop", "cart"),
            &export("us-1", "shop", "cart", 8080, "TCP", "Headless"),
            Precondition::None,
        )
        .await
        .unwrap();
    let imp: Versioned<Value> = c.get("/v1/imports/shop/cart").await.unwrap();
    assert_eq!(imp.value["spec"]["type"], "ClusterSetIP");
    assert_eq!(imp.value["spec"]["clusters"].as_array().unwrap().len(), 2);
    let younger: Versioned<Value> = c.get(&export_path("us-1", "shop", "cart")).await.unwrap();
    let conds = younger.value["status"]["conditions"].as_array().unwrap();
    let conflict = conds.iter().find(|c| c["type"] == "Conflict").unwrap();
    assert_eq!(conflict["status"], "True");
    assert_eq!(conflict["reason"], "TypeConflict");
    assert!(
        conflict["message"].as_str().unwrap().contains("eu-1"),
        "{conflict}"
    );
    let older: Versioned<Value> = c.get(&export_path("eu-1", "shop", "cart")).await.unwrap();
    let conds = older.value["status"]["conditions"].as_array().unwrap();
    assert!(
        conds
            .iter()
            .any(|c| c["type"] == "Conflict" && c["status"] == "False")
    );
    // No heartbeat yet: stale.
    assert_eq!(older.value["status"]["stale"], true);
    let list: Vec<Value> = c.list("/v1/imports").await.unwrap();
    assert_eq!(list.len(), 1);
    let exports: Vec<Value> = c.list("/v1/clusters/us-1/exports").await.unwrap();
    assert_eq!(exports.len(), 1);
    assert!(exports[0]["status"]["conditions"].is_array());
    // Deleting the last exports removes the import.
    c.delete(&export_path("eu-1", "shop", "cart"), Precondition::None)
        .await
        .unwrap();
    c.delete(&export_path("us-1", "shop", "cart"), Precondition::None)
        .await
        .unwrap();
    assert_eq!(
        c.get::<Value>("/v1/imports/shop/cart")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[tokio::test]
async fn heartbeat_connects_and_lost_heartbeat_marks_exports_stale() {
    let s = TestServer::start_with(memory_store(), |c| {
        c.heartbeat_ttl = std::time::Duration::from_secs(1);
        c.stale_after = Some(std::time::Duration::from_secs(1));
    })
    .await;
    let c = s.admin();
    let _: Versioned<Value> = c
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu.example.org", "eu-west-1"),
            Precondition::None,
        )
        .await
        .unwrap();
    let _: Versioned<Value> = c
        .put(
            &export_path("eu-1", "shop", "cart"),
            &export("eu-1", "shop", "cart", 80, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    // Heartbeat of an unknown cluster: 404.
    assert_eq!(c.heartbeat("nope").await.unwrap_err().status(), Some(404));
    let ack = c.heartbeat("eu-1").await.unwrap();
    assert!(ack.connected);
    assert_eq!(ack.cluster, "eu-1");
    assert!(ack.ttl_seconds > 0);
    let got: Versioned<Value> = c.get("/v1/clusters/eu-1").await.unwrap();
    assert_eq!(got.value["status"]["connected"], true);
    assert!(got.value["status"]["lastHeartbeat"].is_string());
    let e: Versioned<Value> = c.get(&export_path("eu-1", "shop", "cart")).await.unwrap();
    assert_eq!(e.value["status"]["stale"], false);
    // Second heartbeat renews the same lease.
    c.heartbeat("eu-1").await.unwrap();
    // Stop heartbeating: disconnected, export stale but still stored, then withdrawn.
    let gone = eventually(5, || async {
        let got: Versioned<Value> = c.get("/v1/clusters/eu-1").await.unwrap();
        got.value["status"]["connected"] == false
    })
    .await;
    assert!(gone);
    let e: Versioned<Value> = c.get(&export_path("eu-1", "shop", "cart")).await.unwrap();
    assert_eq!(e.value["status"]["stale"], true);
    let withdrawn = eventually(5, || async {
        c.get::<Value>("/v1/imports/shop/cart").await.is_err()
    })
    .await;
    assert!(
        withdrawn,
        "stale export withdrawn from imports after staleAfter"
    );
    // Heartbeat again: back.
    c.heartbeat("eu-1").await.unwrap();
    let imp: Versioned<Value> = c.get("/v1/imports/shop/cart").await.unwrap();
    assert_eq!(imp.value["spec"]["clusters"].as_array().unwrap().len(), 1);
}

/// Exported labels and annotations become a ServiceImport's metadata in
/// every importing cluster, so they are validated as Kubernetes labels and
/// annotations: 400 naming the field and the key, nothing stored, and other
/// exports (and their imports) unaffected.
#[tokio::test]
async fn exported_labels_and_annotations_follow_kubernetes_rules() {
    let s = TestServer::start().await;
    let c = s.admin();
    let _: Versioned<Value> = c
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu-1.example.org", "eu-west-1"),
            Precondition::None,
        )
        .await
        .unwrap();
    let mut good = export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP");
    good["spec"]["exportedLabels"] = json!({"tier": "web", "app.kubernetes.io/part-of": "shop"});
    good["spec"]["exportedAnnotations"] = json!({"example.com/Owner": "team shop / on call"});
    let _: Versioned<Value> = c
        .put(
            &export_path("eu-1", "shop", "cart"),
            &good,
            Precondition::None,
        )
        .await
        .unwrap();
    let cases = [
        (
            json!({"exportedLabels": {"Bad Key": "x"}}),
            "spec.exportedLabels",
            "\"Bad Key\"",
        ),
        (
            json!({"exportedLabels": {"tier": "has space"}}),
            "spec.exportedLabels",
            "\"has space\"",
        ),
        (
            json!({"exportedLabels": {"tier": "v".repeat(64)}}),
            "spec.exportedLabels",
            "no more than 63",
        ),
        (
            json!({"exportedLabels": {"Example.com/tier": "x"}}),
            "spec.exportedLabels",
            "prefix part",
        ),
        (
            json!({"exportedAnnotations": {"a/b/c": "x"}}),
            "spec.exportedAnnotations",
            "\"a/b/c\"",
        ),
        (
            json!({"exportedAnnotations": {"note": "x".repeat(300 * 1024)}}),
            "spec.exportedAnnotations",
            "262144 bytes",
        ),
    ];
    for (i, (extra, field, says)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        let mut body = export("eu-1", "shop", &name, 8080, "TCP", "ClusterSetIP");
        for (k, v) in extra.as_object().unwrap() {
            body["spec"][k] = v.clone();
        }
        let err = c
            .put::<_, Value>(
                &export_path("eu-1", "shop", &name),
                &body,
                Precondition::None,
            )
            .await
            .unwrap_err();
        let ClientError::Api(p) = &err else {
            panic!("{err}")
        };
        assert_eq!(p.status, 400, "{name}: {err}");
        assert_eq!(p.errors[0].field, field, "{name}: {err}");
        assert!(p.errors[0].message.contains(says), "{name}: {err}");
        assert_eq!(
            c.get::<Value>(&export_path("eu-1", "shop", &name))
                .await
                .unwrap_err()
                .status(),
            Some(404),
            "{name} stored"
        );
    }
    // A merge patch is checked the same way.
    let r = c
        .raw(
            Method::PATCH,
            &export_path("eu-1", "shop", "cart"),
            Some(br#"{"spec":{"exportedLabels":{"bad key":"x"}}}"#.to_vec()),
            &[(
                http::header::CONTENT_TYPE,
                "application/merge-patch+json".to_owned(),
            )],
        )
        .await
        .unwrap();
    assert_eq!(r.status.as_u16(), 400);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(field_of(&v), "spec.exportedLabels");
    // The good export and its import are untouched.
    let imp: Versioned<Value> = c.get("/v1/imports/shop/cart").await.unwrap();
    assert_eq!(imp.value["spec"]["labels"]["tier"], "web");
    assert_eq!(
        imp.value["spec"]["annotations"]["example.com/Owner"],
        "team shop / on call"
    );
    let list: Vec<Value> = c.list("/v1/imports").await.unwrap();
    assert_eq!(list.len(), 1);
}
