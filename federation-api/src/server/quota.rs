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
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
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

/// Credentials one replica tracks before it forgets those whose rate state
/// is back to a fresh one.
const MAX_TRACKED_CREDENTIALS: usize = 10_000;

/// The quota state of one server replica.
pub(crate) struct Quotas {
    config: QuotaConfig,
    usage: Mutex<HashMap<ClusterId, Arc<tokio::sync::Mutex<Option<Usage>>>>>,
    /// Write rate per credential: governor's GCRA, the token bucket of
    /// `writes_per_second` refilling a burst of `write_burst`; None when
    /// unlimited.
    writes: Option<DefaultKeyedRateLimiter<String>>,
}

impl std::fmt::Debug for Quotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotas")
            .field("config", &self.config)
            .field(
                "tracked_credentials",
                &self.writes.as_ref().map(|w| w.len()),
            )
            .finish_non_exhaustive()
    }
}

impl Default for Quotas {
    fn default() -> Self {
        Self::new(QuotaConfig::default())
    }
}

impl Quotas {
    pub(crate) fn new(config: QuotaConfig) -> Self {
        let writes = NonZeroU32::new(config.writes_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.write_burst).unwrap_or(NonZeroU32::MIN);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            config,
            usage: Mutex::default(),
            writes,
        }
    }

    /// Takes one write from `credential`'s bucket; 429 when empty.
    pub(crate) fn admit_write(&self, credential: &str) -> Result<(), ApiError> {
        let Some(writes) = &self.writes else {
            return Ok(());
        };
        if writes.len() > MAX_TRACKED_CREDENTIALS {
            // A full bucket carries no state a fresh one would not.
            writes.retain_recent();
        }
        let Err(not_until) = writes.check_key(&credential.to_owned()) else {
            return Ok(());
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        Err(ApiError::quota_exceeded(
            format!(
                "write rate of {credential} exceeds {} per second (burst {}); retry later",
                self.config.writes_per_second, self.config.write_burst
            ),
            "Authorization",
            wait.as_secs_f64().ceil().max(1.0) as u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse;

    fn quotas(writes_per_second: u32, write_burst: u32) -> Quotas {
        Quotas::new(QuotaConfig {
            writes_per_second,
            write_burst,
            ..QuotaConfig::default()
        })
    }

    /// The `Retry-After` seconds of a refusal.
    fn retry_after(result: Result<(), ApiError>) -> u64 {
        let resp = result.expect_err("refused").into_response();
        assert_eq!(resp.status(), axum::http::StatusCode::TOO_MANY_REQUESTS);
        resp.headers()[axum::http::header::RETRY_AFTER]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("whole seconds")
    }

    /// A burst of `write_burst`, then refusals that say to come back after
    /// the next write refills (whole seconds, at least 1), per credential.
    #[test]
    fn write_rate_admits_the_burst_then_refuses_with_retry_after() {
        let q = quotas(1, 3);
        for _ in 0..3 {
            assert!(q.admit_write("cluster:eu-1").is_ok());
        }
        assert_eq!(retry_after(q.admit_write("cluster:eu-1")), 1);
        assert!(q.admit_write("cluster:us-1").is_ok(), "another credential");

        // 4 per second: a 250 ms wait is announced as 1 s, never 0.
        let fast = quotas(4, 1);
        assert!(fast.admit_write("a").is_ok());
        assert_eq!(retry_after(fast.admit_write("a")), 1);

        // A zero burst still admits one write; zero rate is unlimited.
        let q = quotas(2, 0);
        assert!(q.admit_write("a").is_ok());
        assert!(q.admit_write("a").is_err());
        let unlimited = quotas(0, 0);
        for _ in 0..10_000 {
            assert!(unlimited.admit_write("a").is_ok());
        }
    }

    /// The sustained rate refills: after the burst, one write per 1/rate.
    #[test]
    fn write_rate_refills_at_the_sustained_rate() {
        let q = quotas(10, 2);
        assert!(q.admit_write("a").is_ok());
        assert!(q.admit_write("a").is_ok());
        assert!(q.admit_write("a").is_err());
        std::thread::sleep(Duration::from_millis(130));
        assert!(
            q.admit_write("a").is_ok(),
            "one write refilled after 100 ms"
        );
        assert!(q.admit_write("a").is_err());
    }

    /// The map of credentials stays bounded: idle (refilled) ones are
    /// forgotten past the limit.
    #[test]
    fn tracked_credentials_stay_bounded() {
        let q = quotas(1000, 1);
        for i in 0..MAX_TRACKED_CREDENTIALS + 1 {
            assert!(q.admit_write(&format!("c{i}")).is_ok());
        }
        std::thread::sleep(Duration::from_millis(5));
        assert!(q.admit_write("last").is_ok());
        let tracked = q.writes.as_ref().map(|w| w.len()).unwrap_or_default();
        assert!(tracked < 10, "{tracked} credentials tracked");
    }
}
