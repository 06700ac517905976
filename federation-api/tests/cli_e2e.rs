//! `causewayctl` end to end: the built binary against a server started in
//! the test.
#![allow(clippy::unwrap_used)]

#[path = "support/process.rs"]
mod process;
#[path = "support/api.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use causeway_api::client::{Client, Versioned};
use process::ServerProcess;
use serde_json::{Value, json};
use support::*;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A `causewayctl` invocation: no ambient `CAUSEWAY_*` variables and a
/// config directory of its own (no config file unless the test writes one).
struct Ctl {
    cmd: tokio::process::Command,
    stdin: Option<Vec<u8>>,
}

fn noconfig() -> PathBuf {
    std::env::temp_dir().join(format!("causewayctl-test-noconfig-{}", std::process::id()))
}

impl Ctl {
    fn new(args: &[&str]) -> Self {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_causewayctl"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAUSEWAY") {
                cmd.env_remove(k);
            }
        }
        cmd.env("XDG_CONFIG_HOME", noconfig()).args(args);
        Self { cmd, stdin: None }
    }

    fn server(mut self, server: &str) -> Self {
        self.cmd.env("CAUSEWAY_SERVER", server);
        self
    }

    fn token(mut self, token: Option<&str>) -> Self {
        if let Some(t) = token {
            self.cmd.env("CAUSEWAY_TOKEN", t);
        }
        self
    }

    fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    fn stdin(mut self, data: &str) -> Self {
        self.stdin = Some(data.as_bytes().to_vec());
        self
    }

    async fn run(mut self) -> Out {
        use tokio::io::AsyncWriteExt;
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = self.cmd.spawn().unwrap();
        if let Some(data) = self.stdin.take() {
            let mut w = child.stdin.take().unwrap();
            w.write_all(&data).await.unwrap();
            drop(w);
        }
        let o = child.wait_with_output().await.unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

async fn ctl(server: &str, token: Option<&str>, args: &[&str]) -> Out {
    Ctl::new(args).server(server).token(token).run().await
}

/// `causewayctl LEFT | causewayctl RIGHT`: two processes joined by a pipe.
fn pipe(server: &str, token: &str, left: &[&str], right: &[&str]) -> (Out, Out) {
    let cmd = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_causewayctl"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CAUSEWAY") {
                c.env_remove(k);
            }
        }
        c.env("XDG_CONFIG_HOME", noconfig())
            .env("CAUSEWAY_SERVER", server)
            .env("CAUSEWAY_TOKEN", token)
            .args(args)
            .stderr(Stdio::piped());
        c
    };
    let mut l = cmd(left).stdout(Stdio::piped()).spawn().unwrap();
    let r = cmd(right)
        .stdin(l.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ro = r.wait_with_output().unwrap();
    let lo = l.wait_with_output().unwrap();
    let out = |o: std::process::Output| Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    (out(lo), out(ro))
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

/// Every kind `apply` takes, two clusters in different trust domains.
const FULL_CATALOG: &str = r#"
apiVersion: causeway.dev/v1
kind: Cluster
metadata: {name: eu-1, labels: {team: payments}}
spec:
  cloud: aws
  region: eu-west-1
  zone: eu-west-1a
  jurisdictions: [eu, de]
  labels: {tier: gold}
  gateway: {endpoints: ["gw.eu-1.example.com:15443"]}
  trustDomain: eu-1.example.org
---
apiVersion: causeway.dev/v1
kind: Cluster
metadata: {name: us-1}
spec: {cloud: gcp, region: us-east1, zone: us-east1-b, jurisdictions: [us], trustDomain: us-1.example.org}
---
apiVersion: causeway.dev/v1
kind: ServiceExport
metadata: {name: cart, namespace: shop, cluster: eu-1}
spec:
  ports: [{name: http, port: 8080, appProtocol: http}, {name: grpc, protocol: TCP, port: 9090}]
  endpoints: [{zone: eu-west-1a, ready: 3}]
  weight: 50
---
apiVersion: causeway.dev/v1
kind: ServiceExport
metadata: {name: cart, namespace: shop, cluster: us-1}
spec:
  ports: [{name: http, port: 8080}]
---
apiVersion: causeway.dev/v1
kind: ExportPolicy
metadata: {name: shop}
spec: {namespaces: [shop], clusters: [eu-1, us-1]}
---
apiVersion: causeway.dev/v1
kind: ResidencyPolicy
metadata: {name: eu-only}
spec: {services: [shop/cart], allowedJurisdictions: [eu]}
---
apiVersion: causeway.dev/v1
kind: TrafficPolicy
metadata: {name: cart}
spec: {service: shop/cart, weights: {eu-1: 90, us-1: 10}, timeouts: {request: 3s}}
---
apiVersion: causeway.dev/v1
kind: AccessPolicy
metadata: {name: cart-callers}
spec: {services: [shop/cart], allow: [{trustDomains: [eu-1.example.org]}]}
"#;

/// A real CA's bundle for `td`, as a TrustBundle resource owned by `owner`.
fn trust_bundle(td: &str, owner: &str) -> Value {
    use causeway_trust::{Authority, AuthorityConfig, SystemClock, TrustDomain};
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::load_or_create(
        dir.path(),
        TrustDomain::new(td).unwrap(),
        AuthorityConfig::default(),
        std::sync::Arc::new(SystemClock),
    )
    .unwrap();
    let bundle: Value = serde_json::from_str(&ca.bundle().with_sequence(3).to_json()).unwrap();
    json!({"apiVersion": "causeway.dev/v1", "kind": "TrustBundle",
        "metadata": {"name": td}, "spec": {"ownerCluster": owner, "bundle": bundle}})
}

/// The store revision (every list page carries it).
async fn store_revision(c: &Client) -> u64 {
    c.get::<Value>("/v1/clusters").await.unwrap().value["revision"]
        .as_u64()
        .unwrap()
}

/// A server binary holding [`FULL_CATALOG`] and two trust bundles, applied
/// with the CLI; returns the admin token.
async fn seeded() -> (ServerProcess, String) {
    let s = ServerProcess::start().await;
    let token = s.token(&["admin"]);
    let o = Ctl::new(&["apply", "-f", "-"])
        .server(&s.base)
        .token(Some(&token))
        .stdin(FULL_CATALOG)
        .run()
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.matches(" created").count(), 8, "{}", o.stdout);
    let bundles = json!([
        trust_bundle("eu-1.example.org", "eu-1"),
        trust_bundle("us-1.example.org", "us-1")
    ]);
    let o = Ctl::new(&["apply", "-f", "-"])
        .server(&s.base)
        .token(Some(&token))
        .stdin(&bundles.to_string())
        .run()
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.matches(" created").count(), 2, "{}", o.stdout);
    (s, token)
}

/// `get -o yaml | apply -f -` changes nothing, for every kind at once and
/// kind by kind, and the same List restores the catalog into an empty
/// federation (clusters before the bundles that name them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_yaml_apply_round_trip_is_idempotent_and_restores() {
    let (s, token) = seeded().await;
    let admin = s.admin();
    let rev = store_revision(&admin).await;

    let (get, apply) = pipe(
        &s.base,
        &token,
        &["get", "all", "-o", "yaml"],
        &["apply", "-f", "-"],
    );
    assert_eq!(get.code, 0, "{}", get.stderr);

    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let lines: Vec<&str> = apply.stdout.lines().collect();
    assert_eq!(lines.len(), 10, "{}", apply.stdout);
    assert!(
        lines.iter().all(|l| l.ends_with(" unchanged")),
        "{}",
        apply.stdout
    );
    assert_eq!(store_revision(&admin).await, rev, "nothing was written");

    for (kind, format) in [
        ("clusters", "yaml"),
        ("exports", "json"),
        ("exportpolicies", "yaml"),
        ("trafficpolicies", "json"),
        ("access", "yaml"),
        ("bundles", "yaml"),
    ] {
        let (get, apply) = pipe(
            &s.base,
            &token,
            &["get", kind, "-o", format],
            &["apply", "-f", "-"],
        );
        assert_eq!(get.code, 0, "{kind}: {}", get.stderr);
        assert_eq!(apply.code, 0, "{kind}: {}", apply.stderr);
        assert!(
            !apply.stdout.is_empty() && apply.stdout.lines().all(|l| l.ends_with(" unchanged")),
            "{kind}: {}",
            apply.stdout
        );
    }
    assert_eq!(store_revision(&admin).await, rev, "nothing was written");
    // One resource, as `get NAME -o yaml` prints it.
    let (_, apply) = pipe(
        &s.base,
        &token,
        &["get", "export", "shop/cart", "-c", "eu-1", "-o", "yaml"],
        &["apply", "-f", "-"],
    );
    assert_eq!(
        apply.stdout.trim(),
        "ServiceExport clusters/eu-1/exports/shop/cart unchanged"
    );

    // Restore the List into an empty federation.
    let backup = ctl(&s.base, Some(&token), &["get", "all", "-o", "yaml"]).await;
    assert!(
        backup
            .stdout
            .starts_with("apiVersion: causeway.dev/v1\nitems:\n")
            && backup.stdout.ends_with("\nkind: List\n"),
        "{}",
        backup.stdout
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "backup.yaml", &backup.stdout);
    let file = dir.path().join("backup.yaml");
    let file = file.to_str().unwrap();
    let s2 = ServerProcess::start().await;
    let token2 = s2.token(&["admin"]);
    let o = ctl(&s2.base, Some(&token2), &["apply", "-f", file]).await;
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_eq!(o.stdout.matches(" created").count(), 10, "{}", o.stdout);
    let last = o.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("TrustBundle "),
        "bundles go last: {}",
        o.stdout
    );
    let o = ctl(&s2.base, Some(&token2), &["diff", "-f", file]).await;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{}", o.stderr);
    let restored: Value = serde_json::from_str(
        &ctl(&s2.base, Some(&token2), &["get", "all", "-o", "json"])
            .await
            .stdout,
    )
    .unwrap();
    let original: Value = serde_json::from_str(
        &ctl(&s.base, Some(&token), &["get", "all", "-o", "json"])
            .await
            .stdout,
    )
    .unwrap();
    let specs = |v: &Value| -> Vec<Value> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| json!([i["kind"], i["metadata"]["name"], i["spec"]]))
            .collect()
    };
    assert_eq!(specs(&restored), specs(&original));
}

/// `diff -f`: nothing to show exits 0; a change shows a unified diff and
/// exits 1, writing nothing; an API refusal exits 4, bad input 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_what_apply_would_change() {
    let (s, token) = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "catalog.yaml", FULL_CATALOG);
    let file = dir.path().join("catalog.yaml");
    let f = file.to_str().unwrap();
    let o = ctl(&s.base, Some(&token), &["diff", "-f", f]).await;
    assert_eq!((o.code, o.stdout.as_str()), (0, ""), "{}", o.stderr);

    let rev = store_revision(&s.admin()).await;
    write(
        dir.path(),
        "catalog.yaml",
        &FULL_CATALOG
            .replace("ready: 3", "ready: 5")
            .replace("name: eu-only", "name: eu-strict"),
    );
    let o = ctl(&s.base, Some(&token), &["diff", "-f", f]).await;
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("--- live/ServiceExport clusters/eu-1/exports/shop/cart"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("+++ desired/ServiceExport clusters/eu-1/exports/shop/cart"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("-  - ready: 3") && o.stdout.contains("+  - ready: 5"),
        "{}",
        o.stdout
    );
    // A new resource diffs against nothing.
    assert!(
        o.stdout
            .contains("+++ desired/ResidencyPolicy policies/residency/eu-strict"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("+  name: eu-strict"), "{}", o.stdout);
    assert_eq!(store_revision(&s.admin()).await, rev);

    let o = ctl(&s.base, Some("not-a-token"), &["diff", "-f", f]).await;
    assert_eq!(o.code, 4, "{}", o.stderr);
    assert!(o.stderr.contains("401"), "{}", o.stderr);
    write(
        dir.path(),
        "bad.yaml",
        "kind: Cluster\nmetadata: {name: x}\nspec: {trustDomain: x.org, colour: red}\n",
    );
    let o = ctl(
        &s.base,
        Some(&token),
        &["diff", "-f", dir.path().join("bad.yaml").to_str().unwrap()],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("colour"), "{}", o.stderr);
}

/// `delete -f` deletes what the files name, exports before their clusters;
/// missing resources fail unless `--ignore-not-found`; undeletable kinds
/// stop everything before the first deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_by_file() {
    let (s, token) = seeded().await;
    let admin = s.admin();
    let dir = tempfile::tempdir().unwrap();
    // A TrustBundle cannot be deleted: refused up front, nothing deleted.
    let backup = ctl(&s.base, Some(&token), &["get", "all", "-o", "yaml"]).await;
    write(dir.path(), "all.yaml", &backup.stdout);
    let rev = store_revision(&admin).await;
    let o = ctl(
        &s.base,
        Some(&token),
        &[
            "delete",
            "-f",
            dir.path().join("all.yaml").to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(
        o.stderr.contains("TrustBundle cannot be deleted"),
        "{}",
        o.stderr
    );
    assert_eq!(store_revision(&admin).await, rev);

    write(dir.path(), "catalog.yaml", FULL_CATALOG);
    let f = dir.path().join("catalog.yaml");
    let f = f.to_str().unwrap();
    let o = ctl(&s.base, Some(&token), &["delete", "-f", f]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", o.stdout);
    assert!(
        lines.iter().all(|l| l.ends_with(" deleted")),
        "{}",
        o.stdout
    );
    let pos = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    assert!(
        pos("exports/shop/cart") < pos("Cluster clusters/eu-1"),
        "{}",
        o.stdout
    );
    assert!(
        admin
            .list::<Value>("/v1/clusters")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        admin
            .list::<Value>("/v1/policies/traffic")
            .await
            .unwrap()
            .is_empty()
    );
    // Again: every deletion fails with 404 (each one reported), exit 1.
    let o = ctl(&s.base, Some(&token), &["delete", "-f", f]).await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.stderr.matches("404").count(), 8, "{}", o.stderr);
    let o = ctl(
        &s.base,
        Some(&token),
        &["delete", "-f", f, "--ignore-not-found"],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stdout.matches("not found (ignored)").count(),
        8,
        "{}",
        o.stdout
    );
    // By name, with a stale --if-match: 412.
    let o = ctl(&s.base, Some(&token), &["apply", "-f", f]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = ctl(
        &s.base,
        Some(&token),
        &["delete", "tp", "cart", "--if-match", "1"],
    )
    .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("412"), "{}", o.stderr);
    let o = ctl(&s.base, Some(&token), &["delete", "tp", "cart", "-f", f]).await;
    assert_eq!(
        o.code, 2,
        "KIND NAME and -f exclude each other: {}",
        o.stderr
    );
}

/// `patch`: a merge patch changes only what it names, a no-op writes
/// nothing, and the result is validated and authorized as a PUT is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_merges_validates_and_authorizes() {
    let (s, token) = seeded().await;
    let admin = s.admin();
    let before: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
    let p = r#"{"spec": {"labels": {"tier": null, "ring": "canary"}, "zone": "eu-west-1b"}}"#;
    let o = ctl(
        &s.base,
        Some(&token),
        &["patch", "cluster", "eu-1", "-p", p],
    )
    .await;
    assert_eq!(
        (o.code, o.stdout.trim()),
        (0, "clusters/eu-1 patched"),
        "{}",
        o.stderr
    );
    let after: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
    assert_eq!(after.value["spec"]["labels"], json!({"ring": "canary"}));
    assert_eq!(after.value["spec"]["zone"], "eu-west-1b");
    assert_eq!(after.value["spec"]["jurisdictions"], json!(["eu", "de"]));
    assert_eq!(
        after.value["metadata"]["labels"],
        json!({"team": "payments"})
    );
    assert_eq!(
        after.value["metadata"]["createdAt"],
        before.value["metadata"]["createdAt"]
    );
    assert!(after.revision > before.revision);
    // The same patch again changes nothing and writes nothing.
    let rev = store_revision(&admin).await;
    let o = ctl(&s.base, Some(&token), &["patch", "cl", "eu-1", "-p", p]).await;
    assert_eq!(
        (o.code, o.stdout.trim()),
        (0, "clusters/eu-1 unchanged"),
        "{}",
        o.stderr
    );
    assert_eq!(store_revision(&admin).await, rev);
    // YAML from a file, an export, printed as YAML.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "p.yaml", "spec:\n  weight: 0\n");
    let o = ctl(
        &s.base,
        Some(&token),
        &[
            "patch",
            "export",
            "shop/cart",
            "-c",
            "eu-1",
            "--patch-file",
            dir.path().join("p.yaml").to_str().unwrap(),
            "-o",
            "yaml",
        ],
    )
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("kind: ServiceExport") && o.stdout.contains("weight: 0"),
        "{}",
        o.stdout
    );
    // Validation: the merged result must be a valid Cluster.
    let o = ctl(
        &s.base,
        Some(&token),
        &[
            "patch",
            "cluster",
            "eu-1",
            "-p",
            r#"{"spec":{"colour":"red"}}"#,
        ],
    )
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("400") && o.stderr.contains("spec.colour"),
        "{}",
        o.stderr
    );
    let o = ctl(
        &s.base,
        Some(&token),
        &[
            "patch",
            "cluster",
            "eu-1",
            "-p",
            r#"{"metadata":{"name":"us-1"}}"#,
        ],
    )
    .await;
    assert!(
        o.stderr.contains("400") && o.stderr.contains("metadata.name"),
        "{}",
        o.stderr
    );
    // Authorization: us-1's token may not patch eu-1, nor policies.
    let us = s.token(&["cluster:us-1"]);
    let o = ctl(
        &s.base,
        Some(&us),
        &["patch", "cluster", "eu-1", "-p", r#"{"spec":{"zone":"x"}}"#],
    )
    .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("403"), "{}", o.stderr);
    let o = ctl(
        &s.base,
        Some(&us),
        &[
            "patch",
            "tp",
            "cart",
            "-p",
            r#"{"spec":{"weights":{"us-1":100}}}"#,
        ],
    )
    .await;
    assert!(o.stderr.contains("403"), "{}", o.stderr);
    // Not even a no-op is answered without the write permission.
    let o = ctl(
        &s.base,
        Some(&us),
        &["patch", "cluster", "eu-1", "-p", r#"{"spec":{}}"#],
    )
    .await;
    assert!(o.stderr.contains("403"), "{}", o.stderr);
    // A stale --if-match: 412, nothing written.
    let rev = store_revision(&admin).await;
    let o = ctl(
        &s.base,
        Some(&token),
        &[
            "patch",
            "cluster",
            "eu-1",
            "--if-match",
            "2",
            "-p",
            r#"{"spec":{"zone":"x"}}"#,
        ],
    )
    .await;
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("412"), "{}", o.stderr);
    assert_eq!(store_revision(&admin).await, rev);
    // Kinds without PATCH, and patches that are not objects.
    assert_eq!(
        ctl(
            &s.base,
            Some(&token),
            &["patch", "bundle", "eu-1.example.org", "-p", "{}"]
        )
        .await
        .code,
        2
    );
    assert_eq!(
        ctl(
            &s.base,
            Some(&token),
            &["patch", "cluster", "eu-1", "-p", "[1]"]
        )
        .await
        .code,
        2
    );
}

/// `version` prints the client's and the server's version; `--client`
/// needs no server; an unreachable server still shows the client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_shows_client_and_server() {
    let s = ServerProcess::start().await;
    let v = env!("CARGO_PKG_VERSION");
    let o = ctl(&s.base, None, &["version"]).await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.starts_with(&format!("Client Version: {v}")),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(&format!("\nServer Version: {v}")),
        "{}",
        o.stdout
    );
    let o = ctl(&s.base, None, &["version", "-o", "json"]).await;
    let j: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(j["serverVersion"]["version"], v);
    assert_eq!(j["clientVersion"]["version"], v);
    drop(s);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let o = ctl(&closed, None, &["version", "--client"]).await;
    assert_eq!(
        (o.code, o.stdout.trim().to_owned()),
        (0, format!("Client Version: {v}"))
    );
    let o = ctl(&closed, None, &["version"]).await;
    assert_eq!(o.code, 3, "{}", o.stderr);
    assert!(o.stdout.starts_with("Client Version:"), "{}", o.stdout);
}

/// Completion scripts that bash, zsh and fish accept; bash completes the
/// subcommands for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_scripts_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = Ctl::new(&["completion", shell]).run().await;
        assert_eq!(o.code, 0, "{shell}: {}", o.stderr);
        assert!(
            o.stdout.contains("causewayctl") && o.stdout.contains("apply"),
            "{shell}"
        );
        let file = dir.path().join(format!("c.{shell}"));
        std::fs::write(&file, &o.stdout).unwrap();
        let check = std::process::Command::new(shell)
            .arg("-n")
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("{shell} must be installed (scripts/setup.sh): {e}"));
        assert!(
            check.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let script = format!(
        "source {}\nCOMP_WORDS=(causewayctl ge); COMP_CWORD=1; COMP_LINE='causewayctl ge'; COMP_POINT=14\n\
         _causewayctl causewayctl ge causewayctl\necho \"${{COMPREPLY[@]}}\"\n\
         COMP_WORDS=(causewayctl config use); COMP_CWORD=2; COMP_LINE='causewayctl config use'; COMP_POINT=22\n\
         _causewayctl causewayctl use config\necho \"${{COMPREPLY[@]}}\"\n",
        dir.path().join("c.bash").display()
    );
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines
            .first()
            .map(|l| l.split_whitespace().collect::<Vec<_>>()),
        Some(vec!["get"]),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(lines.get(1).map(|l| l.trim()), Some("use-context"), "{out}");
    assert_eq!(Ctl::new(&["completion", "tcsh"]).run().await.code, 2);
}

/// Named contexts in the config file: `config set-context`/`use-context`
/// choose the server and token; `--context` and `CAUSEWAY_CONTEXT` pick
/// another; flags and variables override a context; `--token-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contexts_token_files_and_precedence() {
    let (s, token) = seeded().await;
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("causeway");
    let run = |args: &[&str]| Ctl::new(args).env("XDG_CONFIG_HOME", home.path());
    write(home.path(), "admin.token", &format!("{token}\n"));
    write(home.path(), "empty.token", "  \n");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // No config yet: the default server, and a clear error for a named context.
    let o = run(&["get", "clusters", "--context", "prod"]).run().await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("no context \"prod\"") && o.stderr.contains("set-context"),
        "{}",
        o.stderr
    );
    let o = run(&[
        "config",
        "set-context",
        "prod",
        "--server",
        &s.base,
        "--token-file",
    ])
    .env("PWD_IGNORED", "")
    .run()
    .await;
    assert_eq!(o.code, 2, "--token-file needs a value");
    let tf = home.path().join("admin.token");
    let o = run(&[
        "config",
        "set-context",
        "prod",
        "--server",
        &s.base,
        "--token-file",
        tf.to_str().unwrap(),
        "--use-context",
    ])
    .run()
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(&[
        "config",
        "set-context",
        "dead",
        "--server",
        &closed,
        "--token",
        "t0k3n",
    ])
    .run()
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cfg.join("config"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The current context connects with its token file.
    let o = run(&["get", "clusters"]).run().await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("eu-1"), "{}", o.stdout);
    let o = run(&["config", "current-context"]).run().await;
    assert_eq!(o.stdout.trim(), "prod");
    let o = run(&["config", "get-contexts"]).run().await;
    let row = o
        .stdout
        .lines()
        .find(|l| l.contains("prod"))
        .unwrap()
        .to_owned();
    assert!(row.starts_with('*'), "{}", o.stdout);
    assert!(
        o.stdout
            .lines()
            .any(|l| l.starts_with(' ') && l.contains("dead")),
        "{}",
        o.stdout
    );
    // Another context by flag or variable: the dead server, exit 3.
    assert_eq!(
        run(&["get", "clusters", "--context", "dead"])
            .run()
            .await
            .code,
        3
    );
    assert_eq!(
        run(&["get", "clusters"])
            .env("CAUSEWAY_CONTEXT", "dead")
            .run()
            .await
            .code,
        3
    );
    // Variables and flags beat the context.
    let o = run(&["get", "clusters"])
        .env("CAUSEWAY_CONTEXT", "dead")
        .env("CAUSEWAY_SERVER", &s.base)
        .env("CAUSEWAY_TOKEN", &token)
        .run()
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(&["get", "clusters", "--server", &closed]).run().await;
    assert_eq!(o.code, 3, "{}", o.stderr);
    // --token-file: a flag beats CAUSEWAY_TOKEN; an empty file is refused.
    let o = run(&["get", "clusters", "--token-file", tf.to_str().unwrap()])
        .env("CAUSEWAY_TOKEN", "bad")
        .run()
        .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(&["get", "clusters"])
        .env("CAUSEWAY_TOKEN", "bad")
        .run()
        .await;
    assert_eq!(o.code, 1, "the variable beats the context's token file");
    assert!(o.stderr.contains("401"), "{}", o.stderr);
    let o = run(&[
        "get",
        "clusters",
        "--token-file",
        home.path().join("empty.token").to_str().unwrap(),
    ])
    .run()
    .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("is empty"), "{}", o.stderr);
    let o = run(&[
        "get",
        "clusters",
        "--token",
        "a",
        "--token-file",
        tf.to_str().unwrap(),
    ])
    .run()
    .await;
    assert_eq!(o.code, 2, "{}", o.stderr);
    // `config view` redacts inline tokens unless --raw.
    let o = run(&["config", "view"]).run().await;
    assert!(
        o.stdout.contains("token: REDACTED") && !o.stdout.contains("t0k3n"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("currentContext: prod"), "{}", o.stdout);
    let o = run(&["config", "view", "--raw"]).run().await;
    assert!(o.stdout.contains("t0k3n"), "{}", o.stdout);
    // use-context of an unknown name fails; delete-context of the current one clears it.
    let o = run(&["config", "use-context", "nope"]).run().await;
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("prod, dead") || o.stderr.contains("dead, prod"),
        "{}",
        o.stderr
    );
    assert_eq!(run(&["config", "use-context", "dead"]).run().await.code, 0);
    assert_eq!(
        run(&["config", "delete-context", "dead"]).run().await.code,
        0
    );
    assert_eq!(run(&["config", "current-context"]).run().await.code, 2);
    // --config names another file; a broken file names the field.
    write(
        home.path(),
        "broken",
        "contexts:\n- name: a\n  server: http://x\n  tokn: y\n",
    );
    let o = Ctl::new(&[
        "get",
        "clusters",
        "--config",
        home.path().join("broken").to_str().unwrap(),
    ])
    .run()
    .await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("tokn"), "{}", o.stderr);
}

/// Kinds are found by their singular, plural and short names; `access`
/// is not mangled into `acce`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kind_names_and_help_texts() {
    let (s, token) = seeded().await;
    for kind in [
        "access",
        "accesspolicy",
        "accesspolicies",
        "ap",
        "AccessPolicies",
    ] {
        let o = ctl(&s.base, Some(&token), &["get", kind]).await;
        assert_eq!(o.code, 0, "{kind}: {}", o.stderr);
        assert!(
            o.stdout.contains("AccessPolicy") && o.stdout.contains("cart-callers"),
            "{kind}: {}",
            o.stdout
        );
    }
    let o = ctl(&s.base, Some(&token), &["get", "acce"]).await;
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("unknown kind \"acce\""), "{}", o.stderr);
    // The table: header, one row per resource, aligned columns.
    let o = ctl(&s.base, Some(&token), &["get", "clusters"]).await;
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", o.stdout);
    let col = lines[0].find("CLUSTER").unwrap();
    assert!(
        lines[1..].iter().all(|l| l[..col].ends_with("   ")),
        "{}",
        o.stdout
    );
    // Help that helps.
    let o = Ctl::new(&["--help"]).run().await;
    for needle in [
        "Exit codes",
        "CAUSEWAY_CONTEXT",
        "~/.config/causeway/config",
        "Examples",
        "accesspolicies (access, ap)",
    ] {
        assert!(
            o.stdout.contains(needle),
            "--help lacks {needle}: {}",
            o.stdout
        );
    }
    let o = Ctl::new(&["explain", "--help"]).run().await;
    assert!(o.stdout.contains("not `kubectl explain`"), "{}", o.stdout);
    let o = Ctl::new(&["apply", "--help"]).run().await;
    assert!(o.stdout.contains("kind: List"), "{}", o.stdout);
}
