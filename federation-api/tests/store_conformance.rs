//! One conformance suite for every [`Store`] implementation: each case runs
//! against the in-process `MemoryStore` and against `EtcdStore` on a real
//! etcd started by the `testing` harness (one shared etcd per test binary,
//! a unique key prefix per test; the compaction case gets its own etcd since
//! compaction is global).

#![allow(clippy::unwrap_used)]

#[path = "store_conformance/cases.rs"]
mod cases;

use std::sync::Arc;

use causeway_federation::store::{EtcdStore, EtcdStoreConfig, MemoryStore};
use causeway_federation::testing::EtcdProcess;

/// A key prefix unique to one test run of one case.
fn prefix(case: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("/conformance/{case}/{nanos}/")
}

async fn etcd_store(private: bool) -> anyhow::Result<(Arc<EtcdProcess>, EtcdStore)> {
    let etcd = if private {
        Arc::new(EtcdProcess::start().await?)
    } else {
        EtcdProcess::shared().await?
    };
    let config = EtcdStoreConfig {
        endpoints: etcd.endpoints(),
        ..EtcdStoreConfig::default()
    };
    let store = EtcdStore::connect(&config).await?;
    Ok((etcd, store))
}

macro_rules! conformance {
    (shared: [$($case:ident),* $(,)?], private: [$($pcase:ident),* $(,)?] $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() -> anyhow::Result<()> {
                    let store = super::MemoryStore::new();
                    super::cases::$case(&store, &super::prefix(stringify!($case))).await
                }
            )*
            $(
                #[tokio::test]
                async fn $pcase() -> anyhow::Result<()> {
                    let store = super::MemoryStore::new();
                    super::cases::$pcase(&store, &super::prefix(stringify!($pcase))).await
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() -> anyhow::Result<()> {
                    let (_etcd, store) = super::etcd_store(false).await?;
                    super::cases::$case(&store, &super::prefix(stringify!($case))).await
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $pcase() -> anyhow::Result<()> {
                    let (_etcd, store) = super::etcd_store(true).await?;
                    super::cases::$pcase(&store, &super::prefix(stringify!($pcase))).await
                }
            )*
        }
    };
}

conformance!(
    shared: [
        put_get_versions,
        precondition_must_not_exist,
        precondition_mod_revision,
        pagination,
        delete_semantics,
        lease_expiry_deletes_keys,
        lease_revoke_and_unknown_lease,
        revisions_monotonic,
        watch_replays_missed_events_then_live,
        watch_from_now_sees_only_new_events,
        watch_prefix_isolation,
        concurrent_writers_lose_no_update,
    ],
    private: [watch_from_compacted_revision],
);
