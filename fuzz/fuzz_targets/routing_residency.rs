//! The routing decision over fuzzed catalogs (clusters, exports, residency
//! and traffic policies, health) and requests. Invariant: residency is never
//! violated — a routed request goes to a cluster that exports the service,
//! is not excluded, and is allowed by every residency policy that applies to
//! the request (checked against an independent reference, including more
//! than 64 request-classified policies to reach the snapshot's overflow
//! path). `explain` never panics either.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use causeway_api::model::policy::RequestClassification;
use causeway_api::model::{
    Cluster, ClusterSpec, ResidencyPolicy, ResidencyPolicySpec, ServiceExport, ServiceExportSpec,
    ServicePort, ServiceSelector, TrafficPolicy, TrafficPolicySpec, ZoneEndpoints,
};
use causeway_gateway::routing::{
    CatalogView, Decision, HealthView, LocalCluster, RouteRequest, RoutingSnapshot, TargetHealth,
    decide, explain,
};
use libfuzzer_sys::fuzz_target;

const REGIONS: [&str; 3] = ["r1", "r2", "r3"];
const JURS: [&str; 3] = ["eu", "us", "de"];
const SERVICES: [&str; 3] = ["s0", "s1", "s2"];
const VALUES: [&str; 3] = ["v1", "v2", "pii"];
const HEADER_VALUES: [&str; 10] = [
    "v1",
    "V2",
    "v1, v2",
    " pii ",
    "other",
    "other,PII",
    "",
    ",",
    "v1,",
    "x, y ,v2",
];
const PRIORITY: [&str; 4] = ["region", "jurisdiction", "tier", "zone"];

#[derive(Debug, Arbitrary)]
struct FCluster {
    region: u8,
    zone: u8,
    jurs: u8,
    tier: Option<bool>,
}

#[derive(Debug, Arbitrary)]
struct FExport {
    service: u8,
    cluster: u8,
    ready: u8,
    weight: u8,
    port: bool,
}

#[derive(Debug, Arbitrary)]
struct FPolicy {
    service: Option<u8>,
    /// (use a claim instead of a header, value mask)
    classify: Option<(bool, u8)>,
    jurs: u8,
    regions: u8,
}

#[derive(Debug, Arbitrary)]
struct FTraffic {
    service: u8,
    priority: Vec<u8>,
    weights: Option<Vec<u8>>,
}

#[derive(Debug, Arbitrary)]
struct FRequest {
    service: u8,
    by_host: bool,
    headers: Vec<(bool, u8)>,
    claim: Option<u8>,
    port: Option<bool>,
    random: u64,
    exclude: u8,
}

#[derive(Debug, Arbitrary)]
struct World {
    clusters: Vec<FCluster>,
    exports: Vec<FExport>,
    policies: Vec<FPolicy>,
    /// Appended copies of the first policy, to reach > 64 request policies.
    repeat_first_policy: u8,
    traffic: Vec<FTraffic>,
    /// Per (service, cluster): health bits.
    health: Vec<u8>,
    requests: Vec<FRequest>,
}

fn mask<const N: usize>(m: u8, names: [&str; N]) -> Vec<String> {
    (0..N)
        .filter(|i| m & (1 << i) != 0)
        .map(|i| names[i].to_string())
        .collect()
}

struct Health<'a>(&'a [u8], usize);

impl HealthView for Health<'_> {
    fn target_health(&self, _ns: &str, name: &str, cluster: &str) -> TargetHealth {
        let s = SERVICES.iter().position(|x| *x == name).unwrap_or(0);
        let c: usize = cluster[1..].parse().unwrap_or(0);
        let b = self.0.get(s * self.1 + c).copied().unwrap_or(0);
        TargetHealth {
            ejected: b & 1 != 0,
            circuit_open: b & 2 != 0,
            probe_failed: b & 4 != 0,
            rolled_back: b & 8 != 0,
        }
    }
}

/// Reference classification (same documented semantics as the engine).
fn hit(values: &[String], v: &str) -> bool {
    let eq = |x: &str| values.iter().any(|y| y.eq_ignore_ascii_case(x.trim()));
    eq(v) || v.split(',').any(eq)
}

fuzz_target!(|w: World| {
    let n = w.clusters.len().clamp(1, 8);
    if w.clusters.is_empty() {
        return;
    }
    let clusters: Vec<Cluster> = w.clusters[..n]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut labels = BTreeMap::new();
            if let Some(t) = c.tier {
                labels.insert("tier".into(), if t { "gold" } else { "silver" }.into());
            }
            Cluster::new(
                format!("c{i}").parse().expect("valid id"),
                ClusterSpec {
                    cloud: String::new(),
                    region: REGIONS[c.region as usize % 3].into(),
                    zone: format!("z{}", c.zone % 2),
                    jurisdictions: mask(c.jurs, JURS),
                    labels,
                    gateway: Default::default(),
                    trust_domain: format!("c{i}.td").parse().expect("valid td"),
                },
            )
        })
        .collect();
    let mut exports: BTreeMap<(usize, usize), ServiceExport> = BTreeMap::new();
    for e in w.exports.iter().take(24) {
        let (s, c) = (e.service as usize % 3, e.cluster as usize % n);
        exports.insert(
            (s, c),
            ServiceExport::new(
                "ns".parse().expect("ns"),
                SERVICES[s].parse().expect("svc"),
                format!("c{c}").parse().expect("id"),
                ServiceExportSpec {
                    ports: vec![ServicePort {
                        name: None,
                        protocol: Default::default(),
                        app_protocol: None,
                        port: if e.port { 80 } else { 8080 },
                    }],
                    endpoints: vec![ZoneEndpoints {
                        zone: "z".into(),
                        ready: u32::from(e.ready % 3),
                    }],
                    weight: u32::from(e.weight % 4),
                    ..ServiceExportSpec::default()
                },
            ),
        );
    }
    let mut fpolicies: Vec<&FPolicy> = w.policies.iter().take(8).collect();
    if let Some(first) = fpolicies.first().copied() {
        for _ in 0..(w.repeat_first_policy % 80) {
            fpolicies.push(first);
        }
    }
    let policies: Vec<(
        Option<usize>,
        Option<(bool, Vec<String>)>,
        Vec<String>,
        Vec<String>,
    )> = fpolicies
        .iter()
        .map(|p| {
            (
                p.service.map(|s| s as usize % 3),
                p.classify.map(|(claim, m)| (claim, mask(m, VALUES))),
                mask(p.jurs, JURS),
                mask(p.regions, REGIONS),
            )
        })
        .collect();
    let residency: Vec<ResidencyPolicy> = policies
        .iter()
        .enumerate()
        .map(|(i, (svc, classify, jurs, regions))| {
            ResidencyPolicy::new(
                format!("p{i}").parse().expect("name"),
                ResidencyPolicySpec {
                    services: ServiceSelector(
                        svc.iter()
                            .map(|s| format!("ns/{}", SERVICES[*s]).parse().expect("sel"))
                            .collect(),
                    ),
                    match_: classify
                        .as_ref()
                        .map(|(claim, values)| RequestClassification {
                            header: (!claim).then(|| "x-data-class".into()),
                            jwt_claim: claim.then(|| "class".into()),
                            values: values.clone(),
                            ..Default::default()
                        }),
                    allowed_jurisdictions: jurs.clone(),
                    allowed_regions: regions.clone(),
                },
            )
        })
        .collect();
    let traffic: Vec<TrafficPolicy> = w
        .traffic
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, t)| {
            let s = t.service as usize % 3;
            let mut spec =
                TrafficPolicySpec::new(format!("ns/{}", SERVICES[s]).parse().expect("svc"));
            spec.failover_priority = t
                .priority
                .iter()
                .take(4)
                .map(|p| PRIORITY[*p as usize % 4].to_string())
                .collect();
            if let Some(ws) = &t.weights {
                spec.weights = ws
                    .iter()
                    .take(n)
                    .enumerate()
                    .map(|(c, w)| (format!("c{c}").parse().expect("id"), u32::from(*w % 4)))
                    .collect();
            }
            TrafficPolicy::new(format!("t{i}").parse().expect("name"), spec)
        })
        .collect();
    let snap = RoutingSnapshot::build(
        CatalogView {
            revision: 1,
            clusters: clusters.iter().collect(),
            exports: exports.values().collect(),
            residency: residency.iter().collect(),
            traffic: traffic.iter().collect(),
        },
        LocalCluster::from_cluster(&clusters[0]),
    );
    let health = Health(&w.health, n);
    for r in w.requests.iter().take(8) {
        let s = r.service as usize % 3;
        let headers: Vec<(&str, &str)> = r
            .headers
            .iter()
            .take(4)
            .map(|(upper, v)| {
                (
                    if *upper {
                        "X-Data-Class"
                    } else {
                        "x-data-class"
                    },
                    HEADER_VALUES[*v as usize % HEADER_VALUES.len()],
                )
            })
            .collect();
        let claims: Vec<(&str, &str)> = r
            .claim
            .map(|v| ("class", HEADER_VALUES[v as usize % HEADER_VALUES.len()]))
            .into_iter()
            .collect();
        let exclude: Vec<String> = (0..n)
            .filter(|c| r.exclude & (1 << c) != 0)
            .map(|c| format!("c{c}"))
            .collect();
        let exclude_refs: Vec<&str> = exclude.iter().map(String::as_str).collect();
        let host = format!("{}.ns.svc.clusterset.local", SERVICES[s]);
        let hs = headers.as_slice();
        let cs = claims.as_slice();
        let mut req = if r.by_host {
            RouteRequest::host(&host)
        } else {
            RouteRequest::service("ns", SERVICES[s])
        }
        .with_headers(hs)
        .with_claims(&cs)
        .with_random(r.random)
        .with_exclude(&exclude_refs);
        if let Some(p) = r.port {
            req = req.with_port(if p { 80 } else { 8080 });
        }
        let d = decide(&snap, &health, &req);
        let _ = explain(&snap, &health, &req);
        let Decision::Route(route) = &d else {
            continue;
        };
        let c: usize = route.target.cluster[1..].parse().expect("cluster id");
        assert!(
            exports.contains_key(&(s, c)),
            "routed to a non-exporter: {route:?}"
        );
        assert!(
            !exclude.contains(&format!("c{c}")),
            "routed to an excluded cluster"
        );
        let cl = &clusters[c].spec;
        for (i, (svc, classify, jurs, regions)) in policies.iter().enumerate() {
            if svc.is_some_and(|x| x != s) {
                continue;
            }
            let applies = match classify {
                None => true,
                Some((false, values)) => headers.iter().any(|(_, v)| hit(values, v)),
                Some((true, values)) => claims.iter().any(|(_, v)| hit(values, v)),
            };
            if !applies {
                continue;
            }
            let ok =
                cl.jurisdictions.iter().any(|j| jurs.contains(j)) || regions.contains(&cl.region);
            assert!(
                ok,
                "residency violated: policy p{i} forbids c{c} for {req:?} -> {route:?}"
            );
        }
    }
});
