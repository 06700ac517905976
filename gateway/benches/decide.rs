//! Cost of one routing decision on a 100-cluster, 100-service snapshot
//! (every service exported by every cluster).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use causeway_api::model::policy::RequestClassification;
use causeway_api::model::{
    Cluster, ClusterSpec, GatewaySpec, ResidencyPolicy, ResidencyPolicySpec, ServiceExport,
    ServiceExportSpec, ServicePort, ServiceSelector, ZoneEndpoints,
};
use causeway_gateway::routing::{
    AllHealthy, CatalogView, LocalCluster, RouteRequest, RoutingSnapshot, decide,
};
use criterion::{Criterion, criterion_group, criterion_main};

const REGIONS: [&str; 5] = [
    "eu-west-1",
    "eu-central-1",
    "us-east-1",
    "us-west-2",
    "ap-south-1",
];
const JURS: [&str; 5] = ["eu", "eu", "us", "us", "in"];

fn catalog() -> (Vec<Cluster>, Vec<ServiceExport>, Vec<ResidencyPolicy>) {
    let clusters: Vec<Cluster> = (0..100)
        .map(|i| {
            let r = i % 5;
            Cluster::new(
                format!("c{i}").parse().unwrap(),
                ClusterSpec {
                    cloud: "aws".into(),
                    region: REGIONS[r].into(),
                    zone: format!("{}{}", REGIONS[r], ["a", "b", "c"][i % 3]),
                    jurisdictions: vec![JURS[r].into()],
                    labels: Default::default(),
                    gateway: GatewaySpec {
                        endpoints: vec![format!("gw-{i}.example:15443").parse().unwrap()],
                    },
                    trust_domain: format!("c{i}.causeway.dev").parse().unwrap(),
                },
            )
        })
        .collect();
    let mut exports = Vec::new();
    for s in 0..100 {
        for c in 0..100 {
            exports.push(ServiceExport::new(
                "shop".parse().unwrap(),
                format!("svc{s}").parse().unwrap(),
                format!("c{c}").parse().unwrap(),
                ServiceExportSpec {
                    ports: vec![ServicePort {
                        name: None,
                        protocol: Default::default(),
                        app_protocol: None,
                        port: 8080,
                    }],
                    endpoints: vec![ZoneEndpoints {
                        zone: "z".into(),
                        ready: 3,
                    }],
                    ..ServiceExportSpec::default()
                },
            ));
        }
    }
    let residency = vec![ResidencyPolicy::new(
        "us-data".parse().unwrap(),
        ResidencyPolicySpec {
            services: ServiceSelector::default(),
            match_: Some(RequestClassification {
                header: Some("x-data-residency".into()),
                jwt_claim: None,
                values: vec!["us".into()],
                ..Default::default()
            }),
            allowed_jurisdictions: vec!["us".into()],
            allowed_regions: vec![],
        },
    )];
    (clusters, exports, residency)
}

fn bench(c: &mut Criterion) {
    let (clusters, exports, residency) = catalog();
    let view = CatalogView {
        revision: 1,
        clusters: clusters.iter().collect(),
        exports: exports.iter().collect(),
        residency: residency.iter().collect(),
        traffic: vec![],
    };
    c.bench_function("snapshot_build_100x100", |b| {
        b.iter(|| RoutingSnapshot::build(view.clone(), LocalCluster::from_cluster(&clusters[0])))
    });
    let snap = RoutingSnapshot::build(view.clone(), LocalCluster::from_cluster(&clusters[0]));
    let hosts: Vec<String> = (0..100)
        .map(|s| format!("svc{s}.shop.svc.clusterset.local:8080"))
        .collect();
    let mut i = 0u64;
    c.bench_function("decide_local_zone", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let req = RouteRequest::host(&hosts[(i % 100) as usize]).with_random(i);
            black_box(decide(&snap, &AllHealthy, black_box(&req)))
        })
    });
    // A residency-governed request from an EU cluster: spills past the zone,
    // region and jurisdiction tiers to the 40 US clusters (weighted pick
    // over 40 candidates after scanning 100).
    let headers = [("x-data-residency", "us")];
    c.bench_function("decide_residency_spill_100_candidates", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let req = RouteRequest::host(&hosts[(i % 100) as usize])
                .with_headers(&headers)
                .with_random(i);
            black_box(decide(&snap, &AllHealthy, black_box(&req)))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
