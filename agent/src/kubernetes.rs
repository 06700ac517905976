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
pub mod leader;
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
    (
        "",
        "services",
        &["list", "watch", "create", "update", "delete"],
    ),
    (
        "discovery.k8s.io",
        "endpointslices",
        &["list", "watch", "create", "update", "delete"],
    ),
    ("about.k8s.io", "clusterproperties", &["get"]),
    (
        "coordination.k8s.io",
        "leases",
        &["get", "create", "update"],
    ),
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
    let (leader_tx, leader) = watch::channel(false);
    let mut tasks = Vec::new();
    match lease_settings(&config) {
        Some(settings) => tasks.push(tokio::spawn(
            leader::LeaderElector {
                client: client.clone(),
                settings,
            }
            .run(leader_tx, shutdown.clone()),
        )),
        None => {
            leader_tx.send_replace(true);
            // Keep the sender alive: a closed channel would stop the controllers.
            let mut s = shutdown.clone();
            tasks.push(tokio::spawn(async move {
                let _ = s.changed().await;
                drop(leader_tx);
            }));
        }
    }
    let export = ExportController {
        client: client.clone(),
        config: config.clone(),
        sources,
        local,
        statuses,
        leader: leader.clone(),
    };
    let import = ImportController {
        client,
        config,
        catalog,
        leader,
    };
    tasks.push(tokio::spawn(export.run(shutdown.clone())));
    tasks.push(tokio::spawn(import.run(shutdown)));
    tasks
}

/// The Lease settings of `config` (`None`: leader election is off).
pub fn lease_settings(config: &ControllerConfig) -> Option<leader::LeaseSettings> {
    let le = &config.kubernetes.leader_election;
    if !le.enabled {
        return None;
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let namespace = Some(le.namespace.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| env("POD_NAMESPACE"))
        .unwrap_or_else(|| "default".into());
    let identity = Some(le.identity.clone())
        .filter(|n| !n.is_empty())
        .or_else(|| env("POD_NAME"))
        .or_else(|| env("HOSTNAME"))
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("causeway-agent-{}", std::process::id()));
    Some(leader::LeaseSettings {
        namespace,
        name: le.name.clone(),
        identity,
        lease_duration: le.lease_duration,
        renew_deadline: le.renew_deadline,
        retry_period: le.retry_period,
    })
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

/// Create/replace parameters naming [`FIELD_MANAGER`].
pub fn post_params() -> kube::api::PostParams {
    kube::api::PostParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..kube::api::PostParams::default()
    }
}

/// Patch parameters naming [`FIELD_MANAGER`].
pub fn patch_params() -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..kube::api::PatchParams::default()
    }
}

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
