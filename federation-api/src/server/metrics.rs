//! Prometheus metrics of the federation API (prefix `causeway_federation`).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route template, e.g. `/v1/clusters/{cluster}`; `unmatched` otherwise.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Status code.
    pub status: u16,
}

/// Labels of a latency histogram (no status, to bound the series).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route template.
    pub route: String,
    /// HTTP method.
    pub method: String,
}

/// The store operations timed by [`Metrics::store_op`].
pub const STORE_OPS: [&str; 6] = ["get", "range", "put", "delete", "lease", "watch"];

/// Labels of a store metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    /// `get`, `range`, `put`, `delete`, `lease`, `watch`.
    pub op: &'static str,
}

/// Labels of the open-watch gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// `ndjson`, `grpc` or `console` (the web console's event streams).
    pub protocol: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// All metrics of the server.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests by route, method and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by route and method.
    pub request_duration: Family<RouteLabels, Histogram>,
    /// Open watch streams by protocol.
    pub watch_streams: Family<WatchLabels, Gauge>,
    /// Store operation latency by operation.
    pub store_duration: Family<StoreLabels, Histogram>,
    /// Store operation failures (not 4xx outcomes such as not-found).
    pub store_errors: Family<StoreLabels, Counter>,
}

impl Metrics {
    /// Registers the metrics under `causeway_federation`, and
    /// `causeway_build_info`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            watch_streams: Family::default(),
            store_duration: Family::new_with_constructor(latency_histogram),
            store_errors: Family::default(),
        };
        registry.register(
            "causeway_build",
            "The running build: version and commit labels, value 1",
            prometheus_client::metrics::info::Info::new(
                causeway_api::wire::VersionInfo::this_build().labels(),
            ),
        );
        // Bounded labels start at 0: "no watch open" and "no store error"
        // are series of their own, not missing ones.
        for protocol in ["ndjson", "grpc", "console"] {
            let _ = m.watch_streams.get_or_create(&WatchLabels { protocol });
        }
        for op in STORE_OPS {
            let _ = m.store_errors.get_or_create(&StoreLabels { op });
        }
        let r = registry.sub_registry_with_prefix("causeway_federation");
        r.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template and method",
            m.request_duration.clone(),
        );
        r.register(
            "watch_streams",
            "Open watch streams by protocol",
            m.watch_streams.clone(),
        );
        r.register(
            "store_operation_duration_seconds",
            "Store operation latency by operation",
            m.store_duration.clone(),
        );
        r.register(
            "store_errors",
            "Store operation failures by operation",
            m.store_errors.clone(),
        );
        m
    }

    /// Records one store operation.
    pub fn store_op(&self, op: &'static str, took: Duration, ok: bool) {
        self.store_duration
            .get_or_create(&StoreLabels { op })
            .observe(took.as_secs_f64());
        if !ok {
            self.store_errors.get_or_create(&StoreLabels { op }).inc();
        }
    }

    /// A guard that counts one open watch stream until dropped.
    pub fn watch_guard(&self, protocol: &'static str) -> WatchGuard {
        let g = self
            .watch_streams
            .get_or_create(&WatchLabels { protocol })
            .clone();
        g.inc();
        WatchGuard(g)
    }
}

/// Decrements the open-watch gauge when dropped.
#[derive(Debug)]
pub struct WatchGuard(Gauge);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
