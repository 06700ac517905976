//! The catalog facade between the HTTP/gRPC edge and the [`Store`]: typed
//! reads and writes with preconditions, server-set metadata, heartbeats and
//! the read-time views (cluster connectivity, export conditions, imports).

mod heartbeat;
mod views;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use causeway_trust::Clock;
use time::OffsetDateTime;

pub use self::views::Liveness;
use super::config::ServerConfig;
use super::error::ApiError;
use super::extract::Preconditions;
use super::metrics::Metrics;
use crate::store::{KeyValue, Page, Precondition, Store, StoreError};
use causeway_api::model::{KeyLayout, Resource, decode_resource};

/// Retries of an operation while the store is unavailable.
const RETRIES: u32 = 3;

/// A resource as stored, with its revision.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The resource, `metadata.resourceVersion` set.
    pub resource: Resource,
    /// The etcd mod revision.
    pub revision: u64,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The items.
    pub items: Vec<Stored>,
    /// The last key of the page when more follow.
    pub next_after: Option<String>,
    /// The store revision of the read.
    pub revision: u64,
}

/// Stops long-running streams at shutdown.
#[derive(Debug, Clone)]
pub(crate) struct ShutdownToken(tokio::sync::watch::Sender<bool>);

impl ShutdownToken {
    /// Signals every stream to end.
    pub(crate) fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once cancelled.
    pub(crate) fn cancelled(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    }
}

/// The catalog over a store.
#[derive(Clone)]
pub struct Catalog {
    store: Arc<dyn Store>,
    keys: KeyLayout,
    metrics: Metrics,
    heartbeat_ttl: Duration,
    stale_after: Option<Duration>,
    clock: Arc<dyn Clock>,
    stop: ShutdownToken,
    /// The shared watch engine (started by the first watch).
    watch_hub: crate::server::watch::HubSlot,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("prefix", &self.keys.prefix())
            .finish_non_exhaustive()
    }
}

/// Maps a store error to the API edge.
pub(crate) fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound { .. } | StoreError::LeaseNotFound { .. } => {
            ApiError::not_found("resource")
        }
        StoreError::Compacted {
            requested,
            compact_revision,
        } => ApiError::compacted(requested as i64, compact_revision as i64),
        StoreError::Conflict { .. } => {
            ApiError::conflict("metadata.resourceVersion", "concurrent modification; retry")
        }
        e @ StoreError::Unavailable { .. } => ApiError::unavailable(&e),
        e @ StoreError::OutcomeUnknown { .. } => ApiError::outcome_unknown(&e),
        e => ApiError::internal(&e),
    }
}

pub(crate) fn check(pre: Preconditions, current: Option<&KeyValue>) -> Result<(), ApiError> {
    match (pre, current) {
        (Preconditions::None, _) => Ok(()),
        (Preconditions::MustNotExist, Some(kv)) => Err(ApiError::precondition_failed(
            "If-None-Match",
            format!(
                "resource already exists (resourceVersion {})",
                kv.mod_revision
            ),
        )),
        (Preconditions::MustNotExist, None) => Ok(()),
        (Preconditions::MustExist, None) | (Preconditions::Revision(_), None) => Err(
            ApiError::precondition_failed("If-Match", "resource does not exist"),
        ),
        (Preconditions::MustExist, Some(_)) => Ok(()),
        (Preconditions::Revision(r), Some(kv)) if kv.mod_revision == r => Ok(()),
        (Preconditions::Revision(r), Some(kv)) => Err(ApiError::precondition_failed(
            "If-Match",
            format!("resourceVersion is {}, not {r}", kv.mod_revision),
        )),
        (Preconditions::NeverMatches, _) => Err(ApiError::precondition_failed(
            "If-Match",
            "expected a strong entity tag \"<resourceVersion>\" or *",
        )),
    }
}

/// Decodes a stored value, setting the revision from the store.
pub(crate) fn decode_stored(kv: &KeyValue) -> Result<Stored, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(&format!("corrupt value at {}: {e}", kv.key)))?;
    let mut resource = decode_resource(value)
        .map_err(|e| ApiError::internal(&format!("corrupt value at {}: {e}", kv.key)))?;
    resource.set_resource_version(Some(kv.mod_revision));
    Ok(Stored {
        resource,
        revision: kv.mod_revision,
    })
}

fn clear_status(r: &mut Resource) {
    match r {
        Resource::Cluster(c) => c.status = None,
        Resource::ServiceExport(e) => e.status = None,
        Resource::ServiceImport(i) => i.status = None,
        _ => {}
    }
}

impl Catalog {
    /// A catalog over `store` with the server's settings.
    pub fn new(store: Arc<dyn Store>, config: &ServerConfig, metrics: Metrics) -> Self {
        let keys = match &config.store.prefix {
            Some(p) => KeyLayout::new(p.clone()),
            None => KeyLayout::default(),
        };
        Self {
            store,
            keys,
            metrics,
            heartbeat_ttl: config.heartbeat_ttl,
            stale_after: config.stale_after,
            clock: Arc::new(causeway_trust::SystemClock),
            stop: ShutdownToken(tokio::sync::watch::channel(false).0),
            watch_hub: Default::default(),
        }
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The key layout.
    pub fn keys(&self) -> &KeyLayout {
        &self.keys
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn shutdown_token(&self) -> ShutdownToken {
        self.stop.clone()
    }

    pub(crate) fn watch_hub(&self) -> &crate::server::watch::HubSlot {
        &self.watch_hub
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Times a store operation and counts its failures.
    pub(crate) async fn timed<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let start = Instant::now();
        let r = f.await;
        let failed = matches!(
            &r,
            Err(StoreError::Unavailable { .. }
                | StoreError::OutcomeUnknown { .. }
                | StoreError::Internal { .. }
                | StoreError::InvalidArgument { .. })
        );
        self.metrics.store_op(op, start.elapsed(), !failed);
        r
    }

    /// Runs an idempotent store operation, retrying briefly while the store
    /// is unavailable (an etcd member down or a leader election).
    pub(crate) async fn retrying<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 0u32;
        loop {
            match self.timed(op, f()).await {
                Err(StoreError::Unavailable { .. }) if attempt < RETRIES => {
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                    attempt += 1;
                }
                r => return r,
            }
        }
    }

    /// Whether the store answers.
    pub async fn ready(&self) -> bool {
        let probe = self.timed("get", self.store.current_revision());
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(_))
        )
    }

    pub(crate) async fn get_raw(&self, key: &str) -> Result<Option<KeyValue>, ApiError> {
        self.timed("get", self.store.get(key))
            .await
            .map_err(store_error)
    }

    /// Reads one resource.
    pub async fn get(&self, key: &str) -> Result<Option<Stored>, ApiError> {
        self.get_raw(key)
            .await?
            .as_ref()
            .map(decode_stored)
            .transpose()
    }

    pub(crate) async fn range_raw(
        &self,
        prefix: &str,
        page: Page,
    ) -> Result<crate::store::RangeResponse, ApiError> {
        self.timed("range", self.store.range(prefix, page))
            .await
            .map_err(store_error)
    }

    /// Lists resources under `prefix`, one page.
    pub async fn list(
        &self,
        prefix: &str,
        limit: usize,
        start_after: Option<String>,
    ) -> Result<Listed, ApiError> {
        let r = self
            .range_raw(prefix, Page::new(limit, start_after))
            .await?;
        let next_after = if r.more {
            r.kvs.last().map(|kv| kv.key.clone())
        } else {
            None
        };
        let items = r
            .kvs
            .iter()
            .map(decode_stored)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Listed {
            items,
            next_after,
            revision: r.revision,
        })
    }

    /// Lists every resource under `prefix`.
    pub async fn list_all(&self, prefix: &str) -> Result<Vec<Stored>, ApiError> {
        Ok(self.list(prefix, 0, None).await?.items)
    }

    /// Creates or replaces a resource. Sets `createdAt` (kept on update) and
    /// drops `status` (a read-time view). `body_revision` is the
    /// `metadata.resourceVersion` of the body, compared like `If-Match`.
    /// Returns the stored resource and whether it was created.
    pub async fn write(
        &self,
        key: &str,
        mut resource: Resource,
        pre: Preconditions,
    ) -> Result<(Stored, bool), ApiError> {
        let body_revision = resource.resource_version();
        clear_status(&mut resource);
        resource.set_resource_version(None);
        for _ in 0..5 {
            let current = self.get_raw(key).await?;
            check(pre, current.as_ref())?;
            if pre == Preconditions::None
                && let Some(r) = body_revision
            {
                match &current {
                    Some(kv) if kv.mod_revision != r => {
                        return Err(ApiError::conflict(
                            "metadata.resourceVersion",
                            format!("resourceVersion is {}, not {r}", kv.mod_revision),
                        ));
                    }
                    None => {
                        return Err(ApiError::conflict(
                            "metadata.resourceVersion",
                            "resource does not exist; omit resourceVersion to create it",
                        ));
                    }
                    _ => {}
                }
            }
            let created_at = match &current {
                Some(kv) => decode_stored(kv)?.resource.created_at(),
                None => None,
            };
            resource.set_created_at(Some(created_at.unwrap_or_else(|| self.now())));
            let bytes = serde_json::to_vec(&resource).map_err(|e| ApiError::internal(&e))?;
            let store_pre = match &current {
                Some(kv) => Precondition::ModRevision(kv.mod_revision),
                None => Precondition::MustNotExist,
            };
            match self
                .timed(
                    "put",
                    self.store
                        .put(key, Bytes::from(bytes.clone()), store_pre, None),
                )
                .await
            {
                Ok(rev) => {
                    resource.set_resource_version(Some(rev));
                    return Ok((
                        Stored {
                            resource,
                            revision: rev,
                        },
                        current.is_none(),
                    ));
                }
                Err(StoreError::Conflict { .. })
                    if pre == Preconditions::None && body_revision.is_none() =>
                {
                    continue;
                }
                Err(StoreError::Conflict { .. }) => {
                    return Err(ApiError::precondition_failed(
                        "If-Match",
                        "resource changed concurrently",
                    ));
                }
                Err(e @ StoreError::OutcomeUnknown { .. }) => {
                    // One read settles it when the write did land.
                    return match self.get_raw(key).await {
                        Ok(Some(kv)) if kv.value.as_ref() == bytes.as_slice() => {
                            resource.set_resource_version(Some(kv.mod_revision));
                            Ok((
                                Stored {
                                    resource,
                                    revision: kv.mod_revision,
                                },
                                current.is_none(),
                            ))
                        }
                        _ => Err(store_error(e)),
                    };
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::conflict(
            "metadata",
            "resource is being modified concurrently; retry",
        ))
    }

    /// Deletes a resource; 404 when absent.
    pub async fn delete(&self, key: &str, what: &str, pre: Preconditions) -> Result<(), ApiError> {
        for _ in 0..5 {
            let Some(current) = self.get_raw(key).await? else {
                return Err(ApiError::not_found(what));
            };
            check(pre, Some(&current))?;
            match self
                .timed(
                    "delete",
                    self.store
                        .delete(key, Precondition::ModRevision(current.mod_revision)),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. } | StoreError::NotFound { .. })
                    if pre == Preconditions::None =>
                {
                    continue;
                }
                Err(StoreError::Conflict { .. }) => {
                    return Err(ApiError::precondition_failed(
                        "If-Match",
                        "resource changed concurrently",
                    ));
                }
                Err(e @ StoreError::OutcomeUnknown { .. }) => {
                    // Gone on a re-read: the delete (or a later one) landed.
                    return match self.get_raw(key).await {
                        Ok(None) => Ok(()),
                        _ => Err(store_error(e)),
                    };
                }
                Err(e) => return Err(store_error(e)),
            }
        }
        Err(ApiError::conflict(
            "metadata",
            "resource is being modified concurrently; retry",
        ))
    }
}
