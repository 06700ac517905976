//! Scenario 12: the Kubernetes flow end to end. Each cluster has its own
//! (wire-true fake) Kubernetes API server; its gateway's agent runs the MCS
//! controllers against it, over a real federation API on a real etcd.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use causeway_agent::kubernetes::mcs::{ServiceExport, ServiceExportSpec, ServiceImport};
use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, EchoServer, Federation, Store};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

const A: &str = "eu-west-1";
const B: &str = "us-east-1";

fn endpoint_slice(echo: SocketAddr, ready: bool, rv: Option<String>) -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {
            "name": "cart-7xk2p", "namespace": "shop", "resourceVersion": rv,
            "labels": {"kubernetes.io/service-name": "cart",
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [echo.ip().to_string()],
            "conditions": {"ready": ready, "serving": ready, "terminating": false},
            "zone": "eu-west-1a",
            "targetRef": {"kind": "Pod", "namespace": "shop", "name": "cart-0", "uid": "pod-uid-0"}
        }],
        // The slice port of the Service port's name carries the resolved
        // targetPort (`web` -> the echo backend's port).
        "ports": [{"name": "http", "port": echo.port(), "protocol": "TCP", "appProtocol": "http"}]
    }))
    .expect("a valid EndpointSlice")
}

/// Whether B's egress serves `shop/cart` from A right now.
async fn served_by_a(fed: &Federation) -> bool {
    fed.call(B, &host("shop/cart"), &[])
        .await
        .is_ok_and(|r| r.status == 200 && r.served_by.as_deref() == Some(A))
}

/// B's import objects for `shop/cart`: (ServiceImport exists, egress
/// addresses of ready endpoints in its EndpointSlices).
async fn b_import(fed: &Federation) -> anyhow::Result<(bool, Vec<String>)> {
    let client = fed.cluster(B)?.kube_client()?;
    let imports: kube::Api<ServiceImport> = kube::Api::namespaced(client.clone(), "shop");
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(client, "shop");
    let exists = imports.get_opt("cart").await?.is_some();
    let lp = ListParams::default().labels("multicluster.kubernetes.io/service-name=cart");
    let mut ready = Vec::new();
    for s in slices.list(&lp).await?.items {
        let port = s.ports.iter().flatten().find_map(|p| p.port).unwrap_or(0);
        for e in s.endpoints.iter().flatten() {
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(true) {
                for a in &e.addresses {
                    ready.push(format!("{a}:{port}"));
                }
            }
        }
    }
    Ok((exists, ready))
}

/// Whether the federation API holds A's export of `shop/cart` with `ready`
/// endpoints (`None`: no export at all).
async fn api_export_ready(fed: &Federation) -> anyhow::Result<Option<u64>> {
    let client = fed.api().admin_client()?;
    let export = client
        .get_opt::<serde_json::Value>(&format!("/v1/clusters/{A}/exports/shop/cart"))
        .await?;
    Ok(export.map(|v| {
        v.value["spec"]["endpoints"]
            .as_array()
            .map(|zs| zs.iter().filter_map(|z| z["ready"].as_u64()).sum())
            .unwrap_or(0)
    }))
}

/// Polls `check` every 10 ms until it holds; returns how long that took.
async fn within<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        if check().await? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// 12. In A, a Service, its EndpointSlice (an echo backend) and a
/// ServiceExport are created through A's Kubernetes API. A's agent
/// publishes the export and feeds its gateway's local endpoints from the
/// slice; B's agent writes a derived Service, a ServiceImport with its
/// clusterIP as clusterset IP and an EndpointSlice listing B's gateway
/// replicas; a request from B's egress is served by A's backend. Marking the
/// endpoint not ready, and later deleting the ServiceExport, withdraws the
/// service everywhere (A's gateway, the federation API, B's objects and B's
/// callers) within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s12_kubernetes_export_is_served_and_withdrawn() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Etcd { members: 1 })
        .cluster(ClusterDef::new(A, "eu-west", "eu-west-1a", &["eu"]).kubernetes())
        .cluster(ClusterDef::new(B, "us-east", "us-east-1a", &["us"]).kubernetes())
        .start()
        .await?;
    let a = fed.cluster(A)?;
    let echo = EchoServer::start(SocketAddr::new(a.backend_ip, 0), A, "shop/cart").await?;
    let client = a.kube_client()?;
    let services: kube::Api<Service> = kube::Api::namespaced(client.clone(), "shop");
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(client.clone(), "shop");
    let exports: kube::Api<ServiceExport> = kube::Api::namespaced(client.clone(), "shop");
    let pp = PostParams::default();
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.20", "selector": {"app": "cart"},
                 "ports": [{"name": "http", "port": 8080, "targetPort": "web",
                            "protocol": "TCP", "appProtocol": "http"}]}
    }))?;
    services.create(&pp, &svc).await?;
    slices
        .create(&pp, &endpoint_slice(echo.addr(), true, None))
        .await?;
    exports
        .create(
            &pp,
            &ServiceExport::new("cart", ServiceExportSpec::default()),
        )
        .await?;

    // B gets a ServiceImport whose clusterset IP is its derived Service's
    // clusterIP, and an EndpointSlice listing B's gateway replicas (those
    // behind B's egress Service) on the egress port.
    let b_egress = fed.cluster(B)?.egress().to_string();
    within("B's serviceimport", Duration::from_secs(30), || async {
        let (exists, ready) = b_import(&fed).await?;
        Ok(exists && ready == vec![b_egress.clone()])
    })
    .await?;
    let b_client = fed.cluster(B)?.kube_client()?;
    let derived = causeway_agent::kubernetes::mapping::derived_service_name("shop", "cart");
    let derived_ip = kube::Api::<Service>::namespaced(b_client.clone(), "shop")
        .get(&derived)
        .await?
        .spec
        .and_then(|s| s.cluster_ip)
        .unwrap_or_default();
    assert!(!derived_ip.is_empty(), "derived service has a clusterIP");
    within("serviceimport ips", Duration::from_secs(10), || async {
        let si = kube::Api::<ServiceImport>::namespaced(b_client.clone(), "shop")
            .get("cart")
            .await?;
        Ok(si.spec.ips == vec![derived_ip.clone()])
    })
    .await?;
    within("B served by A", Duration::from_secs(30), || async {
        Ok(served_by_a(&fed).await)
    })
    .await?;
    let before = echo.count();
    for _ in 0..10 {
        let r = fed.call(B, &host("shop/cart"), &[]).await?;
        assert_eq!((r.status, r.served_by.as_deref()), (200, Some(A)));
    }
    assert_eq!(echo.count(), before + 10, "A's backend served every call");
    // A's ServiceExport carries the MCS conditions.
    let se = exports.get("cart").await?;
    let conditions = se.status.map(|s| s.conditions).unwrap_or_default();
    let status = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.status.clone())
    };
    assert_eq!(status("Valid").as_deref(), Some("True"), "{conditions:?}");
    assert_eq!(status("Ready").as_deref(), Some("True"), "{conditions:?}");

    // The endpoint goes not ready: withdrawn everywhere within 1 s.
    let rv = slices.get("cart-7xk2p").await?.metadata.resource_version;
    slices
        .replace("cart-7xk2p", &pp, &endpoint_slice(echo.addr(), false, rv))
        .await?;
    let took =
        within("not-ready withdrawn", Duration::from_secs(10), || async {
            let (_, ready) = b_import(&fed).await?;
            Ok(api_export_ready(&fed).await? == Some(0)
                && ready.is_empty()
                && !served_by_a(&fed).await)
        })
        .await?;
    eprintln!("s12: not-ready endpoint withdrawn everywhere in {took:?}");
    assert!(took <= Duration::from_secs(1), "took {took:?}");

    // Ready again: served again.
    let rv = slices.get("cart-7xk2p").await?.metadata.resource_version;
    slices
        .replace("cart-7xk2p", &pp, &endpoint_slice(echo.addr(), true, rv))
        .await?;
    within("served again", Duration::from_secs(10), || async {
        Ok(served_by_a(&fed).await)
    })
    .await?;

    // The ServiceExport is deleted: withdrawn everywhere within 1 s.
    exports.delete("cart", &DeleteParams::default()).await?;
    let took = within("unexport withdrawn", Duration::from_secs(10), || async {
        let (exists, ready) = b_import(&fed).await?;
        Ok(api_export_ready(&fed).await?.is_none()
            && !exists
            && ready.is_empty()
            && !served_by_a(&fed).await)
    })
    .await?;
    eprintln!("s12: deleted serviceexport withdrawn everywhere in {took:?}");
    assert!(took <= Duration::from_secs(1), "took {took:?}");
    echo.abort();

    // Everything the real gateways asked each cluster's API server (their
    // agent's User-Agent) is granted by the chart's ClusterRole, and none
    // of it was refused by the strict fake as invalid.
    let granted = causeway_agent::testing::chart_agent_rbac();
    for id in [A, B] {
        let kube_api = fed.cluster(id)?.kube.as_ref().expect("kubernetes cluster");
        let used = kube_api.rbac_used();
        assert!(!used.is_empty(), "{id}: no agent request recorded");
        let missing: Vec<_> = used.difference(&granted).collect();
        assert!(
            missing.is_empty(),
            "{id}: used but not granted by the chart: {missing:?}"
        );
        let invalid: Vec<_> = kube_api
            .requests()
            .into_iter()
            .filter(|r| {
                r.user_agent == causeway_agent::kubernetes::USER_AGENT
                    && matches!(r.code, 400 | 422)
            })
            .collect();
        assert!(invalid.is_empty(), "{id}: refused as invalid: {invalid:?}");
    }
    Ok(())
}
