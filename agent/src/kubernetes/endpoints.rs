//! The local endpoints of an exported `Service`, from its EndpointSlices,
//! with kube-proxy's rules: addresses per service port (the slice port of
//! the same name carries the resolved `targetPort`), ready endpoints first,
//! serving-but-terminating ones only when none is ready, not-serving ones
//! never; and the ready count per zone the export publishes, counting an
//! endpoint listed in both an IPv4 and an IPv6 slice (dual stack) once.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use causeway_api::model::ZoneEndpoints;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

/// Endpoints of one service port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortEndpoints {
    /// Ready endpoints.
    pub ready: Vec<SocketAddr>,
    /// Serving but terminating endpoints (used only when none is ready).
    pub draining: Vec<SocketAddr>,
}

/// What the slices of one service say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEndpoints {
    /// Endpoints by service port number, for every port of the `Service`.
    pub ports: BTreeMap<u16, PortEndpoints>,
    /// Ready endpoints per zone (each endpoint once), zones sorted.
    pub zones: Vec<ZoneEndpoints>,
}

impl ServiceEndpoints {
    /// The endpoints of the service's first port: what a caller that names
    /// no port gets.
    pub fn default_port(&self, service: &Service) -> PortEndpoints {
        first_port(service)
            .and_then(|p| self.ports.get(&p).cloned())
            .unwrap_or_default()
    }
}

fn first_port(service: &Service) -> Option<u16> {
    service
        .spec
        .as_ref()?
        .ports
        .as_ref()?
        .first()
        .and_then(|p| u16::try_from(p.port).ok())
}

/// The three endpoint conditions with Kubernetes' defaults: a nil `ready`
/// means ready, a nil `serving` means `ready`, a nil `terminating` false.
fn conditions(e: &Endpoint) -> (bool, bool, bool) {
    let c = e.conditions.clone().unwrap_or_default();
    let ready = c.ready.unwrap_or(true);
    let serving = c.serving.unwrap_or(ready);
    let terminating = c.terminating.unwrap_or(false);
    (ready, serving, terminating)
}

/// Whether an endpoint counts as ready: ready, with a usable address.
fn counts(e: &Endpoint) -> bool {
    conditions(e).0
        && e.addresses
            .first()
            .is_some_and(|a| a.parse::<IpAddr>().is_ok())
}

/// One endpoint's identity across slices: its `targetRef` when it has one
/// (a dual-stack pod is one endpoint in two slices), else its address.
fn identity(e: &Endpoint, family: &str) -> String {
    match &e.target_ref {
        Some(r) if r.uid.is_some() || r.name.is_some() => format!(
            "ref/{}/{}/{}/{}",
            r.kind.as_deref().unwrap_or_default(),
            r.namespace.as_deref().unwrap_or_default(),
            r.name.as_deref().unwrap_or_default(),
            r.uid.as_deref().unwrap_or_default()
        ),
        _ => format!(
            "{family}/{}",
            e.addresses.first().map(String::as_str).unwrap_or_default()
        ),
    }
}

/// The endpoints of `service` from `slices` (its own, by the
/// `kubernetes.io/service-name` label). Endpoints without a zone are in
/// `default_zone`. Malformed addresses and slices of the `FQDN` type are
/// skipped.
pub fn service_endpoints(
    service: &Service,
    slices: &[&EndpointSlice],
    default_zone: &str,
) -> ServiceEndpoints {
    let mut out = ServiceEndpoints::default();
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    // IPv4 slices first, so that a dual-stack endpoint is routed to (and
    // counted in) its IPv4 address; then by name, for a stable order.
    let mut slices: Vec<&EndpointSlice> = slices
        .iter()
        .copied()
        .filter(|s| s.address_type == "IPv4" || s.address_type == "IPv6")
        .collect();
    slices.sort_by(|a, b| {
        (a.address_type.as_str(), a.metadata.name.as_deref())
            .cmp(&(b.address_type.as_str(), b.metadata.name.as_deref()))
    });

    for sp in &service_ports {
        let Ok(port) = u16::try_from(sp.port) else {
            continue;
        };
        let name = sp.name.as_deref().unwrap_or_default();
        let protocol = sp.protocol.as_deref().unwrap_or("TCP");
        let mut seen = BTreeSet::new();
        let entry = out.ports.entry(port).or_default();
        for slice in &slices {
            // The slice port of the same name (and protocol) holds the
            // resolved target port; a slice without it has nothing for
            // this service port.
            let Some(target) = slice.ports.iter().flatten().find_map(|p| {
                let same_name = p.name.as_deref().unwrap_or_default() == name;
                let same_proto = p.protocol.as_deref().unwrap_or("TCP") == protocol;
                (same_name && same_proto)
                    .then_some(p.port)
                    .flatten()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n != 0)
            }) else {
                continue;
            };
            for e in slice.endpoints.iter().flatten() {
                let Some(ip) = e.addresses.first().and_then(|a| a.parse::<IpAddr>().ok()) else {
                    continue;
                };
                if !seen.insert(identity(e, &slice.address_type)) {
                    continue;
                }
                let addr = SocketAddr::new(ip, target);
                match conditions(e) {
                    (true, _, _) => entry.ready.push(addr),
                    (false, true, true) => entry.draining.push(addr),
                    _ => {}
                }
            }
        }
    }

    let mut counted = BTreeSet::new();
    let mut zones: BTreeMap<String, u32> = BTreeMap::new();
    for slice in &slices {
        for e in slice.endpoints.iter().flatten() {
            if !counts(e) {
                continue;
            }
            // Dual stack without targetRef: the same endpoint cannot be
            // told apart by address, so only the family with the most ready
            // endpoints counts (below).
            if e.target_ref.is_none() {
                continue;
            }
            if counted.insert(identity(e, &slice.address_type)) {
                let zone = e.zone.clone().unwrap_or_else(|| default_zone.to_owned());
                *zones.entry(zone).or_default() += 1;
            }
        }
    }
    let mut unreferenced: BTreeMap<&str, BTreeMap<String, u32>> = BTreeMap::new();
    for slice in &slices {
        for e in slice.endpoints.iter().flatten() {
            if !counts(e) || e.target_ref.is_some() {
                continue;
            }
            if counted.insert(identity(e, &slice.address_type)) {
                let zone = e.zone.clone().unwrap_or_else(|| default_zone.to_owned());
                *unreferenced
                    .entry(slice.address_type.as_str())
                    .or_default()
                    .entry(zone)
                    .or_default() += 1;
            }
        }
    }
    if let Some(family) = unreferenced
        .values()
        .max_by_key(|z| z.values().map(|n| u64::from(*n)).sum::<u64>())
    {
        for (zone, n) in family {
            *zones.entry(zone.clone()).or_default() += n;
        }
    }
    out.zones = zones
        .into_iter()
        .map(|(zone, ready)| ZoneEndpoints { zone, ready })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn service(ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"clusterIP": "10.1.0.7", "ports": ports}
        }))
        .unwrap()
    }

    fn slice(
        name: &str,
        family: &str,
        ports: serde_json::Value,
        eps: serde_json::Value,
    ) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "cart"}},
            "addressType": family, "ports": ports, "endpoints": eps
        }))
        .unwrap()
    }

    fn addrs(v: &[&str]) -> Vec<SocketAddr> {
        v.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn ports_resolve_by_name_to_the_slice_target_port() {
        let svc = service(json!([
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "grpc", "port": 9090, "targetPort": 50051}
        ]));
        let s = slice(
            "cart-1",
            "IPv4",
            json!([{"name": "grpc", "port": 50051}, {"name": "http", "port": 8080}]),
            json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                   {"addresses": ["10.0.0.2"]}]),
        );
        let e = service_endpoints(&svc, &[&s], "z0");
        assert_eq!(
            e.ports[&80].ready,
            addrs(&["10.0.0.1:8080", "10.0.0.2:8080"])
        );
        assert_eq!(
            e.ports[&9090].ready,
            addrs(&["10.0.0.1:50051", "10.0.0.2:50051"])
        );
        assert_eq!(e.default_port(&svc).ready, e.ports[&80].ready);
        assert_eq!(
            e.zones,
            vec![ZoneEndpoints {
                zone: "z0".into(),
                ready: 2
            }]
        );
    }

    #[test]
    fn unnamed_port_matches_unnamed_slice_port_and_other_slices_are_skipped() {
        let svc = service(json!([{"port": 80, "targetPort": 8080}]));
        let named = slice(
            "cart-1",
            "IPv4",
            json!([{"name": "http", "port": 9999}]),
            json!([{"addresses": ["10.0.0.9"]}]),
        );
        let unnamed = slice(
            "cart-2",
            "IPv4",
            json!([{"port": 8080}]),
            json!([{"addresses": ["10.0.0.1"]}]),
        );
        let e = service_endpoints(&svc, &[&named, &unnamed], "z0");
        assert_eq!(e.ports[&80].ready, addrs(&["10.0.0.1:8080"]));
    }

    #[test]
    fn terminating_serving_endpoints_drain_and_not_serving_ones_are_dropped() {
        let svc = service(json!([{"name": "http", "port": 80}]));
        let s = slice(
            "cart-1",
            "IPv4",
            json!([{"name": "http", "port": 8080}]),
            json!([
                {"addresses": ["10.0.0.1"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": false, "terminating": true}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}
            ]),
        );
        let e = service_endpoints(&svc, &[&s], "z0");
        assert!(e.ports[&80].ready.is_empty());
        assert_eq!(e.ports[&80].draining, addrs(&["10.0.0.1:8080"]));
        assert!(e.zones.is_empty());
    }

    #[test]
    fn dual_stack_endpoints_count_once_per_zone() {
        let svc = service(json!([{"name": "http", "port": 80}]));
        let port = json!([{"name": "http", "port": 8080}]);
        let v4 = slice(
            "cart-v4",
            "IPv4",
            port.clone(),
            json!([
                {"addresses": ["10.0.0.1"], "zone": "a", "targetRef": {"kind": "Pod", "name": "p1", "uid": "u1"}},
                {"addresses": ["10.0.0.2"], "zone": "b", "targetRef": {"kind": "Pod", "name": "p2", "uid": "u2"}}
            ]),
        );
        let v6 = slice(
            "cart-v6",
            "IPv6",
            port.clone(),
            json!([
                {"addresses": ["fd00::1"], "zone": "a", "targetRef": {"kind": "Pod", "name": "p1", "uid": "u1"}},
                {"addresses": ["fd00::2"], "zone": "b", "targetRef": {"kind": "Pod", "name": "p2", "uid": "u2"}}
            ]),
        );
        let e = service_endpoints(&svc, &[&v6, &v4], "z0");
        assert_eq!(
            e.zones,
            vec![
                ZoneEndpoints {
                    zone: "a".into(),
                    ready: 1
                },
                ZoneEndpoints {
                    zone: "b".into(),
                    ready: 1
                }
            ]
        );
        assert_eq!(
            e.ports[&80].ready,
            addrs(&["10.0.0.1:8080", "10.0.0.2:8080"])
        );

        // Without targetRef: the larger family counts, not the sum.
        let bare4 = slice(
            "b-v4",
            "IPv4",
            port.clone(),
            json!([{"addresses": ["10.0.0.1"]}]),
        );
        let bare6 = slice("b-v6", "IPv6", port, json!([{"addresses": ["fd00::1"]}]));
        let e = service_endpoints(&svc, &[&bare4, &bare6], "z0");
        assert_eq!(
            e.zones,
            vec![ZoneEndpoints {
                zone: "z0".into(),
                ready: 1
            }]
        );
    }

    #[test]
    fn garbage_from_the_api_server_is_skipped() {
        let svc = service(json!([{"name": "http", "port": 80}]));
        let s = slice(
            "cart-1",
            "IPv4",
            json!([{"name": "http", "port": 70000}, {"name": "http"}]),
            json!([{"addresses": ["not-an-ip"]}, {"addresses": []}]),
        );
        let fqdn = slice(
            "cart-2",
            "FQDN",
            json!([{"name": "http", "port": 80}]),
            json!([{"addresses": ["example.com"]}]),
        );
        let e = service_endpoints(&svc, &[&s, &fqdn], "z0");
        assert_eq!(e.ports[&80], PortEndpoints::default());
        assert!(e.zones.is_empty());
    }
}
