#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;

use super::*;

fn cluster_json() -> serde_json::Value {
    json!({
        "apiVersion": "causeway.dev/v1",
        "kind": "Cluster",
        "metadata": {"name": "eu-west-1", "resourceVersion": "42", "createdAt": "2026-01-02T03:04:05Z"},
        "spec": {
            "cloud": "aws", "region": "eu-west-1", "zone": "eu-west-1a",
            "jurisdictions": ["eu", "ie"],
            "gateway": {"endpoints": ["gw.example.com:15443", "[::1]:15443", "10.0.0.1:15443"]},
            "trustDomain": "eu-west-1.causeway.dev"
        },
        "status": {"connected": true}
    })
}

#[test]
fn cluster_round_trips() {
    let c: Cluster = decode_value(cluster_json()).unwrap();
    assert_eq!(c.id(), "eu-west-1");
    assert_eq!(c.metadata.resource_version, Some(42));
    assert_eq!(c.spec.gateway.endpoints[1].host(), "::1");
    assert_eq!(c.spec.gateway.endpoints[1].port(), 15443);
    let back = serde_json::to_value(&c).unwrap();
    assert_eq!(back, cluster_json());
}

#[test]
fn resource_version_accepts_number_writes_string() {
    let mut v = cluster_json();
    v["metadata"]["resourceVersion"] = json!(7);
    let c: Cluster = decode_value(v).unwrap();
    assert_eq!(c.metadata.resource_version, Some(7));
    assert_eq!(
        serde_json::to_value(&c).unwrap()["metadata"]["resourceVersion"],
        json!("7")
    );
}

#[test]
fn decode_errors_name_the_field() {
    let mut v = cluster_json();
    v["metadata"]["name"] = json!("EU_West");
    let e = decode_value::<Cluster>(v).unwrap_err();
    assert_eq!(e.field, "metadata.name");
    assert!(e.message.contains("invalid cluster id"), "{e}");

    let mut v = cluster_json();
    v["spec"]["colour"] = json!("blue");
    let e = decode_value::<Cluster>(v).unwrap_err();
    assert_eq!(e.field, "spec.colour");
    assert!(e.message.contains("unknown field"), "{e}");

    let mut v = cluster_json();
    v["spec"]["gateway"]["endpoints"][1] = json!("nohostport");
    let e = decode_value::<Cluster>(v).unwrap_err();
    assert_eq!(e.field, "spec.gateway.endpoints[1]");

    let mut v = cluster_json();
    v["spec"]["jurisdictions"] = json!(["EU"]);
    let e = decode_value::<Cluster>(v).unwrap_err();
    assert_eq!(e.field, "spec.jurisdictions");

    let mut v = cluster_json();
    v["apiVersion"] = json!("causeway.dev/v2");
    let e = decode_value::<Cluster>(v).unwrap_err();
    assert_eq!(e.field, "apiVersion");

    let e = decode::<Cluster>(b"{not json").unwrap_err();
    assert!(e.message.contains("key must be a string"), "{e}");
}

#[test]
fn host_port_rules() {
    for ok in [
        "a:1",
        "gw.example.com:15443",
        "10.0.0.1:80",
        "[2001:db8::1]:443",
    ] {
        ok.parse::<HostPort>().unwrap();
    }
    for bad in [
        "a",
        "a:0",
        "a:70000",
        ":80",
        "-a:80",
        "[::1:80",
        "a_b:80",
        "2001:db8::1:443",
    ] {
        assert!(bad.parse::<HostPort>().is_err(), "{bad}");
    }
    assert_eq!(
        "[::1]:5".parse::<HostPort>().unwrap().to_string(),
        "[::1]:5"
    );
}

#[test]
fn export_defaults() {
    let e: ServiceExport = decode_value(json!({
        "apiVersion": "causeway.dev/v1",
        "kind": "ServiceExport",
        "metadata": {"name": "checkout", "namespace": "payments", "cluster": "eu-west-1"},
        "spec": {"ports": [{"port": 8080, "appProtocol": "http"}], "endpoints": [{"zone": "a", "ready": 2}, {"zone": "b", "ready": 3}]}
    }))
    .unwrap();
    assert_eq!(e.spec.ports[0].protocol, Protocol::Tcp);
    assert_eq!(e.spec.type_, ServiceType::ClusterSetIP);
    assert_eq!(e.spec.weight, 100);
    assert_eq!(e.spec.ready(), 5);
    assert_eq!(e.key().to_string(), "payments/checkout/eu-west-1");
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["spec"]["type"], json!("ClusterSetIP"));
    assert_eq!(v["spec"]["ports"][0]["protocol"], json!("TCP"));
}

#[test]
fn traffic_policy_durations_and_defaults() {
    let p: TrafficPolicy = decode_value(json!({
        "apiVersion": "causeway.dev/v1",
        "kind": "TrafficPolicy",
        "metadata": {"name": "checkout"},
        "spec": {
            "service": "payments/checkout",
            "weights": {"eu-west-1": 90, "eu-central-1": 10},
            "retries": {"attempts": 3, "perTryTimeout": "250ms"},
            "timeouts": {"request": "5s"},
            "rollbackGuard": {"canary": "eu-central-1", "maxErrorRate": 0.05, "maxP99": "300ms"}
        }
    }))
    .unwrap();
    let s = &p.spec;
    assert_eq!(s.failover_priority, vec!["region", "jurisdiction"]);
    assert_eq!(s.retries.attempts, 3);
    assert_eq!(s.retries.per_try_timeout, Some(Duration::from_millis(250)));
    assert_eq!(s.retries.budget_percent.get(), 20);
    assert_eq!(s.timeouts.request, Duration::from_secs(5));
    assert_eq!(s.timeouts.connect, Duration::from_secs(2));
    let g = s.rollback_guard.as_ref().unwrap();
    assert_eq!(g.window, Duration::from_secs(60));
    assert_eq!(g.min_requests, 100);
    assert_eq!(s.weights[&ClusterId::new("eu-central-1").unwrap()], 10);
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(v["spec"]["retries"]["perTryTimeout"], json!("250ms"));
    let back: TrafficPolicy = decode_value(v).unwrap();
    assert_eq!(back, p);
}

#[test]
fn traffic_policy_range_errors_name_the_field() {
    let e = decode_value::<TrafficPolicy>(json!({
        "apiVersion": "causeway.dev/v1", "kind": "TrafficPolicy", "metadata": {"name": "x"},
        "spec": {"service": "a/b", "rollbackGuard": {"canary": "c", "maxErrorRate": 1.5, "maxP99": "1s"}}
    }))
    .unwrap_err();
    assert_eq!(e.field, "spec.rollbackGuard.maxErrorRate");
    let e = decode_value::<TrafficPolicy>(json!({
        "apiVersion": "causeway.dev/v1", "kind": "TrafficPolicy", "metadata": {"name": "x"},
        "spec": {"service": "a/b", "retries": {"budgetPercent": 101}}
    }))
    .unwrap_err();
    assert_eq!(e.field, "spec.retries.budgetPercent");
    let e = decode_value::<TrafficPolicy>(json!({
        "apiVersion": "causeway.dev/v1", "kind": "TrafficPolicy", "metadata": {"name": "x"},
        "spec": {"service": "a/b", "timeouts": {"connect": "soon"}}
    }))
    .unwrap_err();
    assert_eq!(e.field, "spec.timeouts.connect");
    let e = decode_value::<TrafficPolicy>(json!({
        "apiVersion": "causeway.dev/v1", "kind": "TrafficPolicy", "metadata": {"name": "x"},
        "spec": {"service": "a/b", "retries": {"retryOn": ["unavailable", "grpc-unavailable"]}}
    }))
    .unwrap_err();
    assert_eq!(e.field, "spec.retries.retryOn[1]");
    assert!(e.message.contains("grpc-unavailable"), "{e}");
}

#[test]
fn retry_conditions_round_trip_by_their_policy_names() {
    let names = [
        "connect-failure",
        "refused-stream",
        "reset",
        "unavailable",
        "gateway-error",
        "5xx",
        "retriable-4xx",
        "cancelled",
        "deadline-exceeded",
        "resource-exhausted",
        "non-idempotent",
    ];
    let parsed: Vec<RetryCondition> = serde_json::from_value(json!(names)).unwrap();
    assert_eq!(parsed.len(), names.len());
    for (c, n) in parsed.iter().zip(names) {
        assert_eq!(c.as_str(), n);
        assert_eq!(serde_json::to_value(c).unwrap(), json!(n));
    }
}

#[test]
fn resources_dispatch_on_kind() {
    let docs = vec![
        cluster_json(),
        json!({"apiVersion": "causeway.dev/v1", "kind": "ResidencyPolicy", "metadata": {"name": "eu-only"},
               "spec": {"services": ["payments/*"], "allowedJurisdictions": ["eu"],
                        "match": {"header": "x-residency", "values": ["eu"]}}}),
        json!({"apiVersion": "causeway.dev/v1", "kind": "AccessPolicy", "metadata": {"name": "a"},
               "spec": {"services": ["payments/checkout"], "allow": [{"trustDomains": ["eu.causeway.dev"]}]}}),
        json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy", "metadata": {"name": "e"},
               "spec": {"namespaces": ["payments", "team-a-*"], "clusters": ["eu-west-1"]}}),
        json!({"apiVersion": "causeway.dev/v1", "kind": "TrustBundle", "metadata": {"name": "eu.causeway.dev"},
               "spec": {"ownerCluster": "eu-west-1", "bundle": serde_json::from_str::<serde_json::Value>(&causeway_trust::Bundle::new(3).to_json()).unwrap()}}),
    ];
    let kinds: Vec<Kind> = docs
        .into_iter()
        .map(|d| serde_json::from_value::<Resource>(d).unwrap().kind())
        .collect();
    assert_eq!(
        kinds,
        vec![
            Kind::Cluster,
            Kind::ResidencyPolicy,
            Kind::AccessPolicy,
            Kind::ExportPolicy,
            Kind::TrustBundle
        ]
    );
    let e = decode_resource(json!({"kind": "Nope"})).unwrap_err();
    assert_eq!(e.field, "kind");
    let e = decode_resource(
        json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
        "metadata": {"name": "e"}, "spec": {"namespaces": ["Bad"]}}),
    )
    .unwrap_err();
    assert_eq!(e.field, "spec.namespaces[0]");
}

#[test]
fn trust_bundle_keeps_sequence() {
    let b = TrustBundle::new(
        TrustDomainName::new("eu.causeway.dev").unwrap(),
        ClusterId::new("eu-west-1").unwrap(),
        causeway_trust::Bundle::new(7),
    );
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["spec"]["bundle"]["spiffe_sequence"], json!(7));
    let back: TrustBundle = decode_value(v).unwrap();
    assert_eq!(back.sequence(), 7);
    assert_eq!(
        back.trust_domain().to_trust_domain().name(),
        "eu.causeway.dev"
    );
}

#[test]
fn key_layout_round_trips() {
    let l = KeyLayout::default();
    let c = ClusterId::new("eu-west-1").unwrap();
    let svc: ServiceRef = "payments/checkout".parse().unwrap();
    assert_eq!(l.cluster(&c), "/causeway/v1/clusters/eu-west-1");
    assert_eq!(
        l.export(&svc.namespace, &svc.name, &c),
        "/causeway/v1/exports/payments/checkout/eu-west-1"
    );
    assert_eq!(l.heartbeat(&c), "/causeway/v1/heartbeats/eu-west-1");
    let pn = PolicyName::new("eu-only").unwrap();
    assert_eq!(
        l.policy(PolicyKind::Residency, &pn),
        "/causeway/v1/policies/residency/eu-only"
    );
    let td = TrustDomainName::new("eu.causeway.dev").unwrap();
    assert_eq!(l.bundle(&td), "/causeway/v1/bundles/eu.causeway.dev");
    let objs = [
        ObjectRef::Cluster { name: c.clone() },
        ObjectRef::ServiceExport {
            key: ExportKey {
                service: svc.clone(),
                cluster: c.clone(),
            },
        },
        ObjectRef::TrustBundle { name: td },
        ObjectRef::Policy {
            policy: PolicyKind::Traffic,
            name: pn,
        },
    ];
    for o in objs {
        let key = l.key_of(&o).unwrap();
        assert_eq!(l.parse(&key), Some(ParsedKey::Object(o)));
    }
    assert_eq!(l.parse(&l.heartbeat(&c)), Some(ParsedKey::Heartbeat(c)));
    assert_eq!(l.parse("/causeway/v1/unknown/x"), None);
    // Imports are derived, never stored: no key of the layout names one.
    assert_eq!(l.parse("/causeway/v1/imports/payments/checkout"), None);
    assert_eq!(l.parse("/causeway/v1/heartbeats/eu-west-1/x"), None);
    assert_eq!(l.parse("/other/clusters/x"), None);
    assert_eq!(
        KeyLayout::new("/p/").cluster(&ClusterId::new("a").unwrap()),
        "/p/clusters/a"
    );
}

#[test]
fn selectors_and_policy_semantics() {
    let sel: ServiceSelector = serde_json::from_value(json!(["payments/*", "shop/cart"])).unwrap();
    assert!(sel.matches(&"payments/checkout".parse().unwrap()));
    assert!(sel.matches(&"shop/cart".parse().unwrap()));
    assert!(!sel.matches(&"shop/other".parse().unwrap()));
    assert!(ServiceSelector::default().matches(&"x/y".parse().unwrap()));

    let eu = ClusterId::new("eu-west-1").unwrap();
    let us = ClusterId::new("us-east-1").unwrap();
    let p = ExportPolicy::new(
        PolicyName::new("own").unwrap(),
        ExportPolicySpec {
            namespaces: vec!["payments".parse().unwrap(), "team-a-*".parse().unwrap()],
            clusters: vec![eu.clone()],
        },
    );
    assert!(export_allowed([&p], "payments", &eu));
    assert!(!export_allowed([&p], "payments", &us));
    assert!(!export_allowed([&p], "team-a-web", &us));
    assert!(
        export_allowed([&p], "team-b", &us),
        "uncovered namespaces are open"
    );

    let rule = AccessRule {
        trust_domains: vec!["eu.causeway.dev".into()],
        methods: vec!["GET".into()],
        paths: vec!["/api/".into()],
        ..Default::default()
    };
    let caller = Caller {
        trust_domain: "eu.causeway.dev",
        method: Some("get"),
        path: Some("/api/x"),
        ..Default::default()
    };
    assert!(rule.matches(&caller));
    assert!(!rule.matches(&Caller {
        path: Some("/admin"),
        ..caller
    }));
    assert!(!rule.matches(&Caller {
        trust_domain: "us.causeway.dev",
        ..caller
    }));

    let r = ResidencyPolicySpec {
        allowed_jurisdictions: vec!["eu".into()],
        allowed_regions: vec!["ch-1".into()],
        match_: Some(RequestClassification {
            header: Some("x-residency".into()),
            jwt_claim: None,
            values: vec!["eu".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(r.allows(&["eu".into(), "de".into()], "eu-central-1"));
    assert!(r.allows(&[], "ch-1"));
    assert!(!r.allows(&["us".into()], "us-east-1"));
    let m = r.match_.as_ref().unwrap();
    assert!(m.matches(|h| (h == "x-residency").then_some("eu"), |_| None));
    assert!(!m.matches(|_| Some("us"), |_| None));
    assert!(!m.matches(|_| None, |_| Some("eu")));
}

fn cluster(id: &str, region: &str) -> Cluster {
    let mut v = cluster_json();
    v["metadata"] = json!({"name": id});
    v["spec"]["region"] = json!(region);
    decode_value(v).unwrap()
}

fn export(ns: &str, name: &str, cluster: &str, port: u16) -> ServiceExport {
    let mut e = ServiceExport::new(
        ns.parse().unwrap(),
        name.parse().unwrap(),
        cluster.parse().unwrap(),
        ServiceExportSpec::default(),
    );
    e.spec.ports.push(ServicePort {
        name: None,
        protocol: Protocol::Tcp,
        app_protocol: None,
        port,
    });
    e
}

#[test]
fn snapshot_applies_events_and_derives_imports() {
    let mut s = CatalogSnapshot::from_resources(10, [cluster("eu-west-1", "eu-west-1").into()]);
    let svc: ServiceRef = "payments/checkout".parse().unwrap();
    let put = |rev, r: Resource| CatalogEvent::Put {
        revision: rev,
        resource: Box::new(r),
    };
    assert_eq!(
        s.apply(&put(
            11,
            export("payments", "checkout", "eu-west-1", 80).into()
        )),
        Applied::Changed
    );
    assert_eq!(
        s.apply(&put(
            12,
            export("payments", "checkout", "us-east-1", 80).into()
        )),
        Applied::Changed
    );
    let imp = &s.imports[&svc];
    assert_eq!(imp.spec.clusters.len(), 2);
    assert_eq!(imp.spec.clusters[0].region, "eu-west-1");
    assert!(imp.spec.clusters[1].stale, "unknown cluster is stale");
    // A cluster record arriving re-derives the import.
    s.apply(&put(13, cluster("us-east-1", "us-east-1").into()));
    assert_eq!(s.imports[&svc].spec.clusters[1].region, "us-east-1");
    assert!(!s.imports[&svc].spec.clusters[1].stale);
    // Old events are ignored.
    let old = CatalogEvent::Delete {
        revision: 5,
        object: ObjectRef::Cluster {
            name: "us-east-1".parse().unwrap(),
        },
    };
    assert_eq!(s.apply(&old), Applied::Stale);
    // Deleting every export removes the import.
    for c in ["eu-west-1", "us-east-1"] {
        s.apply(&CatalogEvent::Delete {
            revision: 14,
            object: ObjectRef::ServiceExport {
                key: ExportKey {
                    service: svc.clone(),
                    cluster: c.parse().unwrap(),
                },
            },
        });
    }
    assert!(s.imports.is_empty());
    assert_eq!(s.revision, 14);
    // JSON round trip keeps everything, with string map keys.
    s.apply(&put(
        15,
        export("payments", "checkout", "eu-west-1", 80).into(),
    ));
    let text = serde_json::to_string(&s).unwrap();
    let back: CatalogSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(back, s);
    let ev_text = serde_json::to_string(&put(16, cluster("a", "r").into())).unwrap();
    let ev: CatalogEvent = serde_json::from_str(&ev_text).unwrap();
    assert_eq!(ev.revision(), 16);
}

/// An ExportPolicy applies to exports written before it: they leave
/// `exports` and the import, and come back when the policy goes.
#[test]
fn export_policy_withdraws_existing_exports_and_restores_them() {
    let svc: ServiceRef = "fin/ledger".parse().unwrap();
    let mut s = CatalogSnapshot::from_resources(
        10,
        [
            export("fin", "ledger", "eu-1", 80).into(),
            export("fin", "ledger", "us-1", 80).into(),
        ],
    );
    assert_eq!(s.imports[&svc].spec.clusters.len(), 2);
    let policy: Resource = decode_value(
        json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
        "metadata": {"name": "fin"}, "spec": {"namespaces": ["fin*"], "clusters": ["us-1"]}}),
    )
    .unwrap();
    s.apply(&CatalogEvent::Put {
        revision: 11,
        resource: Box::new(policy.clone()),
    });
    let clusters: Vec<&str> = s.imports[&svc]
        .spec
        .clusters
        .iter()
        .map(|c| c.cluster.as_str())
        .collect();
    assert_eq!(clusters, ["us-1"]);
    assert_eq!(s.exports.len(), 1);
    assert_eq!(s.withheld.len(), 1);
    // A re-put of the forbidden export stays withheld; a full listing
    // (policy listed after the exports) agrees with the incremental path.
    s.apply(&CatalogEvent::Put {
        revision: 12,
        resource: Box::new(export("fin", "ledger", "eu-1", 81).into()),
    });
    assert_eq!(s.imports[&svc].spec.clusters.len(), 1);
    let listed = CatalogSnapshot::from_resources(
        12,
        [
            export("fin", "ledger", "eu-1", 81).into(),
            export("fin", "ledger", "us-1", 80).into(),
            policy,
        ],
    );
    assert_eq!(listed, s);
    // Deleting the policy restores the export.
    s.apply(&CatalogEvent::Delete {
        revision: 13,
        object: ObjectRef::Policy {
            policy: PolicyKind::Export,
            name: "fin".parse().unwrap(),
        },
    });
    assert_eq!(s.imports[&svc].spec.clusters.len(), 2);
    assert!(s.withheld.is_empty());
}

#[test]
fn keys_parse_to_object_refs() {
    assert!(matches!(
        parse_relative_key("clusters/eu-1"),
        Some(ObjectRef::Cluster { .. })
    ));
    match parse_relative_key("exports/shop/cart/eu-1") {
        Some(ObjectRef::ServiceExport { key }) => {
            assert_eq!(key.to_string(), "shop/cart/eu-1");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse_relative_key("imports/shop/cart"),
        Some(ObjectRef::ServiceImport { .. })
    ));
    assert!(matches!(
        parse_relative_key("bundles/eu.example"),
        Some(ObjectRef::TrustBundle { .. })
    ));
    assert!(matches!(
        parse_relative_key("policies/traffic/canary"),
        Some(ObjectRef::Policy {
            policy: PolicyKind::Traffic,
            ..
        })
    ));
    assert_eq!(parse_relative_key("exports/shop/cart"), None);
    assert_eq!(parse_relative_key("clusters/Not_Valid"), None);
    assert_eq!(parse_relative_key("heartbeats/eu-1"), None);
}

#[test]
fn relative_keys_parse_back_to_their_object() {
    for key in [
        "clusters/eu-1",
        "exports/shop/cart/eu-1",
        "imports/shop/cart",
        "bundles/eu.example",
        "policies/traffic/canary",
        "policies/residency/eu-only",
    ] {
        let obj = parse_relative_key(key).unwrap();
        assert_eq!(relative_key(&obj), key);
    }
}

/// A claim classification names its OIDC issuer completely and says what an
/// unverifiable token does; every mistake is refused with its field path.
#[test]
fn residency_claim_classification_is_checked_with_field_paths() {
    let doc = |m: serde_json::Value| {
        json!({"apiVersion": "causeway.dev/v1", "kind": "ResidencyPolicy", "metadata": {"name": "eu"},
               "spec": {"allowedJurisdictions": ["eu"], "match": m}})
    };
    let ok = decode_value::<ResidencyPolicy>(doc(json!({
        "jwtClaim": "data_region", "values": ["eu"], "onUnverified": "unclassified",
        "oidc": {"issuer": "https://idp.example", "audience": "shop", "jwksUrl": "https://idp.example/jwks"}
    })))
    .unwrap();
    let m = ok.spec.match_.unwrap();
    assert_eq!(m.on_unverified, OnUnverified::Unclassified);
    assert_eq!(m.oidc.unwrap().jwks_url, "https://idp.example/jwks");
    let default =
        decode_value::<ResidencyPolicy>(doc(json!({"jwtClaim": "data_region", "values": ["eu"]})))
            .unwrap();
    assert_eq!(
        default.spec.match_.unwrap().on_unverified,
        OnUnverified::Deny,
        "an unverifiable token is refused unless said otherwise"
    );
    for (m, path) in [
        (
            json!({"jwtClaim": "r", "values": ["eu"], "onUnverified": "allow"}),
            "spec.match.onUnverified",
        ),
        (
            json!({"jwtClaim": "r", "values": [], "oidc": {"issuer": "i", "audience": "a", "jwksUrl": "ftp://x"}}),
            "spec.match.oidc.jwksUrl",
        ),
        (
            json!({"jwtClaim": "r", "values": [], "oidc": {"issuer": " ", "audience": "a", "jwksUrl": "http://x"}}),
            "spec.match.oidc.issuer",
        ),
        (
            json!({"jwtClaim": "r", "values": [], "oidc": {"issuer": "i", "jwksUrl": "http://x"}}),
            "spec.match.oidc",
        ),
        (
            json!({"header": "h", "values": [], "oidc": {"issuer": "i", "audience": "a", "jwksUrl": "http://x"}}),
            "spec.match",
        ),
        (json!({"values": ["eu"]}), "spec.match"),
    ] {
        let e = decode_value::<ResidencyPolicy>(doc(m.clone()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(path), "{m}: {e}");
    }
}
