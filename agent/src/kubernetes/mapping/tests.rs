//! Tests of the pure MCS mapping.
#![allow(clippy::unwrap_used)]

use super::*;
use causeway_api::model::{
    Condition as ApiCondition, ConditionStatus, ConditionType, ServiceExportStatus, ZoneEndpoints,
};

fn export(labels: &[(&str, &str)]) -> mcs::ServiceExport {
    let mut e = mcs::ServiceExport::new("cart", mcs::ServiceExportSpec::default());
    e.metadata.namespace = Some("shop".into());
    e.spec.exported_labels = labels
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    e
}

fn service(json: serde_json::Value) -> Service {
    serde_json::from_value(json).unwrap()
}

fn slice(endpoints: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "cart-abc", "namespace": "shop", "labels": {"kubernetes.io/service-name": "cart"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
    }))
    .unwrap()
}

fn now() -> Time {
    Time("2026-01-01T00:00:00Z".parse().unwrap())
}

#[test]
fn cluster_ip_service_exports_ports_type_and_ready_per_zone() {
    let svc = service(serde_json::json!({
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"clusterIP": "10.1.2.3", "ports": [
            {"name": "http", "port": 80, "protocol": "TCP", "appProtocol": "http"},
            {"name": "dns", "port": 53, "protocol": "UDP"}
        ]}
    }));
    let s = slice(serde_json::json!([
        {"addresses": ["10.0.0.1"], "zone": "z1", "conditions": {"ready": true}},
        {"addresses": ["10.0.0.2"], "zone": "z1"},
        {"addresses": ["10.0.0.3"], "zone": "z2", "conditions": {"ready": false}},
        {"addresses": ["10.0.0.4"]}
    ]));
    let Validity::Valid(spec) = export_spec(&export(&[("tier", "web")]), Some(&svc), &[&s], "z0")
    else {
        panic!("not valid");
    };
    assert_eq!(spec.type_, ServiceType::ClusterSetIP);
    assert_eq!(spec.ports.len(), 2);
    assert_eq!(spec.ports[0].app_protocol.as_deref(), Some("http"));
    assert_eq!(spec.ports[1].protocol, Protocol::Udp);
    assert_eq!(
        spec.endpoints,
        vec![
            ZoneEndpoints {
                zone: "z0".into(),
                ready: 1
            },
            ZoneEndpoints {
                zone: "z1".into(),
                ready: 2
            }
        ]
    );
    assert_eq!(spec.exported_labels["tier"], "web");
}

#[test]
fn headless_external_name_and_missing_services() {
    let headless =
        service(serde_json::json!({"metadata": {"name": "cart"}, "spec": {"clusterIP": "None"}}));
    match export_spec(&export(&[]), Some(&headless), &[], "z") {
        Validity::Valid(s) => assert_eq!(s.type_, ServiceType::Headless),
        other => panic!("{other:?}"),
    }
    let ext = service(
        serde_json::json!({"metadata": {"name": "cart"}, "spec": {"type": "ExternalName", "externalName": "x.example"}}),
    );
    assert_eq!(
        export_spec(&export(&[]), Some(&ext), &[], "z"),
        Validity::InvalidServiceType("ExternalName".into())
    );
    assert_eq!(
        export_spec(&export(&[]), None, &[], "z"),
        Validity::NoService
    );
}

fn find<'a>(c: &'a [Condition], t: &str) -> &'a Condition {
    c.iter().find(|c| c.type_ == t).unwrap()
}

#[test]
fn invalid_exports_get_valid_false_with_the_mcs_reason() {
    let c = export_conditions(&Validity::NoService, None, &[], &now());
    assert_eq!(find(&c, "Valid").status, "False");
    assert_eq!(find(&c, "Valid").reason, "NoService");
    let c = export_conditions(
        &Validity::InvalidServiceType("ExternalName".into()),
        None,
        &[],
        &now(),
    );
    assert_eq!(find(&c, "Valid").reason, "InvalidServiceType");
    assert_eq!(find(&c, "Ready").status, "False");
}

#[test]
fn exported_labels_kubernetes_would_refuse_make_the_export_invalid() {
    let svc = service(
        serde_json::json!({"metadata": {"name": "cart"}, "spec": {"clusterIP": "10.1.2.3"}}),
    );
    let v = export_spec(&export(&[("bad key", "x")]), Some(&svc), &[], "z");
    let Validity::InvalidExportedMetadata(why) = &v else {
        panic!("{v:?}")
    };
    assert!(why.starts_with("spec.exportedLabels: "), "{why}");
    assert!(why.contains("\"bad key\""), "{why}");
    let c = export_conditions(&v, None, &[], &now());
    assert_eq!(find(&c, "Valid").status, "False");
    assert_eq!(find(&c, "Valid").reason, "InvalidExportedMetadata");
    assert_eq!(&find(&c, "Valid").message, why);
    assert_eq!(find(&c, "Ready").status, "False");
}

#[test]
fn session_affinity_goes_from_the_service_to_the_import_in_core_v1_form() {
    let svc = service(serde_json::json!({"metadata": {"name": "cart"}, "spec": {
        "clusterIP": "10.1.2.3", "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}
    }}));
    let Validity::Valid(spec) = export_spec(&export(&[]), Some(&svc), &[], "z") else {
        panic!("not valid")
    };
    assert_eq!(spec.session_affinity, model::SessionAffinity::ClientIp);
    assert_eq!(spec.session_affinity_timeout_seconds, Some(600));
    let mut imp = import(serde_json::json!([{"cluster": "us-1", "weight": 100, "ready": 1}]));
    imp.spec.session_affinity = model::SessionAffinity::ClientIp;
    imp.spec.session_affinity_timeout_seconds = Some(600);
    let si = service_import(&imp, "local-1").unwrap();
    let raw = serde_json::to_value(&si).unwrap();
    assert_eq!(raw["spec"]["sessionAffinity"], "ClientIP");
    assert_eq!(
        raw["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        600
    );
    // Without affinity: None, and no config.
    let plain = service(
        serde_json::json!({"metadata": {"name": "cart"}, "spec": {"clusterIP": "10.1.2.3"}}),
    );
    let Validity::Valid(spec) = export_spec(&export(&[]), Some(&plain), &[], "z") else {
        panic!("not valid")
    };
    assert_eq!(spec.session_affinity, model::SessionAffinity::None);
    assert_eq!(spec.session_affinity_timeout_seconds, None);
}

#[test]
fn service_import_drops_labels_and_annotations_kubernetes_refuses() {
    let mut imp = import(serde_json::json!([{"cluster": "us-1", "weight": 100, "ready": 1}]));
    imp.spec.labels.insert("bad key".into(), "x".into());
    imp.spec.labels.insert("ok".into(), "has space".into());
    imp.spec
        .annotations
        .insert("example.com/Note".into(), "free text".into());
    imp.spec.annotations.insert("a/b/c".into(), "x".into());
    let si = service_import(&imp, "local-1").unwrap();
    let labels = si.labels();
    assert_eq!(labels["tier"], "web");
    assert!(
        !labels.contains_key("bad key") && !labels.contains_key("ok"),
        "{labels:?}"
    );
    let ann = si.annotations();
    assert_eq!(ann.len(), 1, "{ann:?}");
    assert_eq!(ann["example.com/Note"], "free text");
}

#[test]
fn ready_and_conflict_come_from_the_api_and_keep_transition_times() {
    let valid = Validity::Valid(ServiceExportSpec::default());
    let c = export_conditions(&valid, None, &[], &now());
    assert_eq!(find(&c, "Valid").status, "True");
    assert_eq!(find(&c, "Ready").status, "Unknown");
    assert_eq!(find(&c, "Ready").reason, "Pending");

    let api = ServiceExportStatus {
        conditions: vec![
            ApiCondition::new(
                ConditionType::Ready,
                ConditionStatus::True,
                "Exported",
                "exported",
            ),
            ApiCondition::new(
                ConditionType::Conflict,
                ConditionStatus::True,
                "TypeConflict",
                "Conflicting type. Using \"ClusterSetIP\" from oldest service export in \"eu-1\". 1/2 clusters disagree.",
            ),
        ],
        stale: false,
    };
    let later = Time("2026-01-02T00:00:00Z".parse().unwrap());
    let c2 = export_conditions(&valid, Some(&api), &c, &later);
    assert_eq!(find(&c2, "Ready").status, "True");
    assert_eq!(find(&c2, "Ready").reason, "Exported");
    assert_eq!(find(&c2, "Ready").last_transition_time, later);
    assert_eq!(find(&c2, "Conflict").reason, "TypeConflict");
    assert!(
        find(&c2, "Conflict")
            .message
            .contains("1/2 clusters disagree")
    );
    // Valid did not change: its transition time is kept.
    assert_eq!(find(&c2, "Valid").last_transition_time, now());
    assert!(!same_conditions(&c, &c2));
    assert!(same_conditions(
        &c2,
        &export_conditions(&valid, Some(&api), &c2, &later)
    ));
}

fn import(clusters: serde_json::Value) -> model::ServiceImport {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "causeway.dev/v1", "kind": "ServiceImport",
        "metadata": {"namespace": "shop", "name": "cart"},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "appProtocol": "http", "port": 80}],
            "type": "ClusterSetIP",
            "clusters": clusters,
            "labels": {"tier": "web"}
        }
    }))
    .unwrap()
}

#[test]
fn service_import_only_for_services_exported_elsewhere() {
    let only_local = import(serde_json::json!([{"cluster": "local-1", "weight": 100, "ready": 1}]));
    assert!(service_import(&only_local, "local-1").is_none());
    let both = import(serde_json::json!([
        {"cluster": "local-1", "weight": 100, "ready": 1},
        {"cluster": "us-1", "zone": "us-1a", "weight": 100, "ready": 2}
    ]));
    let si = service_import(&both, "local-1").unwrap();
    assert_eq!(si.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(si.spec.type_, mcs::ServiceImportType::ClusterSetIP);
    assert_eq!(si.spec.ports[0].port, 80);
    assert_eq!(si.labels()[LABEL_MANAGED_BY], MANAGER);
    assert_eq!(si.labels()["tier"], "web");
    let clusters: Vec<_> = si
        .status
        .unwrap()
        .clusters
        .into_iter()
        .map(|c| c.cluster)
        .collect();
    assert_eq!(clusters, vec!["local-1", "us-1"]);
}

use kube::ResourceExt as _;

#[test]
fn endpoint_slices_point_at_the_egress_per_remote_cluster() {
    let imp = import(serde_json::json!([
        {"cluster": "local-1", "weight": 100, "ready": 1},
        {"cluster": "us-1", "zone": "us-1a", "weight": 100, "ready": 2},
        {"cluster": "ap-1", "weight": 100, "ready": 0}
    ]));
    let egress = Egress {
        addresses: vec!["10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap()],
        port: 15001,
    };
    let slices = endpoint_slices(&imp, "local-1", &egress);
    assert_eq!(slices.len(), 2);
    let us = slices
        .iter()
        .find(|s| s.labels()[LABEL_SOURCE_CLUSTER] == "us-1")
        .unwrap();
    assert_eq!(us.labels()[LABEL_SERVICE_NAME], "cart");
    assert_eq!(us.labels()[LABEL_MANAGED_BY], MANAGER);
    assert_eq!(us.address_type, "IPv4");
    let eps = us.endpoints.as_ref().unwrap();
    assert_eq!(eps.len(), 2);
    assert_eq!(eps[0].addresses, vec!["10.9.0.1"]);
    assert_eq!(eps[0].conditions.as_ref().unwrap().ready, Some(true));
    let ports = us.ports.as_ref().unwrap();
    assert_eq!(ports[0].port, Some(15001));
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    let ap = slices
        .iter()
        .find(|s| s.labels()[LABEL_SOURCE_CLUSTER] == "ap-1")
        .unwrap();
    assert_eq!(
        ap.endpoints.as_ref().unwrap()[0]
            .conditions
            .as_ref()
            .unwrap()
            .ready,
        Some(false)
    );
}

#[test]
fn long_slice_names_are_hashed_to_63_chars() {
    assert_eq!(slice_name("cart", "us-1"), "cart-us-1");
    let long = slice_name(&"s".repeat(60), "cluster-with-a-long-name");
    assert!(long.len() <= 63, "{long}");
    assert_ne!(
        long,
        slice_name(&"s".repeat(60), "cluster-with-a-long-nama")
    );
}
