//! Federation API performance benchmark (not a test): REST write throughput
//! and gRPC watch delivery latency, on a real etcd (`EtcdProcess`) and on
//! the embedded `MemoryStore`, side by side, JWT auth on (ES256).
//!
//! ```text
//! cargo bench -p causeway-federation --features testing --bench api -- [--quick]
//!     [--rounds N] [--duration 30s] [--write-duration 10s] [--watchers 100]
//!     [--rate 200] [--store etcd|memory|both] [--json PATH]
//! ```
//!
//! Per round and store:
//! 1. writes/s: closed-loop PUTs of ServiceExports with cluster tokens, by 1
//!    and by 32 concurrent clients (distinct keys per client, 4 clusters ×
//!    64 services, each PUT changes the endpoints so the import changes);
//! 2. delivery latency: `--watchers` gRPC watches, an open-loop writer paced
//!    at `--rate` PUTs/s for `--duration`; each export event is matched to
//!    its write by revision (the PUT's `ETag`) and timed from the instant the
//!    writer got the 2xx to the instant each watcher decoded it.
//!
//! The server runs on its own 2-worker tokio runtime, the load generator on
//! another (as separate processes would), etcd is a child process. Results
//! are medians over the rounds with [min–max] ranges; `--json` writes every
//! round too. See docs/benchmarks-api.md.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use causeway_api::client::{Client, Precondition, Versioned, grpc_watch};
use causeway_api::proto::EventType;
use causeway_federation::server::{Authn, Server, ServerConfig};
use causeway_federation::store::{EtcdStore, EtcdStoreConfig, MemoryStore, Store};
use causeway_federation::testing::EtcdProcess;
use causeway_federation::token::{JwtKeys, Scope, generate_es256_pem};
use http::Method;
use serde_json::{Value, json};
use tokio::runtime::Runtime;

const CLUSTERS: usize = 4;
const SERVICES: usize = 64;
const NAMESPACE: &str = "bench";
/// Writes in flight at most in the paced writer (beyond: counted as skipped).
const MAX_IN_FLIGHT: usize = 512;
/// How long watchers may lag behind the last write before the round ends.
const DRAIN: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- arguments

#[derive(Debug, Clone)]
struct Args {
    quick: bool,
    rounds: usize,
    duration: Duration,
    write_duration: Duration,
    warmup: Duration,
    watchers: usize,
    rate: u32,
    concurrency: Vec<usize>,
    stores: Vec<StoreKind>,
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StoreKind {
    Etcd,
    Memory,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            Self::Etcd => "etcd",
            Self::Memory => "memory",
        }
    }
}

fn parse_args() -> Result<Args> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let quick = raw.iter().any(|a| a == "--quick");
    let mut a = Args {
        quick,
        rounds: 3,
        duration: Duration::from_secs(if quick { 5 } else { 30 }),
        write_duration: Duration::from_secs(if quick { 2 } else { 10 }),
        warmup: Duration::from_secs(1),
        watchers: 100,
        rate: 200,
        concurrency: vec![1, 32],
        stores: vec![StoreKind::Etcd, StoreKind::Memory],
        json: None,
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--quick" => {}
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--rounds" => a.rounds = value("--rounds")?.parse()?,
            "--duration" => a.duration = humantime::parse_duration(&value("--duration")?)?,
            "--write-duration" => {
                a.write_duration = humantime::parse_duration(&value("--write-duration")?)?;
            }
            "--watchers" => a.watchers = value("--watchers")?.parse()?,
            "--rate" => a.rate = value("--rate")?.parse()?,
            "--json" => a.json = Some(PathBuf::from(value("--json")?)),
            "--store" => {
                a.stores = match value("--store")?.as_str() {
                    "etcd" => vec![StoreKind::Etcd],
                    "memory" => vec![StoreKind::Memory],
                    "both" => vec![StoreKind::Etcd, StoreKind::Memory],
                    other => bail!("--store etcd|memory|both, not {other}"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "cargo bench -p causeway-federation --features testing --bench api -- \
                     [--quick] [--rounds N] [--duration 30s] [--write-duration 10s] \
                     [--watchers 100] [--rate 200] [--store etcd|memory|both] [--json PATH]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if a.rounds == 0 || a.watchers == 0 || a.rate == 0 {
        bail!("--rounds, --watchers and --rate must be positive");
    }
    Ok(a)
}

// ------------------------------------------------------------------ machine

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn etcd_binary() -> String {
    if let Some(p) = std::env::var_os("CAUSEWAY_ETCD_BIN") {
        return p.to_string_lossy().into_owned();
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("etcd");
            if p.is_file() {
                return p.display().to_string();
            }
        }
    }
    "/usr/bin/etcd".to_owned()
}

fn machine() -> Value {
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let etcd = std::process::Command::new(etcd_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("etcd Version:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let mem_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| (kb / 1024.0 / 1024.0 * 10.0).round() / 10.0);
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, usize::from),
        "cpu": cpu,
        "memGiB": mem_gib,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "etcd": etcd,
        "etcdBinary": etcd_binary(),
        "etcdDataDir": std::env::temp_dir().display().to_string(),
        "loadavgStart": loadavg(),
    })
}

// ------------------------------------------------------------------- target

/// A running server over one store (the etcd process, if any, lives here).
struct Target {
    kind: StoreKind,
    base: String,
    keys: JwtKeys,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _etcd: Option<EtcdProcess>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Target {
    /// Starts the store and the server; runs inside the server runtime.
    async fn start(kind: StoreKind) -> Result<Self> {
        let (etcd, store): (Option<EtcdProcess>, Arc<dyn Store>) = match kind {
            StoreKind::Etcd => {
                let etcd = EtcdProcess::start().await?;
                let store = EtcdStore::connect(&EtcdStoreConfig {
                    endpoints: etcd.endpoints(),
                    ..EtcdStoreConfig::default()
                })
                .await?;
                (Some(etcd), Arc::new(store))
            }
            StoreKind::Memory => (None, Arc::new(MemoryStore::new())),
        };
        let (private_pem, public_pem) = generate_es256_pem()?;
        let keys = JwtKeys::es256(
            public_pem.as_bytes(),
            Some(private_pem.as_bytes()),
            "causeway",
            None,
        )?;
        // A long heartbeat TTL: connectivity stays put during the run.
        let config = ServerConfig {
            heartbeat_ttl: Duration::from_secs(3600),
            ..ServerConfig::default()
        };
        let server = Server::new(config, store, Authn::Jwt(keys.clone()))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server
                .serve(listener, async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            kind,
            base: format!("http://{addr}"),
            keys,
            stop: Some(tx),
            _etcd: etcd,
        })
    }

    fn token(&self, scope: &str) -> Result<String> {
        let scope: Scope = scope.parse()?;
        Ok(self
            .keys
            .mint(&[scope], Duration::from_secs(6 * 3600), Some("bench"))?)
    }

    fn client(&self, scope: &str) -> Result<Client> {
        Ok(Client::new(&self.base, Some(self.token(scope)?))?)
    }

    /// Registers the clusters (admin) and heartbeats them (their tokens).
    async fn seed(&self) -> Result<()> {
        let admin = self.client("admin")?;
        for c in 0..CLUSTERS {
            let id = cluster_id(c);
            let body = json!({
                "apiVersion": "causeway.dev/v1",
                "kind": "Cluster",
                "metadata": {"name": id},
                "spec": {
                    "cloud": "aws", "region": "eu-west-1", "zone": "eu-west-1a",
                    "jurisdictions": ["eu"],
                    "gateway": {"endpoints": [format!("gw.{id}.example.com:15443")]},
                    "trustDomain": format!("{id}.example.org")
                }
            });
            let _: Versioned<Value> = admin
                .put(&format!("/v1/clusters/{id}"), &body, Precondition::None)
                .await?;
            self.client(&format!("cluster:{id}"))?
                .heartbeat(&id)
                .await?;
        }
        Ok(())
    }
}

fn cluster_id(c: usize) -> String {
    format!("bench-{c}")
}

// -------------------------------------------------------------------- writes

/// One export PUT, prepared by a writer for cluster `c`.
struct Writer {
    client: Client,
    cluster: String,
}

impl Writer {
    fn new(target: &Target, c: usize) -> Result<Self> {
        let cluster = cluster_id(c);
        Ok(Self {
            client: target.client(&format!("cluster:{cluster}"))?,
            cluster,
        })
    }

    /// PUTs the export of service `svc` with `ready` backends; returns the
    /// revision from the `ETag` on 2xx.
    async fn put(&self, svc: usize, ready: u64) -> Result<u64> {
        let name = format!("svc-{svc}");
        let body = json!({
            "apiVersion": "causeway.dev/v1",
            "kind": "ServiceExport",
            "metadata": {"name": name, "namespace": NAMESPACE, "cluster": self.cluster},
            "spec": {
                "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
                "type": "ClusterSetIP",
                "endpoints": [{"zone": "eu-west-1a", "ready": ready % 1000 + 1}],
                "exportedLabels": {"bench": "api"}
            }
        });
        let path = format!("/v1/clusters/{}/exports/{NAMESPACE}/{name}", self.cluster);
        let r = self
            .client
            .raw(Method::PUT, &path, Some(serde_json::to_vec(&body)?), &[])
            .await?;
        if !r.status.is_success() {
            bail!(
                "PUT {path}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        r.headers
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim_matches('"').parse().ok())
            .context("PUT without ETag")
    }
}

#[derive(Debug, Clone, Default)]
struct ThroughputRound {
    writes_per_sec: f64,
    ok: u64,
    errors: u64,
    put_p50_ms: f64,
    put_p99_ms: f64,
}

/// Closed loop: `n` clients PUT as fast as they can for `warmup + dur`;
/// only the writes completed after the warm-up count.
async fn throughput(
    target: &Target,
    n: usize,
    warmup: Duration,
    dur: Duration,
) -> Result<ThroughputRound> {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + dur;
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for i in 0..n {
        // Distinct (cluster, service) keys per client: no write conflicts.
        let w = Writer::new(target, i % CLUSTERS)?;
        let errors = errors.clone();
        let first_error = first_error.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            // Client i writes cluster i % CLUSTERS, services of its lane.
            let lanes = n.div_ceil(CLUSTERS).clamp(1, SERVICES);
            let lane = i / CLUSTERS;
            let mut j = 0u64;
            loop {
                let svc = lane + lanes * (j as usize % (SERVICES / lanes));
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                match w.put(svc, j).await {
                    Ok(_) => {
                        let t1 = Instant::now();
                        if t1 >= measure_from && t1 < end {
                            lat.push(t1 - t0);
                        }
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_error.lock().unwrap();
                        if f.is_none() {
                            *f = Some(e.to_string());
                        }
                    }
                }
                j += 1;
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await?);
    }
    if let Some(e) = first_error.lock().unwrap().take() {
        eprintln!(
            "  ! {} write error(s), first: {e}",
            errors.load(Ordering::Relaxed)
        );
    }
    lat.sort_unstable();
    Ok(ThroughputRound {
        writes_per_sec: lat.len() as f64 / dur.as_secs_f64(),
        ok: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        put_p50_ms: ms(pct(&lat, 50.0)),
        put_p99_ms: ms(pct(&lat, 99.0)),
    })
}

// ------------------------------------------------------------------- latency

#[derive(Debug, Clone, Default)]
struct LatencyRound {
    writes: u64,
    achieved_rate: f64,
    write_errors: u64,
    skipped: u64,
    put_p50_ms: f64,
    put_p99_ms: f64,
    samples: u64,
    missing: u64,
    before_ack: u64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Per write, until the last watcher had it.
    all_watchers_p99_ms: f64,
    /// The same events timed from the instant the PUT was sent.
    sent_p50_ms: f64,
    sent_p99_ms: f64,
    sent_max_ms: f64,
}

/// What one watcher saw: (revision, arrival) of every export put.
struct WatcherLog {
    arrivals: Vec<(u64, Instant)>,
}

async fn open_watchers(
    target: &Target,
    n: usize,
    stop: &tokio::sync::watch::Receiver<bool>,
    last_rev: &[Arc<AtomicU64>],
) -> Result<Vec<tokio::task::JoinHandle<Result<WatcherLog>>>> {
    let token = target.token("read")?;
    let mut handles = Vec::with_capacity(n);
    for (i, seen) in last_rev.iter().enumerate().take(n) {
        let mut stream = grpc_watch(&target.base, Some(&token), None)
            .await
            .with_context(|| format!("opening watcher {i}"))?;
        let snap = stream
            .message()
            .await?
            .context("watch ended before the snapshot")?;
        if snap.r#type != EventType::Snapshot as i32 {
            bail!("watch did not start with a snapshot");
        }
        let mut stop = stop.clone();
        let seen = seen.clone();
        handles.push(tokio::spawn(async move {
            let mut arrivals = Vec::with_capacity(16 * 1024);
            loop {
                let msg = tokio::select! {
                    biased;
                    m = stream.message() => m,
                    _ = stop.wait_for(|s| *s) => break,
                };
                let now = Instant::now();
                let Some(ev) = msg? else {
                    bail!("watch stream ended")
                };
                if ev.r#type == EventType::Put as i32
                    && ev
                        .resource
                        .as_ref()
                        .is_some_and(|r| r.kind == "ServiceExport")
                {
                    let rev = ev.revision as u64;
                    arrivals.push((rev, now));
                    seen.store(rev, Ordering::Relaxed);
                }
            }
            Ok(WatcherLog { arrivals })
        }));
    }
    Ok(handles)
}

async fn latency(target: &Target, args: &Args) -> Result<LatencyRound> {
    let n = args.watchers;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let last_rev: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let watchers = open_watchers(target, n, &stop_rx, &last_rev).await?;

    // The paced (open-loop) writer: one PUT every 1/rate s, each in its own
    // task so a slow answer never delays the schedule.
    let writers: Vec<Arc<Writer>> = (0..CLUSTERS)
        .map(|c| Writer::new(target, c).map(Arc::new))
        .collect::<Result<_>>()?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(args.rate));
    let total = args.warmup + args.duration;
    let count = (total.as_secs_f64() * f64::from(args.rate)).round() as u64;
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let measure_from = start.into_std() + args.warmup;
    let acks: Arc<Mutex<Vec<(u64, Instant, Instant)>>> = Arc::default();
    let errors = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut skipped = 0u64;
    let mut tasks = Vec::new();
    for k in 0..count {
        tokio::time::sleep_until(start + interval.mul_f64(k as f64)).await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let w = writers[k as usize % CLUSTERS].clone();
        let svc = (k as usize / CLUSTERS) % SERVICES;
        let acks = acks.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let t0 = Instant::now();
            match w.put(svc, k).await {
                Ok(rev) => acks.lock().unwrap().push((rev, t0, Instant::now())),
                Err(e) => {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("  ! paced write failed: {e}");
                    }
                }
            }
        }));
    }
    let wrote_until = Instant::now();
    for t in tasks {
        t.await?;
    }
    let acks = std::mem::take(&mut *acks.lock().unwrap());
    let max_rev = acks.iter().map(|a| a.0).max().unwrap_or(0);
    // Drain: until every watcher has seen the last write (or DRAIN passed).
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline && last_rev.iter().any(|r| r.load(Ordering::Relaxed) < max_rev)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop_tx.send_replace(true);
    let mut logs = Vec::with_capacity(n);
    for w in watchers {
        logs.push(w.await??);
    }

    let measured: HashMap<u64, (Instant, Instant)> = acks
        .iter()
        .filter(|(_, t0, _)| *t0 >= measure_from)
        .map(|(rev, t0, t1)| (*rev, (*t0, *t1)))
        .collect();
    let mut put_lat: Vec<Duration> = acks
        .iter()
        .filter(|(_, t0, _)| *t0 >= measure_from)
        .map(|(_, t0, t1)| *t1 - *t0)
        .collect();
    put_lat.sort_unstable();
    let mut lat: Vec<Duration> = Vec::with_capacity(measured.len() * n);
    let mut from_send: Vec<Duration> = Vec::with_capacity(measured.len() * n);
    let mut per_write_max: HashMap<u64, Duration> = HashMap::with_capacity(measured.len());
    let mut before_ack = 0u64;
    for log in &logs {
        for (rev, at) in &log.arrivals {
            if let Some((sent, ack)) = measured.get(rev) {
                from_send.push(at.saturating_duration_since(*sent));
                if at < ack {
                    before_ack += 1;
                }
                let d = at.saturating_duration_since(*ack);
                lat.push(d);
                let m = per_write_max.entry(*rev).or_default();
                *m = (*m).max(d);
            }
        }
    }
    lat.sort_unstable();
    from_send.sort_unstable();
    let expected = measured.len() as u64 * n as u64;
    let mut fanout: Vec<Duration> = per_write_max.into_values().collect();
    fanout.sort_unstable();
    let window = wrote_until.saturating_duration_since(measure_from);
    Ok(LatencyRound {
        writes: measured.len() as u64,
        achieved_rate: measured.len() as f64 / window.as_secs_f64().max(1e-9),
        write_errors: errors.load(Ordering::Relaxed),
        skipped,
        put_p50_ms: ms(pct(&put_lat, 50.0)),
        put_p99_ms: ms(pct(&put_lat, 99.0)),
        samples: lat.len() as u64,
        missing: expected.saturating_sub(lat.len() as u64),
        before_ack,
        p50_ms: ms(pct(&lat, 50.0)),
        p99_ms: ms(pct(&lat, 99.0)),
        p999_ms: ms(pct(&lat, 99.9)),
        max_ms: ms(lat.last().copied().unwrap_or_default()),
        all_watchers_p99_ms: ms(pct(&fanout, 99.0)),
        sent_p50_ms: ms(pct(&from_send, 50.0)),
        sent_p99_ms: ms(pct(&from_send, 99.0)),
        sent_max_ms: ms(from_send.last().copied().unwrap_or_default()),
    })
}

// -------------------------------------------------------------------- stats

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Median, min and max of the per-round values.
fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

/// Every per-round figure of one store, by metric name.
type Figures = BTreeMap<&'static str, Vec<f64>>;

fn record_throughput(f: &mut Figures, n: usize, r: &ThroughputRound) {
    let (w, p50, p99, e) = match n {
        1 => (
            "writes_per_sec_c1",
            "put_p50_ms_c1",
            "put_p99_ms_c1",
            "write_errors_c1",
        ),
        _ => (
            "writes_per_sec_c32",
            "put_p50_ms_c32",
            "put_p99_ms_c32",
            "write_errors_c32",
        ),
    };
    f.entry(w).or_default().push(r.writes_per_sec);
    f.entry(p50).or_default().push(r.put_p50_ms);
    f.entry(p99).or_default().push(r.put_p99_ms);
    f.entry(e).or_default().push(r.errors as f64);
}

fn record_latency(f: &mut Figures, r: &LatencyRound) {
    for (k, v) in [
        ("watch_p50_ms", r.p50_ms),
        ("watch_p99_ms", r.p99_ms),
        ("watch_p999_ms", r.p999_ms),
        ("watch_max_ms", r.max_ms),
        ("watch_all_watchers_p99_ms", r.all_watchers_p99_ms),
        ("watch_from_send_p50_ms", r.sent_p50_ms),
        ("watch_from_send_p99_ms", r.sent_p99_ms),
        ("watch_from_send_max_ms", r.sent_max_ms),
        ("paced_rate", r.achieved_rate),
        ("paced_writes", r.writes as f64),
        ("paced_put_p50_ms", r.put_p50_ms),
        ("paced_put_p99_ms", r.put_p99_ms),
        ("paced_write_errors", r.write_errors as f64),
        ("paced_skipped", r.skipped as f64),
        ("watch_samples", r.samples as f64),
        ("watch_missing", r.missing as f64),
        ("watch_before_ack", r.before_ack as f64),
    ] {
        f.entry(k).or_default().push(v);
    }
}

/// Table rows: (metric key, label, decimals).
const ROWS: &[(&str, &str, usize)] = &[
    ("writes_per_sec_c1", "writes/s, 1 client", 0),
    ("put_p50_ms_c1", "  PUT p50 ms, 1 client", 2),
    ("writes_per_sec_c32", "writes/s, 32 clients", 0),
    ("put_p50_ms_c32", "  PUT p50 ms, 32 clients", 2),
    ("put_p99_ms_c32", "  PUT p99 ms, 32 clients", 2),
    ("paced_rate", "paced writes/s achieved", 1),
    ("paced_put_p99_ms", "  paced PUT p99 ms", 2),
    ("watch_p50_ms", "from 2xx: delivery p50 ms", 2),
    ("watch_p99_ms", "from 2xx: delivery p99 ms", 2),
    ("watch_p999_ms", "from 2xx: p99.9 ms", 2),
    ("watch_max_ms", "from 2xx: max ms", 2),
    ("watch_all_watchers_p99_ms", "from 2xx: all-watchers p99", 2),
    ("watch_from_send_p50_ms", "from send: p50 ms", 2),
    ("watch_from_send_p99_ms", "from send: p99 ms", 2),
    ("watch_from_send_max_ms", "from send: max ms", 2),
    ("watch_samples", "events measured", 0),
    ("watch_before_ack", "  of which before the 2xx", 0),
    ("watch_missing", "events missing", 0),
    ("paced_skipped", "paced writes skipped", 0),
    ("paced_write_errors", "paced write errors", 0),
];

fn cell(values: Option<&Vec<f64>>, decimals: usize) -> String {
    match values {
        None => "-".to_owned(),
        Some(v) => {
            let (m, lo, hi) = summary(v);
            format!("{m:.decimals$} [{lo:.decimals$}–{hi:.decimals$}]")
        }
    }
}

fn print_table(args: &Args, results: &BTreeMap<StoreKind, Figures>) {
    let etcd = results.get(&StoreKind::Etcd);
    let mem = results.get(&StoreKind::Memory);
    println!();
    println!(
        "federation API benchmark: medians over {} round(s) [min–max]; {} gRPC watchers, {} writes/s paced for {:?}",
        args.rounds, args.watchers, args.rate, args.duration
    );
    println!(
        "{:<28} {:>30} {:>30} {:>12}",
        "metric", "etcd", "memory", "etcd/memory"
    );
    for (key, label, d) in ROWS {
        let e = etcd.and_then(|f| f.get(key));
        let m = mem.and_then(|f| f.get(key));
        let ratio = match (e, m) {
            (Some(e), Some(m)) if summary(m).0 > 0.0 => {
                format!("{:.2}", summary(e).0 / summary(m).0)
            }
            _ => "-".to_owned(),
        };
        println!(
            "{label:<28} {:>30} {:>30} {ratio:>12}",
            cell(e, *d),
            cell(m, *d)
        );
    }
}

fn to_json(args: &Args, machine: Value, results: &BTreeMap<StoreKind, Figures>) -> Value {
    let mut stores = serde_json::Map::new();
    for (kind, figures) in results {
        let mut median = serde_json::Map::new();
        let mut rounds = serde_json::Map::new();
        for (k, v) in figures {
            let (m, lo, hi) = summary(v);
            median.insert((*k).to_owned(), json!({"median": m, "min": lo, "max": hi}));
            rounds.insert((*k).to_owned(), json!(v));
        }
        stores.insert(
            kind.name().to_owned(),
            json!({"summary": median, "rounds": rounds}),
        );
    }
    let mut ratios = serde_json::Map::new();
    if let (Some(e), Some(m)) = (
        results.get(&StoreKind::Etcd),
        results.get(&StoreKind::Memory),
    ) {
        for (key, _, _) in ROWS {
            if let (Some(ev), Some(mv)) = (e.get(key), m.get(key)) {
                let (em, mm) = (summary(ev).0, summary(mv).0);
                if mm > 0.0 {
                    ratios.insert((*key).to_owned(), json!(em / mm));
                }
            }
        }
    }
    json!({
        "benchmark": "causeway-federation api",
        "machine": machine,
        "config": {
            "quick": args.quick,
            "rounds": args.rounds,
            "writeDurationSecs": args.write_duration.as_secs_f64(),
            "latencyDurationSecs": args.duration.as_secs_f64(),
            "warmupSecs": args.warmup.as_secs_f64(),
            "watchers": args.watchers,
            "pacedRate": args.rate,
            "concurrency": args.concurrency,
            "clusters": CLUSTERS,
            "services": SERVICES,
            "auth": "JWT ES256, cluster:<id> tokens for writes, read tokens for watches",
        },
        "stores": stores,
        "ratiosEtcdOverMemory": ratios,
    })
}

// --------------------------------------------------------------------- main

fn runtime(name: &str) -> Result<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()?)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let mut machine = machine();
    eprintln!(
        "machine: {} cpus ({}), etcd {}, load average {}",
        machine["nproc"], machine["cpu"], machine["etcd"], machine["loadavgStart"]
    );
    let server_rt = runtime("bench-server")?;
    let client_rt = runtime("bench-client")?;
    let started = Instant::now();

    let mut targets = Vec::new();
    for kind in &args.stores {
        let t = server_rt.block_on(Target::start(*kind))?;
        client_rt.block_on(t.seed())?;
        targets.push(t);
    }
    let mut results: BTreeMap<StoreKind, Figures> = BTreeMap::new();
    for round in 1..=args.rounds {
        for t in &targets {
            let figures = results.entry(t.kind).or_default();
            for &n in &args.concurrency {
                let r = client_rt.block_on(throughput(
                    t,
                    n,
                    Duration::from_millis(500),
                    args.write_duration,
                ))?;
                eprintln!(
                    "round {round} {:<6} {n:>2} client(s): {:>8.1} writes/s ({} ok)  PUT p50 {:.2} ms p99 {:.2} ms  errors {}",
                    t.kind.name(),
                    r.writes_per_sec,
                    r.ok,
                    r.put_p50_ms,
                    r.put_p99_ms,
                    r.errors
                );
                record_throughput(figures, n, &r);
            }
            let r = client_rt.block_on(latency(t, &args))?;
            eprintln!(
                "round {round} {:<6} watch: {} writes at {:.1}/s, {} events: from 2xx p50 {:.2} ms p99 {:.2} ms max {:.2} ms ({} before the 2xx); from send p50 {:.2} ms p99 {:.2} ms (missing {}, skipped {}, errors {})",
                t.kind.name(),
                r.writes,
                r.achieved_rate,
                r.samples,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.before_ack,
                r.sent_p50_ms,
                r.sent_p99_ms,
                r.missing,
                r.skipped,
                r.write_errors
            );
            record_latency(figures, &r);
        }
    }
    drop(targets);
    machine["loadavgEnd"] = json!(loadavg());
    machine["elapsedSecs"] = json!(started.elapsed().as_secs_f64().round());
    print_table(&args, &results);
    println!(
        "machine: nproc {}, {}, {} GiB, kernel {}, etcd {} (data dir under {}), load average {} -> {}, {} s",
        machine["nproc"],
        machine["cpu"],
        machine["memGiB"],
        machine["kernel"],
        machine["etcd"],
        machine["etcdDataDir"],
        machine["loadavgStart"],
        machine["loadavgEnd"],
        machine["elapsedSecs"]
    );
    let doc = to_json(&args, machine, &results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    drop(client_rt);
    server_rt.shutdown_timeout(Duration::from_secs(2));
    Ok(())
}
