#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use causeway_api::model::CatalogSnapshot;
use causeway_trust::SpiffeId;

use super::*;
use crate::catalog::CatalogState;
use crate::config::ClusterConfig;
use crate::state::{EndpointLists, local_table};

fn cluster(id: &str, td: &str, jurisdiction: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "causeway.dev/v1", "kind": "Cluster", "metadata": {"name": id},
        "spec": {"region": format!("{jurisdiction}-r"), "zone": format!("{jurisdiction}-z"),
                 "jurisdictions": [jurisdiction],
                 "gateway": {"endpoints": ["127.0.0.1:15443"]}, "trustDomain": td}
    })
}

fn export(ns: &str, name: &str, cluster: &str, ports: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "causeway.dev/v1", "kind": "ServiceExport",
        "metadata": {"namespace": ns, "name": name, "cluster": cluster},
        "spec": {"ports": ports, "endpoints": [{"zone": "z", "ready": 1}]}
    })
}

/// us-1 (the local cluster) exports `pay/ledger` (EU-only by policy),
/// `demo/echo` (EU-only for requests marked `x-data-region: eu`),
/// `db/pg` (a TCP port and an HTTP port) and `demo/locked` (only eu-1 may
/// call it); `demo/gone` is exported but has no local endpoint.
fn state() -> GatewayState {
    let http = serde_json::json!([{"name": "http", "port": 8080, "appProtocol": "http"}]);
    let catalog: CatalogSnapshot = serde_json::from_value(serde_json::json!({
        "revision": 3,
        "clusters": {
            "eu-1": cluster("eu-1", "eu-1.example", "eu"),
            "us-1": cluster("us-1", "us-1.example", "us"),
        },
        "exports": {
            "pay/ledger/us-1": export("pay", "ledger", "us-1", http.clone()),
            "demo/echo/us-1": export("demo", "echo", "us-1", http.clone()),
            "demo/locked/us-1": export("demo", "locked", "us-1", http.clone()),
            "demo/gone/us-1": export("demo", "gone", "us-1", http.clone()),
            "db/pg/us-1": export("db", "pg", "us-1", serde_json::json!([
                {"name": "pg", "port": 5432, "appProtocol": "postgresql"},
                {"name": "admin", "port": 8080, "appProtocol": "http"},
                {"name": "plain", "port": 9000}
            ])),
        },
        "policies": {
            "residency": {
                "ledger-eu": {"apiVersion": "causeway.dev/v1", "kind": "ResidencyPolicy",
                    "metadata": {"name": "ledger-eu"},
                    "spec": {"services": ["pay/ledger"], "allowedJurisdictions": ["eu"]}},
                "eu-data": {"apiVersion": "causeway.dev/v1", "kind": "ResidencyPolicy",
                    "metadata": {"name": "eu-data"},
                    "spec": {"services": ["demo/echo"], "allowedJurisdictions": ["eu"],
                             "match": {"header": "x-data-region", "values": ["eu"]}}}
            },
            "access": {
                "locked": {"apiVersion": "causeway.dev/v1", "kind": "AccessPolicy",
                    "metadata": {"name": "locked"},
                    "spec": {"services": ["demo/locked"], "allow": [{"clusters": ["eu-1"]}]}}
            }
        }
    }))
    .unwrap();
    let local = ClusterConfig::new(
        "us-1".parse().unwrap(),
        causeway_trust::TrustDomain::new("us-1.example").unwrap(),
    );
    let addr = vec!["127.0.0.1:9".parse().unwrap()];
    let mut ready: BTreeMap<String, Vec<std::net::SocketAddr>> = BTreeMap::new();
    for s in ["pay/ledger", "demo/echo", "demo/locked", "db/pg"] {
        ready.insert(s.into(), addr.clone());
    }
    GatewayState::without_services(
        CatalogState::build(catalog, &local),
        local_table(
            ready.iter().map(|(k, v)| (k.clone(), v.as_slice())),
            &EndpointLists::new(),
        ),
    )
}

fn id(s: &str) -> SpiffeId {
    s.parse().unwrap()
}

fn eu_gateway() -> SpiffeId {
    id("spiffe://eu-1.example/causeway/gateway/eu-1")
}

fn http() -> Access<'static> {
    Access::Http {
        path: "/",
        method: "GET",
        headers: Headers::None,
    }
}

fn key(svc: &str, port: Option<u16>) -> ServiceKey {
    let (ns, name) = svc.split_once('/').unwrap();
    ServiceKey::new(ns, name, port)
}

#[test]
fn tunnels_open_only_ports_exported_as_tcp() {
    let s = state();
    let peer = eu_gateway();
    let pg = |port| authorize(&s, &peer, &key("db/pg", Some(port)), None, Access::Tunnel);
    assert!(pg(5432).is_ok());
    assert_eq!(pg(1), Err(Denial::PortNotExported { port: 1 }));
    assert_eq!(pg(8080), Err(Denial::NotTunnelable { port: 8080 }));
    // No appProtocol: most such ports carry HTTP, so they are not tunnelled.
    assert_eq!(pg(9000), Err(Denial::NotTunnelable { port: 9000 }));
    let echo = authorize(
        &s,
        &peer,
        &key("demo/echo", Some(8080)),
        None,
        Access::Tunnel,
    );
    assert_eq!(echo, Err(Denial::NotTunnelable { port: 8080 }));
}

#[test]
fn http_needs_an_exported_service_with_endpoints_and_port() {
    let s = state();
    let peer = eu_gateway();
    let ok = authorize(&s, &peer, &key("demo/echo", None), None, http()).unwrap();
    assert_eq!(ok.source_cluster.as_deref(), Some("eu-1"));
    assert!(authorize(&s, &peer, &key("demo/echo", Some(8080)), None, http()).is_ok());
    assert_eq!(
        authorize(&s, &peer, &key("demo/echo", Some(81)), None, http()),
        Err(Denial::PortNotExported { port: 81 })
    );
    for missing in ["demo/nope", "demo/gone"] {
        assert_eq!(
            authorize(&s, &peer, &key(missing, None), None, http()),
            Err(Denial::NotExported),
            "{missing}"
        );
    }
}

#[test]
fn residency_is_checked_again_at_the_destination() {
    let s = state();
    let peer = eu_gateway();
    let forbidden = Err(Denial::ResidencyForbidsLocal {
        policy: "ledger-eu".into(),
    });
    // Service-level policy: every request and every tunnel.
    assert_eq!(
        authorize(&s, &peer, &key("pay/ledger", None), None, http()),
        forbidden
    );
    // Classified by header: only requests that carry it.
    let eu = [("x-data-region", "eu")];
    let marked = Access::Http {
        path: "/",
        method: "GET",
        headers: Headers::Pairs(&eu),
    };
    assert_eq!(
        authorize(&s, &peer, &key("demo/echo", None), None, marked),
        Err(Denial::ResidencyForbidsLocal {
            policy: "eu-data".into()
        })
    );
    assert!(authorize(&s, &peer, &key("demo/echo", None), None, http()).is_ok());
}

#[test]
fn callers_must_be_of_the_peer_trust_domain_and_allowed() {
    let s = state();
    let peer = eu_gateway();
    let foreign = id("spiffe://us-1.example/ns/admin/sa/root");
    assert_eq!(
        authorize(&s, &peer, &key("demo/echo", None), Some(&foreign), http()),
        Err(Denial::CallerTrustDomainMismatch)
    );
    let own = id("spiffe://eu-1.example/ns/shop/sa/web");
    assert!(authorize(&s, &peer, &key("demo/locked", None), Some(&own), http()).is_ok());
    assert!(authorize(&s, &peer, &key("demo/locked", None), None, Access::Tunnel).is_err());
    // A gateway of another trust domain that names eu-1 as its cluster is
    // not eu-1: the catalog places eu-1 in eu-1.example.
    let impostor = id("spiffe://us-1.example/causeway/gateway/eu-1");
    assert_eq!(
        authorize(&s, &impostor, &key("demo/locked", None), None, http()),
        Err(Denial::AccessDenied)
    );
}

proptest::proptest! {
    /// Whatever a peer asks for, a grant keeps every rule of the core: the
    /// service is exported here with an endpoint, a tunnel only reaches a
    /// port exported as TCP (never an HTTP one), a stated caller is of the
    /// peer's trust domain, residency never lets us-1 serve what must stay
    /// in the EU, and `demo/locked` is only for eu-1.
    #[test]
    fn grants_keep_every_rule(
        svc in proptest::sample::select(vec![
            "pay/ledger", "demo/echo", "demo/locked", "demo/gone", "db/pg", "demo/nope",
        ]),
        port in proptest::option::of(proptest::sample::select(vec![0u16, 1, 5432, 8080, 9000, 65535])),
        peer in proptest::sample::select(vec![
            "spiffe://eu-1.example/causeway/gateway/eu-1",
            "spiffe://us-1.example/causeway/gateway/eu-1",
            "spiffe://us-1.example/causeway/gateway/us-1",
            "spiffe://eu-1.example/ns/x/sa/y",
        ]),
        caller in proptest::option::of(proptest::sample::select(vec![
            "spiffe://eu-1.example/ns/shop/sa/web",
            "spiffe://us-1.example/ns/admin/sa/root",
        ])),
        tunnel: bool,
        region in proptest::option::of(proptest::sample::select(vec!["eu", "EU", "us", ""])),
        header_name in proptest::sample::select(vec!["x-data-region", "X-Data-Region", "x-other"]),
        path in "/[a-z./%]{0,12}",
    ) {
        let s = state();
        let peer = id(peer);
        let caller = caller.map(id);
        let pairs: Vec<(&str, &str)> = region.map(|r| (header_name, r)).into_iter().collect();
        let access = if tunnel {
            Access::Tunnel
        } else {
            Access::Http { path: &path, method: "GET", headers: Headers::Pairs(&pairs) }
        };
        let decision = authorize(&s, &peer, &key(svc, port), caller.as_ref(), access);
        if let Ok(granted) = decision {
            proptest::prop_assert!(["demo/echo", "demo/locked", "db/pg"].contains(&svc));
            if tunnel {
                proptest::prop_assert_eq!((svc, port), ("db/pg", Some(5432)));
            }
            if let Some(p) = port {
                proptest::prop_assert!(matches!((svc, p), ("db/pg", 5432 | 8080 | 9000) | (_, 8080)));
            }
            if let Some(c) = &caller {
                proptest::prop_assert_eq!(c.trust_domain(), peer.trust_domain());
            }
            let marked_eu = pairs.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-data-region") && *v == "eu");
            proptest::prop_assert!(!(svc == "demo/echo" && marked_eu));
            if svc == "demo/locked" {
                proptest::prop_assert_eq!(granted.source_cluster.as_deref(), Some("eu-1"));
            }
        }
    }
}
