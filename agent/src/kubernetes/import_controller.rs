//! The import controller: federation imports -> MCS `ServiceImport`s and
//! EndpointSlices pointing at this gateway's egress.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use causeway_api::model::CatalogSnapshot;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{DeleteParams, ListParams, Patch};
use kube::{Api, ResourceExt as _};
use tokio::sync::watch;

use super::ControllerConfig;
use super::mapping::{self, Egress, LABEL_K8S_SERVICE_NAME, MANAGED_SELECTOR};
use super::mcs::ServiceImport;

/// Keeps `ServiceImport`s and their EndpointSlices in step with the catalog.
#[derive(Clone)]
pub struct ImportController {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Cluster facts and the egress.
    pub config: ControllerConfig,
    /// Applied catalogs.
    pub catalog: watch::Receiver<Arc<CatalogSnapshot>>,
    /// Whether this replica leads (only the leader writes).
    pub leader: watch::Receiver<bool>,
}

impl std::fmt::Debug for ImportController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportController").finish_non_exhaustive()
    }
}

type Key = (String, String);

/// The keys `have` holds and `want` does not.
fn stale<A, B>(have: &BTreeMap<Key, A>, want: &BTreeMap<Key, B>) -> Vec<Key> {
    have.keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect()
}

fn key_of<K: kube::Resource>(o: &K) -> Key {
    (
        o.meta().namespace.clone().unwrap_or_default(),
        o.meta().name.clone().unwrap_or_default(),
    )
}

impl ImportController {
    fn leading(&self) -> bool {
        *self.leader.borrow()
    }

    /// Runs until shutdown: reconciles on every catalog change, on gaining
    /// leadership and every 30 s, while this replica leads.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        // Replicas coming and going change the import slices at once.
        let replicas = Arc::new(tokio::sync::Notify::new());
        let watch_task = self.egress_service().map(|(ns, name)| {
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
            let cfg = kube::runtime::watcher::Config::default()
                .labels(&format!("{LABEL_K8S_SERVICE_NAME}={name}"));
            let notify = replicas.clone();
            tokio::spawn(async move {
                use futures::StreamExt as _;
                use kube::runtime::WatchStreamExt as _;
                let stream = kube::runtime::watcher(api, cfg).default_backoff();
                futures::pin_mut!(stream);
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(_) => notify.notify_one(),
                        Err(e) => tracing::warn!(error = %e, "egress service watch error"),
                    }
                }
            })
        });
        self.run_loop(replicas, &mut shutdown).await;
        if let Some(t) = watch_task {
            t.abort();
        }
    }

    async fn run_loop(
        &mut self,
        replicas: Arc<tokio::sync::Notify>,
        shutdown: &mut watch::Receiver<bool>,
    ) {
        loop {
            let snapshot = self.catalog.borrow_and_update().clone();
            self.leader.borrow_and_update();
            let retry = if !self.leading() {
                Duration::from_secs(30)
            } else {
                match self.reconcile(&snapshot).await {
                    Ok(()) => Duration::from_secs(30),
                    Err(e) => {
                        tracing::warn!(error = %e, "serviceimport reconcile failed");
                        Duration::from_secs(2)
                    }
                }
            };
            tokio::select! {
                r = self.catalog.changed() => if r.is_err() { return },
                Ok(()) = self.leader.changed() => {}
                _ = replicas.notified() => {}
                _ = tokio::time::sleep(retry) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One pass: create, replace or delete the agent's objects.
    pub async fn reconcile(&self, snapshot: &CatalogSnapshot) -> Result<(), kube::Error> {
        let local = self.config.cluster.as_str();
        let egress = Egress {
            addresses: self.egress_addresses().await?,
            port: self.config.kubernetes.egress_port,
        };
        let lp = ListParams::default().labels(MANAGED_SELECTOR);
        // Derived Services first: their clusterIPs are the imports' ips.
        let mut want_services: BTreeMap<Key, Service> = BTreeMap::new();
        for import in snapshot.imports.values() {
            if let Some(svc) = mapping::derived_service(import, local) {
                want_services.insert(key_of(&svc), svc);
            }
        }
        let mut have_services: BTreeMap<Key, Service> = Api::<Service>::all(self.client.clone())
            .list(&lp)
            .await?
            .items
            .into_iter()
            .map(|o| (key_of(&o), o))
            .collect();
        for ((ns, name), want) in &want_services {
            let have = have_services.get(&(ns.clone(), name.clone()));
            let same_ports = have
                .and_then(|h| h.spec.as_ref())
                .map(|s| ports_of(s.ports.as_deref()))
                == want.spec.as_ref().map(|s| ports_of(s.ports.as_deref()));
            if have.is_some() && same_ports {
                continue;
            }
            if !self.leading() {
                tracing::info!("leadership lost, import writes stopped");
                return Ok(());
            }
            let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
            let written = match have {
                None => api.create(&super::post_params(), want).await,
                Some(h) => {
                    // Ports changed: keep the allocated clusterIP.
                    let mut obj = h.clone();
                    if let (Some(spec), Some(w)) = (obj.spec.as_mut(), want.spec.as_ref()) {
                        spec.ports = w.ports.clone();
                    }
                    api.replace(name, &super::post_params(), &obj).await
                }
            };
            match written {
                Ok(s) => {
                    tracing::info!(namespace = %ns, name = %name, "derived service written");
                    have_services.insert((ns.clone(), name.clone()), s);
                }
                Err(e) => {
                    tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot write derived service")
                }
            }
        }
        let mut want_imports: BTreeMap<Key, ServiceImport> = BTreeMap::new();
        let mut want_slices: BTreeMap<Key, EndpointSlice> = BTreeMap::new();
        for import in snapshot.imports.values() {
            let Some(mut si) = mapping::service_import(import, local) else {
                continue;
            };
            let ns = import.metadata.namespace.as_str().to_owned();
            let derived = mapping::derived_service_name(&ns, import.metadata.name.as_str());
            if let Some(ip) = have_services
                .get(&(ns, derived))
                .and_then(|s| s.spec.as_ref())
                .and_then(|s| s.cluster_ip.clone())
                .filter(|ip| !ip.is_empty() && ip != "None")
            {
                si.spec.ips = vec![ip];
            }
            want_imports.insert(key_of(&si), si);
            for s in mapping::endpoint_slices(import, local, &egress) {
                want_slices.insert(key_of(&s), s);
            }
        }
        let have_imports: BTreeMap<Key, ServiceImport> =
            Api::<ServiceImport>::all(self.client.clone())
                .list(&lp)
                .await?
                .items
                .into_iter()
                .map(|o| (key_of(&o), o))
                .collect();
        let have_slices: BTreeMap<Key, EndpointSlice> =
            Api::<EndpointSlice>::all(self.client.clone())
                .list(&lp)
                .await?
                .items
                .into_iter()
                .map(|o| (key_of(&o), o))
                .collect();

        for ((ns, name), want) in &want_imports {
            if !self.leading() {
                tracing::info!("leadership lost, import writes stopped");
                return Ok(());
            }
            let api: Api<ServiceImport> = Api::namespaced(self.client.clone(), ns);
            let have = have_imports.get(&(ns.clone(), name.clone()));
            let result = match have {
                None => api.create(&super::post_params(), want).await.map(|_| true),
                Some(h)
                    if h.spec != want.spec
                        || h.labels() != want.labels()
                        || h.annotations() != want.annotations() =>
                {
                    let mut obj = want.clone();
                    obj.metadata.resource_version = h.metadata.resource_version.clone();
                    obj.status = None;
                    api.replace(name, &super::post_params(), &obj)
                        .await
                        .map(|_| true)
                }
                Some(_) => Ok(false),
            };
            match result {
                Ok(changed) => {
                    if changed {
                        tracing::info!(namespace = %ns, name = %name, "serviceimport written");
                    }
                    if have.and_then(|h| h.status.as_ref()) != want.status.as_ref() {
                        let patch = serde_json::json!({"status": want.status});
                        if let Err(e) = api
                            .patch_status(name, &super::patch_params(), &Patch::Merge(&patch))
                            .await
                        {
                            tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot write serviceimport status");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot write serviceimport")
                }
            }
        }
        for ((ns, name), want) in &want_slices {
            if !self.leading() {
                tracing::info!("leadership lost, import writes stopped");
                return Ok(());
            }
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
            let result = match have_slices.get(&(ns.clone(), name.clone())) {
                None => api.create(&super::post_params(), want).await.map(|_| ()),
                Some(h)
                    if h.endpoints != want.endpoints
                        || h.ports != want.ports
                        || h.labels() != want.labels()
                        || h.address_type != want.address_type =>
                {
                    let mut obj = want.clone();
                    obj.metadata.resource_version = h.metadata.resource_version.clone();
                    api.replace(name, &super::post_params(), &obj)
                        .await
                        .map(|_| ())
                }
                Some(_) => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot write import endpointslice");
            }
        }
        let _ = self
            .remove_stale::<EndpointSlice>(
                stale(&have_slices, &want_slices),
                "import endpointslice",
            )
            .await
            && self
                .remove_stale::<ServiceImport>(stale(&have_imports, &want_imports), "serviceimport")
                .await
            && self
                .remove_stale::<Service>(stale(&have_services, &want_services), "derived service")
                .await;
        Ok(())
    }

    /// Deletes the objects of kind `K` named in `stale` (leader only);
    /// false when leadership was lost on the way.
    async fn remove_stale<K>(&self, stale: Vec<Key>, what: &str) -> bool
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        for (ns, name) in stale {
            if !self.leading() {
                tracing::info!("leadership lost, import writes stopped");
                return false;
            }
            let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => tracing::info!(namespace = %ns, name = %name, "{what} removed"),
                Err(e) => {
                    tracing::warn!(namespace = %ns, name = %name, error = %e, "cannot remove {what}")
                }
            }
        }
        true
    }

    /// Where import EndpointSlices point: every ready gateway replica of
    /// the egress Service (`egressService`), else `egressAddresses`.
    async fn egress_addresses(&self) -> Result<Vec<IpAddr>, kube::Error> {
        let Some((ns, name)) = self.egress_service() else {
            return Ok(self.config.kubernetes.egress_addresses.clone());
        };
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), &ns);
        let lp = ListParams::default().labels(&format!("{LABEL_K8S_SERVICE_NAME}={name}"));
        Ok(replica_addresses(&api.list(&lp).await?.items))
    }

    fn egress_service(&self) -> Option<(String, String)> {
        let svc = self.config.kubernetes.egress_service.as_deref()?;
        let (ns, name) = svc.split_once('/')?;
        Some((ns.to_owned(), name.to_owned()))
    }
}

/// The ready endpoints of the egress Service's slices, each address once,
/// sorted (a stable slice content).
fn replica_addresses(slices: &[EndpointSlice]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = slices
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
        .filter_map(|e| e.addresses.first()?.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn ports_of(
    ports: Option<&[k8s_openapi::api::core::v1::ServicePort]>,
) -> Vec<(i32, String, String)> {
    ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p.port,
                p.name.clone().unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
            )
        })
        .collect()
}
