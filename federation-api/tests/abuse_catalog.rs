//! Abuse: catalog poisoning through the federation API, on a real etcd.
//!
//! A member cluster is trusted only for what it owns. Every attack here must
//! be refused with a 4xx problem and leave the store unchanged (the etcd
//! revision does not move and the victim's records read back identical).
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::sync::Arc;

use causeway_api::client::{Client, Precondition, Versioned};
use causeway_federation::store::{EtcdStore, EtcdStoreConfig};
use causeway_federation::testing::EtcdProcess;
use causeway_trust::{Authority, AuthorityConfig, Bundle, SystemClock, TrustDomain};
use http::Method;
use serde_json::{Value, json};
use support::*;

struct World {
    s: TestServer,
    _etcd: Arc<EtcdProcess>,
    eu: String,
    us: String,
}

async fn world(ns: &str) -> World {
    world_with(ns, |_| {}).await
}

async fn world_with(
    ns: &str,
    tweak: impl FnOnce(&mut causeway_federation::server::ServerConfig),
) -> World {
    // An etcd of its own: the tests assert the store revision does not
    // move, and etcd's revision counts writes under every prefix.
    let etcd = Arc::new(EtcdProcess::start().await.unwrap());
    let store = EtcdStore::connect(&EtcdStoreConfig {
        endpoints: etcd.endpoints(),
        namespace: format!("/abuse-{ns}-{}", std::process::id()),
        ..EtcdStoreConfig::default()
    })
    .await
    .unwrap();
    let s = TestServer::start_with(Arc::new(store), tweak).await;
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
    // The victim's own export and bundle, and a namespace the victim owns.
    let us = s.token(&["cluster:us-1"]);
    let victim = Client::new(&s.base, Some(us.clone())).unwrap();
    let _: Versioned<Value> = victim
        .put(
            &export_path("us-1", "pay", "checkout"),
            &export("us-1", "pay", "checkout", 443, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    let bundle: Value =
        serde_json::from_str(&ca_bundle("us-1.example.org").with_sequence(5).to_json()).unwrap();
    let r = victim
        .raw(
            Method::PUT,
            "/v1/trust-domains/us-1.example.org/bundle",
            Some(serde_json::to_vec(&bundle).unwrap()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 201, "{:?}", r.body);
    let policy = json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
        "metadata": {"name": "pay"}, "spec": {"namespaces": ["pay", "pay-*"], "clusters": ["us-1"]}});
    let _: Versioned<Value> = admin
        .put("/v1/policies/export/pay", &policy, Precondition::None)
        .await
        .unwrap();
    World {
        eu: s.token(&["cluster:eu-1"]),
        us,
        s,
        _etcd: etcd,
    }
}

/// Everything an attacker could have changed, read back as the admin.
async fn victim_state(s: &TestServer) -> Value {
    let admin = s.admin();
    let mut out = serde_json::Map::new();
    for path in [
        "/v1/clusters/us-1",
        "/v1/clusters/eu-1",
        "/v1/clusters/us-1/exports",
        "/v1/clusters/eu-1/exports",
        "/v1/trust-domains",
        "/v1/trust-domains/us-1.example.org/bundle",
        "/v1/policies/export",
        "/v1/imports",
    ] {
        let r = admin.raw(Method::GET, path, None, &[]).await.unwrap();
        let mut v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        // Liveness is computed at read time, not stored.
        strip(&mut v, "status");
        strip(&mut v, "revision");
        out.insert(
            path.to_owned(),
            json!({"status": r.status.as_u16(), "body": v}),
        );
    }
    Value::Object(out)
}

fn strip(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            if key == "status" && m.contains_key("kind") && m.get("kind") == Some(&json!("Cluster"))
            {
                m.remove(key);
            }
            if key == "revision" {
                m.remove(key);
            }
            m.values_mut().for_each(|x| strip(x, key));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip(x, key)),
        _ => {}
    }
}

/// Sends one attack; asserts a 4xx problem+json in `expected` and returns it.
async fn attack(
    w: &World,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    expected: &[u16],
) -> Value {
    let c = Client::new(&w.s.base, Some(token.to_owned())).unwrap();
    let r = c
        .raw(
            method.clone(),
            path,
            body.map(|b| serde_json::to_vec(&b).unwrap()),
            &[],
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    assert!(
        expected.contains(&r.status.as_u16()),
        "{method} {path}: got {} {v}, expected one of {expected:?}",
        r.status
    );
    assert_eq!(
        r.headers[http::header::CONTENT_TYPE],
        "application/problem+json"
    );
    v
}

/// A fresh CA's bundle for `td` (a real authority in a temporary directory).
fn ca_bundle(td: &str) -> Bundle {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::load_or_create(
        dir.path(),
        TrustDomain::new(td).unwrap(),
        AuthorityConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    ca.bundle()
}

async fn revision(s: &TestServer) -> u64 {
    s.store.current_revision().await.unwrap()
}

#[tokio::test]
async fn cluster_token_cannot_write_another_clusters_records() {
    let w = world("cross").await;
    let before = victim_state(&w.s).await;
    let rev = revision(&w.s).await;
    // Overwrite, delete or create the victim's export.
    let mut hijack = export("us-1", "pay", "checkout", 443, "TCP", "ClusterSetIP");
    hijack["spec"]["weight"] = json!(1000);
    attack(
        &w,
        &w.eu,
        Method::PUT,
        &export_path("us-1", "pay", "checkout"),
        Some(hijack),
        &[403],
    )
    .await;
    attack(
        &w,
        &w.eu,
        Method::DELETE,
        &export_path("us-1", "pay", "checkout"),
        None,
        &[403],
    )
    .await;
    attack(
        &w,
        &w.eu,
        Method::PUT,
        &export_path("us-1", "web", "new"),
        Some(export("us-1", "web", "new", 80, "TCP", "ClusterSetIP")),
        &[403],
    )
    .await;
    // The body names the victim while the path names the attacker.
    attack(
        &w,
        &w.eu,
        Method::PUT,
        &export_path("eu-1", "pay", "checkout"),
        Some(export(
            "us-1",
            "pay",
            "checkout",
            443,
            "TCP",
            "ClusterSetIP",
        )),
        &[400, 403],
    )
    .await;
    // The victim's cluster record and heartbeat.
    let mut rec = cluster("us-1", "us-1.example.org", "r");
    rec["spec"]["gateway"]["endpoints"] = json!(["attacker.example.com:15443"]);
    attack(
        &w,
        &w.eu,
        Method::PUT,
        "/v1/clusters/us-1",
        Some(rec.clone()),
        &[403],
    )
    .await;
    attack(
        &w,
        &w.eu,
        Method::PUT,
        "/v1/clusters/eu-1",
        Some(rec),
        &[400, 403],
    )
    .await;
    attack(&w, &w.eu, Method::DELETE, "/v1/clusters/us-1", None, &[403]).await;
    attack(
        &w,
        &w.eu,
        Method::POST,
        "/v1/clusters/us-1/heartbeat",
        None,
        &[403],
    )
    .await;
    // Policies are admin-only: a member cannot grant itself a namespace.
    let grab = json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
        "metadata": {"name": "pay"}, "spec": {"namespaces": ["pay"], "clusters": ["eu-1"]}});
    attack(
        &w,
        &w.eu,
        Method::PUT,
        "/v1/policies/export/pay",
        Some(grab),
        &[403],
    )
    .await;
    attack(
        &w,
        &w.eu,
        Method::DELETE,
        "/v1/policies/export/pay",
        None,
        &[403],
    )
    .await;
    let open = json!({"apiVersion": "causeway.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "open"},
        "spec": {"services": ["pay/checkout"], "allow": [{"trustDomains": ["eu-1.example.org"]}]}});
    attack(
        &w,
        &w.eu,
        Method::PUT,
        "/v1/policies/access/open",
        Some(open),
        &[403],
    )
    .await;
    // A read token writes nothing.
    let read = w.s.token(&["read"]);
    attack(
        &w,
        &read,
        Method::PUT,
        &export_path("eu-1", "web", "x"),
        Some(export("eu-1", "web", "x", 80, "TCP", "ClusterSetIP")),
        &[403],
    )
    .await;
    assert_eq!(revision(&w.s).await, rev, "a refused write moved the store");
    assert_eq!(victim_state(&w.s).await, before);
}

#[tokio::test]
async fn export_policy_keeps_owned_namespaces_owned() {
    let w = world("ns").await;
    let before = victim_state(&w.s).await;
    let rev = revision(&w.s).await;
    // Same name as the victim's service (namespace sameness would merge it
    // into the victim's import), in the exact namespace and in one matched
    // by the policy's wildcard.
    for (ns, name) in [("pay", "checkout"), ("pay", "other"), ("pay-eu", "x")] {
        let v = attack(
            &w,
            &w.eu,
            Method::PUT,
            &export_path("eu-1", ns, name),
            Some(export("eu-1", ns, name, 443, "TCP", "ClusterSetIP")),
            &[403],
        )
        .await;
        assert_eq!(v["errors"][0]["field"], "metadata.namespace");
    }
    assert_eq!(revision(&w.s).await, rev);
    assert_eq!(victim_state(&w.s).await, before);
    // Control: the attacker's token does work for a namespace nobody owns,
    // and the owner can export into its namespace.
    let ok = Client::new(&w.s.base, Some(w.eu.clone())).unwrap();
    let _: Versioned<Value> = ok
        .put(
            &export_path("eu-1", "web", "front"),
            &export("eu-1", "web", "front", 80, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
    let owner = Client::new(&w.s.base, Some(w.us.clone())).unwrap();
    let _: Versioned<Value> = owner
        .put(
            &export_path("us-1", "pay-eu", "x"),
            &export("us-1", "pay-eu", "x", 80, "TCP", "ClusterSetIP"),
            Precondition::None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn cluster_token_cannot_publish_or_take_over_another_trust_domain() {
    let w = world("td").await;
    let before = victim_state(&w.s).await;
    let rev = revision(&w.s).await;
    let attacker = ca_bundle("us-1.example.org");
    let evil: Value = serde_json::from_str(&attacker.clone().with_sequence(99).to_json()).unwrap();
    let td_path = "/v1/trust-domains/us-1.example.org/bundle";
    // Directly, as a bare bundle and as a resource naming either owner.
    attack(&w, &w.eu, Method::PUT, td_path, Some(evil.clone()), &[403]).await;
    for owner in ["us-1", "eu-1"] {
        let res = json!({"apiVersion": "causeway.dev/v1", "kind": "TrustBundle",
            "metadata": {"name": "us-1.example.org"},
            "spec": {"ownerCluster": owner, "bundle": evil}});
        attack(&w, &w.eu, Method::PUT, td_path, Some(res), &[400, 403]).await;
    }
    // Indirectly: re-register the attacker's own cluster in the victim's
    // trust domain, then publish that domain's bundle as its "owner".
    let mut rec = cluster("eu-1", "us-1.example.org", "r");
    rec["spec"]["trustDomain"] = json!("us-1.example.org");
    attack(
        &w,
        &w.eu,
        Method::PUT,
        "/v1/clusters/eu-1",
        Some(rec),
        &[403, 409],
    )
    .await;
    attack(&w, &w.eu, Method::PUT, td_path, Some(evil), &[403, 409]).await;
    // The victim cannot be rolled back to an older bundle either.
    let old: Value = serde_json::from_str(&attacker.with_sequence(1).to_json()).unwrap();
    attack(&w, &w.us, Method::PUT, td_path, Some(old), &[409]).await;
    assert_eq!(revision(&w.s).await, rev, "a refused write moved the store");
    assert_eq!(victim_state(&w.s).await, before);
}

/// Reads watch lines into `snap` until `done` holds (5 s at most).
async fn follow_until(
    w: &mut causeway_api::client::NdjsonWatch,
    snap: &mut causeway_api::model::CatalogSnapshot,
    done: impl Fn(&causeway_api::model::CatalogSnapshot) -> bool,
) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done(snap) {
        let line = tokio::time::timeout_at(deadline, w.next())
            .await
            .expect("watch caught up in time")
            .unwrap()
            .unwrap();
        causeway_api::client::apply_line(snap, line);
    }
}

/// The clusters of an import as the API derives it (empty when none).
async fn import_clusters(s: &TestServer, svc: &str) -> Vec<String> {
    let r = s
        .admin()
        .raw(Method::GET, &format!("/v1/imports/{svc}"), None, &[])
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    v["spec"]["clusters"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["cluster"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Finding 5 (SECURITY.md F11): an ExportPolicy also applies to exports
/// written before it. eu-1 exports `fin/ledger`, then an admin gives `fin`
/// to us-1 alone: eu-1 leaves the derived import, its export reads
/// `Valid=False (ExportPolicyDenied)`, and a watch follower's snapshot (what
/// every gateway routes from) drops it, incrementally and on a relist.
/// Deleting the policy restores it.
#[tokio::test]
async fn export_policy_withdraws_exports_written_before_it() {
    use causeway_api::model::{CatalogSnapshot, ExportKey};
    let w = world("retro").await;
    let eu = Client::new(&w.s.base, Some(w.eu.clone())).unwrap();
    let us = Client::new(&w.s.base, Some(w.us.clone())).unwrap();
    for (c, id) in [(&eu, "eu-1"), (&us, "us-1")] {
        let _: Versioned<Value> = c
            .put(
                &export_path(id, "fin", "ledger"),
                &export(id, "fin", "ledger", 8080, "TCP", "ClusterSetIP"),
                Precondition::None,
            )
            .await
            .unwrap();
    }
    assert_eq!(import_clusters(&w.s, "fin/ledger").await, ["eu-1", "us-1"]);
    let eu_key: ExportKey = "fin/ledger/eu-1".parse().unwrap();
    let mut watch = w.s.admin().watch(None).await.unwrap();
    let mut snap = CatalogSnapshot::default();
    follow_until(&mut watch, &mut snap, |s| s.exports.contains_key(&eu_key)).await;

    let policy = json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
        "metadata": {"name": "fin"}, "spec": {"namespaces": ["fin"], "clusters": ["us-1"]}});
    let put: Versioned<Value> =
        w.s.admin()
            .put("/v1/policies/export/fin", &policy, Precondition::None)
            .await
            .unwrap();
    let policy_rev = put.revision.unwrap();

    // The API's derived import and the export's conditions.
    assert_eq!(import_clusters(&w.s, "fin/ledger").await, ["us-1"]);
    let got: Versioned<Value> = eu.get(&export_path("eu-1", "fin", "ledger")).await.unwrap();
    let conds = got.value["status"]["conditions"]
        .as_array()
        .unwrap()
        .clone();
    let valid = conds.iter().find(|c| c["type"] == "Valid").unwrap();
    assert_eq!(valid["status"], "False", "{conds:?}");
    assert_eq!(valid["reason"], "ExportPolicyDenied", "{conds:?}");
    let list: Value = serde_json::from_slice(
        &w.s.admin()
            .raw(Method::GET, "/v1/imports", None, &[])
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    let ledger = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["namespace"] == "fin")
        .unwrap();
    assert_eq!(ledger["spec"]["clusters"].as_array().unwrap().len(), 1);

    // What a gateway routes from: the follower's snapshot, incrementally...
    follow_until(&mut watch, &mut snap, |s| s.revision >= policy_rev).await;
    let svc: causeway_api::model::ServiceRef = "fin/ledger".parse().unwrap();
    assert!(
        !snap.exports.contains_key(&eu_key),
        "gateway still routes to eu-1"
    );
    let routed: Vec<&str> = snap.imports[&svc]
        .spec
        .clusters
        .iter()
        .map(|c| c.cluster.as_str())
        .collect();
    assert_eq!(routed, ["us-1"]);
    // ...and from a fresh snapshot (a gateway that relists).
    let mut fresh = CatalogSnapshot::default();
    let mut w2 = w.s.admin().watch(None).await.unwrap();
    follow_until(&mut w2, &mut fresh, |s| s.revision >= policy_rev).await;
    assert!(!fresh.exports.contains_key(&eu_key));
    assert_eq!(fresh.imports[&svc].spec.clusters.len(), 1);

    // Deleting the policy restores eu-1 (the record was never lost).
    let r =
        w.s.admin()
            .raw(Method::DELETE, "/v1/policies/export/fin", None, &[])
            .await
            .unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(import_clusters(&w.s, "fin/ledger").await, ["eu-1", "us-1"]);
    follow_until(&mut watch, &mut snap, |s| s.exports.contains_key(&eu_key)).await;
    assert_eq!(snap.imports[&svc].spec.clusters.len(), 2);
}

/// Finding 6 (SECURITY.md F12): region and jurisdictions are placement
/// facts only an admin may change. A member token that re-registers (PUT or
/// merge patch) its own cluster with other jurisdictions or another region
/// gets 403 naming the field and nothing is written; it cannot delete its
/// record to register again either. Re-registering unchanged still works
/// (the agent does it on every start), and an admin may move the cluster.
#[tokio::test]
async fn member_cannot_change_its_own_placement() {
    let w = world("placement").await;
    let path = "/v1/clusters/eu-1";
    let before = victim_state(&w.s).await;
    let rev = revision(&w.s).await;
    let mut moved = cluster("eu-1", "eu-1.example.org", "r");
    moved["spec"]["jurisdictions"] = json!(["eu", "us"]);
    let p = attack(&w, &w.eu, Method::PUT, path, Some(moved), &[403]).await;
    assert_eq!(p["errors"][0]["field"], "spec.jurisdictions", "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("only an admin"),
        "{p}"
    );
    let mut moved = cluster("eu-1", "eu-1.example.org", "us-east-1");
    moved["spec"]["jurisdictions"] = json!(["us"]);
    let p = attack(&w, &w.eu, Method::PUT, path, Some(moved), &[403]).await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["spec.region", "spec.jurisdictions"], "{p}");
    let c = Client::new(&w.s.base, Some(w.eu.clone())).unwrap();
    let r = c
        .raw(
            Method::PATCH,
            path,
            Some(br#"{"spec":{"jurisdictions":["us"]}}"#.to_vec()),
            &[(
                http::header::CONTENT_TYPE,
                "application/merge-patch+json".to_owned(),
            )],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{:?}", String::from_utf8_lossy(&r.body));
    attack(&w, &w.eu, Method::DELETE, path, None, &[403]).await;
    assert_eq!(revision(&w.s).await, rev, "a refused write moved the store");
    assert_eq!(victim_state(&w.s).await, before);

    // Unchanged placement (reordered jurisdictions too) re-registers.
    let _: Versioned<Value> = c
        .put(
            path,
            &cluster("eu-1", "eu-1.example.org", "r"),
            Precondition::None,
        )
        .await
        .unwrap();
    // The admin moves it.
    let mut moved = cluster("eu-1", "eu-1.example.org", "r");
    moved["spec"]["jurisdictions"] = json!(["eu", "ch"]);
    let got: Versioned<Value> =
        w.s.admin()
            .put(path, &moved, Precondition::None)
            .await
            .unwrap();
    assert_eq!(got.value["spec"]["jurisdictions"], json!(["eu", "ch"]));
    moved["spec"]["jurisdictions"] = json!(["ch", "eu"]);
    let _: Versioned<Value> = c.put(path, &moved, Precondition::None).await.unwrap();
}

/// The status, problem and `Retry-After` of one export PUT.
async fn put_export_as(
    w: &World,
    token: &str,
    cluster: &str,
    name: &str,
    body: Value,
) -> (u16, Value, Option<String>) {
    let c = Client::new(&w.s.base, Some(token.to_owned())).unwrap();
    let r = c
        .raw(
            Method::PUT,
            &export_path(cluster, "shop", name),
            Some(serde_json::to_vec(&body).unwrap()),
            &[],
        )
        .await
        .unwrap();
    let retry = r
        .headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (
        r.status.as_u16(),
        serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        retry,
    )
}

/// Finding 7 (SECURITY.md F13): a member cluster cannot flood the catalog
/// every gateway receives. Past `quota.maxExportsPerCluster` a new export is
/// 429 `quota-exceeded` with `Retry-After` and nothing is written; replacing
/// an existing export, other clusters and admins are not affected; a delete
/// frees room. Past `quota.maxExportBytesPerCluster` a larger export is
/// refused the same way.
#[tokio::test]
async fn export_quota_per_cluster_is_429_with_retry_after() {
    let w = world_with("quota", |c| {
        c.quota.max_exports_per_cluster = 4;
        c.quota.max_export_bytes_per_cluster = 8 * 1024;
        c.quota.writes_per_second = 0;
    })
    .await;
    for i in 0..4 {
        let name = format!("s{i}");
        let (st, p, _) = put_export_as(
            &w,
            &w.eu,
            "eu-1",
            &name,
            export("eu-1", "shop", &name, 80, "TCP", "ClusterSetIP"),
        )
        .await;
        assert_eq!(st, 201, "{p}");
    }
    let rev = revision(&w.s).await;
    let (st, p, retry) = put_export_as(
        &w,
        &w.eu,
        "eu-1",
        "s4",
        export("eu-1", "shop", "s4", 80, "TCP", "ClusterSetIP"),
    )
    .await;
    assert_eq!(st, 429, "{p}");
    assert_eq!(
        p["type"], "https://causeway.dev/problems/quota-exceeded",
        "{p}"
    );
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1), "{p}");
    assert_eq!(revision(&w.s).await, rev, "a refused export was written");
    // Replacing one of its exports is not a new export.
    let (st, p, _) = put_export_as(
        &w,
        &w.eu,
        "eu-1",
        "s0",
        export("eu-1", "shop", "s0", 81, "TCP", "ClusterSetIP"),
    )
    .await;
    assert_eq!(st, 200, "{p}");
    // Another cluster's quota is its own; an admin is not limited.
    let (st, p, _) = put_export_as(
        &w,
        &w.us,
        "us-1",
        "s4",
        export("us-1", "shop", "s4", 80, "TCP", "ClusterSetIP"),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let admin = w.s.token(&["admin"]);
    let (st, p, _) = put_export_as(
        &w,
        &admin,
        "eu-1",
        "s5",
        export("eu-1", "shop", "s5", 80, "TCP", "ClusterSetIP"),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    // Deleting frees room (the admin's export counts too: 5 > 4, so two go).
    for name in ["s5", "s3"] {
        let r = Client::new(&w.s.base, Some(w.eu.clone()))
            .unwrap()
            .raw(
                Method::DELETE,
                &export_path("eu-1", "shop", name),
                None,
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 204);
    }
    let (st, p, _) = put_export_as(
        &w,
        &w.eu,
        "eu-1",
        "s4",
        export("eu-1", "shop", "s4", 80, "TCP", "ClusterSetIP"),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    // Size: a replacement that would take the cluster past 8 KiB.
    let mut big = export("eu-1", "shop", "s0", 80, "TCP", "ClusterSetIP");
    big["spec"]["exportedAnnotations"] = json!({"pad": "x".repeat(9000)});
    let (st, p, _) = put_export_as(&w, &w.eu, "eu-1", "s0", big).await;
    assert_eq!(st, 429, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("maxExportBytesPerCluster"),
        "{p}"
    );
}

/// Finding 7, write rate: a member cluster's writes past its burst are
/// 429 with `Retry-After`, whatever token of that cluster it uses; other
/// clusters keep writing.
#[tokio::test]
async fn cluster_write_rate_is_limited() {
    let w = world_with("rate", |c| {
        c.quota.writes_per_second = 1;
        c.quota.write_burst = 3;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let name = format!("r{i}");
        // A fresh token per write: the limit is per cluster, not per token.
        let token = w.s.token(&["cluster:eu-1"]);
        let (st, p, retry) = put_export_as(
            &w,
            &token,
            "eu-1",
            &name,
            export("eu-1", "shop", &name, 80, "TCP", "ClusterSetIP"),
        )
        .await;
        if st == 429 {
            assert_eq!(
                p["type"], "https://causeway.dev/problems/quota-exceeded",
                "{p}"
            );
            assert!(retry.is_some(), "{p}");
        }
        statuses.push(st);
    }
    // The world's setup spent one of us-1's writes, none of eu-1's.
    assert_eq!(&statuses[..3], [201, 201, 201], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let (st, p, _) = put_export_as(
        &w,
        &w.us,
        "us-1",
        "x",
        export("us-1", "shop", "x", 80, "TCP", "ClusterSetIP"),
    )
    .await;
    assert_eq!(st, 201, "{p}");
}
