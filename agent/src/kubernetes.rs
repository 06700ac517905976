//! The Kubernetes side of the agent (MCS, KEP-1645):
//!
//! - the **export controller** watches `ServiceExport`s, `Service`s and
//!   `EndpointSlice`s, publishes exports (ports, type, ready endpoints per
//!   zone, exported labels/annotations) and writes the MCS conditions back
//!   through the status subresource;
//! - the **import controller** turns every service exported by another
//!   cluster into a `ServiceImport` and EndpointSlices (labelled
//!   `multicluster.kubernetes.io/service-name` / `source-cluster`) that
//!   point at this gateway's egress, and removes them when the last remote
//!   export goes away.
//!
//! Both talk to the API server through kube's `Client` (list/watch, create,
//! replace, merge patch, delete); tests run them against an HTTP fake of the
//! API server.

pub mod crd;
pub mod endpoints;
mod export_controller;
mod import_controller;
pub mod mapping;
pub mod mcs;

use std::sync::Arc;

use causeway_api::model::{CatalogSnapshot, ClusterId};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::export_controller::ExportController;
pub use self::import_controller::ImportController;
use super::LocalSources;
use super::config::KubernetesConfig;
use super::exports::{ExportSources, ExportStatuses};

/// Kubernetes API access of the controllers: (api group, resource, verbs),
/// exactly the calls they make.
pub const RBAC_RULES: &[(&str, &str, &[&str])] = &[
    (
        "multicluster.x-k8s.io",
        "serviceexports",
        &["list", "watch"],
    ),
    ("multicluster.x-k8s.io", "serviceexports/status", &["patch"]),
    (
        "multicluster.x-k8s.io",
        "serviceimports",
        &["list", "create", "update", "delete"],
    ),
    ("multicluster.x-k8s.io", "serviceimports/status", &["patch"]),
    ("", "services", &["list", "watch"]),
    (
        "discovery.k8s.io",
        "endpointslices",
        &["list", "watch", "create", "update", "delete"],
    ),
    ("about.k8s.io", "clusterproperties", &["get"]),
];

/// What the controllers need to know about this cluster.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This cluster's id (from the gateway config).
    pub cluster: ClusterId,
    /// Zone of endpoints without one.
    pub default_zone: String,
    /// Egress addresses and the switch.
    pub kubernetes: KubernetesConfig,
}

/// Reads the cluster id from the `cluster.clusterset.k8s.io` `ClusterProperty`,
/// if the cluster has one.
pub async fn cluster_id_property(client: &kube::Client) -> Result<Option<String>, kube::Error> {
    let api: kube::Api<mcs::ClusterProperty> = kube::Api::all(client.clone());
    Ok(api
        .get_opt(mcs::CLUSTER_ID_PROPERTY)
        .await?
        .map(|p| p.spec.value))
}

/// Starts both controllers on `client`.
pub fn spawn(
    client: kube::Client,
    config: ControllerConfig,
    sources: ExportSources,
    local: LocalSources,
    statuses: watch::Receiver<ExportStatuses>,
    catalog: watch::Receiver<Arc<CatalogSnapshot>>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let export = ExportController {
        client: client.clone(),
        config: config.clone(),
        sources,
        local,
        statuses,
    };
    let import = ImportController {
        client,
        config,
        catalog,
    };
    vec![
        tokio::spawn(export.run(shutdown.clone())),
        tokio::spawn(import.run(shutdown)),
    ]
}

/// The client of `config`: its `kubeconfig` file when set, else in-cluster
/// credentials (or `KUBECONFIG`). Every request names Causeway in its
/// `User-Agent`.
pub async fn client(config: &KubernetesConfig) -> Result<kube::Client, kube::Error> {
    let mut kc = match &config.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer()
            .await
            .map_err(kube::Error::InferConfig)?,
    };
    kc.headers.push((
        http::header::USER_AGENT,
        http::HeaderValue::from_static(USER_AGENT),
    ));
    kube::Client::try_from(kc)
}

/// The `User-Agent` of the agent's Kubernetes requests (audit logs name it).
pub const USER_AGENT: &str = concat!("causeway-agent/", env!("CARGO_PKG_VERSION"));

/// The field manager of every write (`managedFields` name Causeway).
pub const FIELD_MANAGER: &str = "causeway-agent";

/// Starts both controllers with the client of [`client`], checking the
/// cluster id against the `ClusterProperty` first.
pub fn spawn_in_cluster(
    config: ControllerConfig,
    sources: ExportSources,
    local: LocalSources,
    statuses: watch::Receiver<ExportStatuses>,
    catalog: watch::Receiver<Arc<CatalogSnapshot>>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(async move {
        let client = match client(&config.kubernetes).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "kubernetes client unavailable, mcs controllers not started");
                return;
            }
        };
        match cluster_id_property(&client).await {
            Ok(Some(id)) if id != config.cluster.as_str() => tracing::error!(
                property = %id,
                configured = %config.cluster,
                "clusterproperty cluster.clusterset.k8s.io differs from cluster.id; using cluster.id"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read clusterproperty"),
        }
        let tasks = spawn(client, config, sources, local, statuses, catalog, shutdown);
        for t in tasks {
            let _ = t.await;
        }
    })]
}
