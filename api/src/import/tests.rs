#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use time::macros::datetime;

use super::*;
use crate::model::{
    ClusterSpec, ClusterStatus, ConditionStatus, ConditionType, Protocol, ServiceExportSpec,
    ServiceType, ZoneEndpoints, find_condition,
};

fn export(
    cluster: &str,
    created: Option<time::OffsetDateTime>,
    ports: &[(u16, Protocol)],
) -> ServiceExport {
    let mut e = ServiceExport::new(
        "payments".parse().unwrap(),
        "checkout".parse().unwrap(),
        cluster.parse().unwrap(),
        ServiceExportSpec::default(),
    );
    e.metadata.created_at = created;
    e.spec.ports = ports
        .iter()
        .map(|(port, protocol)| ServicePort {
            name: None,
            protocol: *protocol,
            app_protocol: None,
            port: *port,
        })
        .collect();
    e
}

fn clusters(ids: &[(&str, &str, bool)]) -> BTreeMap<ClusterId, Cluster> {
    ids.iter()
        .map(|(id, region, connected)| {
            let mut c = Cluster::new(
                id.parse().unwrap(),
                ClusterSpec {
                    cloud: "aws".into(),
                    region: (*region).into(),
                    zone: format!("{region}a"),
                    jurisdictions: vec!["eu".into()],
                    labels: Default::default(),
                    gateway: Default::default(),
                    trust_domain: "causeway.dev".parse().unwrap(),
                },
            );
            c.status = Some(ClusterStatus {
                connected: *connected,
                last_heartbeat: None,
            });
            (c.id().clone(), c)
        })
        .collect()
}

fn cond<'a>(conds: &'a ExportConditions, cluster: &str, t: ConditionType) -> &'a Condition {
    let (_, c) = conds.iter().find(|(k, _)| k.cluster == cluster).unwrap();
    find_condition(c, t).unwrap()
}

const T1: time::OffsetDateTime = datetime!(2026-01-01 00:00 UTC);
const T2: time::OffsetDateTime = datetime!(2026-01-02 00:00 UTC);
const T3: time::OffsetDateTime = datetime!(2026-01-03 00:00 UTC);

#[test]
fn no_exports_no_import() {
    assert!(derive_import(&[], |_| None).is_none());
}

#[test]
fn agreeing_exports_merge_without_conflict() {
    let mut a = export("eu-west-1", Some(T1), &[(80, Protocol::Tcp)]);
    a.spec.endpoints = vec![
        ZoneEndpoints {
            zone: "eu-west-1a".into(),
            ready: 2,
        },
        ZoneEndpoints {
            zone: "eu-west-1b".into(),
            ready: 1,
        },
    ];
    a.metadata.resource_version = Some(7);
    let mut b = export(
        "us-east-1",
        Some(T2),
        &[(80, Protocol::Tcp), (9090, Protocol::Tcp)],
    );
    b.spec.weight = 10;
    b.metadata.resource_version = Some(9);
    let cl = clusters(&[
        ("eu-west-1", "eu-west-1", true),
        ("us-east-1", "us-east-1", false),
    ]);
    let (imp, conds) = derive_import(&[b, a], |id| cl.get(id)).unwrap();
    assert_eq!(imp.service().to_string(), "payments/checkout");
    let ports: Vec<u16> = imp.spec.ports.iter().map(|p| p.port).collect();
    assert_eq!(ports, vec![80, 9090], "ports are the union");
    assert_eq!(imp.spec.type_, ServiceType::ClusterSetIP);
    assert_eq!(imp.metadata.resource_version, Some(9));
    assert_eq!(imp.metadata.created_at, Some(T1));
    let eu = &imp.spec.clusters[0];
    assert_eq!(
        (eu.cluster.as_str(), eu.ready, eu.weight, eu.stale),
        ("eu-west-1", 3, 100, false)
    );
    assert_eq!(eu.region, "eu-west-1");
    assert_eq!(eu.jurisdictions, vec!["eu"]);
    let us = &imp.spec.clusters[1];
    assert_eq!(
        (us.weight, us.stale),
        (10, true),
        "a disconnected cluster is stale"
    );
    for c in ["eu-west-1", "us-east-1"] {
        let v = cond(&conds, c, ConditionType::Valid);
        assert_eq!(
            (v.status, v.reason.as_str()),
            (ConditionStatus::True, "Valid")
        );
        let r = cond(&conds, c, ConditionType::Ready);
        assert_eq!(
            (r.status, r.reason.as_str()),
            (ConditionStatus::True, "Exported")
        );
        let x = cond(&conds, c, ConditionType::Conflict);
        assert_eq!(
            (x.status, x.reason.as_str()),
            (ConditionStatus::False, "NoConflicts")
        );
    }
    let ic = find_condition(
        &imp.status.as_ref().unwrap().conditions,
        ConditionType::Conflict,
    )
    .unwrap();
    assert_eq!(ic.status, ConditionStatus::False);
}

#[test]
fn type_conflict_uses_oldest_and_names_it() {
    let a = export("eu-west-1", Some(T1), &[(80, Protocol::Tcp)]);
    let mut b = export("us-east-1", Some(T2), &[(80, Protocol::Tcp)]);
    b.spec.type_ = ServiceType::Headless;
    let c = export("ap-south-1", Some(T3), &[(80, Protocol::Tcp)]);
    let (imp, conds) = derive_import(&[c, b, a], |_| None).unwrap();
    assert_eq!(imp.spec.type_, ServiceType::ClusterSetIP);
    let x = cond(&conds, "us-east-1", ConditionType::Conflict);
    assert_eq!(
        (x.status, x.reason.as_str()),
        (ConditionStatus::True, "TypeConflict")
    );
    assert_eq!(
        x.message,
        "Conflicting type. Using \"ClusterSetIP\" from oldest service export in \"eu-west-1\". 1/3 clusters disagree."
    );
    for ok in ["eu-west-1", "ap-south-1"] {
        assert_eq!(
            cond(&conds, ok, ConditionType::Conflict).reason,
            "NoConflicts"
        );
    }
    let ic = find_condition(
        &imp.status.as_ref().unwrap().conditions,
        ConditionType::Conflict,
    )
    .unwrap();
    assert_eq!(
        (ic.status, ic.reason.as_str()),
        (ConditionStatus::True, "TypeConflict")
    );
    assert_eq!(
        imp.spec.clusters.len(),
        3,
        "conflicting exports still serve"
    );
}

#[test]
fn session_affinity_conflict_uses_oldest_and_names_it() {
    use crate::model::SessionAffinity;
    let mut a = export("eu-west-1", Some(T1), &[(80, Protocol::Tcp)]);
    a.spec.session_affinity = SessionAffinity::ClientIp;
    a.spec.session_affinity_timeout_seconds = Some(600);
    let mut b = export("us-east-1", Some(T2), &[(80, Protocol::Tcp)]);
    b.spec.session_affinity = SessionAffinity::ClientIp;
    b.spec.session_affinity_timeout_seconds = Some(600);
    let c = export("ap-south-1", Some(T3), &[(80, Protocol::Tcp)]);
    let (imp, conds) = derive_import(&[c, b, a], |_| None).unwrap();
    assert_eq!(imp.spec.session_affinity, SessionAffinity::ClientIp);
    assert_eq!(imp.spec.session_affinity_timeout_seconds, Some(600));
    let x = cond(&conds, "ap-south-1", ConditionType::Conflict);
    assert_eq!(
        (x.status, x.reason.as_str()),
        (ConditionStatus::True, "SessionAffinityConflict")
    );
    assert_eq!(
        x.message,
        "Conflicting session affinity. Using \"ClientIP (timeoutSeconds 600)\" from oldest service export in \"eu-west-1\". 1/3 clusters disagree."
    );
    for ok in ["eu-west-1", "us-east-1"] {
        assert_eq!(
            cond(&conds, ok, ConditionType::Conflict).reason,
            "NoConflicts"
        );
    }
    // A different timeout alone is a conflict too; the wire form is core/v1's.
    let mut d = export("us-west-2", Some(T3), &[(80, Protocol::Tcp)]);
    d.spec.session_affinity = SessionAffinity::ClientIp;
    d.spec.session_affinity_timeout_seconds = Some(10);
    let json = serde_json::to_value(&d.spec).unwrap();
    assert_eq!(json["sessionAffinity"], "ClientIP");
    assert_eq!(json["sessionAffinityTimeoutSeconds"], 10);
    let (_, conds) = derive_import(&[export_a_again(), d], |_| None).unwrap();
    assert_eq!(
        cond(&conds, "us-west-2", ConditionType::Conflict).reason,
        "SessionAffinityConflict"
    );
}

fn export_a_again() -> ServiceExport {
    let mut a = export("eu-west-1", Some(T1), &[(80, Protocol::Tcp)]);
    a.spec.session_affinity = crate::model::SessionAffinity::ClientIp;
    a.spec.session_affinity_timeout_seconds = Some(600);
    a
}

#[test]
fn port_protocol_conflict() {
    let a = export("eu-west-1", Some(T1), &[(53, Protocol::Udp)]);
    let b = export(
        "us-east-1",
        Some(T2),
        &[(53, Protocol::Tcp), (80, Protocol::Tcp)],
    );
    let (imp, conds) = derive_import(&[a, b], |_| None).unwrap();
    let ports: Vec<(u16, Protocol)> = imp
        .spec
        .ports
        .iter()
        .map(|p| (p.port, p.protocol))
        .collect();
    assert_eq!(ports, vec![(53, Protocol::Udp), (80, Protocol::Tcp)]);
    let x = cond(&conds, "us-east-1", ConditionType::Conflict);
    assert_eq!(
        (x.status, x.reason.as_str()),
        (ConditionStatus::True, "PortConflict")
    );
    assert!(x.message.contains("port 53"), "{}", x.message);
    assert!(x.message.contains("\"eu-west-1\""), "{}", x.message);
    assert!(x.message.contains("1/2 clusters disagree"), "{}", x.message);
    assert_eq!(
        cond(&conds, "eu-west-1", ConditionType::Conflict).reason,
        "NoConflicts"
    );
}

#[test]
fn oldest_by_creation_then_cluster_id() {
    // Same creation time: the lower cluster id is the oldest.
    let mut a = export("b-cluster", Some(T1), &[(80, Protocol::Tcp)]);
    a.spec.type_ = ServiceType::Headless;
    let b = export("a-cluster", Some(T1), &[(80, Protocol::Tcp)]);
    let (imp, conds) = derive_import(&[a.clone(), b.clone()], |_| None).unwrap();
    assert_eq!(imp.spec.type_, ServiceType::ClusterSetIP);
    assert_eq!(
        cond(&conds, "b-cluster", ConditionType::Conflict).reason,
        "TypeConflict"
    );
    // An export without a creation time is younger than any dated one.
    let mut undated = export("0-cluster", None, &[(80, Protocol::Tcp)]);
    undated.spec.type_ = ServiceType::Headless;
    let (imp, conds) = derive_import(&[undated, b], |_| None).unwrap();
    assert_eq!(imp.spec.type_, ServiceType::ClusterSetIP);
    assert_eq!(
        cond(&conds, "0-cluster", ConditionType::Conflict).reason,
        "TypeConflict"
    );
}

#[test]
fn labels_come_from_oldest_and_stale_exports_are_flagged() {
    let mut a = export("eu-west-1", Some(T2), &[(80, Protocol::Tcp)]);
    a.spec.exported_labels.insert("tier".into(), "young".into());
    a.status = Some(crate::model::ServiceExportStatus {
        conditions: vec![],
        stale: true,
    });
    let mut b = export("us-east-1", Some(T1), &[(80, Protocol::Tcp)]);
    b.spec.exported_labels.insert("tier".into(), "old".into());
    let cl = clusters(&[
        ("eu-west-1", "eu-west-1", true),
        ("us-east-1", "us-east-1", true),
    ]);
    let (imp, _) = derive_import(&[a, b], |id| cl.get(id)).unwrap();
    assert_eq!(imp.spec.labels["tier"], "old");
    assert!(imp.spec.clusters[0].stale);
    assert!(!imp.spec.clusters[1].stale);
}
