//! The cluster agent against the real federation API (in-process) on a real
//! etcd: registration, heartbeat, bundle publication, the catalog it
//! publishes (federated bundles included), static stability (API killed;
//! agent restarted during the outage publishes the persisted catalog),
//! relist after compaction, and static discovery.
#![allow(clippy::unwrap_used)]

#[path = "support/federation.rs"]
mod federation;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use causeway_agent::backoff::Backoff;
use causeway_agent::sync::{Follower, FollowerConfig};
use causeway_agent::{self as agent, AgentConfig, AgentMetrics, ClusterInfo, persist};
use causeway_api::client::Client;
use causeway_api::model::{CatalogSnapshot, TrustBundle};
use causeway_federation::server::{StoreConfig, open_store};
use causeway_federation::store::Store;
use causeway_federation::testing::EtcdProcess;
use causeway_trust::{Authority, AuthorityConfig, BundleSet, BundleStore, TrustDomain};
use federation::{Api, eventually};
use tokio::sync::watch;

/// The etcd store; each test keeps its keys under its own prefix.
async fn etcd_store(etcd: &EtcdProcess) -> Arc<dyn Store> {
    open_store(&StoreConfig {
        etcd: etcd.endpoints(),
        ..StoreConfig::default()
    })
    .await
    .unwrap()
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn cluster(id: &str, td: &str) -> ClusterInfo {
    ClusterInfo {
        id: id.parse().unwrap(),
        region: "eu-west".into(),
        zone: format!("{id}a"),
        jurisdictions: vec!["eu".into()],
        trust_domain: TrustDomain::new(td).unwrap(),
    }
}

fn agent_config(api: &str, dir: &Path) -> AgentConfig {
    AgentConfig {
        endpoint: Some(api.to_owned()),
        cloud: "vm".into(),
        gateway_endpoints: vec!["127.0.0.1:15443".into()],
        snapshot_file: Some(dir.join("catalog.snapshot")),
        heartbeat_interval: Duration::from_millis(200),
        bundle_interval: Duration::from_millis(200),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        static_poll_interval: Duration::from_millis(100),
        ..AgentConfig::default()
    }
}

/// A running agent, with the bundle store a gateway would give it (holding
/// the bundle of its own CA).
struct Running {
    agent: agent::Agent,
    authority: Authority,
    bundles: BundleStore,
    metrics: AgentMetrics,
    registry: prometheus_client::registry::Registry,
    stop: watch::Sender<bool>,
}

impl Running {
    async fn start(cluster: ClusterInfo, agent_cfg: &AgentConfig) -> Self {
        let authority =
            Authority::new(cluster.trust_domain.clone(), AuthorityConfig::default()).unwrap();
        let bundles = BundleStore::new(
            BundleSet::new()
                .with_bundle(cluster.trust_domain.clone(), authority.bundle())
                .unwrap(),
        );
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = AgentMetrics::register(&mut registry);
        let (stop, rx) = watch::channel(false);
        let agent = agent::spawn(agent_cfg, cluster, bundles.clone(), metrics.clone(), rx).unwrap();
        Self {
            agent,
            authority,
            bundles,
            metrics,
            registry,
            stop,
        }
    }

    /// The catalog the agent publishes now.
    fn catalog(&self) -> Arc<CatalogSnapshot> {
        self.agent.catalog.borrow().clone()
    }

    /// Whether the published catalog has an export of `svc`.
    fn exports(&self, svc: &str) -> bool {
        self.catalog()
            .exports
            .keys()
            .any(|k| k.service.to_string() == svc)
    }

    fn revision(&self) -> u64 {
        self.catalog().revision
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.agent.tasks {
            let _ = t.await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_publishes_its_bundle_and_follows_the_catalog() {
    let etcd = EtcdProcess::shared().await.unwrap();
    let api = Api::start(etcd_store(&etcd).await, any_port(), "/agent-t1").await;
    let admin = api.client();
    let dir = tempfile::tempdir().unwrap();
    let gw = Running::start(
        cluster("eu-1", "eu.example"),
        &agent_config(&api.base, dir.path()),
    )
    .await;

    // Registered, heartbeating, own bundle published.
    let own = gw.authority.bundle();
    assert!(
        eventually(10, || async {
            let Ok(c) = admin.get_cluster(&"eu-1".parse().unwrap()).await else {
                return false;
            };
            let connected = c.value.status.as_ref().is_some_and(|s| s.connected);
            let bundle = admin.get_bundle(&"eu.example".parse().unwrap()).await;
            connected
                && c.value.spec.trust_domain.as_str() == "eu.example"
                && c.value.spec.gateway.endpoints[0].to_string() == "127.0.0.1:15443"
                && bundle.is_ok_and(|b| b.sequence() == own.sequence() && b == own)
        })
        .await,
        "cluster not registered or bundle not published"
    );

    // Another member joins: cluster, bundle and an export.
    let us_td = TrustDomain::new("us.example").unwrap();
    let us_ca = Authority::new(us_td.clone(), AuthorityConfig::default()).unwrap();
    federation::put_cluster(&admin, &federation::cluster("us-1", "us.example", "us-1a")).await;
    admin
        .put_bundle(&TrustBundle::new(
            "us.example".parse().unwrap(),
            "us-1".parse().unwrap(),
            us_ca.bundle(),
        ))
        .await
        .unwrap();
    federation::put_export(
        &admin,
        &federation::export("us-1", "shop", "cart", 8080, "ClusterSetIP"),
    )
    .await;
    assert!(
        eventually(10, || async { gw.exports("shop/cart") }).await,
        "export not published"
    );
    // What the gateway does with each catalog: federated bundles into its store.
    let own_td = TrustDomain::new("eu.example").unwrap();
    let bundles = &gw.bundles;
    assert!(
        eventually(10, || async {
            agent::trust::apply_bundles(&own_td, bundles, &gw.catalog());
            bundles
                .load()
                .get(&us_td)
                .is_some_and(|b| b.sequence() == us_ca.bundle().sequence())
        })
        .await,
        "federated bundle not in the catalog"
    );
    // A rotated federated bundle (higher sequence) replaces the old one.
    let rotated = us_ca.bundle().with_sequence(us_ca.bundle().sequence() + 1);
    admin
        .put_bundle(&TrustBundle::new(
            "us.example".parse().unwrap(),
            "us-1".parse().unwrap(),
            rotated.clone(),
        ))
        .await
        .unwrap();
    assert!(
        eventually(10, || async {
            agent::trust::apply_bundles(&own_td, bundles, &gw.catalog());
            bundles
                .load()
                .get(&us_td)
                .is_some_and(|b| b.sequence() == rotated.sequence())
        })
        .await,
        "rotated bundle not in the catalog"
    );
    // Withdrawals are published too.
    admin
        .delete_export(&"us-1".parse().unwrap(), &"shop/cart".parse().unwrap())
        .await
        .unwrap();
    assert!(
        eventually(10, || async { !gw.exports("shop/cart") }).await,
        "withdrawal not published"
    );

    // The applied catalog is persisted and in sync; metrics follow.
    let rev = gw.revision();
    assert!(
        eventually(5, || async {
            persist::load(&dir.path().join("catalog.snapshot"))
                .is_ok_and(|p| p.snapshot.revision == rev)
        })
        .await
    );
    assert_eq!(gw.agent.staleness.seconds(SystemTime::now()), Some(0.0));
    assert_eq!(
        gw.metrics.catalog_revision.get(),
        i64::try_from(rev).unwrap()
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &gw.registry).unwrap();
    let applies: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("causeway_agent_catalog_apply_seconds_count "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(applies >= 3, "{text}");
    assert!(
        text.contains("causeway_agent_catalog_staleness_seconds 0"),
        "{text}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_routing_when_the_api_dies_and_restarts_from_the_persisted_catalog() {
    let etcd = EtcdProcess::shared().await.unwrap();
    let prefix = "/agent-t2";
    let store = etcd_store(&etcd).await;
    let api = Api::start(store.clone(), any_port(), prefix).await;
    let addr = api.addr;
    let admin = api.client();
    let dir = tempfile::tempdir().unwrap();
    let cfg = agent_config(&api.base, dir.path());
    federation::put_cluster(&admin, &federation::cluster("us-1", "us.example", "us-1a")).await;
    federation::put_export(
        &admin,
        &federation::export("us-1", "shop", "cart", 8080, "ClusterSetIP"),
    )
    .await;
    let gw = Running::start(cluster("eu-1", "eu.example"), &cfg).await;
    assert!(eventually(10, || async { gw.exports("shop/cart") }).await);

    // The API dies: routing is unchanged, staleness grows.
    api.kill().await;
    let rev = gw.revision();
    assert!(
        eventually(5, || async {
            gw.agent
                .staleness
                .seconds(SystemTime::now())
                .is_some_and(|s| s > 0.0)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        gw.exports("shop/cart"),
        "catalog dropped while the api is down"
    );
    assert_eq!(gw.revision(), rev);
    assert!(
        gw.metrics.catalog_staleness.get() > 0.0,
        "staleness gauge not updated"
    );
    assert!(gw.metrics.watch_reconnects.get() >= 1);
    let file = cfg.snapshot_file.clone().unwrap();
    assert!(
        eventually(5, || async {
            persist::load(&file).is_ok_and(|p| p.snapshot.revision == rev)
        })
        .await
    );

    // The gateway restarts during the outage: it serves the persisted catalog.
    gw.stop().await;
    let gw2 = Running::start(cluster("eu-1", "eu.example"), &cfg).await;
    assert_eq!(gw2.agent.restored, Some(rev));
    assert!(
        gw2.exports("shop/cart"),
        "persisted catalog not served at start"
    );
    assert_eq!(gw2.revision(), rev);

    // The API comes back on the same address: the gateway catches up.
    let api = Api::start(store, addr, prefix).await;
    let admin = api.client();
    federation::put_export(
        &admin,
        &federation::export("us-1", "shop", "db", 5432, "ClusterSetIP"),
    )
    .await;
    assert!(
        eventually(15, || async { gw2.exports("shop/db") }).await,
        "no catch-up after the api returned"
    );
    {
        let st = gw2.catalog();
        assert!(
            gw2.exports("shop/cart"),
            "rev {} exports {:?} imports {:?}",
            st.revision,
            st.exports.keys().collect::<Vec<_>>(),
            st.imports
        );
    }
    assert!(
        eventually(5, || async {
            gw2.agent.staleness.seconds(SystemTime::now()) == Some(0.0)
        })
        .await
    );
    gw2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_snapshot_is_ignored_not_half_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.snapshot");
    let mut snap = CatalogSnapshot {
        revision: 77,
        ..CatalogSnapshot::default()
    };
    snap.clusters.insert(
        "us-1".parse().unwrap(),
        federation::cluster("us-1", "us.example", "us-1a"),
    );
    let mut bytes = persist::encode(&snap, SystemTime::now()).unwrap();
    let n = bytes.len();
    bytes.truncate(n - 10); // a partial write
    std::fs::write(&path, &bytes).unwrap();
    // No API at all: a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg = agent_config(&format!("http://{closed}"), dir.path());
    let gw = Running::start(cluster("eu-1", "eu.example"), &cfg).await;
    assert_eq!(gw.agent.restored, None);
    assert_eq!(gw.revision(), 0);
    assert!(gw.catalog().clusters.is_empty());
    gw.stop().await;

    // The intact file is used.
    persist::save(&path, &snap, SystemTime::now()).unwrap();
    let gw = Running::start(cluster("eu-1", "eu.example"), &cfg).await;
    assert_eq!(gw.agent.restored, Some(77));
    assert_eq!(gw.revision(), 77);
    gw.stop().await;
}

fn follower(api: &str, file: PathBuf, metrics: AgentMetrics) -> Follower {
    Follower::new(
        FollowerConfig {
            tls: Default::default(),
            endpoint: api.to_owned(),
            token: None,
            snapshot_file: Some(file),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
        },
        metrics,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relists_when_its_revision_was_compacted() {
    let etcd = EtcdProcess::start().await.unwrap();
    let prefix = "/agent-t4";
    let store = etcd_store(&etcd).await;
    let api = Api::start(store.clone(), any_port(), prefix).await;
    let admin = api.client();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog.snapshot");
    federation::put_cluster(&admin, &federation::cluster("us-1", "us.example", "us-1a")).await;

    let (stop, rx) = watch::channel(false);
    let f = follower(&api.base, file.clone(), AgentMetrics::unregistered());
    let sink = f.subscribe();
    let task = tokio::spawn(f.run(rx));
    assert!(eventually(10, || async { sink.borrow().clusters.len() == 1 }).await);
    let old_rev = sink.borrow().revision;
    assert!(
        eventually(5, || async {
            persist::load(&file).is_ok_and(|p| p.snapshot.revision == old_rev)
        })
        .await
    );
    let _ = stop.send(true);
    let _ = task.await;

    // While it is away, the catalog moves on and the history is compacted.
    federation::put_export(
        &admin,
        &federation::export("us-1", "shop", "cart", 8080, "ClusterSetIP"),
    )
    .await;
    federation::put_export(
        &admin,
        &federation::export("us-1", "shop", "db", 5432, "ClusterSetIP"),
    )
    .await;
    let now = store.current_revision().await.unwrap();
    store.compact(now).await.unwrap();

    let metrics = AgentMetrics::unregistered();
    let mut f = follower(&api.base, file, metrics.clone());
    assert_eq!(f.restore(), Some(old_rev));
    let sink = f.subscribe();
    assert_eq!(
        sink.borrow().revision,
        old_rev,
        "restored catalog not published"
    );
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(f.run(rx));
    assert!(
        eventually(10, || async {
            let s = sink.borrow();
            s.exports.len() == 2 && s.revision >= now
        })
        .await,
        "no relist after compaction"
    );
    assert_eq!(metrics.watch_relists.get(), 1);
    let _ = stop.send(true);
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_file_edits_are_published_and_bad_edits_rejected() {
    let etcd = EtcdProcess::shared().await.unwrap();
    let api = Api::start(etcd_store(&etcd).await, any_port(), "/agent-t5").await;
    let admin: Client = api.client();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("services.yaml");
    std::fs::write(
        &file,
        "services:\n  - namespace: legacy\n    name: billing\n    ports: [{name: http, port: 8080}]\n    endpoints:\n      - address: 127.0.0.1:9001\n      - address: 127.0.0.1:9002\n",
    )
    .unwrap();
    let mut cfg = agent_config(&api.base, dir.path());
    cfg.static_file = Some(file.clone());
    let gw = Running::start(cluster("vm-1", "vm.example"), &cfg).await;
    let vm: causeway_api::model::ClusterId = "vm-1".parse().unwrap();
    let billing: causeway_api::model::ServiceRef = "legacy/billing".parse().unwrap();
    let port_of = |admin: Client, vm: causeway_api::model::ClusterId| async move {
        admin
            .list_exports(&vm)
            .await
            .ok()
            .and_then(|l| {
                l.into_iter()
                    .find(|e| e.service() == "legacy/billing".parse().unwrap())
            })
            .map(|e| (e.spec.ports[0].port, e.spec.ready()))
    };
    assert!(
        eventually(10, || async {
            port_of(admin.clone(), vm.clone()).await == Some((8080, 2))
        })
        .await
    );
    assert_eq!(gw.agent.local.borrow().ready["legacy/billing"].len(), 2);
    // Its own export comes back in the catalog.
    assert!(eventually(10, || async { gw.exports("legacy/billing") }).await);

    // An edit applies without restart.
    std::fs::write(
        &file,
        "services:\n  - namespace: legacy\n    name: billing\n    ports: [{name: http, port: 8081}]\n    endpoints:\n      - address: 127.0.0.1:9001\n",
    )
    .unwrap();
    assert!(
        eventually(10, || async {
            port_of(admin.clone(), vm.clone()).await == Some((8081, 1))
        })
        .await
    );

    // A bad edit is rejected; the previous good state stays.
    std::fs::write(
        &file,
        "services:\n  - namespace: legacy\n    name: billing\n    ports: [{port: lots}]\n",
    )
    .unwrap();
    assert!(eventually(5, || async { gw.metrics.static_file_errors.get() >= 1 }).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(port_of(admin.clone(), vm.clone()).await, Some((8081, 1)));
    assert_eq!(gw.agent.local.borrow().ready["legacy/billing"].len(), 1);

    // Removing the service withdraws the export.
    std::fs::write(&file, "services: []\n").unwrap();
    assert!(
        eventually(10, || async {
            !admin
                .list_exports(&vm)
                .await
                .unwrap()
                .iter()
                .any(|e| e.service() == billing)
        })
        .await
    );
    gw.stop().await;
}

#[tokio::test]
async fn own_bundle_is_published_when_its_sequence_changes() {
    use causeway_agent::trust::BundlePublisher;
    let api = Api::memory().await;
    let admin = api.client();
    federation::put_cluster(&admin, &federation::cluster("vm-1", "vm.example", "vm-1a")).await;
    let td = TrustDomain::new("vm.example").unwrap();
    let ca = Authority::new(td.clone(), AuthorityConfig::default()).unwrap();
    // The gateway's store, which its identity keeps current.
    let store = BundleStore::new(BundleSet::new());
    let metrics = AgentMetrics::unregistered();
    let publisher = BundlePublisher {
        client: admin.clone(),
        cluster: "vm-1".parse().unwrap(),
        trust_domain: td.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        interval: Duration::from_secs(1),
    };
    let mut published = None;
    assert_eq!(
        publisher.round(&mut published).await,
        None,
        "published without a bundle"
    );
    let seq = ca.bundle().sequence();
    store.update(&td, ca.bundle()).unwrap();
    assert_eq!(publisher.round(&mut published).await, Some(seq));
    assert_eq!(
        publisher.round(&mut published).await,
        None,
        "unchanged bundle republished"
    );
    let rotated = ca.bundle().with_sequence(seq + 1);
    store.update(&td, rotated.clone()).unwrap();
    assert_eq!(publisher.round(&mut published).await, Some(seq + 1));
    let served = admin
        .get_bundle(&"vm.example".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(served, rotated);
    assert_eq!(
        metrics.bundle_sequence.get(),
        i64::try_from(seq + 1).unwrap()
    );
}

#[tokio::test]
async fn exports_are_not_withdrawn_before_every_source_has_synced() {
    use causeway_agent::exports::{ExportPublisher, ExportSources, ExportStatuses};
    let api = Api::memory().await;
    let admin = api.client();
    federation::put_cluster(&admin, &federation::cluster("vm-1", "vm.example", "vm-1a")).await;
    // Published by a previous run of this gateway.
    federation::put_export(
        &admin,
        &federation::export("vm-1", "legacy", "billing", 80, "ClusterSetIP"),
    )
    .await;
    let sources = ExportSources::new(&["static"]);
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(
        ExportPublisher {
            client: admin.clone(),
            cluster: "vm-1".parse().unwrap(),
            metrics: AgentMetrics::unregistered(),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_millis(400)),
            status_interval: Duration::from_millis(100),
            statuses: watch::channel(ExportStatuses::new()).0,
        }
        .run(sources.clone(), rx),
    );
    let vm: causeway_api::model::ClusterId = "vm-1".parse().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        admin.list_exports(&vm).await.unwrap().len(),
        1,
        "withdrawn before sync"
    );
    // The source syncs and no longer has the service: now it is withdrawn.
    sources.set("static", Default::default());
    assert!(
        eventually(5, || async {
            admin.list_exports(&vm).await.unwrap().is_empty()
        })
        .await
    );
    let _ = stop.send(true);
    let _ = task.await;
}

/// Finding 6 (SECURITY.md F12): the agent logs and counts every change of
/// a known cluster's jurisdictions or region it applies from the catalog
/// (residency follows these facts; only an admin can change them).
/// Registration and unrelated changes count nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placement_changes_applied_from_the_catalog_are_counted() {
    use causeway_agent::metrics::PlacementLabels;
    let etcd = EtcdProcess::start().await.unwrap();
    let store = etcd_store(&etcd).await;
    let api = Api::start(store, any_port(), "/agent-placement").await;
    let admin = api.client();
    let dir = tempfile::tempdir().unwrap();
    let mut eu = federation::cluster("eu-1", "eu.example", "eu-1a");
    federation::put_cluster(&admin, &eu).await;

    let metrics = AgentMetrics::unregistered();
    let f = follower(
        &api.base,
        dir.path().join("catalog.snapshot"),
        metrics.clone(),
    );
    let sink = f.subscribe();
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(f.run(rx));
    assert!(eventually(10, || async { sink.borrow().clusters.len() == 1 }).await);
    let count = |field: &'static str| {
        metrics
            .placement_changes
            .get_or_create(&PlacementLabels { field })
            .get()
    };
    // A change that is not placement, then a new cluster: nothing counted.
    eu.spec.zone = "eu-1b".into();
    federation::put_cluster(&admin, &eu).await;
    federation::put_cluster(&admin, &federation::cluster("us-1", "us.example", "us-1a")).await;
    assert!(eventually(10, || async { sink.borrow().clusters.len() == 2 }).await);
    assert_eq!((count("jurisdictions"), count("region")), (0, 0));
    // The admin moves eu-1 into another jurisdiction, then another region.
    eu.spec.jurisdictions = vec!["eu".into(), "us".into()];
    federation::put_cluster(&admin, &eu).await;
    assert!(eventually(10, || async { count("jurisdictions") == 1 }).await);
    eu.spec.region = "us-east".into();
    federation::put_cluster(&admin, &eu).await;
    assert!(eventually(10, || async { count("region") == 1 }).await);
    assert_eq!(count("jurisdictions"), 1);
    let _ = stop.send(true);
    let _ = task.await;
}
