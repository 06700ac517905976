//! Per-cluster catalog quotas (SECURITY.md F13): how many exports a member
//! cluster may hold and how many bytes they may take, and how fast a
//! cluster credential may write. Every gateway receives every export, so one
//! member must not be able to flood the catalog. Past a limit the API
//! answers 429 `quota-exceeded` with `Retry-After`. Admin credentials are
//! not limited.
//!
//! Usage is counted from the store and cached per replica: a cluster's
//! usage is recounted when older than [`RECOUNT_AFTER`], and creates of one
//! cluster are serialized within a replica, so a replica never overshoots;
//! several replicas may overshoot by at most their concurrent creates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::catalog::Catalog;
use super::error::ApiError;
use causeway_api::model::ClusterId;

/// How long a counted usage is trusted before a recount.
const RECOUNT_AFTER: Duration = Duration::from_secs(10);

/// The limits (config `quota`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct QuotaConfig {
    /// Most exports one cluster may hold (0: unlimited).
    pub max_exports_per_cluster: usize,
    /// Most bytes (stored JSON) the exports of one cluster may take
    /// (0: unlimited).
    pub max_export_bytes_per_cluster: usize,
    /// Sustained writes per second of one cluster credential (0: unlimited).
    pub writes_per_second: u32,
    /// Writes a cluster credential may burst above the sustained rate.
    pub write_burst: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            max_exports_per_cluster: 2000,
            max_export_bytes_per_cluster: 16 * 1024 * 1024,
            writes_per_second: 50,
            write_burst: 500,
        }
    }
}

/// What one cluster's exports take.
#[derive(Debug, Clone, Copy)]
struct Usage {
    exports: usize,
    bytes: usize,
    counted_at: Instant,
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The quota state of one server replica.
#[derive(Debug, Default)]
pub(crate) struct Quotas {
    config: QuotaConfig,
    usage: Mutex<HashMap<ClusterId, Arc<tokio::sync::Mutex<Option<Usage>>>>>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Quotas {
    pub(crate) fn new(config: QuotaConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Takes one write from `credential`'s bucket; 429 when empty.
    pub(crate) fn admit_write(&self, credential: &str) -> Result<(), ApiError> {
        let rate = f64::from(self.config.writes_per_second);
        if rate <= 0.0 {
            return Ok(());
        }
        let burst = f64::from(self.config.write_burst.max(1));
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > 10_000 {
            // Full buckets carry no state: drop them to bound the map.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(credential.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / rate).ceil() as u64;
        Err(ApiError::quota_exceeded(
            format!(
                "write rate of {credential} exceeds {} per second (burst {}); retry later",
                self.config.writes_per_second, self.config.write_burst
            ),
            "Authorization",
            wait,
        ))
    }

    /// Runs `write` (an export create or replace of `cluster` growing its
    /// exports by `added` (0 or 1) and `delta_bytes`) when the cluster's
    /// quota allows it; 429 otherwise. Writes of one cluster are serialized
    /// within this replica while they are checked.
    pub(crate) async fn export_write<T, F>(
        &self,
        cat: &Catalog,
        cluster: &ClusterId,
        added: usize,
        delta_bytes: isize,
        write: F,
    ) -> Result<T, ApiError>
    where
        F: std::future::Future<Output = Result<T, ApiError>>,
    {
        let (max_n, max_b) = (
            self.config.max_exports_per_cluster,
            self.config.max_export_bytes_per_cluster,
        );
        if max_n == 0 && max_b == 0 {
            return write.await;
        }
        let slot = {
            let mut m = self
                .usage
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(m.entry(cluster.clone()).or_default())
        };
        let mut usage = slot.lock().await;
        let current = match *usage {
            Some(u) if u.counted_at.elapsed() < RECOUNT_AFTER => u,
            _ => count(cat, cluster).await?,
        };
        let exports = current.exports + added;
        let bytes = current.bytes.saturating_add_signed(delta_bytes);
        if max_n > 0 && added > 0 && exports > max_n {
            *usage = Some(current);
            return Err(ApiError::quota_exceeded(
                format!(
                    "cluster {cluster} already holds {} exports, the most allowed (quota.maxExportsPerCluster); delete some first",
                    current.exports
                ),
                "metadata.name",
                RECOUNT_AFTER.as_secs(),
            ));
        }
        if max_b > 0 && delta_bytes > 0 && bytes > max_b {
            *usage = Some(current);
            return Err(ApiError::quota_exceeded(
                format!(
                    "the exports of cluster {cluster} would take {bytes} bytes, more than {max_b} (quota.maxExportBytesPerCluster)"
                ),
                "spec",
                RECOUNT_AFTER.as_secs(),
            ));
        }
        let r = write.await;
        *usage = match &r {
            Ok(_) => Some(Usage {
                exports,
                bytes,
                counted_at: current.counted_at,
            }),
            // The write may or may not have happened: count again next time.
            Err(_) => None,
        };
        r
    }

    /// Forgets the cached usage of `cluster` (after a delete).
    pub(crate) fn forget(&self, cluster: &ClusterId) {
        self.usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(cluster);
    }
}

/// Counts the exports of `cluster` and their stored bytes.
async fn count(cat: &Catalog, cluster: &ClusterId) -> Result<Usage, ApiError> {
    let counted_at = Instant::now();
    let r = cat
        .range_raw(&cat.keys().exports(), crate::store::Page::all())
        .await?;
    let mut u = Usage {
        exports: 0,
        bytes: 0,
        counted_at,
    };
    for kv in &r.kvs {
        // Keys end in `/<cluster>` (a DNS label: no `/` inside).
        if kv.key.rsplit('/').next() == Some(cluster.as_str()) {
            u.exports += 1;
            u.bytes += kv.value.len();
        }
    }
    Ok(u)
}
