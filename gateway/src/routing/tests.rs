#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use causeway_api::model::policy::RequestClassification;
use causeway_api::model::{
    Cluster, ClusterSpec, ResidencyPolicy, ResidencyPolicySpec, ServiceExport, ServiceExportSpec,
    ServicePort, ServiceSelector, TrafficPolicy, TrafficPolicySpec, ZoneEndpoints,
};

use super::*;

// ---------- fixtures ----------

fn cluster(id: &str, region: &str, zone: &str, jur: &[&str]) -> Cluster {
    let spec = ClusterSpec {
        region: region.into(),
        zone: zone.into(),
        jurisdictions: jur.iter().map(|s| s.to_string()).collect(),
        gateway: causeway_api::model::GatewaySpec {
            endpoints: vec![format!("gw.{id}.example:15443").parse().unwrap()],
        },
        trust_domain: format!("{id}.causeway.dev").parse().unwrap(),
        ..ClusterSpec::default_with_td()
    };
    Cluster::new(id.parse().unwrap(), spec)
}

trait DefaultTd {
    fn default_with_td() -> Self;
}
impl DefaultTd for ClusterSpec {
    fn default_with_td() -> Self {
        ClusterSpec {
            cloud: String::new(),
            region: String::new(),
            zone: String::new(),
            jurisdictions: vec![],
            labels: BTreeMap::new(),
            gateway: Default::default(),
            trust_domain: "x.causeway.dev".parse().unwrap(),
        }
    }
}

fn export(svc: &str, cluster: &str, ready: u32, weight: u32) -> ServiceExport {
    let (ns, name) = svc.split_once('/').unwrap();
    ServiceExport::new(
        ns.parse().unwrap(),
        name.parse().unwrap(),
        cluster.parse().unwrap(),
        ServiceExportSpec {
            ports: vec![ServicePort {
                name: Some("http".into()),
                protocol: Default::default(),
                app_protocol: None,
                port: 8080,
            }],
            endpoints: vec![ZoneEndpoints {
                zone: "z".into(),
                ready,
            }],
            weight,
            ..ServiceExportSpec::default()
        },
    )
}

fn selector(services: &[&str]) -> ServiceSelector {
    ServiceSelector(services.iter().map(|s| s.parse().unwrap()).collect())
}

fn residency(name: &str, services: &[&str], jur: &[&str], regions: &[&str]) -> ResidencyPolicy {
    ResidencyPolicy::new(
        name.parse().unwrap(),
        ResidencyPolicySpec {
            services: selector(services),
            match_: None,
            allowed_jurisdictions: jur.iter().map(|s| s.to_string()).collect(),
            allowed_regions: regions.iter().map(|s| s.to_string()).collect(),
        },
    )
}

fn with_header(mut p: ResidencyPolicy, header: &str, values: &[&str]) -> ResidencyPolicy {
    p.spec.match_ = Some(RequestClassification {
        header: Some(header.into()),
        jwt_claim: None,
        values: values.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    });
    p
}

fn with_claim(mut p: ResidencyPolicy, claim: &str, values: &[&str]) -> ResidencyPolicy {
    p.spec.match_ = Some(RequestClassification {
        header: None,
        jwt_claim: Some(claim.into()),
        values: values.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    });
    p
}

fn traffic(
    name: &str,
    svc: &str,
    weights: &[(&str, u32)],
    priority: Option<&[&str]>,
) -> TrafficPolicy {
    let mut spec = TrafficPolicySpec::new(svc.parse().unwrap());
    spec.weights = weights
        .iter()
        .map(|(c, w)| (c.parse().unwrap(), *w))
        .collect();
    if let Some(p) = priority {
        spec.failover_priority = p.iter().map(|s| s.to_string()).collect();
    }
    TrafficPolicy::new(name.parse().unwrap(), spec)
}

#[derive(Default)]
struct Cat {
    clusters: Vec<Cluster>,
    exports: Vec<ServiceExport>,
    residency: Vec<ResidencyPolicy>,
    traffic: Vec<TrafficPolicy>,
}

impl Cat {
    fn snapshot(&self, local: &str) -> RoutingSnapshot {
        let lc = self
            .clusters
            .iter()
            .find(|c| c.id().as_str() == local)
            .map(LocalCluster::from_cluster)
            .unwrap();
        RoutingSnapshot::build(
            CatalogView {
                revision: 7,
                clusters: self.clusters.iter().collect(),
                exports: self.exports.iter().collect(),
                residency: self.residency.iter().collect(),
                traffic: self.traffic.iter().collect(),
            },
            lc,
        )
    }
}

/// Health by cluster id.
#[derive(Default)]
struct Health(HashMap<&'static str, TargetHealth>);

impl Health {
    fn ejected(mut self, c: &'static str) -> Self {
        self.0.entry(c).or_default().ejected = true;
        self
    }
    /// Down: its gateway's active probe fails.
    fn down(mut self, c: &'static str) -> Self {
        self.0.entry(c).or_default().probe_failed = true;
        self
    }
    fn open(mut self, c: &'static str) -> Self {
        self.0.entry(c).or_default().circuit_open = true;
        self
    }
    fn rolled_back(mut self, c: &'static str) -> Self {
        self.0.entry(c).or_default().rolled_back = true;
        self
    }
}

impl HealthView for Health {
    fn target_health(&self, _ns: &str, _name: &str, cluster: &str) -> TargetHealth {
        self.0.get(cluster).copied().unwrap_or_default()
    }
}

/// Four clusters around `eu-a` (local): same zone, same region, shared
/// jurisdiction, elsewhere.
fn world() -> Cat {
    Cat {
        clusters: vec![
            cluster("eu-a", "eu-west-1", "eu-west-1a", &["eu", "ie"]),
            cluster("eu-b", "eu-west-1", "eu-west-1b", &["eu", "ie"]),
            cluster("de-a", "eu-central-1", "eu-central-1a", &["eu", "de"]),
            cluster("us-a", "us-east-1", "us-east-1a", &["us"]),
        ],
        exports: ["eu-a", "eu-b", "de-a", "us-a"]
            .iter()
            .map(|c| export("shop/cart", c, 3, 100))
            .collect(),
        ..Cat::default()
    }
}

const HOST: &str = "cart.shop.svc.clusterset.local";

fn routed(d: &Decision) -> (&str, Tier) {
    let r = d
        .route()
        .unwrap_or_else(|| panic!("expected a route, got {d:?}"));
    (&r.target.cluster, r.tier.clone())
}

// ---------- host parsing ----------

#[test]
fn parse_host_table() {
    let ok: &[(&str, &str, &str, Option<u16>)] = &[
        ("cart.shop.svc.clusterset.local", "cart", "shop", None),
        ("cart.shop.svc.clusterset.local.", "cart", "shop", None),
        (
            "Cart.SHOP.svc.ClusterSet.LOCAL:8080",
            "cart",
            "shop",
            Some(8080),
        ),
        ("a-1.b-2.svc.clusterset.local.:1", "a-1", "b-2", Some(1)),
    ];
    for (h, name, ns, port) in ok {
        let p = parse_host(h).unwrap_or_else(|e| panic!("{h}: {e}"));
        assert_eq!(
            (&*p.name, &*p.namespace, p.port),
            (*name, *ns, *port),
            "{h}"
        );
    }
    let bad: &[(&str, HostError)] = &[
        ("", HostError::Empty),
        ("cart.shop.svc.cluster.local", HostError::NotClusterset),
        ("cart.svc.clusterset.local", HostError::NotClusterset),
        ("x.cart.shop.svc.clusterset.local", HostError::NotClusterset),
        ("cart.shop.svc.clusterset.local:0", HostError::InvalidPort),
        (
            "cart.shop.svc.clusterset.local:65536",
            HostError::InvalidPort,
        ),
        ("cart.shop.svc.clusterset.local:", HostError::InvalidPort),
        (
            "cart.shop.svc.clusterset.local:http",
            HostError::InvalidPort,
        ),
        ("-cart.shop.svc.clusterset.local", HostError::InvalidLabel),
        ("ca_rt.shop.svc.clusterset.local", HostError::InvalidLabel),
        (".shop.svc.clusterset.local", HostError::InvalidLabel),
        ("[::1]:80", HostError::NotClusterset),
    ];
    for (h, e) in bad {
        assert_eq!(parse_host(h), Err(*e), "{h}");
    }
    // Lower-case input borrows.
    assert!(matches!(
        parse_host(HOST).unwrap().name,
        std::borrow::Cow::Borrowed(_)
    ));
}

// ---------- resolution ----------

#[test]
fn resolution_denials() {
    let snap = world().snapshot("eu-a");
    let cases: &[(RouteRequest<'_>, DenyReason, u16)] = &[
        (
            RouteRequest::host("nope.shop.svc.clusterset.local"),
            DenyReason::UnknownService,
            404,
        ),
        (
            RouteRequest::host("cart.shop.example.com"),
            DenyReason::InvalidHost,
            400,
        ),
        (
            RouteRequest::host("cart.shop.svc.clusterset.local:9999"),
            DenyReason::UnknownPort,
            404,
        ),
        (
            RouteRequest::service("shop", "cart").with_port(81),
            DenyReason::UnknownPort,
            404,
        ),
        (
            RouteRequest::service("other", "cart"),
            DenyReason::UnknownService,
            404,
        ),
    ];
    for (req, reason, status) in cases {
        let d = decide(&snap, &AllHealthy, req);
        let deny = d.deny().unwrap_or_else(|| panic!("{req:?} routed"));
        assert_eq!((deny.reason, deny.status), (*reason, *status), "{req:?}");
    }
    assert!(
        decide(
            &snap,
            &AllHealthy,
            &RouteRequest::host("cart.shop.svc.clusterset.local:8080")
        )
        .route()
        .is_some()
    );
}

// ---------- locality tiers ----------

#[test]
fn tiers_spill_in_order() {
    let snap = world().snapshot("eu-a");
    let cases: Vec<(Health, &str, Tier)> = vec![
        (Health::default(), "eu-a", Tier::Zone),
        (Health::default().ejected("eu-a"), "eu-b", Tier::Region),
        (
            Health::default().ejected("eu-a").open("eu-b"),
            "de-a",
            Tier::Priority("jurisdiction".into()),
        ),
        (
            Health::default()
                .ejected("eu-a")
                .open("eu-b")
                .ejected("de-a"),
            "us-a",
            Tier::Rest,
        ),
    ];
    for (h, want, tier) in cases {
        for seed in 0..20 {
            let d = decide(&snap, &h, &RouteRequest::host(HOST).with_random(seed));
            assert_eq!(routed(&d), (want, tier.clone()));
            assert_eq!(d.route().unwrap().reason.failover, want != "eu-a");
        }
    }
    let all = Health::default()
        .ejected("eu-a")
        .ejected("eu-b")
        .ejected("de-a")
        .ejected("us-a");
    // Every candidate ejected: panic routing uses them, nearest first.
    let d = decide(&snap, &all, &RouteRequest::host(HOST));
    assert_eq!(routed(&d), ("eu-a", Tier::Zone));
    assert!(d.route().unwrap().reason.panic);
    // A failing probe or an open circuit is not ejection: no panic there.
    let down = Health::default()
        .ejected("eu-a")
        .down("eu-a")
        .ejected("eu-b")
        .down("eu-b")
        .ejected("de-a")
        .down("de-a")
        .open("us-a");
    let d = decide(&snap, &down, &RouteRequest::host(HOST));
    assert_eq!(d.deny().unwrap().reason, DenyReason::NoHealthyCluster);
    assert_eq!(d.deny().unwrap().status, 503);
    // Panic skips what is down for another reason: eu-a's circuit is open.
    let all_but = Health::default()
        .ejected("eu-a")
        .open("eu-a")
        .ejected("eu-b")
        .ejected("de-a")
        .ejected("us-a");
    let d = decide(&snap, &all_but, &RouteRequest::host(HOST));
    assert_eq!(routed(&d), ("eu-b", Tier::Region));
    assert!(d.route().unwrap().reason.panic);
}

#[test]
fn no_ready_endpoints_spills() {
    let mut cat = world();
    cat.exports[0] = export("shop/cart", "eu-a", 0, 100);
    let snap = cat.snapshot("eu-a");
    assert_eq!(
        routed(&decide(&snap, &AllHealthy, &RouteRequest::host(HOST))).0,
        "eu-b"
    );
}

#[test]
fn same_zone_other_cluster_is_zone_tier() {
    let mut cat = world();
    cat.clusters
        .push(cluster("eu-a2", "eu-west-1", "eu-west-1a", &["eu"]));
    cat.exports.push(export("shop/cart", "eu-a2", 1, 100));
    cat.exports.remove(0); // local does not export
    let snap = cat.snapshot("eu-a");
    let d = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    assert_eq!(routed(&d), ("eu-a2", Tier::Zone));
    assert!(!d.route().unwrap().target.local);
    assert_eq!(
        &*d.route().unwrap().target.gateway_endpoints,
        ["gw.eu-a2.example:15443".to_string()]
    );
}

#[test]
fn local_target_is_local() {
    let snap = world().snapshot("eu-a");
    let r = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    let t = &r.route().unwrap().target;
    assert!(t.local);
    assert!(t.gateway_endpoints.is_empty());
    assert_eq!(&*t.trust_domain, "eu-a.causeway.dev");
}

#[test]
fn failover_priority_custom_label() {
    let mut cat = world();
    cat.clusters[0]
        .spec
        .labels
        .insert("provider".into(), "aws".into());
    cat.clusters[3]
        .spec
        .labels
        .insert("provider".into(), "aws".into());
    cat.traffic.push(traffic(
        "t",
        "shop/cart",
        &[],
        Some(&["provider", "jurisdiction"]),
    ));
    let snap = cat.snapshot("eu-a");
    let h = Health::default().ejected("eu-a").ejected("eu-b");
    // us-a shares `provider` (priority 0) before de-a shares a jurisdiction.
    assert_eq!(
        routed(&decide(&snap, &h, &RouteRequest::host(HOST))),
        ("us-a", Tier::Priority("provider".into()))
    );
    // Empty priority list: everything after the region is `rest`.
    cat.traffic[0] = traffic("t", "shop/cart", &[], Some(&[]));
    let snap = cat.snapshot("eu-a");
    let d = decide(&snap, &h, &RouteRequest::host(HOST));
    assert_eq!(routed(&d).1, Tier::Rest);
}

// ---------- residency ----------

#[test]
fn residency_service_level_is_a_hard_filter() {
    let mut cat = world();
    cat.residency
        .push(residency("de-only", &["shop/cart"], &["de"], &[]));
    let snap = cat.snapshot("eu-a");
    let d = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    assert_eq!(routed(&d).0, "de-a");
    assert_eq!(
        d.route().unwrap().reason.residency_policy.as_deref(),
        Some("de-only")
    );
    // The allowed cluster down: 503, never another cluster.
    let d = decide(
        &snap,
        &Health::default().down("de-a"),
        &RouteRequest::host(HOST),
    );
    let deny = d.deny().unwrap();
    assert_eq!(
        (deny.status, deny.reason),
        (503, DenyReason::ResidencyNoHealthyAllowedCluster)
    );
    assert_eq!(deny.policy.as_deref(), Some("de-only"));
    assert!(deny.reason.is_residency());
}

#[test]
fn residency_nothing_allowed() {
    let mut cat = world();
    cat.residency
        .push(residency("apac", &["shop/*"], &["sg"], &["ap-southeast-1"]));
    let snap = cat.snapshot("eu-a");
    let d = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    let deny = d.deny().unwrap();
    assert_eq!(
        (deny.status, deny.reason.as_str()),
        (503, "residency_no_allowed_cluster")
    );
    assert_eq!(deny.policy.as_deref(), Some("apac"));
}

#[test]
fn residency_region_allows() {
    let mut cat = world();
    cat.residency
        .push(residency("us-east", &[], &[], &["us-east-1"]));
    let snap = cat.snapshot("eu-a");
    assert_eq!(
        routed(&decide(&snap, &AllHealthy, &RouteRequest::host(HOST))),
        ("us-a", Tier::Rest)
    );
}

#[test]
fn residency_other_service_unaffected() {
    let mut cat = world();
    cat.residency
        .push(residency("de-only", &["shop/other"], &["de"], &[]));
    let snap = cat.snapshot("eu-a");
    assert_eq!(
        routed(&decide(&snap, &AllHealthy, &RouteRequest::host(HOST))).0,
        "eu-a"
    );
}

#[test]
fn residency_request_level_by_header() {
    let mut cat = world();
    cat.residency.push(with_header(
        residency("us-data", &[], &["us"], &[]),
        "x-data-residency",
        &["us"],
    ));
    let snap = cat.snapshot("eu-a");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "eu-a"),
        (&[("x-data-residency", "eu")], "eu-a"),
        (&[("x-data-residency", "us")], "us-a"),
        (&[("X-Data-Residency", "US")], "us-a"),
        (&[("x-data-residency", " us ")], "us-a"),
        (&[("x-data-residency", "eu, us")], "us-a"),
        (&[("x-other", "us")], "eu-a"),
    ];
    for (headers, want) in cases {
        let d = decide(
            &snap,
            &AllHealthy,
            &RouteRequest::host(HOST).with_headers(headers),
        );
        assert_eq!(routed(&d).0, *want, "{headers:?}");
        assert_eq!(
            d.route().unwrap().reason.residency_governed(),
            *want == "us-a"
        );
    }
}

#[test]
fn residency_request_level_by_claim() {
    let mut cat = world();
    cat.residency.push(with_claim(
        residency("de-claims", &[], &["de"], &[]),
        "tenant_region",
        &["de"],
    ));
    let snap = cat.snapshot("eu-a");
    let claims: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"tenant_region":["fr","de"]}"#).unwrap();
    let d = decide(
        &snap,
        &AllHealthy,
        &RouteRequest::host(HOST).with_claims(&claims),
    );
    assert_eq!(routed(&d).0, "de-a");
    let other: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"tenant_region":"fr"}"#).unwrap();
    assert_eq!(
        routed(&decide(
            &snap,
            &AllHealthy,
            &RouteRequest::host(HOST).with_claims(&other)
        ))
        .0,
        "eu-a"
    );
    // A header with the claim's name does not count as the claim.
    let h: &[(&str, &str)] = &[("tenant_region", "de")];
    assert_eq!(
        routed(&decide(
            &snap,
            &AllHealthy,
            &RouteRequest::host(HOST).with_headers(h)
        ))
        .0,
        "eu-a"
    );
}

#[test]
fn residency_policies_intersect() {
    let mut cat = world();
    cat.residency
        .push(residency("eu", &["shop/cart"], &["eu"], &[]));
    cat.residency.push(with_header(
        residency("ie", &[], &["ie"], &[]),
        "x-tenant",
        &["irish"],
    ));
    cat.residency.push(with_header(
        residency("us", &[], &["us"], &[]),
        "x-tenant",
        &["american"],
    ));
    let snap = cat.snapshot("eu-a");
    let h = Health::default().ejected("eu-a");
    // eu ∩ ie = {eu-a, eu-b}; eu-a is down -> eu-b.
    let hd: &[(&str, &str)] = &[("x-tenant", "irish")];
    let d = decide(&snap, &h, &RouteRequest::host(HOST).with_headers(hd));
    assert_eq!(routed(&d).0, "eu-b");
    assert_eq!(d.route().unwrap().reason.residency_policies, 2);
    // eu ∩ us = {} -> 503.
    let hd: &[(&str, &str)] = &[("x-tenant", "american")];
    let d = decide(&snap, &h, &RouteRequest::host(HOST).with_headers(hd));
    assert_eq!(
        d.deny().unwrap().reason,
        DenyReason::ResidencyNoAllowedCluster
    );
    // Both values at once: eu ∩ ie ∩ us = {}.
    let hd: &[(&str, &str)] = &[("x-tenant", "irish"), ("x-tenant", "american")];
    let d = decide(
        &snap,
        &AllHealthy,
        &RouteRequest::host(HOST).with_headers(hd),
    );
    assert_eq!(d.deny().unwrap().status, 503);
}

#[test]
fn retries_exclude_but_never_widen() {
    let mut cat = world();
    cat.residency.push(residency("eu", &[], &["eu"], &[]));
    let snap = cat.snapshot("eu-a");
    let first = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    assert_eq!(routed(&first).0, "eu-a");
    assert_eq!(first.route().unwrap().alternatives, 0);
    let tried = ["eu-a"];
    let second = decide(
        &snap,
        &AllHealthy,
        &RouteRequest::host(HOST).with_exclude(&tried),
    );
    assert_eq!(routed(&second).0, "eu-b");
    let tried = ["eu-a", "eu-b", "de-a"];
    let third = decide(
        &snap,
        &AllHealthy,
        &RouteRequest::host(HOST).with_exclude(&tried),
    );
    // us-a is healthy but not allowed.
    assert_eq!(
        third.deny().unwrap().reason,
        DenyReason::ResidencyNoHealthyAllowedCluster
    );
}

// ---------- weights ----------

fn split_world() -> Cat {
    Cat {
        clusters: vec![
            cluster("local", "eu-west-1", "eu-west-1a", &["eu"]),
            cluster("stable", "eu-west-1", "eu-west-1b", &["eu"]),
            cluster("canary", "eu-west-1", "eu-west-1c", &["eu"]),
        ],
        exports: vec![
            export("shop/cart", "stable", 2, 100),
            export("shop/cart", "canary", 2, 100),
        ],
        ..Cat::default()
    }
}

fn counts(snap: &RoutingSnapshot, h: &impl HealthView, n: u64) -> HashMap<String, u64> {
    let mut m = HashMap::new();
    for i in 0..n {
        let d = decide(
            snap,
            h,
            &RouteRequest::host(HOST).with_random(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        );
        *m.entry(routed(&d).0.to_string()).or_default() += 1;
    }
    m
}

#[test]
fn weights_from_export_and_policy() {
    let mut cat = split_world();
    cat.exports[1] = export("shop/cart", "canary", 2, 25);
    let snap = cat.snapshot("local");
    let c = counts(&snap, &AllHealthy, 10_000);
    let canary = c["canary"] as f64 / 10_000.0;
    assert!((canary - 0.2).abs() < 0.02, "{c:?}");
    // The traffic policy overrides: 90/10.
    cat.traffic.push(traffic(
        "split",
        "shop/cart",
        &[("stable", 90), ("canary", 10)],
        None,
    ));
    let snap = cat.snapshot("local");
    let c = counts(&snap, &AllHealthy, 10_000);
    assert!((c["canary"] as f64 / 10_000.0 - 0.1).abs() < 0.015, "{c:?}");
    let r = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    assert_eq!(
        r.route().unwrap().reason.traffic_policy.as_deref(),
        Some("split")
    );
    assert_eq!(r.route().unwrap().reason.tier_weight, 100);
}

#[test]
fn weight_zero_and_rollback() {
    let mut cat = split_world();
    // Absent from a non-empty weights map = 0.
    cat.traffic
        .push(traffic("split", "shop/cart", &[("stable", 100)], None));
    let snap = cat.snapshot("local");
    assert_eq!(counts(&snap, &AllHealthy, 500).get("canary"), None);
    // Rollback guard forces the canary to 0.
    cat.traffic[0] = traffic(
        "split",
        "shop/cart",
        &[("stable", 50), ("canary", 50)],
        None,
    );
    let snap = cat.snapshot("local");
    assert_eq!(
        counts(&snap, &Health::default().rolled_back("canary"), 500).get("canary"),
        None
    );
    // Everything at weight 0.
    cat.traffic[0] = traffic("split", "shop/cart", &[("stable", 0), ("canary", 0)], None);
    let snap = cat.snapshot("local");
    let d = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    assert_eq!(d.deny().unwrap().reason, DenyReason::NoWeightedCluster);
}

#[test]
fn zero_weight_tier_spills() {
    let mut cat = world();
    cat.traffic
        .push(traffic("migrate", "shop/cart", &[("de-a", 100)], None));
    let snap = cat.snapshot("eu-a");
    assert_eq!(
        routed(&decide(&snap, &AllHealthy, &RouteRequest::host(HOST))).0,
        "de-a"
    );
}

#[test]
fn decide_is_deterministic() {
    let snap = split_world().snapshot("local");
    for seed in [0, 1, 42, u64::MAX] {
        let a = decide(
            &snap,
            &AllHealthy,
            &RouteRequest::host(HOST).with_random(seed),
        );
        let b = decide(
            &snap,
            &AllHealthy,
            &RouteRequest::host(HOST).with_random(seed),
        );
        assert_eq!(a, b);
    }
}

// ---------- snapshot details ----------

#[test]
fn export_of_unknown_cluster_is_ignored_and_local_unregistered_works() {
    let mut cat = world();
    cat.exports.push(export("shop/ghost", "nowhere", 1, 100));
    let snap = cat.snapshot("eu-a");
    let d = decide(&snap, &AllHealthy, &RouteRequest::service("shop", "ghost"));
    assert_eq!(d.deny().unwrap().reason, DenyReason::NoHealthyCluster);
    // A local cluster without a record still routes locally.
    let cat2 = Cat {
        exports: vec![export("shop/cart", "solo", 1, 100)],
        ..Cat::default()
    };
    let snap = RoutingSnapshot::build(
        CatalogView {
            exports: cat2.exports.iter().collect(),
            ..CatalogView::default()
        },
        LocalCluster {
            id: "solo".into(),
            ..LocalCluster::default()
        },
    );
    let d = decide(&snap, &AllHealthy, &RouteRequest::host(HOST));
    assert_eq!(routed(&d), ("solo", Tier::Zone));
    assert!(d.route().unwrap().target.local);
}

#[test]
fn from_catalog_matches_build() {
    let cat = world();
    let mut cs = causeway_api::model::CatalogSnapshot {
        revision: 7,
        ..Default::default()
    };
    for c in &cat.clusters {
        cs.clusters.insert(c.id().clone(), c.clone());
    }
    for e in &cat.exports {
        cs.exports.insert(e.key(), e.clone());
    }
    let snap = RoutingSnapshot::from_catalog(&cs, LocalCluster::from_cluster(&cat.clusters[0]));
    assert_eq!(snap.revision(), 7);
    assert_eq!(snap.service_count(), 1);
    assert_eq!(
        routed(&decide(&snap, &AllHealthy, &RouteRequest::host(HOST))).0,
        "eu-a"
    );
}

// ---------- explain ----------

#[test]
fn explain_names_filters_and_tiers() {
    let mut cat = world();
    cat.residency
        .push(residency("eu", &["shop/cart"], &["eu"], &[]));
    cat.residency.push(with_header(
        residency("de", &[], &["de"], &[]),
        "x-r",
        &["de"],
    ));
    let snap = cat.snapshot("eu-a");
    let h = Health::default().ejected("eu-a");
    let ex = explain(&snap, &h, &RouteRequest::host(HOST));
    assert_eq!(ex.service.as_deref(), Some("shop/cart"));
    assert_eq!(ex.residency.len(), 2);
    assert!(ex.residency.iter().any(|r| r.policy == "eu" && r.applies));
    assert!(ex.residency.iter().any(|r| r.policy == "de" && !r.applies));
    let by: HashMap<&str, &CandidateExplanation> = ex
        .candidates
        .iter()
        .map(|c| (c.cluster.as_str(), c))
        .collect();
    assert_eq!(by["eu-a"].status, CandidateStatus::Unhealthy);
    assert_eq!(
        by["eu-b"].status,
        CandidateStatus::Eligible { share: Some(1.0) }
    );
    assert!(by["eu-b"].chosen);
    assert_eq!(
        by["us-a"].status,
        CandidateStatus::ResidencyFiltered {
            policy: "eu".into()
        }
    );
    assert_eq!(
        ex.candidates
            .iter()
            .map(|c| c.tier.as_str())
            .collect::<Vec<_>>(),
        ["zone", "region", "priority", "rest"]
    );
    let json = serde_json::to_value(&ex).unwrap();
    assert_eq!(json["decision"]["outcome"], "route");
    assert_eq!(json["decision"]["target"]["cluster"], "eu-b");
    assert_eq!(json["candidates"][3]["status"], "residency_filtered");
    // Denials serialize with the machine-readable reason.
    let hd: &[(&str, &str)] = &[("x-r", "de")];
    let ex = explain(
        &snap,
        &h.down("de-a"),
        &RouteRequest::host(HOST).with_headers(hd),
    );
    let json = serde_json::to_value(&ex).unwrap();
    assert_eq!(
        json["decision"]["reason"],
        "residency_no_healthy_allowed_cluster"
    );
    assert_eq!(json["decision"]["status"], 503);
    // Unknown services explain with no candidates.
    let ex = explain(
        &snap,
        &AllHealthy,
        &RouteRequest::host("x.y.svc.clusterset.local"),
    );
    assert!(ex.service.is_none() && ex.candidates.is_empty());
}

#[test]
fn reason_renders_for_humans() {
    let mut cat = world();
    cat.residency.push(residency("eu", &[], &["eu"], &[]));
    let snap = cat.snapshot("eu-a");
    let d = decide(
        &snap,
        &Health::default().ejected("eu-a"),
        &RouteRequest::host(HOST),
    );
    let text = d.route().unwrap().reason.to_string();
    assert!(
        text.contains("failover") && text.contains("residency restricted by eu"),
        "{text}"
    );
}
