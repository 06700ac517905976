//! The pure state machine of the memory store: keys, MVCC history, leases
//! and watchers. Time is passed in; nothing here blocks or spawns.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use crate::store::{
    KeyValue, LeaseId, Page, Precondition, RangeResponse, Revision, StoreError, WatchEvent,
    WatchEventKind,
};

/// A granted lease.
#[derive(Debug, Clone)]
pub(super) struct Lease {
    pub(super) ttl: Duration,
    pub(super) deadline: Instant,
    pub(super) keys: BTreeSet<String>,
}

/// A registered watcher.
#[derive(Debug)]
struct Watcher {
    prefix: String,
    start: Revision,
    tx: UnboundedSender<Result<WatchEvent, StoreError>>,
}

/// A committed mutation, for the persistence log.
#[derive(Debug, Clone)]
pub(super) enum Mutation {
    /// A key was written.
    Put {
        rev: Revision,
        key: String,
        value: Bytes,
        lease: Option<LeaseId>,
    },
    /// Keys were deleted at one revision.
    Delete { rev: Revision, keys: Vec<String> },
    /// A lease was granted.
    Grant { id: LeaseId, ttl: Duration },
    /// A lease was revoked or expired (its keys are in a `Delete`).
    Revoke { id: LeaseId },
}

/// The whole store state.
#[derive(Debug)]
pub(super) struct State {
    pub(super) rev: Revision,
    pub(super) compact_rev: Revision,
    pub(super) kvs: BTreeMap<String, KeyValue>,
    history: VecDeque<WatchEvent>,
    history_limit: usize,
    pub(super) leases: HashMap<i64, Lease>,
    pub(super) next_lease: i64,
    watchers: Vec<Watcher>,
    /// Mutations not yet handed to persistence.
    pub(super) pending: Vec<Mutation>,
}

impl State {
    pub(super) fn new(history_limit: usize) -> Self {
        Self {
            rev: 1,
            compact_rev: 0,
            kvs: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            leases: HashMap::new(),
            next_lease: 1,
            watchers: Vec::new(),
            pending: Vec::new(),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<KeyValue> {
        self.kvs.get(key).cloned()
    }

    pub(super) fn range(&self, prefix: &str, page: &Page) -> RangeResponse {
        let start = match &page.start_after {
            Some(after) if after.as_str() >= prefix => std::ops::Bound::Excluded(after.clone()),
            _ => std::ops::Bound::Included(prefix.to_owned()),
        };
        let mut iter = self
            .kvs
            .range::<String, _>((start, std::ops::Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone());
        let mut kvs = Vec::new();
        let mut more = false;
        for kv in iter.by_ref() {
            if page.limit != 0 && kvs.len() == page.limit {
                more = true;
                break;
            }
            kvs.push(kv);
        }
        RangeResponse {
            kvs,
            revision: self.rev,
            more,
        }
    }

    fn check(&self, key: &str, pre: Precondition) -> Result<(), StoreError> {
        let current = self.kvs.get(key).map(|kv| kv.mod_revision);
        let ok = match pre {
            Precondition::None => true,
            Precondition::MustNotExist => current.is_none(),
            Precondition::ModRevision(r) => current == Some(r),
        };
        if ok {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                key: key.to_owned(),
                current,
            })
        }
    }

    pub(super) fn put(
        &mut self,
        key: &str,
        value: Bytes,
        pre: Precondition,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        self.check(key, pre)?;
        if let Some(l) = lease
            && !self.leases.contains_key(&l.0)
        {
            return Err(StoreError::LeaseNotFound { lease: l });
        }
        let rev = self.rev + 1;
        self.apply_put(rev, key, value, lease);
        self.rev = rev;
        self.trim_history();
        Ok(rev)
    }

    /// Writes without checks (also used by persistence replay).
    pub(super) fn apply_put(
        &mut self,
        rev: Revision,
        key: &str,
        value: Bytes,
        lease: Option<LeaseId>,
    ) {
        let prev = self.kvs.get(key).cloned();
        if let Some(old) = prev.as_ref().and_then(|p| p.lease)
            && Some(old) != lease
            && let Some(l) = self.leases.get_mut(&old.0)
        {
            l.keys.remove(key);
        }
        if let Some(l) = lease.and_then(|l| self.leases.get_mut(&l.0)) {
            l.keys.insert(key.to_owned());
        }
        let kv = KeyValue {
            key: key.to_owned(),
            value: value.clone(),
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease,
        };
        self.kvs.insert(key.to_owned(), kv.clone());
        self.pending.push(Mutation::Put {
            rev,
            key: key.to_owned(),
            value,
            lease,
        });
        self.emit(WatchEvent {
            kind: WatchEventKind::Put,
            kv,
            prev,
            revision: rev,
        });
    }

    pub(super) fn delete(&mut self, key: &str, pre: Precondition) -> Result<Revision, StoreError> {
        if !self.kvs.contains_key(key) {
            return match pre {
                Precondition::ModRevision(_) => Err(StoreError::Conflict {
                    key: key.to_owned(),
                    current: None,
                }),
                _ => Err(StoreError::NotFound {
                    key: key.to_owned(),
                }),
            };
        }
        if pre == Precondition::MustNotExist {
            return Err(StoreError::Conflict {
                key: key.to_owned(),
                current: self.kvs.get(key).map(|kv| kv.mod_revision),
            });
        }
        self.check(key, pre)?;
        let rev = self.rev + 1;
        self.apply_delete(rev, &[key.to_owned()]);
        self.rev = rev;
        self.trim_history();
        Ok(rev)
    }

    /// Deletes keys at one revision without checks.
    pub(super) fn apply_delete(&mut self, rev: Revision, keys: &[String]) {
        for key in keys {
            let Some(prev) = self.kvs.remove(key) else {
                continue;
            };
            if let Some(l) = prev.lease.and_then(|l| self.leases.get_mut(&l.0)) {
                l.keys.remove(key);
            }
            self.emit(WatchEvent {
                kind: WatchEventKind::Delete,
                kv: KeyValue {
                    key: key.clone(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: rev,
                    version: 0,
                    lease: None,
                },
                prev: Some(prev),
                revision: rev,
            });
        }
        self.pending.push(Mutation::Delete {
            rev,
            keys: keys.to_vec(),
        });
    }

    pub(super) fn grant(&mut self, ttl: Duration, now: Instant) -> LeaseId {
        let id = LeaseId(self.next_lease);
        self.next_lease += 1;
        self.apply_grant(id, ttl, now);
        id
    }

    pub(super) fn apply_grant(&mut self, id: LeaseId, ttl: Duration, now: Instant) {
        self.next_lease = self.next_lease.max(id.0 + 1);
        self.leases.insert(
            id.0,
            Lease {
                ttl,
                deadline: now + ttl,
                keys: BTreeSet::new(),
            },
        );
        self.pending.push(Mutation::Grant { id, ttl });
    }

    pub(super) fn keep_alive(&mut self, id: LeaseId, now: Instant) -> Result<Duration, StoreError> {
        let l = self
            .leases
            .get_mut(&id.0)
            .ok_or(StoreError::LeaseNotFound { lease: id })?;
        l.deadline = now + l.ttl;
        Ok(l.ttl)
    }

    pub(super) fn revoke(&mut self, id: LeaseId) -> Result<(), StoreError> {
        let l = self
            .leases
            .remove(&id.0)
            .ok_or(StoreError::LeaseNotFound { lease: id })?;
        self.pending.push(Mutation::Revoke { id });
        if !l.keys.is_empty() {
            let rev = self.rev + 1;
            let keys: Vec<String> = l.keys.into_iter().collect();
            self.apply_delete(rev, &keys);
            self.rev = rev;
            self.trim_history();
        }
        Ok(())
    }

    /// Revokes every lease whose deadline passed.
    pub(super) fn expire(&mut self, now: Instant) {
        let mut expired: Vec<i64> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        expired.sort_unstable();
        for id in expired {
            // The lease exists: it was just listed.
            let _ = self.revoke(LeaseId(id));
        }
    }

    pub(super) fn compact(&mut self, rev: Revision) -> Result<(), StoreError> {
        if rev > self.rev {
            return Err(StoreError::InvalidArgument {
                message: format!(
                    "cannot compact to future revision {rev} (current {})",
                    self.rev
                ),
            });
        }
        if rev <= self.compact_rev {
            return Err(StoreError::Compacted {
                requested: rev,
                compact_revision: self.compact_rev,
            });
        }
        self.apply_compact(rev);
        Ok(())
    }

    pub(super) fn apply_compact(&mut self, rev: Revision) {
        while self.history.front().is_some_and(|e| e.revision < rev) {
            self.history.pop_front();
        }
        self.compact_rev = self.compact_rev.max(rev);
    }

    /// Keeps at most `history_limit` events, dropping whole revisions.
    fn trim_history(&mut self) {
        while self.history.len() > self.history_limit {
            let Some(oldest) = self.history.front().map(|e| e.revision) else {
                break;
            };
            self.apply_compact(oldest + 1);
        }
    }

    /// Registers a watcher after replaying history from `start` (0 = from
    /// the next revision). Both happen under the caller's lock, so no event
    /// is lost or duplicated between replay and live delivery.
    pub(super) fn watch(
        &mut self,
        prefix: &str,
        start: Revision,
        tx: UnboundedSender<Result<WatchEvent, StoreError>>,
    ) {
        let start = if start == 0 { self.rev + 1 } else { start };
        if start < self.compact_rev {
            let _ = tx.send(Err(StoreError::Compacted {
                requested: start,
                compact_revision: self.compact_rev,
            }));
            return;
        }
        for e in self
            .history
            .iter()
            .filter(|e| e.revision >= start && e.kv.key.starts_with(prefix))
        {
            if tx.send(Ok(e.clone())).is_err() {
                return;
            }
        }
        self.watchers.push(Watcher {
            prefix: prefix.to_owned(),
            start,
            tx,
        });
    }

    fn emit(&mut self, event: WatchEvent) {
        self.watchers.retain(|w| {
            if event.revision < w.start || !event.kv.key.starts_with(&w.prefix) {
                return !w.tx.is_closed();
            }
            w.tx.send(Ok(event.clone())).is_ok()
        });
        self.history.push_back(event);
    }

    /// Ends every watch stream with an error (store shutting down).
    pub(super) fn close_watchers(&mut self, reason: &str) {
        for w in self.watchers.drain(..) {
            let _ = w.tx.send(Err(StoreError::unavailable(reason)));
        }
    }

    /// Sets the revision after a restore; history before it is gone.
    pub(super) fn restore_revision(&mut self, rev: Revision) {
        self.rev = rev;
        self.history.clear();
        self.compact_rev = self.compact_rev.max(rev + 1);
    }
}
