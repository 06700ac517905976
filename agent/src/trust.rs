//! Trust bundles: which federated bundles of the catalog a
//! [`BundleStore`] should take (verifiers read it per handshake, so live
//! connections are untouched), and publishing this trust domain's bundle
//! whenever its sequence changes.

use causeway_api::client::Client;
use causeway_api::model::{CatalogSnapshot, ClusterId, TrustBundle, TrustDomainName};
use causeway_trust::{Bundle, BundleSet, BundleStore, TrustDomain};
use tokio::sync::watch;

use super::metrics::AgentMetrics;

/// The federated bundles of `snapshot` that `current` lacks or holds at an
/// older sequence (never the own trust domain, which this cluster owns).
pub fn bundle_updates(
    own: &TrustDomain,
    current: &BundleSet,
    snapshot: &CatalogSnapshot,
) -> Vec<(TrustDomain, Bundle)> {
    snapshot
        .bundles
        .values()
        .filter_map(|b| {
            let td = TrustDomain::new(b.trust_domain().as_str()).ok()?;
            if &td == own {
                return None;
            }
            let newer = match current.get(&td) {
                None => true,
                Some(have) => b.sequence() > have.sequence(),
            };
            newer.then(|| (td, b.spec.bundle.clone()))
        })
        .collect()
}

/// Applies [`bundle_updates`] to `store` atomically per trust domain.
/// Returns the trust domains updated.
pub fn apply_bundles(
    own: &TrustDomain,
    store: &BundleStore,
    snapshot: &CatalogSnapshot,
) -> Vec<TrustDomain> {
    let updates = bundle_updates(own, &store.load(), snapshot);
    let mut done = Vec::new();
    for (td, bundle) in updates {
        let seq = bundle.sequence();
        match store.update(&td, bundle) {
            Ok(()) => {
                tracing::info!(trust_domain = %td, sequence = seq, "federated bundle updated");
                done.push(td);
            }
            Err(e) => tracing::warn!(trust_domain = %td, error = %e, "federated bundle refused"),
        }
    }
    done
}

/// Publishes this trust domain's bundle every `interval`, when its
/// sequence changed since the last publication. The bundle is the one the
/// gateway's bundle store holds for its own trust domain: the gateway keeps
/// it current (CA rotations of its authority, a bundle file an external CA
/// such as SPIRE rewrites).
#[derive(Debug)]
pub struct BundlePublisher {
    /// The API client.
    pub client: Client,
    /// This cluster (the bundle's owner).
    pub cluster: ClusterId,
    /// This trust domain.
    pub trust_domain: TrustDomain,
    /// The gateway's bundle store (read only).
    pub store: BundleStore,
    /// Metrics.
    pub metrics: AgentMetrics,
    /// Check interval.
    pub interval: std::time::Duration,
}

impl BundlePublisher {
    /// One round: publish if the sequence changed. Returns the sequence
    /// published, if any.
    pub async fn round(&self, published: &mut Option<u64>) -> Option<u64> {
        let Some(bundle) = self.store.load().get(&self.trust_domain).cloned() else {
            tracing::warn!(trust_domain = %self.trust_domain, "own trust bundle unavailable");
            return None;
        };
        let seq = bundle.sequence();
        if *published == Some(seq) {
            return None;
        }
        let Ok(td) = self.trust_domain.name().parse::<TrustDomainName>() else {
            return None;
        };
        let resource = TrustBundle::new(td, self.cluster.clone(), bundle);
        match self.client.put_bundle(&resource).await {
            Ok(_) => {
                self.metrics.call("bundle_publish", true);
                self.metrics
                    .bundle_sequence
                    .set(i64::try_from(seq).unwrap_or(i64::MAX));
                tracing::info!(trust_domain = %self.trust_domain, sequence = seq, "trust bundle published");
                *published = Some(seq);
                Some(seq)
            }
            Err(e) => {
                self.metrics.call("bundle_publish", false);
                tracing::warn!(error = %e, "trust bundle publication failed, will retry");
                None
            }
        }
    }

    /// Runs rounds until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut published = None;
        let mut tick = tokio::time::interval(self.interval);
        // Retry quickly until the first publication succeeds (the cluster
        // record it depends on may not be registered yet).
        let mut retry = tokio::time::interval(self.interval.min(std::time::Duration::from_secs(1)));
        loop {
            if published.is_none() {
                tokio::select! {
                    _ = retry.tick() => {}
                    _ = shutdown.changed() => return,
                }
            } else {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = shutdown.changed() => return,
                }
            }
            self.round(&mut published).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use causeway_trust::{Authority, AuthorityConfig};

    fn td(s: &str) -> TrustDomain {
        TrustDomain::new(s).unwrap()
    }

    fn snapshot_with(bundles: &[(&str, Bundle)]) -> CatalogSnapshot {
        let mut s = CatalogSnapshot::default();
        for (name, b) in bundles {
            let r = TrustBundle::new(name.parse().unwrap(), "c1".parse().unwrap(), b.clone());
            s.bundles.insert(name.parse().unwrap(), r);
        }
        s
    }

    #[test]
    fn only_newer_foreign_bundles_are_taken() {
        let own = td("own.example");
        let us = Authority::new(td("us.example"), AuthorityConfig::default()).unwrap();
        let eu = Authority::new(td("eu.example"), AuthorityConfig::default()).unwrap();
        let mine = Authority::new(own.clone(), AuthorityConfig::default()).unwrap();
        let us_b = us.bundle();
        let eu_b = eu.bundle();
        let current = BundleSet::new()
            .with_bundle(own.clone(), mine.bundle())
            .unwrap()
            .with_bundle(td("us.example"), us_b.clone())
            .unwrap();
        let forged_own = mine.bundle().with_sequence(mine.bundle().sequence() + 10);
        let snap = snapshot_with(&[
            ("us.example", us_b.clone()),
            ("eu.example", eu_b.clone()),
            ("own.example", forged_own),
        ]);
        let ups = bundle_updates(&own, &current, &snap);
        // eu is new, us is unchanged, own is never taken from the catalog.
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].0, td("eu.example"));

        let store = BundleStore::new(current);
        let bumped = us_b.clone().with_sequence(us_b.sequence() + 1);
        let snap = snapshot_with(&[("us.example", bumped.clone()), ("eu.example", eu_b)]);
        let done = apply_bundles(&own, &store, &snap);
        assert_eq!(done.len(), 2);
        assert_eq!(
            store.load().get(&td("us.example")).unwrap().sequence(),
            bumped.sequence()
        );
        // An older sequence is not applied again.
        let snap = snapshot_with(&[("us.example", us_b)]);
        assert!(apply_bundles(&own, &store, &snap).is_empty());
    }
}
