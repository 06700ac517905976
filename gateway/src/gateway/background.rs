//! Background work, all off the request path: catalog file reload (on change
//! or SIGHUP), identity refresh (federated bundle files, SVID rotation) and
//! active probes of remote gateways (mTLS handshake + `GET /healthz`), one
//! task per remote gateway.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{CatalogState, load_catalog_file};
use crate::resilience::{ProbeState, ProbeThresholds, next_probe_in};
use crate::state::Shared;

/// Builds east-west connectors (and resolves gateway host names) for every
/// remote cluster of the current catalog.
pub(crate) fn prepare_remotes(shared: &Shared) {
    let state = shared.catalog();
    let local = shared.config.cluster.id.as_str();
    let targets: Vec<_> = remote_targets(&state, local);
    shared.remotes.prepare(targets.iter());
}

fn remote_targets(state: &CatalogState, local: &str) -> Vec<crate::routing::Target> {
    state
        .catalog
        .clusters
        .iter()
        .filter(|(id, _)| id.as_str() != local)
        .map(|(id, c)| crate::routing::Target {
            cluster: Arc::from(id.as_str()),
            local: false,
            gateway_endpoints: c
                .spec
                .gateway
                .endpoints
                .iter()
                .map(|e| e.to_string())
                .collect(),
            trust_domain: Arc::from(c.spec.trust_domain.as_str()),
        })
        .collect()
}

/// Spawns every background task.
pub(super) fn spawn_all(
    shared: &Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(catalog_reload(shared.clone(), shutdown.clone())),
        tokio::spawn(identity_refresh(shared.clone(), shutdown.clone())),
    ];
    if let crate::config::IdentitySource::WorkloadApi { socket } = &shared.config.identity.source {
        tasks.push(tokio::spawn(crate::identity::workload::watch(
            shared.identity.clone(),
            socket.clone(),
            shared.metrics.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(probes(shared.clone(), shutdown)));
    tasks
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

async fn catalog_reload(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let Some(path) = shared.config.federation.catalog_file.clone() else {
        return;
    };
    let mut last = mtime(&path);
    let mut tick = tokio::time::interval(shared.config.federation.reload_interval);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let forced = std::future::pending::<()>();
        let force = tokio::select! {
            _ = tick.tick() => false,
            _ = forced => true,
            _ = shutdown.changed() => return,
        };
        let now = mtime(&path);
        if !force && now == last {
            continue;
        }
        last = now;
        let p = path.clone();
        let cluster = shared.config.cluster.clone();
        let built = tokio::task::spawn_blocking(move || {
            load_catalog_file(&p).map(|c| CatalogState::build(c, &cluster))
        })
        .await;
        match built {
            Ok(Ok(state)) => {
                let s = shared.clone();
                shared.install_catalog(state);
                let _ = tokio::task::spawn_blocking(move || prepare_remotes(&s)).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "catalog reload failed, keeping the last good catalog")
            }
            Err(e) => tracing::warn!(error = %e, "catalog reload task failed"),
        }
    }
}

async fn identity_refresh(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.config.federation.reload_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let id = shared.identity.clone();
        match tokio::task::spawn_blocking(move || id.refresh()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "identity refresh failed"),
            Err(e) => tracing::warn!(error = %e, "identity refresh task failed"),
        }
    }
}

/// Keeps one probe task per remote gateway of the current catalog: new
/// clusters get one, removed clusters lose theirs. Each task probes on its
/// own schedule, so a gateway whose probe hangs until the connect timeout
/// delays no other gateway's.
async fn probes(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(shared.config.upstream.probe_interval);
    let mut tasks: HashMap<Arc<str>, JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        let state = shared.catalog();
        let clusters: HashSet<Arc<str>> = remote_targets(&state, &shared.config.cluster.id)
            .into_iter()
            .map(|t| t.cluster)
            .collect();
        tasks.retain(|c, task| {
            let keep = clusters.contains(c) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for c in clusters {
            if let std::collections::hash_map::Entry::Vacant(e) = tasks.entry(c) {
                let c = e.key().clone();
                e.insert(tokio::spawn(probe_target(
                    shared.clone(),
                    c,
                    shutdown.clone(),
                )));
            }
        }
    }
    for (_, task) in tasks {
        task.abort();
    }
}

/// Probes one remote gateway until it leaves the catalog: every
/// `probeInterval` plus jitter (the first after a random share of the
/// interval), all of its addresses at once (one passing is enough), each
/// probe bounded by the connect timeout. A run of
/// `probeUnhealthyThreshold` failures marks it failing, a run of
/// `probeHealthyThreshold` passes marks it back.
async fn probe_target(shared: Arc<Shared>, cluster: Arc<str>, mut shutdown: watch::Receiver<bool>) {
    let cfg = &shared.config.upstream;
    let thresholds = ProbeThresholds {
        healthy: cfg.probe_healthy_threshold,
        unhealthy: cfg.probe_unhealthy_threshold,
    };
    let mut state = ProbeState::default();
    let mut wait = cfg.probe_interval.mul_f64(rand::random::<f64>());
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = next_probe_in(
            cfg.probe_interval,
            cfg.probe_jitter_percent,
            rand::random::<f64>(),
        );
        let catalog = shared.catalog();
        let Some(target) = remote_targets(&catalog, &shared.config.cluster.id)
            .into_iter()
            .find(|t| t.cluster == cluster)
        else {
            return;
        };
        drop(catalog);
        let Some(conns) = shared.remotes.get(&target) else {
            continue;
        };
        let passed = probe_any(&conns, cfg.connect_timeout).await;
        match state.observe(passed, thresholds) {
            Some(true) => tracing::warn!(%cluster, "remote gateway probe fails"),
            Some(false) => tracing::info!(%cluster, "remote gateway probe passes again"),
            None => {}
        }
        shared.health.set_probe(&cluster, state.failing());
    }
}

/// Probes every address of a remote gateway at once; true as soon as one
/// passes.
async fn probe_any(conns: &crate::upstream::ClusterConnectors, t: Duration) -> bool {
    let mut pending: FuturesUnordered<_> = conns
        .addrs
        .iter()
        .map(|addr| probe(&conns.h1, *addr, t))
        .collect();
    while let Some(passed) = pending.next().await {
        if passed {
            return true;
        }
    }
    false
}

async fn probe(
    c: &crate::upstream::SpiffeConnector,
    addr: std::net::SocketAddr,
    t: Duration,
) -> bool {
    matches!(tokio::time::timeout(t, c.probe(addr)).await, Ok(Ok(true)))
}
