//! `causewayctl` end to end: the built binary against a server started in
//! the test.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::path::Path;

use causeway_api::client::Versioned;
use serde_json::Value;
use support::*;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn ctl(server: &str, token: Option<&str>, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_causewayctl"));
    cmd.env_remove("CAUSEWAY_SERVER")
        .env_remove("CAUSEWAY_TOKEN")
        .env("CAUSEWAY_SERVER", server);
    if let Some(t) = token {
        cmd.env("CAUSEWAY_TOKEN", t);
    }
    let o = cmd.args(args).kill_on_drop(true).output().await.unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

const CATALOG: &str = r#"
apiVersion: causeway.dev/v1
kind: Cluster
metadata: {name: eu-1}
spec:
  cloud: aws
  region: eu-west-1
  zone: eu-west-1a
  jurisdictions: [eu]
  trustDomain: eu-1.example.org
---
apiVersion: causeway.dev/v1
kind: Cluster
metadata: {name: us-1}
spec: {cloud: gcp, region: us-east1, trustDomain: us-1.example.org}
---
apiVersion: causeway.dev/v1
kind: ServiceExport
metadata: {name: cart, namespace: shop, cluster: eu-1}
spec:
  ports: [{name: http, port: 8080}]
  endpoints: [{zone: eu-west-1a, ready: 3}]
"#;

const POLICY: &str = r#"{"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
  "metadata": {"name": "shop"}, "spec": {"namespaces": ["shop"], "clusters": ["eu-1"]}}"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_get_delete_watch_and_exit_codes() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog.yaml", CATALOG);
    write(dir.path(), "policy.json", POLICY);
    std::fs::write(dir.path().join("private.pem"), &s.private_pem).unwrap();
    // Mint an admin token with the CLI from the key file.
    let key = dir.path().join("private.pem");
    let minted = ctl(
        &s.base,
        None,
        &[
            "token",
            "mint",
            "--key-file",
            key.to_str().unwrap(),
            "--scope",
            "admin",
            "--ttl",
            "10m",
        ],
    )
    .await;
    assert_eq!(minted.code, 0, "{}", minted.stderr);
    let token = minted.stdout.trim().to_owned();
    let d = dir.path().to_str().unwrap();

    // apply a directory: everything created.
    let o = ctl(&s.base, Some(&token), &["apply", "-f", d]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.matches(" created").count(), 4, "{}", o.stdout);
    // Again: nothing changes and nothing is written.
    let rev_before = s.store.current_revision().await.unwrap();
    let o = ctl(&s.base, Some(&token), &["apply", "-f", d]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.matches(" unchanged").count(), 4, "{}", o.stdout);
    assert_eq!(s.store.current_revision().await.unwrap(), rev_before);
    // A change with --dry-run shows a diff and writes nothing.
    write(
        dir.path(),
        "catalog.yaml",
        &CATALOG.replace("ready: 3", "ready: 5"),
    );
    let o = ctl(&s.base, Some(&token), &["apply", "--dry-run", "-f", d]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("would be configured"), "{}", o.stdout);
    assert!(
        o.stdout.contains("-  - ready: 3") && o.stdout.contains("+  - ready: 5"),
        "{}",
        o.stdout
    );
    assert_eq!(s.store.current_revision().await.unwrap(), rev_before);
    let o = ctl(&s.base, Some(&token), &["apply", "-f", d]).await;
    assert!(o.stdout.contains("configured"), "{}", o.stdout);
    let e: Versioned<Value> = s
        .admin()
        .get(&export_path("eu-1", "shop", "cart"))
        .await
        .unwrap();
    assert_eq!(e.value["spec"]["endpoints"][0]["ready"], 5);

    // get: table, json, yaml; imports.
    let o = ctl(&s.base, Some(&token), &["get", "clusters"]).await;
    assert_eq!(o.code, 0);
    assert!(o.stdout.starts_with("KIND"), "{}", o.stdout);
    assert!(o.stdout.contains("eu-1") && o.stdout.contains("us-1"));
    let o = ctl(
        &s.base,
        Some(&token),
        &["get", "cluster", "eu-1", "-o", "json"],
    )
    .await;
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["spec"]["region"], "eu-west-1");
    let o = ctl(
        &s.base,
        Some(&token),
        &["get", "export", "shop/cart", "-c", "eu-1", "-o", "yaml"],
    )
    .await;
    assert!(o.stdout.contains("kind: ServiceExport"), "{}", o.stdout);
    let o = ctl(&s.base, Some(&token), &["list", "imports"]).await;
    assert!(
        o.stdout.contains("shop/cart") && o.stdout.contains("clusters=eu-1"),
        "{}",
        o.stdout
    );
    let o = ctl(&s.base, Some(&token), &["get", "exportpolicies"]).await;
    assert!(o.stdout.contains("ExportPolicy"), "{}", o.stdout);

    // watch: the snapshot line.
    let o = ctl(
        &s.base,
        Some(&token),
        &["watch", "--max-events", "1", "-o", "json"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let line: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(line["type"], "snapshot");

    // API errors: exit 1 with the detail and field.
    let o = ctl(&s.base, Some(&token), &["get", "cluster", "Bad_Name"]).await;
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("400") && o.stderr.contains("field cluster"),
        "{}",
        o.stderr
    );
    let o = ctl(&s.base, None, &["get", "clusters"]).await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("401"), "{}", o.stderr);
    // ExportPolicy refusal through apply: exit 1, nothing written.
    let us_token = s.token(&["cluster:us-1"]);
    write(
        dir.path(),
        "steal.yaml",
        "apiVersion: causeway.dev/v1\nkind: ServiceExport\nmetadata: {name: cart, namespace: shop, cluster: us-1}\nspec: {ports: [{port: 8080}]}\n",
    );
    let o = ctl(
        &s.base,
        Some(&us_token),
        &[
            "apply",
            "-f",
            dir.path().join("steal.yaml").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("403"), "{}", o.stderr);
    // Usage errors: exit 2.
    assert_eq!(ctl(&s.base, Some(&token), &["get", "gizmos"]).await.code, 2);
    assert_eq!(ctl(&s.base, Some(&token), &["frobnicate"]).await.code, 2);
    write(
        dir.path(),
        "bad.yaml",
        "apiVersion: causeway.dev/v1\nkind: Cluster\nmetadata: {name: x}\nspec: {trustDomain: x.org, colour: red}\n",
    );
    let o = ctl(
        &s.base,
        Some(&token),
        &["apply", "-f", dir.path().join("bad.yaml").to_str().unwrap()],
    )
    .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("colour"), "{}", o.stderr);
    // Connection errors: exit 3.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let o = ctl(&closed, Some(&token), &["get", "clusters"]).await;
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stderr.contains("cannot reach"), "{}", o.stderr);

    // delete.
    let o = ctl(
        &s.base,
        Some(&token),
        &["delete", "export", "shop/cart", "-c", "eu-1"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        s.admin()
            .get::<Value>(&export_path("eu-1", "shop", "cart"))
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
    let o = ctl(
        &s.base,
        Some(&token),
        &["delete", "export", "shop/cart", "-c", "eu-1"],
    )
    .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("404"), "{}", o.stderr);
}

/// `explain` calls a gateway admin's `/debug/route` with the host and headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_queries_the_gateway_admin_endpoint() {
    use axum::extract::RawQuery;
    let app = axum::Router::new().route(
        "/debug/route",
        axum::routing::get(|RawQuery(q): RawQuery| async move {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_str(&q.unwrap_or_default()).unwrap();
            axum::Json(serde_json::json!({"decision": "route", "query": pairs}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let o = ctl(
        "http://127.0.0.1:9",
        None,
        &[
            "explain",
            "cart.shop.svc.clusterset.local",
            "-H",
            "x-tenant: eu",
            "--gateway",
            &gw,
        ],
    )
    .await;
    task.abort();
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(
        v["query"][0],
        serde_json::json!(["host", "cart.shop.svc.clusterset.local"])
    );
    assert_eq!(v["query"][1], serde_json::json!(["header", "x-tenant: eu"]));
    let o = ctl(
        "http://127.0.0.1:9",
        None,
        &["explain", "x", "-H", "novalue", "--gateway", &gw],
    )
    .await;
    assert_eq!(o.code, 2);
}
