//! Publishing local services as federation exports: the desired exports of
//! every local source (Kubernetes, static file) are merged and reconciled
//! against what the API holds for this cluster (PUT new or changed, DELETE
//! withdrawn), and the MCS conditions the API computes are read back.

use std::collections::BTreeMap;

use causeway_api::client::{Client, ClientError, Precondition};
use causeway_api::model::{
    ClusterId, ServiceExport, ServiceExportSpec, ServiceExportStatus, ServiceRef,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;

use super::backoff::Backoff;
use super::metrics::AgentMetrics;

/// The exports a source wants published, by service.
pub type DesiredExports = BTreeMap<ServiceRef, ServiceExportSpec>;

/// The status the API computed for each export of this cluster.
pub type ExportStatuses = BTreeMap<ServiceRef, ServiceExportStatus>;

/// Desired exports of every local source, by source name. Nothing is
/// reconciled until every expected source has reported once, so a restart
/// never withdraws exports just because a source has not synced yet.
#[derive(Debug, Clone)]
pub struct ExportSources {
    tx: watch::Sender<BTreeMap<&'static str, DesiredExports>>,
    expected: Vec<&'static str>,
}

impl ExportSources {
    /// Sources named `expected` (e.g. `kubernetes`, `static`).
    pub fn new(expected: &[&'static str]) -> Self {
        Self {
            tx: watch::channel(BTreeMap::new()).0,
            expected: expected.to_vec(),
        }
    }

    /// Whether every expected source has reported.
    pub fn ready(&self) -> bool {
        let m = self.tx.borrow();
        self.expected.iter().all(|s| m.contains_key(s))
    }

    /// Replaces the desired exports of `source`.
    pub fn set(&self, source: &'static str, desired: DesiredExports) {
        self.tx.send_modify(|m| {
            m.insert(source, desired);
        });
    }

    /// The merged desired exports (the first source in name order wins a
    /// service claimed by two sources).
    pub fn merged(&self) -> DesiredExports {
        merge(&self.tx.borrow())
    }

    fn subscribe(&self) -> watch::Receiver<BTreeMap<&'static str, DesiredExports>> {
        self.tx.subscribe()
    }
}

fn merge(m: &BTreeMap<&'static str, DesiredExports>) -> DesiredExports {
    let mut out = DesiredExports::new();
    for d in m.values() {
        for (k, v) in d {
            out.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    out
}

/// What a reconcile must do.
#[derive(Debug, Default, PartialEq)]
pub struct ExportPlan {
    /// Exports to create or replace.
    pub put: Vec<(ServiceRef, ServiceExportSpec)>,
    /// Exports to withdraw.
    pub delete: Vec<ServiceRef>,
}

/// The pure diff of `desired` against `published`.
pub fn plan(desired: &DesiredExports, published: &DesiredExports) -> ExportPlan {
    ExportPlan {
        put: desired
            .iter()
            .filter(|(k, v)| published.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        delete: published
            .keys()
            .filter(|k| !desired.contains_key(*k))
            .cloned()
            .collect(),
    }
}

/// Reconciles the exports of one cluster.
#[derive(Debug)]
pub struct ExportPublisher {
    /// The API client.
    pub client: Client,
    /// This cluster.
    pub cluster: ClusterId,
    /// Metrics.
    pub metrics: AgentMetrics,
    /// Back-off after failures.
    pub backoff: Backoff,
    /// How often conditions are re-read from the API.
    pub status_interval: std::time::Duration,
    /// The statuses read back (for the MCS controllers).
    pub statuses: watch::Sender<ExportStatuses>,
}

impl ExportPublisher {
    /// Reads what the API holds for this cluster (specs and statuses).
    async fn read_back(&self) -> Result<(DesiredExports, ExportStatuses), ClientError> {
        let list = self.client.list_exports(&self.cluster).await?;
        let mut specs = DesiredExports::new();
        let mut statuses = ExportStatuses::new();
        for e in list {
            let svc = e.service();
            if let Some(s) = e.status.clone() {
                statuses.insert(svc.clone(), s);
            }
            specs.insert(svc, e.spec);
        }
        Ok((specs, statuses))
    }

    /// Applies `plan`, updating `published` as calls succeed.
    async fn execute(
        &self,
        plan: ExportPlan,
        published: &mut DesiredExports,
    ) -> Result<(), ClientError> {
        for (svc, spec) in plan.put {
            let e = ServiceExport::new(
                svc.namespace.clone(),
                svc.name.clone(),
                self.cluster.clone(),
                spec.clone(),
            );
            let r = self.client.put_export(&e, Precondition::None).await;
            self.metrics.call("export_put", r.is_ok());
            match r {
                Ok(_) => {
                    tracing::info!(service = %svc, "export published");
                    published.insert(svc, spec);
                }
                Err(e)
                    if e.status()
                        .is_some_and(|s| (400..500).contains(&s) && s != 429 && s != 408) =>
                {
                    // Refused (e.g. ExportPolicy 403, invalid 422): retrying
                    // will not help until the source changes.
                    tracing::warn!(service = %svc, error = %e, "export refused by the federation api");
                    published.insert(svc, spec);
                }
                Err(e) => return Err(e),
            }
        }
        for svc in plan.delete {
            let r = self.client.delete_export(&self.cluster, &svc).await;
            self.metrics.call(
                "export_delete",
                r.is_ok() || r.as_ref().is_err_and(|e| e.is_not_found()),
            );
            match r {
                Ok(()) => tracing::info!(service = %svc, "export withdrawn"),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            published.remove(&svc);
        }
        Ok(())
    }

    /// Reconciles until shutdown: first against the API's list (so exports
    /// withdrawn while the gateway was down are deleted), then on every
    /// change of the sources, re-reading conditions periodically.
    pub async fn run(mut self, sources: ExportSources, mut shutdown: watch::Receiver<bool>) {
        let mut rx = sources.subscribe();
        let mut rng = StdRng::from_os_rng();
        let mut published: Option<DesiredExports> = None;
        let mut refresh = tokio::time::interval(self.status_interval);
        while !sources.ready() {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
        }
        loop {
            let desired = merge(&rx.borrow_and_update());
            let result = async {
                let mut base = match published.take() {
                    Some(p) => p,
                    None => self.read_back().await?.0,
                };
                let p = plan(&desired, &base);
                let touched = !p.put.is_empty() || !p.delete.is_empty();
                let r = self.execute(p, &mut base).await;
                published = Some(base);
                r?;
                if touched {
                    let (_, statuses) = self.read_back().await?;
                    self.statuses.send_replace(statuses);
                }
                Ok::<(), ClientError>(())
            }
            .await;
            match result {
                Ok(()) => self.backoff.reset(),
                Err(e) => {
                    let delay = self.backoff.next_delay(&mut rng);
                    tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "export reconcile failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = shutdown.changed() => return,
                    }
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = refresh.tick() => {
                    if let Ok((specs, statuses)) = self.read_back().await {
                        self.statuses.send_replace(statuses);
                        // Someone else changed or removed our exports: reconcile.
                        published = Some(specs);
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn svc(s: &str) -> ServiceRef {
        s.parse().unwrap()
    }

    fn spec(port: u16) -> ServiceExportSpec {
        serde_json::from_value(serde_json::json!({"ports": [{"port": port}]})).unwrap()
    }

    #[test]
    fn plan_puts_changes_and_deletes_withdrawn() {
        let published: DesiredExports = [(svc("a/one"), spec(80)), (svc("a/two"), spec(80))].into();
        let desired: DesiredExports = [(svc("a/one"), spec(80)), (svc("a/three"), spec(9))].into();
        let p = plan(&desired, &published);
        assert_eq!(p.put, vec![(svc("a/three"), spec(9))]);
        assert_eq!(p.delete, vec![svc("a/two")]);
        assert_eq!(plan(&desired, &desired), ExportPlan::default());
    }

    #[test]
    fn sources_merge_first_source_wins() {
        let s = ExportSources::new(&["kubernetes", "static"]);
        s.set("kubernetes", [(svc("a/one"), spec(1))].into());
        assert!(!s.ready());
        s.set(
            "static",
            [(svc("a/one"), spec(2)), (svc("b/two"), spec(3))].into(),
        );
        assert!(s.ready());
        let m = s.merged();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&svc("a/one")], spec(1));
    }
}
