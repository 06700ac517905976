//! The embedded in-process store: the same revision, watch, compaction and
//! lease semantics as etcd, for single-node development, the demo and tests.
//!
//! - One global revision counter; MVCC history of the last
//!   [`MemoryStoreConfig::history_limit`] events serves watches from past
//!   revisions; older history is compacted automatically (and explicitly by
//!   [`Store::compact`]).
//! - Leases expire on tokio time (use `tokio::time::pause` in tests): a
//!   background task checks deadlines, and every operation expires due
//!   leases first.
//! - Every watcher has an unbounded queue, so a slow watcher never misses an
//!   event.
//! - Optional persistence to a file (see [`MemoryStoreConfig::persist_path`]).

mod persist;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_stream::wrappers::UnboundedReceiverStream;

use self::persist::Persist;
use self::state::State;
use super::{
    KeyValue, LeaseId, Page, Precondition, RangeResponse, Revision, Store, StoreError, WatchStream,
};

/// Settings of [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreConfig {
    /// Watch history kept, in events (default 100 000); older revisions are
    /// compacted automatically.
    pub history_limit: usize,
    /// How often the background task expires leases (default 100 ms).
    pub lease_check_interval: Duration,
    /// When set, the store is loaded from and persisted to this file (and
    /// `<file>.log`), so a dev federation survives a restart. Watch history
    /// does not survive: watches from before the restart get
    /// [`StoreError::Compacted`] and relist.
    pub persist_path: Option<PathBuf>,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        Self {
            history_limit: 100_000,
            lease_check_interval: Duration::from_millis(100),
            persist_path: None,
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    persist: Mutex<Option<Persist>>,
}

/// An in-process [`Store`] with etcd semantics. Cloning shares the store.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A fresh, non-persistent store with default settings. Inside a tokio
    /// runtime, a background task expires leases.
    pub fn new() -> Self {
        match Self::with_config(MemoryStoreConfig::default()) {
            Ok(s) => s,
            // Without a persistence path, construction performs no I/O.
            Err(_) => unreachable!("a non-persistent memory store cannot fail to open"),
        }
    }

    /// A store with `config`; loads the persistence file when configured.
    pub fn with_config(config: MemoryStoreConfig) -> Result<Self, StoreError> {
        let mut state = State::new(config.history_limit);
        let persist = match &config.persist_path {
            Some(path) => Some(Persist::open(path, &mut state, Instant::now())?),
            None => None,
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            persist: Mutex::new(persist),
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(reap_leases(
                Arc::downgrade(&inner),
                config.lease_check_interval,
            ));
        }
        Ok(Self { inner })
    }

    /// Expires due leases now (also done by the background task).
    pub fn expire_leases(&self) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        st.expire(Instant::now());
        self.persist(&mut st)
    }

    /// Ends every open watch stream with [`StoreError::Unavailable`], as a
    /// server shutting down would.
    pub fn close_watchers(&self) -> Result<(), StoreError> {
        self.lock()?.close_watchers("store closed");
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let mut st = self
            .inner
            .state
            .lock()
            .map_err(|_| StoreError::internal("memory store lock poisoned"))?;
        st.expire(Instant::now());
        Ok(st)
    }

    fn persist(&self, st: &mut State) -> Result<(), StoreError> {
        let mut p = self
            .inner
            .persist
            .lock()
            .map_err(|_| StoreError::internal("memory store persistence lock poisoned"))?;
        match p.as_mut() {
            Some(p) => p.flush(st),
            None => {
                st.pending.clear();
                Ok(())
            }
        }
    }
}

async fn reap_leases(inner: Weak<Inner>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let store = MemoryStore { inner };
        if let Err(e) = store.expire_leases() {
            tracing::warn!(error = %e, "memory store lease expiry failed");
        }
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut st = self.lock()?;
        let kv = st.get(key);
        self.persist(&mut st)?;
        Ok(kv)
    }

    async fn range(&self, prefix: &str, page: Page) -> Result<RangeResponse, StoreError> {
        let mut st = self.lock()?;
        let r = st.range(prefix, &page);
        self.persist(&mut st)?;
        Ok(r)
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        precondition: Precondition,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        let mut st = self.lock()?;
        let r = st.put(key, value, precondition, lease);
        self.persist(&mut st)?;
        r
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<Revision, StoreError> {
        let mut st = self.lock()?;
        let r = st.delete(key, precondition);
        self.persist(&mut st)?;
        r
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        if ttl.is_zero() {
            return Err(StoreError::InvalidArgument {
                message: "lease ttl must be positive".to_owned(),
            });
        }
        let mut st = self.lock()?;
        let id = st.grant(ttl, Instant::now());
        self.persist(&mut st)?;
        Ok(id)
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        let mut st = self.lock()?;
        let r = st.keep_alive(lease, Instant::now());
        self.persist(&mut st)?;
        r
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let r = st.revoke(lease);
        self.persist(&mut st)?;
        r
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let mut st = self.lock()?;
        let r = st.rev;
        self.persist(&mut st)?;
        Ok(r)
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let mut st = self.lock()?;
        let r = st.compact(revision);
        self.persist(&mut st)?;
        r
    }

    async fn watch(
        &self,
        prefix: &str,
        start_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut st = self.lock()?;
        st.watch(prefix, start_revision, tx);
        self.persist(&mut st)?;
        Ok(Box::pin(CompactedEnds::new(UnboundedReceiverStream::new(
            rx,
        ))))
    }
}

#[cfg(test)]
mod tests;

/// Ends the stream after the first error, so `Compacted` and shutdown
/// errors are terminal like etcd's cancelled watches.
struct CompactedEnds<S> {
    inner: S,
    done: bool,
}

impl<S> CompactedEnds<S> {
    fn new(inner: S) -> Self {
        Self { inner, done: false }
    }
}

impl<S> futures::Stream for CompactedEnds<S>
where
    S: futures::Stream<Item = Result<super::WatchEvent, StoreError>> + Unpin,
{
    type Item = Result<super::WatchEvent, StoreError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.done {
            return std::task::Poll::Ready(None);
        }
        let r = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(Err(_))) = &r {
            self.done = true;
        }
        r
    }
}
