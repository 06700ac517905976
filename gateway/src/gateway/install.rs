//! Installing what the cluster agent publishes: each catalog (federated
//! bundles first, so that new peers verify, then the routing state, then
//! east-west connectors for new clusters, off the request path) and each
//! change of the local endpoints.

use std::sync::Arc;

use causeway_agent::LocalEndpoints;
use causeway_api::model::CatalogSnapshot;
use tokio::sync::watch;

use crate::state::Shared;

/// Installs one catalog.
pub(super) fn catalog(shared: &Arc<Shared>, snapshot: Arc<CatalogSnapshot>) {
    let id = &shared.identity;
    causeway_agent::trust::apply_bundles(&id.trust_domain, &id.bundles, &snapshot);
    // Only the services that changed since the previous revision are rebuilt.
    let state = shared.catalog().next(snapshot, &shared.config.cluster);
    shared.install_catalog(state);
}

/// Installs every catalog the agent publishes until shutdown.
pub(super) async fn catalogs(
    shared: Arc<Shared>,
    mut rx: watch::Receiver<Arc<CatalogSnapshot>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let snapshot = rx.borrow_and_update().clone();
        catalog(&shared, snapshot);
        let s = shared.clone();
        // Connectors resolve host names: never on the runtime's threads.
        let _ = tokio::task::spawn_blocking(move || super::prepare_remotes(&s)).await;
    }
}

/// Installs every change of the local endpoints until shutdown.
pub(super) async fn local_endpoints(
    shared: Arc<Shared>,
    mut rx: watch::Receiver<LocalEndpoints>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
        let local = rx.borrow_and_update().clone();
        shared.set_discovered_local(&local);
    }
}
