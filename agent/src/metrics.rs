//! Metrics of the cluster agent (prefix `causeway_agent_`, listed in
//! `docs/metrics.md`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of federation API calls made by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CallLabels {
    /// `register`, `heartbeat`, `bundle_publish`, `export_put`, `export_delete`.
    pub call: &'static str,
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Labels of a placement change applied from the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct PlacementLabels {
    /// `jurisdictions` or `region`.
    pub field: &'static str,
}

/// Every metric of the agent.
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    /// Revision of the last catalog applied from the watch (or loaded from disk).
    pub catalog_revision: Gauge,
    /// Seconds since the catalog was last known to be in sync with the API
    /// (0 while the watch is connected).
    pub catalog_staleness: Gauge<f64, AtomicU64>,
    /// Watch (re)connect attempts after a failure or a stream end.
    pub watch_reconnects: Counter,
    /// Relists after a compacted revision (OUT_OF_RANGE).
    pub watch_relists: Counter,
    /// Time to apply a catalog change (build the routing snapshot and swap it in).
    pub apply_latency: Histogram,
    /// Federation API calls by kind and result.
    pub api_calls: Family<CallLabels, Counter>,
    /// Sequence of the own trust bundle last published.
    pub bundle_sequence: Gauge,
    /// Static discovery file reloads rejected (previous good state kept).
    pub static_file_errors: Counter,
    /// Changes of a cluster's jurisdictions or region applied from the
    /// catalog (residency decisions follow them; each is also logged).
    pub placement_changes: Family<PlacementLabels, Counter>,
}

impl AgentMetrics {
    /// Creates and registers every metric under the `causeway_agent` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("causeway_agent");
        let m = Self {
            catalog_revision: Gauge::default(),
            catalog_staleness: Gauge::default(),
            watch_reconnects: Counter::default(),
            watch_relists: Counter::default(),
            apply_latency: Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            api_calls: Family::default(),
            bundle_sequence: Gauge::default(),
            static_file_errors: Counter::default(),
            placement_changes: Family::default(),
        };
        for field in ["jurisdictions", "region"] {
            let _ = m
                .placement_changes
                .get_or_create(&PlacementLabels { field });
        }
        // Every call and result at 0: an alert on errors sees a series from
        // the start, and the family is listed before the first call.
        for call in [
            "register",
            "heartbeat",
            "bundle_publish",
            "export_put",
            "export_delete",
        ] {
            for result in ["ok", "error"] {
                let _ = m.api_calls.get_or_create(&CallLabels { call, result });
            }
        }
        r.register(
            "catalog_revision",
            "Revision of the last catalog applied from the federation watch",
            m.catalog_revision.clone(),
        );
        r.register(
            "catalog_staleness_seconds",
            "Seconds since the catalog was last known in sync with the federation API",
            m.catalog_staleness.clone(),
        );
        r.register(
            "watch_reconnects",
            "Federation watch reconnect attempts",
            m.watch_reconnects.clone(),
        );
        r.register(
            "watch_relists",
            "Federation watch relists after a compacted revision",
            m.watch_relists.clone(),
        );
        r.register(
            "catalog_apply_seconds",
            "Time to apply a catalog change to the routing state",
            m.apply_latency.clone(),
        );
        r.register(
            "api_calls",
            "Federation API calls made by the agent",
            m.api_calls.clone(),
        );
        r.register(
            "bundle_sequence",
            "Sequence of the own trust bundle last published",
            m.bundle_sequence.clone(),
        );
        r.register(
            "static_file_errors",
            "Static discovery file reloads rejected",
            m.static_file_errors.clone(),
        );
        r.register(
            "placement_changes",
            "Changes of a cluster's jurisdictions or region applied from the catalog",
            m.placement_changes.clone(),
        );
        m
    }

    /// A set registered in a throw-away registry (tests, tools).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    /// Counts one API call.
    pub fn call(&self, call: &'static str, ok: bool) {
        self.api_calls
            .get_or_create(&CallLabels {
                call,
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }
}
