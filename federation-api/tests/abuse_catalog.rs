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
    let s = TestServer::start_with(Arc::new(store), |_| {}).await;
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
