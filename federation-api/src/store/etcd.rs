//! The etcd-backed store: conditional writes are etcd transactions comparing
//! `mod_revision` (never etcd locks), leases are etcd leases, and watches are
//! etcd watches from a start revision, with etcd's compaction cancel mapped
//! to [`StoreError::Compacted`].
//!
//! Requests go to one pinned member and fail over to the next when it is
//! unreachable (see [`endpoints`](self) below); a request that provably never
//! reached etcd is retried on the next member, others return their error.

mod config;
mod convert;
mod endpoints;

pub use config::{EtcdStoreConfig, EtcdTls};

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, EventType, GetOptions,
    PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};

use self::convert::{map_err, prefix_end};
use self::endpoints::Endpoints;
use super::{
    KeyValue, LeaseId, Page, Precondition, RangeResponse, Revision, Store, StoreError, WatchEvent,
    WatchEventKind, WatchStream,
};

/// A [`Store`] backed by etcd v3. Cloning shares the connections.
#[derive(Clone)]
pub struct EtcdStore {
    endpoints: Arc<Endpoints>,
    namespace: String,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("namespace", &self.namespace)
            .field("members", &self.endpoints.len())
            .finish_non_exhaustive()
    }
}

impl EtcdStore {
    /// Connects to etcd: builds one client per endpoint and checks that at
    /// least one member answers.
    ///
    /// Errors: [`StoreError::InvalidArgument`] for unreadable TLS files or an
    /// empty endpoint list, [`StoreError::Unavailable`] when no member can be
    /// reached within the connect timeout, and the authentication error when
    /// the credentials are refused.
    pub async fn connect(config: &EtcdStoreConfig) -> Result<Self, StoreError> {
        if config.endpoints.is_empty() {
            return Err(StoreError::InvalidArgument {
                message: "no etcd endpoints configured".to_owned(),
            });
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(config.connect_timeout)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_require_leader(true);
        if let (Some(user), Some(password)) = (&config.user, &config.password) {
            opts = opts.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &config.tls {
            opts = opts.with_tls(convert::tls_options(tls)?);
        }
        let store = Self {
            endpoints: Arc::new(Endpoints::new(
                config.endpoints.clone(),
                opts,
                config.connect_timeout,
                config.request_timeout,
            )),
            namespace: config.namespace.clone(),
        };
        store.current_revision().await?;
        Ok(store)
    }

    /// The client of the current member (for maintenance tasks such as
    /// status or auth setup).
    pub async fn client(&self) -> Result<Client, StoreError> {
        self.endpoints.client(self.endpoints.current()).await
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.namespace)
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> KeyValue {
        convert::key_value(kv, &self.namespace)
    }
}

fn header_rev(h: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    h.map(|h| convert::rev(h.revision()))
        .ok_or_else(|| StoreError::internal("etcd response without header"))
}

fn i64_rev(r: Revision) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let full = self.full(key);
        let resp = self
            .endpoints
            .run(None, |c| {
                let full = full.clone();
                async move { c.kv_client().get(full, None).await }
            })
            .await?;
        Ok(resp.kvs().first().map(|kv| self.kv(kv)))
    }

    async fn range(&self, prefix: &str, page: Page) -> Result<RangeResponse, StoreError> {
        let full_prefix = self.full(prefix);
        let start = match &page.start_after {
            Some(after) if after.as_str() >= prefix => {
                let mut k = self.full(after).into_bytes();
                k.push(0);
                k
            }
            _ => full_prefix.clone().into_bytes(),
        };
        let mut opts = GetOptions::new().with_range(prefix_end(full_prefix.as_bytes()));
        if page.limit > 0 {
            opts = opts.with_limit(i64::try_from(page.limit).unwrap_or(i64::MAX));
        }
        let resp = self
            .endpoints
            .run(None, |c| {
                let (start, opts) = (start.clone(), opts.clone());
                async move { c.kv_client().get(start, Some(opts)).await }
            })
            .await?;
        Ok(RangeResponse {
            kvs: resp.kvs().iter().map(|kv| self.kv(kv)).collect(),
            revision: header_rev(resp.header())?,
            more: resp.more(),
        })
    }

    async fn put(
        &self,
        key: &str,
        value: Bytes,
        precondition: Precondition,
        lease: Option<LeaseId>,
    ) -> Result<Revision, StoreError> {
        let full = self.full(key);
        let opts = lease.map(|l| PutOptions::new().with_lease(l.0));
        let compare = match precondition {
            Precondition::None => {
                let resp = self
                    .endpoints
                    .run_write(lease, |c| {
                        let (full, value, opts) = (full.clone(), value.to_vec(), opts.clone());
                        async move { c.kv_client().put(full, value, opts).await }
                    })
                    .await?;
                return header_rev(resp.header());
            }
            Precondition::MustNotExist => Compare::version(full.clone(), CompareOp::Equal, 0),
            Precondition::ModRevision(r) => {
                Compare::mod_revision(full.clone(), CompareOp::Equal, i64_rev(r))
            }
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::put(full.clone(), value.to_vec(), opts)])
            .or_else([TxnOp::get(full, None)]);
        let resp = self
            .endpoints
            .run_write(lease, |c| {
                let txn = txn.clone();
                async move { c.kv_client().txn(txn).await }
            })
            .await?;
        if resp.succeeded() {
            return header_rev(resp.header());
        }
        Err(StoreError::Conflict {
            key: key.to_owned(),
            current: current_from(&resp.op_responses()),
        })
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<Revision, StoreError> {
        let full = self.full(key);
        let compare = match precondition {
            Precondition::MustNotExist => {
                // Nothing is written either way, so a plain read decides.
                return match self.get(key).await? {
                    Some(kv) => Err(StoreError::Conflict {
                        key: key.to_owned(),
                        current: Some(kv.mod_revision),
                    }),
                    None => Err(StoreError::NotFound {
                        key: key.to_owned(),
                    }),
                };
            }
            Precondition::None => Compare::version(full.clone(), CompareOp::Greater, 0),
            Precondition::ModRevision(r) => {
                Compare::mod_revision(full.clone(), CompareOp::Equal, i64_rev(r))
            }
        };
        let txn = Txn::new()
            .when([compare])
            .and_then([TxnOp::delete(full.clone(), None)])
            .or_else([TxnOp::get(full, None)]);
        let resp = self
            .endpoints
            .run_write(None, |c| {
                let txn = txn.clone();
                async move { c.kv_client().txn(txn).await }
            })
            .await?;
        if resp.succeeded() {
            return header_rev(resp.header());
        }
        if precondition == Precondition::None {
            Err(StoreError::NotFound {
                key: key.to_owned(),
            })
        } else {
            Err(StoreError::Conflict {
                key: key.to_owned(),
                current: current_from(&resp.op_responses()),
            })
        }
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        if ttl.is_zero() {
            return Err(StoreError::InvalidArgument {
                message: "lease ttl must be positive".to_owned(),
            });
        }
        let secs =
            i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX);
        let resp = self
            .endpoints
            .run(
                None,
                |c| async move { c.lease_client().grant(secs, None).await },
            )
            .await?;
        Ok(LeaseId(resp.id()))
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration, StoreError> {
        let resp = self
            .endpoints
            .run(Some(lease), |c| async move {
                let (mut keeper, mut stream) = c.lease_client().keep_alive(lease.0).await?;
                keeper.keep_alive().await?;
                stream.message().await
            })
            .await?;
        match resp {
            Some(r) if r.ttl() > 0 => Ok(Duration::from_secs(u64::try_from(r.ttl()).unwrap_or(0))),
            Some(_) => Err(StoreError::LeaseNotFound { lease }),
            None => Err(StoreError::unavailable("etcd keep-alive stream closed")),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.endpoints
            .run(Some(lease), |c| async move {
                c.lease_client().revoke(lease.0).await
            })
            .await?;
        Ok(())
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let key = if self.namespace.is_empty() {
            "/".to_owned()
        } else {
            self.namespace.clone()
        };
        let resp = self
            .endpoints
            .run(None, |c| {
                let key = key.clone();
                async move {
                    c.kv_client()
                        .get(key, Some(GetOptions::new().with_count_only()))
                        .await
                }
            })
            .await?;
        header_rev(resp.header())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        let rev = i64_rev(revision);
        let result = self
            .endpoints
            .run(None, |c| async move {
                c.kv_client()
                    .compact(rev, Some(CompactionOptions::new().with_physical()))
                    .await
            })
            .await;
        match result {
            Ok(_) => Ok(()),
            // etcd does not say where the compaction point is; it is at least
            // the requested revision.
            Err(StoreError::Compacted { .. }) => Err(StoreError::Compacted {
                requested: revision,
                compact_revision: revision,
            }),
            Err(e) => Err(e),
        }
    }

    async fn watch(
        &self,
        prefix: &str,
        start_revision: Revision,
    ) -> Result<WatchStream, StoreError> {
        let full_prefix = self.full(prefix);
        let mut opts = WatchOptions::new()
            .with_range(prefix_end(full_prefix.as_bytes()))
            .with_prev_key();
        if start_revision > 0 {
            opts = opts.with_start_revision(i64_rev(start_revision));
        }
        let member = self.endpoints.current();
        let stream = self
            .endpoints
            .run(None, |c| {
                let (key, opts) = (full_prefix.clone(), opts.clone());
                async move { c.watch_client().watch(key, Some(opts)).await }
            })
            .await?;
        let state = WatchState {
            stream,
            buffered: VecDeque::new(),
            done: false,
            namespace: self.namespace.clone(),
            start_revision,
            endpoints: Arc::clone(&self.endpoints),
            member,
        };
        Ok(Box::pin(futures::stream::unfold(state, next_event)))
    }
}

struct WatchState {
    stream: etcd_client::WatchStream,
    buffered: VecDeque<WatchEvent>,
    done: bool,
    namespace: String,
    start_revision: Revision,
    endpoints: Arc<Endpoints>,
    member: usize,
}

impl WatchState {
    /// Ends the stream with `err`; a broken member is left for the next
    /// request.
    fn end(mut self, err: StoreError) -> Option<(Result<WatchEvent, StoreError>, Self)> {
        self.done = true;
        if err.is_retryable() {
            self.endpoints.fail(self.member);
        }
        Some((Err(err), self))
    }
}

async fn next_event(mut st: WatchState) -> Option<(Result<WatchEvent, StoreError>, WatchState)> {
    loop {
        if let Some(e) = st.buffered.pop_front() {
            return Some((Ok(e), st));
        }
        if st.done {
            return None;
        }
        let msg = match st.stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => return st.end(StoreError::unavailable("etcd watch stream ended")),
            Err(e) => return st.end(map_err(e, None)),
        };
        if msg.compact_revision() > 0 {
            let err = StoreError::Compacted {
                requested: st.start_revision,
                compact_revision: convert::rev(msg.compact_revision()),
            };
            return st.end(err);
        }
        if msg.canceled() {
            let err =
                StoreError::unavailable(format!("etcd watch cancelled: {}", msg.cancel_reason()));
            return st.end(err);
        }
        for ev in msg.events() {
            let Some(kv) = ev.kv() else {
                continue;
            };
            let kv = convert::key_value(kv, &st.namespace);
            let kind = match ev.event_type() {
                EventType::Put => WatchEventKind::Put,
                EventType::Delete => WatchEventKind::Delete,
            };
            st.buffered.push_back(WatchEvent {
                kind,
                revision: kv.mod_revision,
                prev: ev.prev_kv().map(|p| convert::key_value(p, &st.namespace)),
                kv,
            });
        }
    }
}

/// The current mod revision from the `or_else` get of a failed transaction.
fn current_from(ops: &[TxnOpResponse]) -> Option<Revision> {
    ops.iter().find_map(|op| match op {
        TxnOpResponse::Get(g) => g.kvs().first().map(|kv| convert::rev(kv.mod_revision())),
        _ => None,
    })
}
