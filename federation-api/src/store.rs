//! The storage abstraction: a raw key/value store with etcd semantics
//! (global revisions, MVCC watch from a past revision, compaction, leases and
//! compare-and-swap on `mod_revision`).
//!
//! Two implementations share one conformance suite:
//! [`EtcdStore`] (production) and [`MemoryStore`] (single-node dev, demo and
//! tests). Use them as `Arc<dyn Store>`.

mod error;
pub mod etcd;
pub mod memory;
mod types;

pub use error::{ErrorClass, StoreError};
pub use etcd::{EtcdStore, EtcdStoreConfig, EtcdTls};
pub use memory::{MemoryStore, MemoryStoreConfig};
pub use types::{
    KeyValue, LeaseId, Page, Precondition, RangeResponse, Revision, WatchEvent, WatchEventKind,
    WatchStream,
};

use std::time::Duration;

use bytes::Bytes;

/// A key/value store with etcd semantics.
///
/// - Every successful write (put, delete, lease expiry) creates a new global
///   revision; revisions are strictly increasing.
/// - Writes are conditional on a [`Precondition`] evaluated atomically with
///   the write (an etcd transaction comparing `mod_revision`; never a lock).
/// - [`Store::watch`] delivers every change under a prefix from a start
///   revision, in revision order, with nothing lost; a start revision that
///   was compacted yields [`StoreError::Compacted`].
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Lists keys starting with `prefix` in key order, at most `page.limit`
    /// of them (0 = unlimited), starting after `page.start_after` when set.
    /// The response carries the store revision the read was served at and
    /// whether more keys follow.
    async fn range(&self, prefix: &str, page: Page) -> Result<RangeResponse, StoreError>;

    /// Writes a key if `precondition` holds, optionally attached to a lease
    /// (the key is deleted when the lease expires or is revoked). Returns the
    /// revision of the write.
    ///
    /// Errors: [`StoreError::Conflict`] when the precondition fails,
    /// [`StoreError::LeaseNotFound`] for an unknown lease.
    async fn put(
        &self,
        key: &str,
        value: Bytes,
        precondition: Precondition,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError>;

    /// Deletes a key if `precondition` holds. Returns the revision of the
    /// delete.
    ///
    /// Errors: [`StoreError::NotFound`] when the key does not exist (and the
    /// precondition is [`Precondition::None`] or
    /// [`Precondition::MustNotExist`]); [`StoreError::Conflict`] when the
    /// precondition fails.
    async fn delete(&self, key: &str, precondition: Precondition) -> Result<Revision, StoreError>;

    /// Grants a lease with a time to live (etcd rounds up to whole seconds).
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError>;

    /// Renews a lease for its full TTL; returns the TTL.
    /// Errors: [`StoreError::LeaseNotFound`] when it expired or never existed.
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError>;

    /// Revokes a lease, deleting its keys at one new revision.
    /// Errors: [`StoreError::LeaseNotFound`].
    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError>;

    /// The current (latest) revision of the store.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Discards history before `revision`: watches starting before it fail
    /// with [`StoreError::Compacted`].
    /// Errors: [`StoreError::Compacted`] when already compacted past it,
    /// [`StoreError::InvalidArgument`] for a future revision.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;

    /// Watches keys under `prefix` starting at `start_revision` (inclusive;
    /// 0 = from the next change). The stream yields events in revision order;
    /// it yields `Err(StoreError::Compacted { .. })` (and ends) when
    /// `start_revision` was compacted, and an error (and ends) when the
    /// watch breaks, after which the caller relists and watches again.
    async fn watch(
        &self,
        prefix: &str,
        start_revision: Revision,
    ) -> Result<WatchStream, StoreError>;
}
