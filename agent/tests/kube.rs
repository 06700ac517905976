//! The MCS controllers against an HTTP fake of the Kubernetes API server
//! (real list/watch/create/replace/patch/delete protocol through kube's
//! `Client`) and a real federation API server in-process.
#![allow(clippy::unwrap_used)]

#[path = "support/federation.rs"]
mod federation;

use std::sync::Arc;
use std::time::Duration;

use causeway_agent::backoff::Backoff;
use causeway_agent::exports::{ExportPublisher, ExportSources, ExportStatuses};
use causeway_agent::kubernetes::mapping::{LABEL_SERVICE_NAME, LABEL_SOURCE_CLUSTER};
use causeway_agent::kubernetes::mcs::{
    ClusterProperty, ClusterPropertySpec, ServiceExport, ServiceExportSpec, ServiceImport,
    ServiceImportSpec, ServiceImportType,
};
use causeway_agent::kubernetes::{
    ControllerConfig, ExportController, ImportController, cluster_id_property,
};
use causeway_agent::testing::FakeKube;
use causeway_agent::{AgentMetrics, KubernetesConfig, LocalEndpoints, LocalSources};
use causeway_api::model::{CatalogSnapshot, ServiceType};
use federation::{Api, eventually};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, PostParams};
use kube::{Api as KApi, ResourceExt as _};
use serde_json::json;
use tokio::sync::watch;

fn controller_config(cluster: &str) -> ControllerConfig {
    ControllerConfig {
        cluster: cluster.parse().unwrap(),
        default_zone: format!("{cluster}a"),
        kubernetes: KubernetesConfig {
            enabled: true,
            egress_addresses: vec!["10.9.0.1".parse().unwrap(), "10.9.0.2".parse().unwrap()],
            egress_port: 15001,
            kubeconfig: None,
            egress_service: None,
            leader_election: Default::default(),
            export_selector: String::new(),
        },
    }
}

fn service(type_: &str) -> Service {
    let spec = if type_ == "ExternalName" {
        json!({"type": "ExternalName", "externalName": "cart.example.com"})
    } else {
        json!({"type": "ClusterIP", "clusterIP": "10.1.0.7", "ports": [
            {"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}
        ]})
    };
    serde_json::from_value(json!({"metadata": {"name": "cart", "namespace": "shop"}, "spec": spec}))
        .unwrap()
}

fn condition(se: &ServiceExport, t: &str) -> Option<(String, String, String)> {
    se.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test]
async fn service_exports_are_published_and_get_mcs_conditions() {
    let kube_api = FakeKube::start().await;
    let api = Api::memory().await;
    let fed = api.client();
    federation::put_cluster(&fed, &federation::cluster("us-1", "us.example", "us-1a")).await;
    federation::put_cluster(&fed, &federation::cluster("eu-1", "eu.example", "eu-1a")).await;
    // The oldest export of shop/cart is us-1's, Headless: ours will conflict.
    federation::put_export(
        &fed,
        &federation::export("us-1", "shop", "cart", 8080, "Headless"),
    )
    .await;

    let (shutdown_tx, shutdown) = watch::channel(false);
    let sources = ExportSources::new(&["kubernetes"]);
    let (statuses_tx, statuses) = watch::channel(ExportStatuses::new());
    let cluster: causeway_api::model::ClusterId = "eu-1".parse().unwrap();
    tokio::spawn(
        ExportPublisher {
            client: fed.clone(),
            cluster: cluster.clone(),
            metrics: AgentMetrics::unregistered(),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(500)),
            status_interval: Duration::from_millis(200),
            statuses: statuses_tx,
        }
        .run(sources.clone(), shutdown.clone()),
    );
    let client = kube_api.client();
    tokio::spawn(
        ExportController {
            client: client.clone(),
            config: controller_config("eu-1"),
            sources: sources.clone(),
            local: LocalSources::new(watch::channel(LocalEndpoints::default()).0),
            statuses,
            leader: watch::channel(true).1,
        }
        .run(shutdown.clone()),
    );

    let services: KApi<Service> = KApi::namespaced(client.clone(), "shop");
    let slices: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "shop");
    let exports: KApi<ServiceExport> = KApi::namespaced(client.clone(), "shop");
    services
        .create(&PostParams::default(), &service("ClusterIP"))
        .await
        .unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "cart-x1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "cart"}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "zone": "eu-1b", "conditions": {"ready": true}},
            {"addresses": ["10.0.0.2"], "zone": "eu-1b", "conditions": {"ready": true}},
            {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}
        ],
        "ports": [{"name": "http", "port": 8080}]
    }))
    .unwrap();
    slices.create(&PostParams::default(), &slice).await.unwrap();
    let mut se = ServiceExport::new("cart", ServiceExportSpec::default());
    se.spec.exported_labels.insert("tier".into(), "web".into());
    exports.create(&PostParams::default(), &se).await.unwrap();

    // The export reaches the federation API with ports, type and ready endpoints.
    let svc_ref: causeway_api::model::ServiceRef = "shop/cart".parse().unwrap();
    assert!(
        eventually(10, || async {
            fed.list_exports(&cluster).await.unwrap().iter().any(|e| {
                e.service() == svc_ref
                    && e.spec.ports.first().map(|p| p.port) == Some(8080)
                    && e.spec.type_ == ServiceType::ClusterSetIP
                    && e.spec.ready() == 2
                    && e.spec.endpoints[0].zone == "eu-1b"
                    && e.spec.exported_labels.get("tier").map(String::as_str) == Some("web")
            })
        })
        .await,
        "export not published"
    );
    // The conditions the API computed come back through the status subresource.
    assert!(
        eventually(10, || async {
            let se = exports.get("cart").await.unwrap();
            condition(&se, "Valid").map(|c| c.0) == Some("True".into())
                && condition(&se, "Ready").map(|c| (c.0, c.1))
                    == Some(("True".into(), "Exported".into()))
                && condition(&se, "Conflict").is_some_and(|c| {
                    c.0 == "True"
                        && c.1 == "TypeConflict"
                        && c.2.contains("from oldest service export in \"us-1\"")
                })
        })
        .await,
        "conditions not written: {:?}",
        exports.get("cart").await.unwrap().status
    );
    assert!(
        kube_api
            .calls()
            .iter()
            .any(|c| c == "PATCH serviceexports/status")
    );

    // ExternalName: Valid=False/InvalidServiceType and the export is withdrawn.
    let mut ext = service("ExternalName");
    ext.metadata.resource_version = services
        .get("cart")
        .await
        .unwrap()
        .metadata
        .resource_version;
    services
        .replace("cart", &PostParams::default(), &ext)
        .await
        .unwrap();
    assert!(
        eventually(10, || async {
            let se = exports.get("cart").await.unwrap();
            condition(&se, "Valid").map(|c| (c.0, c.1))
                == Some(("False".into(), "InvalidServiceType".into()))
                && !fed
                    .list_exports(&cluster)
                    .await
                    .unwrap()
                    .iter()
                    .any(|e| e.service() == svc_ref)
        })
        .await,
        "externalname not rejected"
    );

    // Service deleted: NoService.
    services
        .delete("cart", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        eventually(10, || async {
            let se = exports.get("cart").await.unwrap();
            condition(&se, "Valid").map(|c| c.1) == Some("NoService".into())
        })
        .await
    );

    // Service back, then the ServiceExport deleted: exported, then withdrawn.
    services
        .create(&PostParams::default(), &service("ClusterIP"))
        .await
        .unwrap();
    assert!(
        eventually(10, || async {
            fed.list_exports(&cluster)
                .await
                .unwrap()
                .iter()
                .any(|e| e.service() == svc_ref)
        })
        .await
    );
    exports
        .delete("cart", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        eventually(10, || async {
            !fed.list_exports(&cluster)
                .await
                .unwrap()
                .iter()
                .any(|e| e.service() == svc_ref)
        })
        .await,
        "export not withdrawn after the serviceexport was deleted"
    );
    // us-1's export is untouched.
    assert_eq!(
        fed.list_exports(&"us-1".parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
    let _ = shutdown_tx.send(true);
}

fn snapshot(remote_exports: &[(&str, u16)]) -> CatalogSnapshot {
    let mut resources = vec![
        federation::resource(
            serde_json::to_value(federation::cluster("eu-1", "eu.example", "eu-1a")).unwrap(),
        ),
        federation::resource(
            serde_json::to_value(federation::cluster("us-1", "us.example", "us-1a")).unwrap(),
        ),
        federation::resource(
            serde_json::to_value(federation::cluster("ap-1", "ap.example", "ap-1a")).unwrap(),
        ),
        // A service only this cluster exports: no ServiceImport here.
        federation::resource(
            serde_json::to_value(federation::export(
                "eu-1",
                "shop",
                "local-only",
                80,
                "ClusterSetIP",
            ))
            .unwrap(),
        ),
    ];
    for (cluster, port) in remote_exports {
        resources.push(federation::resource(
            serde_json::to_value(federation::export(
                cluster,
                "shop",
                "cart",
                *port,
                "ClusterSetIP",
            ))
            .unwrap(),
        ));
    }
    CatalogSnapshot::from_resources(10, resources)
}

#[tokio::test]
async fn remote_services_become_service_imports_and_slices_at_the_egress() {
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    // An import created by someone else is never touched.
    let manual = {
        let mut si = ServiceImport::new(
            "manual",
            ServiceImportSpec {
                type_: ServiceImportType::Headless,
                ..ServiceImportSpec::default()
            },
        );
        si.metadata.namespace = Some("other".into());
        si
    };
    KApi::<ServiceImport>::namespaced(client.clone(), "other")
        .create(&PostParams::default(), &manual)
        .await
        .unwrap();

    let (tx, rx) = watch::channel(Arc::new(snapshot(&[("us-1", 8080), ("ap-1", 8080)])));
    let (shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(
        ImportController {
            client: client.clone(),
            config: controller_config("eu-1"),
            catalog: rx,
            leader: watch::channel(true).1,
        }
        .run(shutdown),
    );
    let imports: KApi<ServiceImport> = KApi::namespaced(client.clone(), "shop");
    let slices: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "shop");
    assert!(
        eventually(10, || async {
            let Ok(si) = imports.get("cart").await else {
                return false;
            };
            let clusters: Vec<String> = si
                .status
                .iter()
                .flat_map(|s| s.clusters.iter().map(|c| c.cluster.clone()))
                .collect();
            si.spec.ports.first().map(|p| p.port) == Some(8080)
                && si.spec.type_ == ServiceImportType::ClusterSetIP
                && clusters == vec!["ap-1".to_owned(), "us-1".to_owned()]
                && slices.get_opt("cart-us-1").await.unwrap().is_some()
                && slices.get_opt("cart-ap-1").await.unwrap().is_some()
        })
        .await,
        "serviceimport not created"
    );
    assert!(imports.get_opt("local-only").await.unwrap().is_none());
    let s = slices.get("cart-us-1").await.unwrap();
    assert_eq!(s.labels()[LABEL_SERVICE_NAME], "cart");
    assert_eq!(s.labels()[LABEL_SOURCE_CLUSTER], "us-1");
    let eps = s.endpoints.clone().unwrap();
    let addrs: Vec<String> = eps.iter().flat_map(|e| e.addresses.clone()).collect();
    assert_eq!(addrs, vec!["10.9.0.1", "10.9.0.2"]);
    assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(15001));

    // ap-1 withdraws: its slice goes, the import stays for us-1.
    tx.send_replace(Arc::new(snapshot(&[("us-1", 8080)])));
    assert!(
        eventually(10, || async {
            slices.get_opt("cart-ap-1").await.unwrap().is_none()
                && imports
                    .get("cart")
                    .await
                    .unwrap()
                    .status
                    .unwrap()
                    .clusters
                    .len()
                    == 1
        })
        .await
    );
    // The last remote export goes away: import and slices are removed.
    tx.send_replace(Arc::new(snapshot(&[])));
    assert!(
        eventually(10, || async {
            imports.get_opt("cart").await.unwrap().is_none()
                && slices.get_opt("cart-us-1").await.unwrap().is_none()
        })
        .await,
        "serviceimport not removed"
    );
    let still = KApi::<ServiceImport>::namespaced(client.clone(), "other")
        .get("manual")
        .await
        .unwrap();
    assert_eq!(still.spec.type_, ServiceImportType::Headless);
    let _ = shutdown_tx.send(true);
}

#[tokio::test]
async fn cluster_id_comes_from_the_cluster_property() {
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    assert_eq!(cluster_id_property(&client).await.unwrap(), None);
    let cp = ClusterProperty::new(
        "cluster.clusterset.k8s.io",
        ClusterPropertySpec {
            value: "eu-1".into(),
        },
    );
    KApi::<ClusterProperty>::all(client.clone())
        .create(&PostParams::default(), &cp)
        .await
        .unwrap();
    assert_eq!(
        cluster_id_property(&client).await.unwrap().as_deref(),
        Some("eu-1")
    );
}

#[tokio::test]
async fn fake_api_server_speaks_404_409_and_resumable_watch() {
    use futures::StreamExt as _;
    use kube::api::WatchEvent;
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    let services: KApi<Service> = KApi::namespaced(client.clone(), "shop");
    let err = services.get("nope").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
    let created = services
        .create(&PostParams::default(), &service("ClusterIP"))
        .await
        .unwrap();
    let err = services
        .create(&PostParams::default(), &service("ClusterIP"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
    // A stale resourceVersion on replace is a 409 conflict.
    let mut stale = created.clone();
    stale.metadata.resource_version = Some("0".into());
    assert!(
        services
            .replace("cart", &PostParams::default(), &stale)
            .await
            .is_err()
    );
    let rv = created.resource_version().unwrap();
    let mut stream = services
        .watch(&kube::api::WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    services
        .delete("cart", &DeleteParams::default())
        .await
        .unwrap();
    match stream.next().await.unwrap().unwrap() {
        WatchEvent::Deleted(s) => assert_eq!(s.name_any(), "cart"),
        other => panic!("{other:?}"),
    }
    // Bookmarks (asked for by default) carry the resourceVersion the
    // stream has reached: at least the deletion's.
    let deleted_rv: u64 = services
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("a bookmark within 2 s")
        .unwrap()
        .unwrap()
    {
        WatchEvent::Bookmark(b) => {
            let rv: u64 = b.metadata.resource_version.parse().unwrap();
            assert!(rv >= deleted_rv, "bookmark {rv} < {deleted_rv}");
        }
        other => panic!("{other:?}"),
    }
}

/// The fake is as strict as an API server with the chart's CRDs:
/// unknown fields are pruned with the CRD's structural schema (and from
/// built-in objects), schema violations are 422 naming the field, a stale
/// resourceVersion in a merge patch is 409, the main resource never writes
/// status and the status subresource writes nothing else, and a no-op write
/// keeps the resourceVersion.
#[tokio::test]
async fn fake_api_server_prunes_validates_and_guards_versions() {
    use kube::api::{Patch, PatchParams};
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    let imports: KApi<ServiceImport> = KApi::namespaced(client.clone(), "shop");
    let mut si = ServiceImport::new(
        "cart",
        ServiceImportSpec {
            type_: ServiceImportType::ClusterSetIP,
            ..Default::default()
        },
    );
    si.status = Some(Default::default());
    let created = imports.create(&PostParams::default(), &si).await.unwrap();
    let rv = created.resource_version().unwrap();
    let pp = PatchParams::default();
    // Unknown fields are pruned, at any depth.
    let got = imports
        .patch(
            "cart",
            &pp,
            &Patch::Merge(json!({"spec": {"bogus": 1, "ports": [{"port": 80, "bogus": true}]}})),
        )
        .await
        .unwrap();
    let raw = serde_json::to_value(&got).unwrap();
    assert!(raw["spec"].get("bogus").is_none(), "{raw}");
    assert!(raw["spec"]["ports"][0].get("bogus").is_none(), "{raw}");
    assert_eq!(raw["spec"]["ports"][0]["port"], 80);
    // Schema violations: 422 naming the field, nothing written.
    for (patch, field) in [
        (json!({"spec": {"type": "LoadBalancer"}}), "spec.type"),
        (
            json!({"spec": {"ports": [{"port": "http"}]}}),
            "spec.ports[0].port",
        ),
        (
            json!({"spec": {"ports": [{"name": "x"}]}}),
            "spec.ports[0].port",
        ),
    ] {
        let err = imports
            .patch("cart", &pp, &Patch::Merge(patch.clone()))
            .await
            .unwrap_err();
        let kube::Error::Api(s) = &err else {
            panic!("{err:?}")
        };
        assert_eq!(s.code, 422, "{patch}: {err:?}");
        assert!(s.message.contains(field), "{patch}: {}", s.message);
    }
    // A stale resourceVersion in a merge patch: 409.
    let err = imports
        .patch(
            "cart",
            &pp,
            &Patch::Merge(
                json!({"metadata": {"resourceVersion": rv}, "spec": {"ips": ["10.0.0.1"]}}),
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
    // The main resource ignores status; the status subresource ignores spec.
    let current = imports
        .patch(
            "cart",
            &pp,
            &Patch::Merge(json!({"status": {"clusters": [{"cluster": "x"}]}})),
        )
        .await
        .unwrap();
    assert!(
        current
            .status
            .as_ref()
            .is_none_or(|s| s.clusters.is_empty()),
        "{:?}",
        current.status
    );
    let after = imports
        .patch_status(
            "cart",
            &pp,
            &Patch::Merge(json!({"spec": {"ips": ["10.0.0.9"]}, "status": {"clusters": [{"cluster": "us-1"}]}})),
        )
        .await
        .unwrap();
    assert!(after.spec.ips.is_empty(), "status write changed spec");
    assert_eq!(after.status.as_ref().unwrap().clusters[0].cluster, "us-1");
    // A no-op write keeps the resourceVersion (no watch event, no churn).
    let again = imports
        .patch(
            "cart",
            &pp,
            &Patch::Merge(json!({"spec": {"type": "ClusterSetIP"}})),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), after.resource_version());
    // Built-in objects lose fields their type does not have.
    let services: KApi<Service> = KApi::namespaced(client.clone(), "shop");
    services
        .create(&PostParams::default(), &service("ClusterIP"))
        .await
        .unwrap();
    let svc = services
        .patch(
            "cart",
            &pp,
            &Patch::Merge(
                json!({"spec": {"sessionAffinityConfig": {"clientIp": {"timeoutSeconds": 5}}}}),
            ),
        )
        .await
        .unwrap();
    let raw = serde_json::to_value(&svc).unwrap();
    assert!(
        raw["spec"]["sessionAffinityConfig"]
            .get("clientIp")
            .is_none(),
        "{raw}"
    );
    // Every request is recorded with its verb, group, resource and namespace.
    let r = kube_api.requests();
    assert!(r.iter().any(|r| r.verb == "patch"
        && r.group == "multicluster.x-k8s.io"
        && r.resource == "serviceimports/status"
        && r.namespace.as_deref() == Some("shop")
        && r.code == 200));
    assert!(
        r.iter()
            .any(|r| r.verb == "create" && r.group.is_empty() && r.resource == "services")
    );
}

/// The exported Service's EndpointSlices become the gateway's local
/// endpoints: per port (target port from the slice port of the same name),
/// ready first, serving-terminating ones only when none is ready; a
/// withdrawn ServiceExport takes them away; the static file's endpoints
/// stay beside them.
#[tokio::test]
async fn exported_service_slices_become_local_endpoints() {
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let sources = ExportSources::new(&["kubernetes", "static"]);
    let (local_tx, mut local) = watch::channel(LocalEndpoints::default());
    let local_sources = LocalSources::new(local_tx);
    // A static-file service beside the Kubernetes ones (both sources on).
    local_sources.set(
        "static",
        LocalEndpoints {
            ready: [("vm/legacy".to_owned(), vec!["10.5.0.1:80".parse().unwrap()])].into(),
            ..LocalEndpoints::default()
        },
    );
    let (_statuses_tx, statuses) = watch::channel(ExportStatuses::new());
    tokio::spawn(
        ExportController {
            client: client.clone(),
            config: controller_config("eu-1"),
            sources: sources.clone(),
            local: local_sources.clone(),
            statuses,
            leader: watch::channel(true).1,
        }
        .run(shutdown.clone()),
    );
    let services: KApi<Service> = KApi::namespaced(client.clone(), "shop");
    let slices: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "shop");
    let exports: KApi<ServiceExport> = KApi::namespaced(client.clone(), "shop");
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"clusterIP": "10.1.0.7", "ports": [
            {"name": "http", "port": 80, "targetPort": "web"},
            {"name": "grpc", "port": 9090, "targetPort": 50051}
        ]}
    }))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let slice = |rv: Option<String>, eps: serde_json::Value| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "cart-x1", "namespace": "shop", "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": "cart"}},
            "addressType": "IPv4",
            "endpoints": eps,
            "ports": [{"name": "http", "port": 8080}, {"name": "grpc", "port": 50051}]
        }))
        .unwrap()
    };
    slices
        .create(
            &PostParams::default(),
            &slice(
                None,
                json!([
                    {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true}}
                ]),
            ),
        )
        .await
        .unwrap();
    // Not exported yet: no local endpoints for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!local.borrow().ready.contains_key("shop/cart"));
    exports
        .create(
            &PostParams::default(),
            &ServiceExport::new("cart", ServiceExportSpec::default()),
        )
        .await
        .unwrap();

    let wait = |want: Box<dyn Fn(&LocalEndpoints) -> bool + Send>| {
        let mut rx = local.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if want(&rx.borrow_and_update()) {
                        return;
                    }
                    rx.changed().await.unwrap();
                }
            })
            .await
            .is_ok()
        }
    };
    let sa = |s: &str| -> std::net::SocketAddr { s.parse().unwrap() };
    assert!(
        wait(Box::new(move |l| {
            l.ready.get("shop/cart") == Some(&vec![sa("10.0.0.1:8080")])
                && l.draining.get("shop/cart") == Some(&vec![sa("10.0.0.2:8080")])
                && l.ports["shop/cart"][&9090].ready == vec![sa("10.0.0.1:50051")]
                && l.ready.get("vm/legacy") == Some(&vec![sa("10.5.0.1:80")])
        }))
        .await,
        "local endpoints not installed: {:?}",
        local.borrow_and_update()
    );
    // The ready endpoint goes not-ready: only the terminating one serves.
    let rv = slices
        .get("cart-x1")
        .await
        .unwrap()
        .metadata
        .resource_version;
    slices
        .replace(
            "cart-x1",
            &PostParams::default(),
            &slice(
                rv,
                json!([
                    {"addresses": ["10.0.0.1"], "conditions": {"ready": false, "serving": false}},
                    {"addresses": ["10.0.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true}}
                ]),
            ),
        )
        .await
        .unwrap();
    assert!(
        wait(Box::new(move |l| l.ready.get("shop/cart") == Some(&vec![])
            && l.draining.get("shop/cart")
                == Some(&vec![sa("10.0.0.2:8080")])))
        .await,
        "not-ready endpoint still listed: {:?}",
        local.borrow_and_update()
    );
    // Withdrawn: gone; the static service stays.
    exports
        .delete("cart", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        wait(Box::new(move |l| !l.ready.contains_key("shop/cart")
            && !l.draining.contains_key("shop/cart")
            && l.ready.contains_key("vm/legacy")))
        .await,
        "withdrawn export still has local endpoints: {:?}",
        local.borrow_and_update()
    );
}

fn lease_settings(identity: &str) -> causeway_agent::kubernetes::leader::LeaseSettings {
    causeway_agent::kubernetes::leader::LeaseSettings {
        namespace: "causeway".into(),
        name: "causeway-agent".into(),
        identity: identity.into(),
        lease_duration: Duration::from_millis(1500),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
    }
}

/// Two replicas against one API server: exactly one leads; when it stops
/// renewing (crashed) the other takes over within the lease duration; when
/// someone else takes the Lease the leader stops at its next renewal; a
/// released Lease is taken over without waiting for it to expire.
#[tokio::test]
async fn two_replicas_elect_one_leader_on_a_lease() {
    use causeway_agent::kubernetes::leader::LeaderElector;
    use k8s_openapi::api::coordination::v1::Lease;
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    let start = |id: &str| {
        let (tx, rx) = watch::channel(false);
        let (stop_tx, stop) = watch::channel(false);
        let task = tokio::spawn(
            LeaderElector {
                client: client.clone(),
                settings: lease_settings(id),
            }
            .run(tx, stop),
        );
        (rx, stop_tx, task)
    };
    let (a, _a_stop, a_task) = start("gw-a");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (b, b_stop, b_task) = start("gw-b");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(*a.borrow() && !*b.borrow(), "a leads, b follows");
    let leases: KApi<Lease> = KApi::namespaced(client.clone(), "causeway");
    let lease = leases.get("causeway-agent").await.unwrap();
    assert_eq!(
        lease.spec.as_ref().unwrap().holder_identity.as_deref(),
        Some("gw-a")
    );

    // a crashes (no release): b takes over within the lease duration.
    a_task.abort();
    let crashed = std::time::Instant::now();
    let mut b_rx = b.clone();
    tokio::time::timeout(Duration::from_secs(3), b_rx.wait_for(|l| *l))
        .await
        .expect("b takes over")
        .unwrap();
    let took = crashed.elapsed();
    eprintln!("lease takeover after a crash: {took:?}");
    assert!(
        took <= Duration::from_millis(1500 + 300),
        "takeover took {took:?}"
    );
    let lease = leases.get("causeway-agent").await.unwrap();
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("gw-b"));
    assert_eq!(spec.lease_transitions, Some(1));

    // Someone else writes the Lease: b stops leading at its next renewal.
    let mut stolen = lease.clone();
    stolen.spec.as_mut().unwrap().holder_identity = Some("intruder".into());
    leases
        .replace("causeway-agent", &PostParams::default(), &stolen)
        .await
        .unwrap();
    let written = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(1), b_rx.wait_for(|l| !*l))
        .await
        .expect("b steps down")
        .unwrap();
    assert!(written.elapsed() <= Duration::from_millis(300));

    // The intruder never renews: b or c takes over after the lease
    // duration, never both.
    let (c, _c_stop, _c_task) = start("gw-c");
    let mut c_rx = c.clone();
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            if *b.borrow() || *c.borrow() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the intruder's lease expires");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(*b.borrow() != *c.borrow(), "exactly one leader");
    if *b.borrow() {
        // A replica that shuts down releases the Lease: its successor takes
        // over at its next attempt, not after the lease duration.
        b_stop.send_replace(true);
        let _ = b_task.await;
        let released = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(1), c_rx.wait_for(|l| *l))
            .await
            .expect("c takes over a released lease at once")
            .unwrap();
        assert!(released.elapsed() <= Duration::from_millis(400));
    }
}

/// A replica that does not lead writes nothing to the Kubernetes API; it
/// writes as soon as it leads and stops at once when it no longer does.
#[tokio::test]
async fn only_the_leader_writes_imports() {
    let kube_api = FakeKube::start().await;
    let (_catalog_tx, catalog) = watch::channel(Arc::new(snapshot(&[("us-1", 8080)])));
    let (leader_tx, leader) = watch::channel(false);
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let client = kube_api.client();
    tokio::spawn(
        ImportController {
            client: client.clone(),
            config: controller_config("eu-1"),
            catalog,
            leader,
        }
        .run(shutdown),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = |calls: Vec<String>| {
        calls
            .into_iter()
            .filter(|c| !c.starts_with("GET") && !c.starts_with("WATCH"))
            .count()
    };
    assert_eq!(writes(kube_api.calls()), 0, "{:?}", kube_api.calls());
    leader_tx.send_replace(true);
    let imports: KApi<ServiceImport> = KApi::namespaced(client.clone(), "shop");
    assert!(
        eventually(5, || async {
            imports.get_opt("cart").await.unwrap().is_some()
        })
        .await,
        "the leader writes the serviceimport"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    leader_tx.send_replace(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = writes(kube_api.calls());
    imports
        .delete("cart", &DeleteParams::default())
        .await
        .unwrap();
    // The catalog changes: a follower would not write; neither does the
    // former leader.
    _catalog_tx.send_replace(Arc::new(snapshot(&[("us-1", 8080), ("ap-1", 8080)])));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        writes(kube_api.calls()),
        before + 1,
        "a former leader wrote again: {:?}",
        kube_api.calls()
    );
}

/// With `egressService`, import EndpointSlices list every ready gateway
/// replica behind it (and follow them), under a selector-less derived
/// Service whose allocated clusterIP is the ServiceImport's `spec.ips`.
#[tokio::test]
async fn import_slices_list_every_ready_gateway_replica_under_a_derived_service() {
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    let replicas: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "causeway");
    let egress = |rv: Option<String>, ready_c: bool| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "gw-egress-abc", "namespace": "causeway", "resourceVersion": rv,
                         "labels": {"kubernetes.io/service-name": "gw-egress"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.8.0.2"], "conditions": {"ready": true}},
                {"addresses": ["10.8.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.8.0.3"], "conditions": {"ready": ready_c}}
            ],
            "ports": [{"name": "egress", "port": 15001}]
        }))
        .unwrap()
    };
    replicas
        .create(&PostParams::default(), &egress(None, false))
        .await
        .unwrap();
    let mut config = controller_config("eu-1");
    config.kubernetes.egress_addresses.clear();
    config.kubernetes.egress_service = Some("causeway/gw-egress".into());
    let (_tx, rx) = watch::channel(Arc::new(snapshot(&[("us-1", 8080)])));
    let (_shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(
        ImportController {
            client: client.clone(),
            config,
            catalog: rx,
            leader: watch::channel(true).1,
        }
        .run(shutdown),
    );
    let imports: KApi<ServiceImport> = KApi::namespaced(client.clone(), "shop");
    let slices: KApi<EndpointSlice> = KApi::namespaced(client.clone(), "shop");
    let services: KApi<Service> = KApi::namespaced(client.clone(), "shop");
    let derived = causeway_agent::kubernetes::mapping::derived_service_name("shop", "cart");
    let listed = || async {
        let lp = kube::api::ListParams::default()
            .labels(&format!("kubernetes.io/service-name={derived}"));
        let mut ips: Vec<String> = slices
            .list(&lp)
            .await
            .unwrap()
            .items
            .iter()
            .flat_map(|s| s.endpoints.clone().unwrap_or_default())
            .flat_map(|e| e.addresses)
            .collect();
        ips.sort();
        ips
    };
    assert!(
        eventually(10, || async { listed().await == ["10.8.0.1", "10.8.0.2"] }).await,
        "import slices: {:?}",
        listed().await
    );
    let svc = services.get(&derived).await.unwrap();
    let spec = svc.spec.unwrap();
    assert!(
        spec.selector.is_none(),
        "the derived service has no selector"
    );
    let ip = spec.cluster_ip.unwrap();
    assert!(
        eventually(10, || async {
            imports
                .get("cart")
                .await
                .is_ok_and(|si| si.spec.ips == vec![ip.clone()])
        })
        .await,
        "serviceimport spec.ips is not the derived service's clusterIP {ip}"
    );
    // A third replica becomes ready: listed without waiting for a resync.
    let rv = replicas
        .get("gw-egress-abc")
        .await
        .unwrap()
        .metadata
        .resource_version;
    replicas
        .replace("gw-egress-abc", &PostParams::default(), &egress(rv, true))
        .await
        .unwrap();
    assert!(
        eventually(3, || async {
            listed().await == ["10.8.0.1", "10.8.0.2", "10.8.0.3"]
        })
        .await,
        "new replica not listed: {:?}",
        listed().await
    );
    // The export goes away: derived service, import and slices too.
    _tx.send_replace(Arc::new(snapshot(&[])));
    assert!(
        eventually(10, || async {
            services.get_opt(&derived).await.unwrap().is_none()
                && imports.get_opt("cart").await.unwrap().is_none()
                && listed().await.is_empty()
        })
        .await,
        "derived objects not removed"
    );
}

/// The whole agent (cluster-id check, leader election, both controllers)
/// through one export's and one import's life, with the agent's own
/// client: the requests the strict fake recorded are exactly what the
/// chart's ClusterRole grants (nothing used is missing, nothing granted is
/// unused), and `causeway_agent::RBAC_RULES` says the same.
#[tokio::test]
async fn chart_rbac_is_exactly_what_the_agent_requests() {
    let kube_api = FakeKube::start().await;
    let setup = kube_api.client();
    let agent = kube_api.agent_client();
    // The cluster as an operator left it: the egress replicas, an exported
    // service with a ready endpoint, the cluster's id.
    let egress: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "gw-egress-abc", "namespace": "causeway",
                     "labels": {"kubernetes.io/service-name": "gw-egress"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.8.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "egress", "port": 15001}]
    }))
    .unwrap();
    KApi::<EndpointSlice>::namespaced(setup.clone(), "causeway")
        .create(&PostParams::default(), &egress)
        .await
        .unwrap();
    let mut svc = service("ClusterIP");
    svc.metadata.name = Some("web".into());
    KApi::<Service>::namespaced(setup.clone(), "shop")
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "web-x1", "namespace": "shop", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080}]
    }))
    .unwrap();
    KApi::<EndpointSlice>::namespaced(setup.clone(), "shop")
        .create(&PostParams::default(), &slice)
        .await
        .unwrap();
    let exports: KApi<ServiceExport> = KApi::namespaced(setup.clone(), "shop");
    exports
        .create(
            &PostParams::default(),
            &ServiceExport::new("web", ServiceExportSpec::default()),
        )
        .await
        .unwrap();
    KApi::<ClusterProperty>::all(setup.clone())
        .create(
            &PostParams::default(),
            &ClusterProperty::new(
                "cluster.clusterset.k8s.io",
                ClusterPropertySpec {
                    value: "eu-1".into(),
                },
            ),
        )
        .await
        .unwrap();

    assert_eq!(
        cluster_id_property(&agent).await.unwrap().as_deref(),
        Some("eu-1")
    );
    let mut config = controller_config("eu-1");
    config.kubernetes.egress_addresses.clear();
    config.kubernetes.egress_service = Some("causeway/gw-egress".into());
    config.kubernetes.leader_election.namespace = "causeway".into();
    config.kubernetes.leader_election.identity = "gw-a".into();
    config.kubernetes.leader_election.lease_duration = Duration::from_millis(1500);
    config.kubernetes.leader_election.renew_deadline = Duration::from_millis(1000);
    config.kubernetes.leader_election.retry_period = Duration::from_millis(100);
    let (catalog_tx, catalog) = watch::channel(Arc::new(snapshot(&[("us-1", 8080)])));
    let (shutdown_tx, shutdown) = watch::channel(false);
    let (_statuses_tx, statuses) = watch::channel(ExportStatuses::new());
    let tasks = causeway_agent::kubernetes::spawn(
        agent.clone(),
        config,
        ExportSources::new(&["kubernetes"]),
        LocalSources::new(watch::channel(LocalEndpoints::default()).0),
        statuses,
        catalog,
        shutdown,
    );

    // The export gets its status; the import, its derived service and its
    // slices appear, change with the catalog and go away with it.
    assert!(
        eventually(10, || async {
            exports
                .get("web")
                .await
                .is_ok_and(|se| condition(&se, "Valid").is_some())
        })
        .await,
        "serviceexport status not written"
    );
    let imports: KApi<ServiceImport> = KApi::namespaced(setup.clone(), "shop");
    let derived = causeway_agent::kubernetes::mapping::derived_service_name("shop", "cart");
    let services: KApi<Service> = KApi::namespaced(setup.clone(), "shop");
    assert!(
        eventually(10, || async {
            imports
                .get_opt("cart")
                .await
                .unwrap()
                .is_some_and(|si| !si.spec.ips.is_empty())
        })
        .await,
        "import not created"
    );
    catalog_tx.send_replace(Arc::new(snapshot(&[("us-1", 9090)])));
    assert!(
        eventually(10, || async {
            services.get_opt(&derived).await.unwrap().is_some_and(|s| {
                s.spec
                    .and_then(|s| s.ports)
                    .is_some_and(|p| p.iter().any(|p| p.port == 9090))
            }) && imports
                .get_opt("cart")
                .await
                .unwrap()
                .is_some_and(|si| si.spec.ports.iter().any(|p| p.port == 9090))
        })
        .await,
        "import not updated"
    );
    // A second gateway replica becomes ready: the import slices follow.
    let egress_api = KApi::<EndpointSlice>::namespaced(setup.clone(), "causeway");
    let mut two = egress_api.get("gw-egress-abc").await.unwrap();
    two.endpoints = serde_json::from_value(json!([
        {"addresses": ["10.8.0.1"], "conditions": {"ready": true}},
        {"addresses": ["10.8.0.2"], "conditions": {"ready": true}}
    ]))
    .unwrap();
    egress_api
        .replace("gw-egress-abc", &PostParams::default(), &two)
        .await
        .unwrap();
    let import_slices: KApi<EndpointSlice> = KApi::namespaced(setup.clone(), "shop");
    assert!(
        eventually(10, || async {
            let lp = kube::api::ListParams::default()
                .labels(&format!("kubernetes.io/service-name={derived}"));
            import_slices
                .list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .any(|s| s.endpoints.as_ref().is_some_and(|e| e.len() == 2))
        })
        .await,
        "import slices not updated"
    );
    catalog_tx.send_replace(Arc::new(snapshot(&[])));
    assert!(
        eventually(10, || async {
            imports.get_opt("cart").await.unwrap().is_none()
                && services.get_opt(&derived).await.unwrap().is_none()
        })
        .await,
        "import not removed"
    );
    shutdown_tx.send_replace(true);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("agent stops")
            .unwrap();
    }

    let used = kube_api.rbac_used();
    let granted = causeway_agent::testing::chart_agent_rbac();
    let missing: Vec<_> = used.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "chart RBAC differs from the agent's requests: used but not granted {missing:?}, granted but never used {unused:?}"
    );
    let declared: std::collections::BTreeSet<(String, String, String)> = causeway_agent::RBAC_RULES
        .iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .iter()
                .map(move |v| ((*g).to_owned(), (*r).to_owned(), (*v).to_owned()))
        })
        .collect();
    assert_eq!(
        declared, used,
        "RBAC_RULES differs from what the agent requests"
    );
    // Every request the agent made was answered (none refused as invalid
    // by the strict fake).
    let refused: Vec<_> = kube_api
        .requests()
        .into_iter()
        .filter(|r| {
            r.user_agent == causeway_agent::kubernetes::USER_AGENT && matches!(r.code, 400 | 422)
        })
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

/// With `exportSelector`, the agent acts only on the ServiceExports it
/// selects: another MCS controller's export is neither published nor given
/// status by Causeway.
#[tokio::test]
async fn export_selector_leaves_other_controllers_exports_alone() {
    let kube_api = FakeKube::start().await;
    let client = kube_api.client();
    let services: KApi<Service> = KApi::namespaced(client.clone(), "shop");
    let exports: KApi<ServiceExport> = KApi::namespaced(client.clone(), "shop");
    for name in ["cart", "other"] {
        let mut svc = service("ClusterIP");
        svc.metadata.name = Some(name.into());
        services.create(&PostParams::default(), &svc).await.unwrap();
    }
    let mut mine = ServiceExport::new("cart", ServiceExportSpec::default());
    mine.metadata.labels = Some([("causeway.dev/export".to_owned(), "true".to_owned())].into());
    exports.create(&PostParams::default(), &mine).await.unwrap();
    exports
        .create(
            &PostParams::default(),
            &ServiceExport::new("other", ServiceExportSpec::default()),
        )
        .await
        .unwrap();
    let mut config = controller_config("eu-1");
    config.kubernetes.export_selector = "causeway.dev/export=true".into();
    let sources = ExportSources::new(&["kubernetes"]);
    let (_shutdown_tx, shutdown) = watch::channel(false);
    tokio::spawn(
        ExportController {
            client: client.clone(),
            config,
            sources: sources.clone(),
            local: LocalSources::new(watch::channel(LocalEndpoints::default()).0),
            statuses: watch::channel(ExportStatuses::new()).1,
            leader: watch::channel(true).1,
        }
        .run(shutdown),
    );
    assert!(
        eventually(10, || async {
            exports
                .get("cart")
                .await
                .is_ok_and(|se| condition(&se, "Valid").is_some())
        })
        .await,
        "the selected export gets status"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let published: Vec<String> = sources.merged().keys().map(ToString::to_string).collect();
    assert_eq!(published, vec!["shop/cart"]);
    let other = exports.get("other").await.unwrap();
    assert!(
        other.status.is_none_or(|s| s.conditions.is_empty()),
        "the unselected export was written"
    );
    assert!(
        !kube_api
            .requests()
            .iter()
            .any(|r| r.resource == "serviceexports/status" && r.name.as_deref() == Some("other")),
        "a status write for the unselected export"
    );
}

/// Two replicas of the whole agent (leader election and both controllers)
/// against one API server, each shut down in turn while the catalog
/// changes: leadership moves to the other replica each time, the import
/// follows every change, and every write of an import, derived Service or
/// EndpointSlice comes from the replica that last wrote the Lease (never
/// from two replicas at once), as the fake's request log shows.
#[tokio::test]
async fn replicas_hand_over_on_shutdown_and_never_write_at_once() {
    let kube_api = FakeKube::start().await;
    let setup = kube_api.client();
    let egress: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "gw-egress-abc", "namespace": "causeway",
                     "labels": {"kubernetes.io/service-name": "gw-egress"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.8.0.1"], "conditions": {"ready": true}},
                      {"addresses": ["10.8.0.2"], "conditions": {"ready": true}}],
        "ports": [{"name": "egress", "port": 15001}]
    }))
    .unwrap();
    KApi::<EndpointSlice>::namespaced(setup.clone(), "causeway")
        .create(&PostParams::default(), &egress)
        .await
        .unwrap();
    let (catalog_tx, catalog) = watch::channel(Arc::new(snapshot(&[("us-1", 8080)])));
    let start = |id: &str| {
        let mut config = controller_config("eu-1");
        config.kubernetes.egress_addresses.clear();
        config.kubernetes.egress_service = Some("causeway/gw-egress".into());
        let le = &mut config.kubernetes.leader_election;
        le.namespace = "causeway".into();
        le.identity = id.into();
        le.lease_duration = Duration::from_millis(1500);
        le.renew_deadline = Duration::from_millis(1000);
        le.retry_period = Duration::from_millis(100);
        let (shutdown_tx, shutdown) = watch::channel(false);
        let tasks = causeway_agent::kubernetes::spawn(
            kube_api.agent_client_as(id),
            config,
            ExportSources::new(&["kubernetes"]),
            LocalSources::new(watch::channel(LocalEndpoints::default()).0),
            watch::channel(ExportStatuses::new()).1,
            catalog.clone(),
            shutdown,
        );
        (shutdown_tx, tasks)
    };
    let stop = |(tx, tasks): (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>)| async move {
        tx.send_replace(true);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("replica stops")
                .unwrap();
        }
    };
    let imports: KApi<ServiceImport> = KApi::namespaced(setup.clone(), "shop");
    let import_port = |port: i32| {
        let imports = imports.clone();
        async move {
            eventually(10, || async {
                imports
                    .get_opt("cart")
                    .await
                    .unwrap()
                    .is_some_and(|si| si.spec.ports.iter().any(|p| p.port == port))
            })
            .await
        }
    };
    let a = start("gw-a");
    assert!(import_port(8080).await, "gw-a leads and writes the import");
    let b = start("gw-b");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // gw-a shuts down (releasing the Lease): gw-b takes over and follows.
    let stopped = std::time::Instant::now();
    stop(a).await;
    catalog_tx.send_replace(Arc::new(snapshot(&[("us-1", 9090)])));
    assert!(import_port(9090).await, "gw-b did not take over");
    eprintln!("handover to gw-b in {:?}", stopped.elapsed());

    // gw-a is back; gw-b shuts down: gw-a leads again.
    let a = start("gw-a");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = std::time::Instant::now();
    stop(b).await;
    catalog_tx.send_replace(Arc::new(snapshot(&[("us-1", 7070)])));
    assert!(import_port(7070).await, "gw-a did not take over again");
    eprintln!("handover back to gw-a in {:?}", stopped.elapsed());
    stop(a).await;

    // The request log: every non-Lease write comes from the replica that
    // wrote the Lease last; the Lease writer changes a -> b -> a.
    let writes: Vec<_> = kube_api
        .requests()
        .into_iter()
        .filter(|r| {
            r.user_agent == causeway_agent::kubernetes::USER_AGENT
                && matches!(r.verb, "create" | "update" | "patch" | "delete")
                && r.code < 300
        })
        .collect();
    let mut holder = String::new();
    let mut holders: Vec<String> = Vec::new();
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for w in &writes {
        if w.resource == "leases" {
            if holders.last() != Some(&w.user) {
                holders.push(w.user.clone());
            }
            holder = w.user.clone();
            continue;
        }
        assert_eq!(
            w.user, holder,
            "{} {} {:?} written by {} while {} held the lease",
            w.verb, w.resource, w.name, w.user, holder
        );
        *by.entry(w.user.clone()).or_default() += 1;
    }
    assert_eq!(holders, ["gw-a", "gw-b", "gw-a"], "leadership moves");
    assert!(
        by.get("gw-a").is_some_and(|n| *n > 0) && by.get("gw-b").is_some_and(|n| *n > 0),
        "both replicas wrote in their turn: {by:?}"
    );
}
