//! [`BundleSet`] (immutable map of trust domain to bundle) and
//! [`BundleStore`] (the atomically swappable handle verifiers read).

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::{Bundle, BundleMap, BundleSetError};
use crate::id::TrustDomain;

/// The bundles of every trust domain this party trusts, keyed by trust
/// domain. Bundles of different trust domains are never merged.
///
/// A `BundleSet` is an immutable value; updates return a new set. Cloning is
/// cheap (one `Arc`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleSet {
    bundles: Arc<BundleMap>,
}

impl BundleSet {
    /// An empty set (trusts nobody).
    pub fn new() -> Self {
        Self::default()
    }

    /// The bundle of `trust_domain`.
    pub fn get(&self, trust_domain: &TrustDomain) -> Option<&Bundle> {
        self.bundles.get(trust_domain).map(|b| &**b)
    }

    /// The shared bundle of `trust_domain`.
    pub fn get_arc(&self, trust_domain: &TrustDomain) -> Option<Arc<Bundle>> {
        self.bundles.get(trust_domain).cloned()
    }

    /// Whether the set holds a bundle for `trust_domain`.
    pub fn contains(&self, trust_domain: &TrustDomain) -> bool {
        self.bundles.contains_key(trust_domain)
    }

    /// Number of trust domains.
    pub fn len(&self) -> usize {
        self.bundles.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }

    /// The trust domains in the set, in order.
    pub fn trust_domains(&self) -> impl Iterator<Item = &TrustDomain> {
        self.bundles.keys()
    }

    /// All (trust domain, bundle) pairs, in trust-domain order.
    pub fn iter(&self) -> impl Iterator<Item = (&TrustDomain, &Bundle)> {
        self.bundles.iter().map(|(td, b)| (td, &**b))
    }

    /// Returns a set where `trust_domain` maps to `bundle`.
    ///
    /// Refuses a bundle whose sequence is lower than the one held
    /// ([`BundleSetError::SequenceRegression`]) or equal to it with different
    /// keys ([`BundleSetError::SequenceConflict`]). Re-offering the identical
    /// bundle is accepted and changes nothing.
    pub fn with_bundle(
        &self,
        trust_domain: TrustDomain,
        bundle: Bundle,
    ) -> Result<Self, BundleSetError> {
        if let Some(current) = self.bundles.get(&trust_domain) {
            if bundle.sequence() < current.sequence() {
                return Err(BundleSetError::SequenceRegression {
                    trust_domain,
                    current: current.sequence(),
                    new: bundle.sequence(),
                });
            }
            if bundle.sequence() == current.sequence() {
                if **current == bundle {
                    return Ok(self.clone());
                }
                return Err(BundleSetError::SequenceConflict {
                    trust_domain,
                    sequence: bundle.sequence(),
                });
            }
        }
        let mut bundles = (*self.bundles).clone();
        bundles.insert(trust_domain, Arc::new(bundle));
        Ok(Self {
            bundles: Arc::new(bundles),
        })
    }

    /// Returns a set without `trust_domain` (federation ended).
    pub fn without(&self, trust_domain: &TrustDomain) -> Self {
        if !self.contains(trust_domain) {
            return self.clone();
        }
        let mut bundles = (*self.bundles).clone();
        bundles.remove(trust_domain);
        Self {
            bundles: Arc::new(bundles),
        }
    }
}

impl FromIterator<(TrustDomain, Bundle)> for BundleSet {
    /// Builds a set without sequence checks (a later duplicate wins).
    fn from_iter<I: IntoIterator<Item = (TrustDomain, Bundle)>>(iter: I) -> Self {
        Self {
            bundles: Arc::new(iter.into_iter().map(|(td, b)| (td, Arc::new(b))).collect()),
        }
    }
}

/// A shared, atomically swappable [`BundleSet`].
///
/// The verifiers hold a clone and load the current set on every handshake, so
/// bundles can be replaced at runtime without rebuilding listeners. Clones
/// share the same underlying set.
#[derive(Debug, Clone, Default)]
pub struct BundleStore {
    inner: Arc<ArcSwap<BundleSet>>,
}

impl BundleStore {
    /// A store holding `set`.
    pub fn new(set: BundleSet) -> Self {
        Self {
            inner: Arc::new(ArcSwap::from_pointee(set)),
        }
    }

    /// The current set (cheap; lock-free).
    pub fn load(&self) -> Arc<BundleSet> {
        self.inner.load_full()
    }

    /// Replaces the whole set (no sequence checks).
    pub fn replace(&self, set: BundleSet) {
        self.inner.store(Arc::new(set));
    }

    /// Atomically installs `bundle` for `trust_domain`, with the sequence
    /// checks of [`BundleSet::with_bundle`].
    pub fn update(&self, trust_domain: &TrustDomain, bundle: Bundle) -> Result<(), BundleSetError> {
        loop {
            let current = self.inner.load_full();
            let next = Arc::new(current.with_bundle(trust_domain.clone(), bundle.clone())?);
            let previous = self.inner.compare_and_swap(&current, next);
            if Arc::ptr_eq(&previous, &current) {
                return Ok(());
            }
        }
    }

    /// Atomically removes `trust_domain`.
    pub fn remove(&self, trust_domain: &TrustDomain) {
        self.inner.rcu(|current| current.without(trust_domain));
    }
}
