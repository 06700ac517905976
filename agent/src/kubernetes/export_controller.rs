//! The export controller: MCS `ServiceExport` + `Service` + `EndpointSlice`
//! -> federation exports and MCS status conditions.

use std::sync::Arc;

use causeway_api::model::ServiceRef;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Patch;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt as _};
use tokio::sync::{Notify, watch};

use super::ControllerConfig;
use super::endpoints::service_endpoints;
use super::mapping::{self, LABEL_K8S_SERVICE_NAME, Validity};
use super::mcs::ServiceExport;
use crate::exports::{DesiredExports, ExportSources, ExportStatuses};
use crate::{LocalEndpoints, LocalSources};

/// Watches exports, services and slices; see the module docs.
#[derive(Clone)]
pub struct ExportController {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Cluster facts.
    pub config: ControllerConfig,
    /// Where desired exports go (source `kubernetes`).
    pub sources: ExportSources,
    /// Where the local endpoints of exported services go (source
    /// `kubernetes`), for the gateway's ingress and egress.
    pub local: LocalSources,
    /// Conditions computed by the federation API.
    pub statuses: watch::Receiver<ExportStatuses>,
    /// Whether this replica leads (only the leader writes status).
    pub leader: watch::Receiver<bool>,
}

impl std::fmt::Debug for ExportController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportController").finish_non_exhaustive()
    }
}

fn follow<K>(
    api: Api<K>,
    config: watcher::Config,
    notify: Arc<Notify>,
) -> (Store<K>, tokio::task::JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(_) => notify.notify_one(),
                Err(e) => tracing::warn!(error = %e, "kubernetes watch error"),
            }
        }
    });
    (store, task)
}

impl ExportController {
    /// Runs until shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let notify = Arc::new(Notify::new());
        // Only the ServiceExports the selector picks (another MCS
        // controller may own the rest): never published, never written.
        let mut selected = watcher::Config::default();
        if !self.config.kubernetes.export_selector.trim().is_empty() {
            selected = selected.labels(self.config.kubernetes.export_selector.trim());
        }
        let (exports, t1) = follow(
            Api::<ServiceExport>::all(self.client.clone()),
            selected,
            notify.clone(),
        );
        let (services, t2) = follow(
            Api::<Service>::all(self.client.clone()),
            watcher::Config::default(),
            notify.clone(),
        );
        let (slices, t3) = follow(
            Api::<EndpointSlice>::all(self.client.clone()),
            watcher::Config::default(),
            notify.clone(),
        );
        let tasks = [t1, t2, t3];
        let ready = async {
            let _ = exports.wait_until_ready().await;
            let _ = services.wait_until_ready().await;
            let _ = slices.wait_until_ready().await;
        };
        tokio::select! {
            _ = ready => {}
            _ = shutdown.changed() => { tasks.iter().for_each(|t| t.abort()); return; }
        }
        tracing::info!("mcs export controller synced");
        loop {
            self.reconcile(&exports, &services, &slices).await;
            tokio::select! {
                _ = notify.notified() => {}
                r = self.statuses.changed() => if r.is_err() { break },
                Ok(()) = self.leader.changed() => {}
                _ = shutdown.changed() => break,
            }
        }
        tasks.iter().for_each(|t| t.abort());
    }

    async fn reconcile(
        &self,
        exports: &Store<ServiceExport>,
        services: &Store<Service>,
        slices: &Store<EndpointSlice>,
    ) {
        let statuses = self.statuses.borrow().clone();
        let all_slices = slices.state();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let mut desired = DesiredExports::new();
        let mut local = LocalEndpoints::default();
        for se in exports.state() {
            let ns = se.namespace().unwrap_or_default();
            let name = se.name_any();
            let Ok(svc_ref) = format!("{ns}/{name}").parse::<ServiceRef>() else {
                tracing::warn!(namespace = %ns, name = %name, "serviceexport name is not exportable");
                continue;
            };
            let service = services.get(&ObjectRef::new(&name).within(&ns));
            let own: Vec<&EndpointSlice> = all_slices
                .iter()
                .filter(|s| {
                    s.metadata.namespace.as_deref() == Some(ns.as_str())
                        && s.labels().get(LABEL_K8S_SERVICE_NAME) == Some(&name)
                })
                .map(|s| &**s)
                .collect();
            let validity =
                mapping::export_spec(&se, service.as_deref(), &own, &self.config.default_zone);
            let previous = se
                .status
                .as_ref()
                .map(|s| s.conditions.clone())
                .unwrap_or_default();
            let conditions =
                mapping::export_conditions(&validity, statuses.get(&svc_ref), &previous, &now);
            if let (Validity::Valid(spec), Some(service)) = (validity, service.as_deref()) {
                let found = service_endpoints(service, &own, &self.config.default_zone);
                let key = svc_ref.to_string();
                let first = found.default_port(service);
                local.ready.insert(key.clone(), first.ready);
                local.draining.insert(key.clone(), first.draining);
                local.ports.insert(key, found.ports);
                desired.insert(svc_ref, spec);
            }
            // Every replica publishes exports and local endpoints; only the
            // leader writes status.
            if *self.leader.borrow() && !mapping::same_conditions(&previous, &conditions) {
                let api: Api<ServiceExport> = Api::namespaced(self.client.clone(), &ns);
                let patch = serde_json::json!({"status": {"conditions": conditions}});
                match api
                    .patch_status(&name, &super::patch_params(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        tracing::debug!(namespace = %ns, name = %name, "serviceexport status written")
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot write serviceexport status")
                    }
                }
            }
        }
        self.local.set("kubernetes", local);
        self.sources.set("kubernetes", desired);
    }
}
