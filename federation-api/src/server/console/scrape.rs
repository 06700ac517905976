//! What the console learns from the gateways: the API scrapes each
//! configured gateway admin's `/metrics` (at most once per refresh period,
//! however many consoles are open) and keeps the last two samples, so rates
//! are differences between two scrapes. Nothing is stored in etcd and no
//! gateway change is needed: the gateways already export every series the
//! console shows (docs/metrics.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use axum::http::Method;
use causeway_api::client::Client;

/// Longest wait for one gateway's `/metrics` or `/debug/route`.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest `/metrics` body parsed (a gateway's is a few hundred KiB at most).
const MAX_METRICS_BYTES: usize = 8 * 1024 * 1024;

/// One sample line: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

impl Series {
    fn label(&self, k: &str) -> &str {
        self.labels.get(k).map_or("", String::as_str)
    }
}

/// Parses the Prometheus/OpenMetrics text format (samples only; comments,
/// types and malformed lines are skipped).
pub(crate) fn parse_metrics(text: &str) -> Vec<Series> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Series> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => line.split_at(i),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let end;
        loop {
            // label name
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            if let Some((i, '}')) = chars.peek().copied() {
                end = i;
                break;
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, '"') => break,
                    (_, c) => value.push(c),
                }
            }
            labels.insert(key.trim().to_owned(), value);
        }
        body.get(end + 1..)?
    } else {
        rest
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Series {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// One scrape of one gateway.
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    series: Vec<Series>,
}

/// What is known about one gateway.
#[derive(Debug, Clone, Default)]
struct GatewayState {
    url: String,
    previous: Option<Sample>,
    current: Option<Sample>,
    error: Option<String>,
}

/// The gateway admins file and the last two scrapes of each gateway.
#[derive(Debug, Default)]
struct State {
    file_stamp: Option<(SystemTime, u64)>,
    file_error: Option<String>,
    gateways: BTreeMap<String, GatewayState>,
    last_scrape: Option<Instant>,
}

/// Scrapes the configured gateway admins, sharing one scrape between
/// every console request of a refresh period.
#[derive(Debug)]
pub(crate) struct Scraper {
    file: Option<PathBuf>,
    refresh: Duration,
    state: tokio::sync::Mutex<State>,
}

/// Traffic from one cluster's gateway to a destination cluster, over the
/// last scrape interval.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Edge {
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) rps: f64,
    /// 5xx answers over all answers (0 when idle).
    pub(crate) error_rate: f64,
    /// Seconds; `None` when no request finished in the interval.
    pub(crate) p99: Option<f64>,
}

/// A gateway as the console shows it.
#[derive(Debug, Clone, Default)]
pub(crate) struct GatewayView {
    pub(crate) error: Option<String>,
    pub(crate) catalog_revision: Option<u64>,
    pub(crate) catalog_age_seconds: Option<f64>,
    /// Destination clusters whose active probe this gateway sees failing.
    pub(crate) probe_failing: Vec<String>,
}

/// Denials of one service by one gateway over the last interval.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DenialRate {
    pub(crate) cluster: String,
    pub(crate) service: String,
    pub(crate) reason: String,
    pub(crate) per_minute: f64,
    /// Since the gateway started.
    pub(crate) total: f64,
}

/// Everything the console derives from the gateways at one moment.
#[derive(Debug, Clone, Default)]
pub(crate) struct Observed {
    /// `None` when no gateway admins file is configured.
    pub(crate) configured: bool,
    pub(crate) file_error: Option<String>,
    pub(crate) gateways: BTreeMap<String, GatewayView>,
    pub(crate) edges: Vec<Edge>,
    pub(crate) residency_denials: Vec<DenialRate>,
    /// Rollback guard trips by service since each gateway started.
    pub(crate) rollback_trips: BTreeMap<String, f64>,
    /// Seconds between the two scrapes rates come from.
    pub(crate) window_seconds: Option<f64>,
}

impl Observed {
    /// Whether some gateway sees `cluster`'s probe failing.
    pub(crate) fn probe_failing(&self, cluster: &str) -> Vec<String> {
        self.gateways
            .iter()
            .filter(|(_, g)| g.probe_failing.iter().any(|c| c == cluster))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

impl Scraper {
    pub(crate) fn new(file: Option<PathBuf>, refresh: Duration) -> Self {
        Self {
            file,
            refresh,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The admin base URL of `cluster`'s gateway, if configured.
    pub(crate) async fn admin_url(&self, cluster: &str) -> Option<String> {
        let mut st = self.state.lock().await;
        self.reload(&mut st);
        st.gateways.get(cluster).map(|g| g.url.clone())
    }

    /// The configured clusters with a gateway admin URL.
    pub(crate) async fn clusters(&self) -> Vec<String> {
        let mut st = self.state.lock().await;
        self.reload(&mut st);
        st.gateways.keys().cloned().collect()
    }

    /// Re-reads the admins file when its modification time changed.
    fn reload(&self, st: &mut State) {
        let Some(file) = &self.file else {
            return;
        };
        let stamp = std::fs::metadata(file)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .ok();
        if stamp.is_some() && stamp == st.file_stamp {
            return;
        }
        st.file_stamp = stamp;
        match read_admins(file) {
            Ok(map) => {
                st.file_error = None;
                st.gateways.retain(|k, _| map.contains_key(k));
                for (cluster, url) in map {
                    let g = st.gateways.entry(cluster).or_default();
                    if g.url != url {
                        *g = GatewayState {
                            url,
                            ..GatewayState::default()
                        };
                    }
                }
            }
            Err(e) => st.file_error = Some(e),
        }
    }

    /// Scrapes every gateway unless that happened less than a refresh
    /// period ago, and derives the console's view.
    pub(crate) async fn observe(&self) -> Observed {
        let mut st = self.state.lock().await;
        self.reload(&mut st);
        let due = st
            .last_scrape
            .is_none_or(|t| t.elapsed() + Duration::from_millis(100) >= self.refresh);
        if due && !st.gateways.is_empty() {
            let fetches = st.gateways.iter().map(|(c, g)| {
                let url = g.url.clone();
                let c = c.clone();
                async move { (c, fetch_metrics(&url).await) }
            });
            let results = futures::future::join_all(fetches).await;
            let now = Instant::now();
            for (c, r) in results {
                let Some(g) = st.gateways.get_mut(&c) else {
                    continue;
                };
                match r {
                    Ok(series) => {
                        g.previous = g.current.take();
                        g.current = Some(Sample { at: now, series });
                        g.error = None;
                    }
                    Err(e) => {
                        g.previous = None;
                        g.current = None;
                        g.error = Some(e);
                    }
                }
            }
            st.last_scrape = Some(now);
        }
        derive(&st, self.file.is_some())
    }
}

fn read_admins(file: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let map: BTreeMap<String, String> =
        serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    for url in map.values() {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{}: {url:?} is not an http(s) URL", file.display()));
        }
    }
    Ok(map)
}

async fn fetch_metrics(base: &str) -> Result<Vec<Series>, String> {
    let client = Client::new(base, None).map_err(|e| e.to_string())?;
    let r = tokio::time::timeout(
        FETCH_TIMEOUT,
        client.raw(Method::GET, "/metrics", None, &[]),
    )
    .await
    .map_err(|_| format!("no answer from {base}/metrics within {FETCH_TIMEOUT:?}"))?
    .map_err(|e| e.to_string())?;
    if !r.status.is_success() {
        return Err(format!("{base}/metrics answered {}", r.status));
    }
    if r.body.len() > MAX_METRICS_BYTES {
        return Err(format!(
            "{base}/metrics is larger than {MAX_METRICS_BYTES} bytes"
        ));
    }
    Ok(parse_metrics(&String::from_utf8_lossy(&r.body)))
}

/// Asks `base`'s `/debug/route` (the gateway's own explanation).
pub(crate) async fn fetch_route(
    base: &str,
    host: &str,
    headers: &[String],
) -> Result<serde_json::Value, String> {
    let mut query: Vec<(&str, &str)> = vec![("host", host)];
    for h in headers {
        query.push(("header", h.as_str()));
    }
    let q = serde_urlencoded::to_string(&query).map_err(|e| e.to_string())?;
    let client = Client::new(base, None).map_err(|e| e.to_string())?;
    let v = tokio::time::timeout(
        FETCH_TIMEOUT,
        client.get::<serde_json::Value>(&format!("/debug/route?{q}")),
    )
    .await
    .map_err(|_| format!("no answer from {base}/debug/route within {FETCH_TIMEOUT:?}"))?
    .map_err(|e| e.to_string())?;
    Ok(v.value)
}

/// Sums series `name` matching `keep`, grouped by `key`.
fn sum_by<K: Ord>(
    series: &[Series],
    name: &str,
    keep: impl Fn(&Series) -> bool,
    key: impl Fn(&Series) -> K,
) -> BTreeMap<K, f64> {
    let mut out = BTreeMap::new();
    for s in series.iter().filter(|s| s.name == name && keep(s)) {
        *out.entry(key(s)).or_insert(0.0) += s.value;
    }
    out
}

/// The p99 of a histogram's bucket increments (`le` -> count), by linear
/// interpolation inside the bucket, as Prometheus' `histogram_quantile`.
pub(crate) fn quantile(q: f64, buckets: &BTreeMap<OrderedLe, f64>) -> Option<f64> {
    let total = buckets.iter().last().map(|(_, c)| *c)?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for (le, count) in buckets {
        if *count >= rank {
            if le.0.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            if in_bucket <= 0.0 {
                return Some(le.0);
            }
            return Some(prev_le + (le.0 - prev_le) * (rank - prev_count) / in_bucket);
        }
        prev_le = le.0;
        prev_count = *count;
    }
    None
}

/// A bucket bound ordered as a number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderedLe(pub(crate) f64);
impl PartialEq for OrderedLe {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for OrderedLe {}
impl PartialOrd for OrderedLe {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrderedLe {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

const REQUESTS: &str = "causeway_gateway_requests_total";
const DURATION_BUCKET: &str = "causeway_gateway_request_duration_seconds_bucket";

fn derive(st: &State, configured: bool) -> Observed {
    let mut out = Observed {
        configured,
        file_error: st.file_error.clone(),
        ..Observed::default()
    };
    for (cluster, g) in &st.gateways {
        let mut view = GatewayView {
            error: g.error.clone(),
            ..GatewayView::default()
        };
        let Some(cur) = &g.current else {
            if view.error.is_none() {
                view.error = Some("not scraped yet".into());
            }
            out.gateways.insert(cluster.clone(), view);
            continue;
        };
        for s in &cur.series {
            match s.name.as_str() {
                "causeway_gateway_catalog_revision" => view.catalog_revision = Some(s.value as u64),
                "causeway_gateway_catalog_age_seconds" => view.catalog_age_seconds = Some(s.value),
                "causeway_gateway_peer_probe_failing" if s.value >= 1.0 => view
                    .probe_failing
                    .push(s.label("destination_cluster").to_owned()),
                "causeway_gateway_rollback_guard_trips_total" => {
                    *out.rollback_trips
                        .entry(s.label("service").to_owned())
                        .or_insert(0.0) += s.value;
                }
                _ => {}
            }
        }
        out.gateways.insert(cluster.clone(), view);
        // Rates need two scrapes; the first only shows totals.
        let prev = g.previous.as_ref();
        let secs = prev.map(|p| cur.at.duration_since(p.at).as_secs_f64());
        if let Some(w) = secs {
            out.window_seconds = Some(w);
        }
        let delta = |name: &str,
                     keep: &dyn Fn(&Series) -> bool,
                     key: &dyn Fn(&Series) -> (String, String)|
         -> BTreeMap<(String, String), f64> {
            let now = sum_by(&cur.series, name, keep, key);
            let before = prev
                .map(|p| sum_by(&p.series, name, keep, key))
                .unwrap_or_default();
            now.into_iter()
                .map(|(k, v)| {
                    let b = before.get(&k).copied().unwrap_or(0.0);
                    // A restarted gateway resets its counters.
                    (k, if v >= b { v - b } else { v })
                })
                .collect()
        };
        let egress = |s: &Series| s.label("listener") == "egress";
        for ((service, reason), total) in sum_by(
            &cur.series,
            "causeway_gateway_residency_denials_total",
            |_| true,
            |s| (s.label("service").to_owned(), s.label("reason").to_owned()),
        ) {
            let d = delta(
                "causeway_gateway_residency_denials_total",
                &|s| s.label("service") == service && s.label("reason") == reason,
                &|s| (s.label("service").to_owned(), s.label("reason").to_owned()),
            );
            let per_minute = match secs {
                Some(w) if w > 0.0 => d.values().sum::<f64>() * 60.0 / w,
                _ => 0.0,
            };
            out.residency_denials.push(DenialRate {
                cluster: cluster.clone(),
                service,
                reason,
                per_minute,
                total,
            });
        }
        let Some(w) = secs.filter(|w| *w > 0.0) else {
            continue;
        };
        let all = delta(REQUESTS, &egress, &|s| {
            (s.label("destination_cluster").to_owned(), String::new())
        });
        let errors = delta(
            REQUESTS,
            &|s| egress(s) && s.label("status_class") == "5xx",
            &|s| (s.label("destination_cluster").to_owned(), String::new()),
        );
        let buckets = delta(DURATION_BUCKET, &egress, &|s| {
            (
                s.label("destination_cluster").to_owned(),
                s.label("le").to_owned(),
            )
        });
        for ((dst, _), n) in &all {
            if dst.is_empty() || dst == "none" {
                continue;
            }
            let mut hist = BTreeMap::new();
            for ((d, le), c) in &buckets {
                if d == dst {
                    let le = match le.as_str() {
                        "+Inf" => f64::INFINITY,
                        l => l.parse().unwrap_or(f64::INFINITY),
                    };
                    hist.insert(OrderedLe(le), *c);
                }
            }
            let err = errors.get(&(dst.clone(), String::new())).copied();
            out.edges.push(Edge {
                source: cluster.clone(),
                destination: dst.clone(),
                rps: n / w,
                error_rate: if *n > 0.0 {
                    err.unwrap_or(0.0) / n
                } else {
                    0.0
                },
                p99: quantile(0.99, &hist),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_with_escapes_and_special_values() {
        let s = parse_metrics(
            "# HELP x y\nfoo_total{a=\"1\",b=\"q\\\"x\"} 3\nbar 2.5\nh_bucket{le=\"+Inf\"} 7\nbad{a=1} 1\n",
        );
        assert_eq!(s.len(), 3, "{s:?}");
        assert_eq!(s[0].label("b"), "q\"x");
        assert_eq!(s[0].value, 3.0);
        assert_eq!(s[1].name, "bar");
        assert_eq!(s[2].label("le"), "+Inf");
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        let mut b = BTreeMap::new();
        b.insert(OrderedLe(0.1), 50.0);
        b.insert(OrderedLe(0.2), 100.0);
        b.insert(OrderedLe(f64::INFINITY), 100.0);
        let p = quantile(0.99, &b).unwrap_or(f64::NAN);
        assert!((p - 0.198).abs() < 1e-9, "{p}");
        assert_eq!(quantile(0.99, &BTreeMap::new()), None);
    }
}
