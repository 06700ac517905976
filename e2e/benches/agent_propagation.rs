//! Catalog propagation benchmark (not a test): time from an export change
//! sent to the federation API (the PUT's start: watchers often see the
//! change before the PUT's answer arrives) to the routing change
//! installed by every simulated gateway (agent follower + `CatalogState`
//! build), with N watchers (one per cluster) and 100 services per cluster,
//! on a real etcd.
//!
//! `cargo build --release --bench agent_propagation` then run the binary
//! (args: watcher counts, default `10 50 100`; env `CHANGES`, default 20).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use causeway_agent::AgentMetrics;
use causeway_agent::backoff::Backoff;
use causeway_agent::sync::{Follower, FollowerConfig};
use causeway_api::client::{Client, Precondition};
use causeway_api::model::{CatalogSnapshot, Cluster, ExportKey, ServiceExport};
use causeway_federation::server::{Authn, Server, ServerConfig, StoreConfig, open_store};
use causeway_federation::testing::EtcdProcess;
use causeway_gateway::catalog::CatalogState;
use causeway_gateway::config::ClusterConfig;
use futures::StreamExt as _;
use serde_json::json;

const SERVICES: usize = 100;

/// Builds the routing state like a gateway and records when the probe
/// export with a given weight was first seen.
struct Sim {
    local: ClusterConfig,
    /// The key of the export whose weight the benchmark changes.
    probe: ExportKey,
    seen: Mutex<Vec<(u32, Instant)>>,
    last: Mutex<u32>,
    /// Time spent building the routing state and how many builds.
    build_time: Mutex<(Duration, u32)>,
    /// The routing state in use (the next one is built from it, as the
    /// gateway does).
    state: Mutex<Option<CatalogState>>,
}

impl Sim {
    /// What a gateway does with each catalog the agent publishes.
    fn install(&self, snapshot: Arc<CatalogSnapshot>) {
        let weight = snapshot.exports.get(&self.probe).map(|e| e.spec.weight);
        let built = Instant::now();
        let mut current = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let state = match current.as_ref() {
            Some(prev) => prev.next(snapshot, &self.local),
            None => CatalogState::build(snapshot, &self.local),
        };
        let took = built.elapsed();
        *current = Some(state);
        drop(current);
        {
            let mut b = self.build_time.lock().unwrap_or_else(|p| p.into_inner());
            b.0 += took;
            b.1 += 1;
        }
        if let Some(w) = weight {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if w != *last {
                *last = w;
                self.seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((w, Instant::now()));
            }
        }
    }
}

fn cluster(i: usize) -> Cluster {
    serde_json::from_value(json!({
        "apiVersion": "causeway.dev/v1", "kind": "Cluster",
        "metadata": {"name": format!("c-{i}")},
        "spec": {"region": format!("r{}", i % 5), "zone": format!("z{i}"), "jurisdictions": ["eu"],
                 "gateway": {"endpoints": [format!("10.0.{}.{}:15443", i / 250, i % 250)]},
                 "trustDomain": format!("c{i}.bench")}
    }))
    .expect("cluster")
}

fn export(cluster: usize, ns: &str, name: &str, weight: u32) -> ServiceExport {
    serde_json::from_value(json!({
        "apiVersion": "causeway.dev/v1", "kind": "ServiceExport",
        "metadata": {"name": name, "namespace": ns, "cluster": format!("c-{cluster}")},
        "spec": {"ports": [{"name": "http", "port": 8080}], "weight": weight,
                 "endpoints": [{"zone": format!("z{cluster}"), "ready": 3}]}
    }))
    .expect("export")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(etcd: &EtcdProcess, watchers: usize, changes: u32) -> anyhow::Result<()> {
    let mut config = ServerConfig {
        danger_disable_auth: true,
        ..ServerConfig::default()
    };
    config.store.prefix = Some(format!("/bench-{watchers}"));
    let store = open_store(&StoreConfig {
        etcd: etcd.endpoints(),
        ..StoreConfig::default()
    })
    .await?;
    let server = Server::new(config, store, Authn::Disabled)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_api, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = Client::new(&base, None)?;
    let started = Instant::now();
    for i in 0..watchers {
        client.put_cluster(&cluster(i), Precondition::None).await?;
    }
    let puts = (0..watchers).flat_map(|c| (0..SERVICES).map(move |s| (c, s)));
    futures::stream::iter(puts)
        .map(|(c, s)| {
            let client = client.clone();
            async move {
                client
                    .put_export(
                        &export(c, "bench", &format!("svc-{s}"), 100),
                        Precondition::None,
                    )
                    .await
            }
        })
        .buffer_unordered(32)
        .for_each(|r| async move {
            if let Err(e) = r {
                eprintln!("put failed: {e}");
            }
        })
        .await;
    client
        .put_export(&export(0, "bench", "probe", 1), Precondition::None)
        .await?;
    eprintln!(
        "watchers={watchers}: {} exports loaded in {:.1}s",
        watchers * SERVICES + 1,
        started.elapsed().as_secs_f64()
    );

    let (stop, rx) = tokio::sync::watch::channel(false);
    let mut sims = Vec::new();
    for i in 0..watchers {
        let sim = Arc::new(Sim {
            local: ClusterConfig {
                id: format!("c-{i}"),
                region: format!("r{}", i % 5),
                zone: format!("z{i}"),
                jurisdictions: vec!["eu".into()],
                trust_domain: format!("c{i}.bench"),
            },
            seen: Mutex::new(Vec::new()),
            last: Mutex::new(0),
            build_time: Mutex::new((Duration::ZERO, 0)),
            state: Mutex::new(None),
            probe: export(0, "bench", "probe", 1).key(),
        });
        let follower = Follower::new(
            FollowerConfig {
                tls: Default::default(),
                endpoint: base.clone(),
                token: None,
                snapshot_file: None,
                backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            },
            AgentMetrics::unregistered(),
        );
        // The gateway's installer: a task that follows the agent's watch.
        let mut catalogs = follower.subscribe();
        let s = sim.clone();
        tokio::spawn(async move {
            while catalogs.changed().await.is_ok() {
                let snapshot = catalogs.borrow_and_update().clone();
                s.install(snapshot);
            }
        });
        tokio::spawn(follower.run(rx.clone()));
        sims.push(sim);
    }
    let all_at = |w: u32, sims: &[Arc<Sim>]| {
        sims.iter()
            .all(|s| *s.last.lock().unwrap_or_else(|p| p.into_inner()) == w)
    };
    let syncing = Instant::now();
    while !all_at(1, &sims) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!(
        "watchers={watchers}: every gateway synced in {:.1}s; measuring {changes} changes",
        syncing.elapsed().as_secs_f64()
    );
    let mut samples = Vec::new();
    for k in 0..changes {
        let w = k + 2;
        let accepted = Instant::now();
        client
            .put_export(&export(0, "bench", "probe", w), Precondition::None)
            .await?;
        let deadline = accepted + Duration::from_secs(30);
        while !all_at(w, &sims) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for s in &sims {
            let seen = s.seen.lock().unwrap_or_else(|p| p.into_inner());
            match seen.iter().find(|(x, _)| *x == w) {
                Some((_, t)) => samples.push(t.saturating_duration_since(accepted)),
                None => samples.push(Duration::from_secs(30)),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    samples.sort();
    let (total, builds) = sims.iter().fold((Duration::ZERO, 0u32), |acc, s| {
        let b = *s.build_time.lock().unwrap_or_else(|p| p.into_inner());
        (acc.0 + b.0, acc.1 + b.1)
    });
    println!(
        "watchers={watchers}: routing state build per gateway and change: mean {:.2}ms over {builds} builds",
        total.as_secs_f64() * 1e3 / f64::from(builds.max(1))
    );
    println!(
        "watchers={watchers} services/cluster={SERVICES} changes={changes} samples={} p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms",
        samples.len(),
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.9).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    let _ = stop.send(true);
    let _ = stop_api.send(());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 50, 100]
    } else {
        sizes
    };
    let changes: u32 = std::env::var("CHANGES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let etcd = EtcdProcess::start().await?;
        for n in sizes {
            run(&etcd, n, changes).await?;
        }
        Ok(())
    })
}
