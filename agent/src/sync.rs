//! Catalog sync: follows the federation API's gRPC watch (a snapshot, then
//! ordered deltas), publishes each batch of changes as one new snapshot on a
//! `watch` channel, persists the applied catalog, reconnects with jittered
//! exponential back-off and relists when its revision was compacted.
//!
//! While the API (or etcd) is gone the channel keeps the last catalog and
//! `catalog_staleness_seconds` grows; nothing is ever cleared because the
//! control plane is down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use causeway_api::client::{Follow, apply_line, grpc_watch_tls, grpc_wire, status_error};
use causeway_api::model::CatalogSnapshot;
use futures::{FutureExt as _, StreamExt as _};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::watch;

use super::backoff::Backoff;
use super::metrics::{AgentMetrics, PlacementLabels};
use super::persist;
use super::staleness::Staleness;

/// Where and how to follow the catalog.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// Federation API base URL (`http://` or `https://host:port`; gRPC is
    /// served on the same port).
    pub endpoint: String,
    /// Trust settings for an `https://` endpoint.
    pub tls: causeway_api::client::TlsOptions,
    /// Bearer token.
    pub token: Option<String>,
    /// Where to persist each applied catalog.
    pub snapshot_file: Option<PathBuf>,
    /// Reconnect back-off.
    pub backoff: Backoff,
}

/// Follows the federation watch; see the module docs.
pub struct Follower {
    config: FollowerConfig,
    metrics: AgentMetrics,
    staleness: Arc<Staleness>,
    current: CatalogSnapshot,
    resume_from: Option<u64>,
    tx: watch::Sender<Arc<CatalogSnapshot>>,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("endpoint", &self.config.endpoint)
            .field("revision", &self.current.revision)
            .finish_non_exhaustive()
    }
}

enum Step {
    /// Keep reading the stream.
    Continue,
    /// Reconnect resuming from the current revision, after a back-off.
    Resume,
    /// Reconnect without `since` (compacted or undecodable), at once.
    Relist,
}

impl Follower {
    /// A follower; its catalogs are published to [`Self::subscribe`]rs.
    pub fn new(config: FollowerConfig, metrics: AgentMetrics) -> Self {
        let (tx, _) = watch::channel(Arc::new(CatalogSnapshot::default()));
        Self {
            config,
            metrics,
            staleness: Arc::new(Staleness::default()),
            current: CatalogSnapshot::default(),
            resume_from: None,
            tx,
        }
    }

    /// Loads the persisted catalog (if any, and valid) and publishes it, so
    /// the gateway serves while the API is unreachable. Returns its revision.
    /// A corrupted or partial file is logged and ignored.
    pub fn restore(&mut self) -> Option<u64> {
        let path = self.config.snapshot_file.as_ref()?;
        match persist::load(path) {
            Ok(p) => {
                let rev = p.snapshot.revision;
                tracing::info!(path = %path.display(), revision = rev, "persisted catalog loaded");
                self.staleness = Arc::new(Staleness::new(Some(p.saved_at)));
                self.current = p.snapshot;
                self.resume_from = Some(rev);
                self.install();
                Some(rev)
            }
            Err(persist::PersistError::Missing(_)) => None,
            Err(e) => {
                tracing::error!(error = %e, "persisted catalog ignored");
                None
            }
        }
    }

    /// Every applied catalog (the restored one at once).
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogSnapshot>> {
        self.tx.subscribe()
    }

    /// The staleness tracker.
    pub fn staleness(&self) -> Arc<Staleness> {
        self.staleness.clone()
    }

    /// The revision of the catalog in use.
    pub fn revision(&self) -> u64 {
        self.current.revision
    }

    fn install(&mut self) {
        let previous = Arc::clone(&self.tx.borrow());
        self.audit_placement(&previous);
        let started = Instant::now();
        let snapshot = Arc::new(self.current.clone());
        self.metrics
            .apply_latency
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .catalog_revision
            .set(i64::try_from(self.current.revision).unwrap_or(i64::MAX));
        self.tx.send_replace(snapshot);
    }

    /// Logs and counts every change of a known cluster's jurisdictions or
    /// region between the installed catalog and the next one: residency
    /// decisions follow these facts, so a change must never pass unseen
    /// (SECURITY.md F12).
    fn audit_placement(&self, previous: &CatalogSnapshot) {
        // A handful of clusters: a walk is cheaper than a diff to set up.
        for (id, new) in self.current.clusters.iter() {
            let Some(old) = previous.clusters.get(id) else {
                continue;
            };
            if old.spec.jurisdictions != new.spec.jurisdictions {
                tracing::warn!(cluster = %id, from = ?old.spec.jurisdictions, to = ?new.spec.jurisdictions,
                    revision = self.current.revision, "cluster jurisdictions changed");
                self.metrics
                    .placement_changes
                    .get_or_create(&PlacementLabels {
                        field: "jurisdictions",
                    })
                    .inc();
            }
            if old.spec.region != new.spec.region {
                tracing::warn!(cluster = %id, from = %old.spec.region, to = %new.spec.region,
                    revision = self.current.revision, "cluster region changed");
                self.metrics
                    .placement_changes
                    .get_or_create(&PlacementLabels { field: "region" })
                    .inc();
            }
        }
    }

    fn apply(&mut self, ev: causeway_api::proto::WatchEvent, changed: &mut bool) -> Step {
        let line = match grpc_wire::to_line(ev) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable watch event, relisting");
                return Step::Relist;
            }
        };
        match apply_line(&mut self.current, line) {
            Follow::Changed { .. } => {
                *changed = true;
                Step::Continue
            }
            Follow::Unchanged { .. } => Step::Continue,
            Follow::Relist => Step::Relist,
            Follow::Resume => Step::Resume,
        }
    }

    fn update_staleness(&self) {
        if let Some(s) = self.staleness.seconds(SystemTime::now()) {
            self.metrics.catalog_staleness.set(s);
        }
    }

    /// Follows the watch until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let persist_tx = self.config.snapshot_file.clone().map(spawn_persister);
        let mut backoff = self.config.backoff.clone();
        let mut rng = StdRng::from_os_rng();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut relist = self.resume_from.is_none();
        let mut first = true;
        loop {
            if *shutdown.borrow() {
                return;
            }
            if !first {
                self.metrics.watch_reconnects.inc();
            }
            first = false;
            let since = (!relist).then_some(self.current.revision);
            let connect = grpc_watch_tls(
                &self.config.endpoint,
                self.config.token.as_deref(),
                since,
                &self.config.tls,
            );
            let opened = tokio::select! {
                r = connect => r,
                _ = shutdown.changed() => return,
            };
            let mut stream = match opened {
                Ok(s) => s,
                Err(e) if e.is_compacted() => {
                    tracing::warn!(since = ?since, "watch revision compacted, relisting");
                    self.metrics.watch_relists.inc();
                    relist = true;
                    continue;
                }
                Err(e) => {
                    self.staleness.disconnected(SystemTime::now());
                    self.update_staleness();
                    let delay = backoff.next_delay(&mut rng);
                    tracing::warn!(error = %e, delay_ms = delay.as_millis() as u64, "federation watch unavailable, serving the last known catalog");
                    if sleep_or_shutdown(
                        delay,
                        &mut shutdown,
                        &mut tick,
                        self.staleness.clone(),
                        &self.metrics,
                    )
                    .await
                    {
                        return;
                    }
                    continue;
                }
            };
            tracing::info!(since = ?since, "federation watch connected");
            if !relist {
                // Resumed: the catalog is current as of the server's answer.
                self.staleness.connected(SystemTime::now());
            }
            relist = false;
            let step = loop {
                let msg = tokio::select! {
                    m = stream.next() => m,
                    _ = tick.tick() => { self.update_staleness(); continue; }
                    _ = shutdown.changed() => return,
                };
                let ev = match msg {
                    None => break Step::Resume,
                    Some(Err(status)) => {
                        let e = status_error(status);
                        break if e.is_compacted() {
                            Step::Relist
                        } else {
                            tracing::warn!(error = %e, "federation watch broken");
                            Step::Resume
                        };
                    }
                    Some(Ok(ev)) => ev,
                };
                backoff.reset();
                let mut changed = false;
                let mut step = self.apply(ev, &mut changed);
                // Batch everything already received (an export and its
                // derived import arrive together) into one install.
                while matches!(step, Step::Continue) {
                    match stream.next().now_or_never() {
                        Some(Some(Ok(ev))) => step = self.apply(ev, &mut changed),
                        Some(Some(Err(status))) => {
                            step = if status_error(status).is_compacted() {
                                Step::Relist
                            } else {
                                Step::Resume
                            };
                        }
                        Some(None) => step = Step::Resume,
                        None => break,
                    }
                }
                if changed {
                    self.install();
                    if let Some(tx) = &persist_tx {
                        tx.send_replace(Some(self.tx.borrow().clone()));
                    }
                }
                self.staleness.connected(SystemTime::now());
                self.update_staleness();
                if !matches!(step, Step::Continue) {
                    break step;
                }
            };
            self.staleness.disconnected(SystemTime::now());
            self.update_staleness();
            match step {
                Step::Relist => {
                    tracing::warn!(
                        revision = self.current.revision,
                        "watch revision compacted, relisting"
                    );
                    self.metrics.watch_relists.inc();
                    relist = true;
                }
                Step::Resume | Step::Continue => {
                    let delay = backoff.next_delay(&mut rng);
                    tracing::warn!(
                        revision = self.current.revision,
                        delay_ms = delay.as_millis() as u64,
                        "federation watch ended, reconnecting"
                    );
                    if sleep_or_shutdown(
                        delay,
                        &mut shutdown,
                        &mut tick,
                        self.staleness.clone(),
                        &self.metrics,
                    )
                    .await
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// Sleeps `delay` while keeping the staleness gauge fresh; true on shutdown.
async fn sleep_or_shutdown(
    delay: std::time::Duration,
    shutdown: &mut watch::Receiver<bool>,
    tick: &mut tokio::time::Interval,
    staleness: Arc<Staleness>,
    metrics: &AgentMetrics,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return false,
            _ = tick.tick() => {
                if let Some(s) = staleness.seconds(SystemTime::now()) {
                    metrics.catalog_staleness.set(s);
                }
            }
            _ = shutdown.changed() => return true,
        }
    }
}

/// Writes the latest applied catalog to disk off the apply path, coalescing
/// bursts (only the newest pending snapshot is written).
fn spawn_persister(path: PathBuf) -> watch::Sender<Option<Arc<CatalogSnapshot>>> {
    let (tx, mut rx) = watch::channel::<Option<Arc<CatalogSnapshot>>>(None);
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let Some(snapshot) = rx.borrow_and_update().clone() else {
                continue;
            };
            let p = path.clone();
            let r = tokio::task::spawn_blocking(move || {
                persist::save(&p, &snapshot, SystemTime::now()).map(|()| snapshot.revision)
            })
            .await;
            match r {
                Ok(Ok(rev)) => tracing::debug!(revision = rev, "catalog persisted"),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot persist catalog"),
                Err(e) => tracing::warn!(error = %e, "catalog persist task failed"),
            }
        }
    });
    tx
}
