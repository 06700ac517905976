//! Background work, all off the request path: catalog file reload (on change
//! or SIGHUP), identity refresh (federated bundle files, SVID rotation) and
//! active probes of remote gateways (TCP + mTLS handshake).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{CatalogState, load_catalog_file};
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

async fn probes(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let cfg = &shared.config.upstream;
    let mut tick = tokio::time::interval(cfg.probe_interval);
    let timeout = cfg.connect_timeout;
    let mut failing: std::collections::HashMap<Arc<str>, bool> = std::collections::HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let state = shared.catalog();
        for target in remote_targets(&state, &shared.config.cluster.id) {
            let Some(conns) = shared.remotes.get(&target) else {
                continue;
            };
            let mut ok = false;
            for addr in conns.addrs.iter() {
                if probe(&conns.h1, *addr, timeout).await {
                    ok = true;
                    break;
                }
            }
            shared.health.set_probe(&target.cluster, !ok);
            let was = failing.insert(target.cluster.clone(), !ok).unwrap_or(false);
            if was == ok {
                if ok {
                    tracing::info!(cluster = %target.cluster, "remote gateway probe passes again");
                } else {
                    tracing::warn!(cluster = %target.cluster, "remote gateway probe fails");
                }
            }
        }
    }
}

async fn probe(
    c: &crate::upstream::SpiffeConnector,
    addr: std::net::SocketAddr,
    t: Duration,
) -> bool {
    matches!(tokio::time::timeout(t, c.probe(addr)).await, Ok(Ok(true)))
}
