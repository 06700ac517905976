//! The agent authenticating to a TLS federation API with the gateway's
//! X.509-SVID only (`agent.authenticateWithSvid`, no token file), over real
//! sockets: an admin registered the cluster and published its bundle; the
//! agent then registers, heartbeats and follows the gRPC catalog watch with
//! its SVID. Without the SVID (and without a token) it gets nowhere.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use causeway_agent::{self as agent, AgentConfig, AgentMetrics, ClusterInfo};
use causeway_api::client::{Client, ClientCert, Precondition, TlsOptions};
use causeway_api::model::TrustBundle;
use causeway_federation::server::tls::TlsConfig;
use causeway_federation::server::{Authn, Server, ServerConfig};
use causeway_federation::store::MemoryStore;
use causeway_federation::token::{JwtKeys, Scope, generate_es256_pem};
use causeway_trust::{Authority, AuthorityConfig, BundleSet, BundleStore, TrustDomain};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::sync::watch;

struct Api {
    https: String,
    ca_file: std::path::PathBuf,
    keys: JwtKeys,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &Issuer::new(ca, ca_key))
        .unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.crt"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), key.serialize_pem()).unwrap();
    let (private_pem, public_pem) = generate_es256_pem().unwrap();
    let keys = JwtKeys::es256(
        public_pem.as_bytes(),
        Some(private_pem.as_bytes()),
        "causeway",
        None,
    )
    .unwrap();
    let config = ServerConfig {
        tls: Some(TlsConfig {
            cert_file: dir.path().join("tls.crt"),
            key_file: dir.path().join("tls.key"),
            reload_interval: Duration::from_millis(100),
        }),
        ..ServerConfig::default()
    };
    let server = Server::new(
        config,
        Arc::new(MemoryStore::new()),
        Authn::Jwt(keys.clone()),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let _ = server.serve(listener, std::future::pending()).await;
    });
    Api {
        https: format!("https://localhost:{port}"),
        ca_file,
        keys,
        _dir: dir,
        task,
    }
}

fn agent_config(api: &Api, with_svid: bool) -> AgentConfig {
    AgentConfig {
        endpoint: Some(api.https.clone()),
        ca_file: Some(api.ca_file.clone()),
        authenticate_with_svid: with_svid,
        cloud: "vm".into(),
        gateway_endpoints: vec!["127.0.0.1:15443".into()],
        heartbeat_interval: Duration::from_millis(200),
        bundle_interval: Duration::from_millis(200),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        ..AgentConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_registers_and_follows_the_catalog_with_its_svid_only() {
    let api = tls_api().await;
    let admin_token = api
        .keys
        .mint(&[Scope::Admin], Duration::from_secs(300), Some("test"))
        .unwrap();
    let admin = Client::with_tls(
        &api.https,
        Some(admin_token),
        &TlsOptions::with_ca_file(&api.ca_file),
    )
    .unwrap();
    let td = TrustDomain::new("eu.test").unwrap();
    let cluster = ClusterInfo {
        id: "eu-1".parse().unwrap(),
        region: "eu-west".into(),
        zone: "eu-west-1a".into(),
        jurisdictions: vec!["eu".into()],
        trust_domain: td.clone(),
    };
    let authority = Authority::new(td.clone(), AuthorityConfig::default()).unwrap();
    // The admin registers the cluster (as the agent will describe it) and
    // publishes its bundle: then its SVID can verify.
    let record = agent::register::cluster_record(&cluster, &agent_config(&api, true)).unwrap();
    admin
        .put_cluster(&record, Precondition::None)
        .await
        .unwrap();
    admin
        .put_bundle(&TrustBundle::new(
            "eu.test".parse().unwrap(),
            "eu-1".parse().unwrap(),
            authority.bundle(),
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let svid = authority
        .issue_x509_svid(&td.spiffe_id("/causeway/gateway/eu-1").unwrap())
        .unwrap();
    let key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(svid.private_key_der())
        .unwrap();
    let certified = rustls::sign::CertifiedKey::new(svid.cert_chain_der().to_vec(), key);
    let resolver = ClientCert(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    let bundles = BundleStore::new(
        BundleSet::new()
            .with_bundle(td.clone(), authority.bundle())
            .unwrap(),
    );

    // Without the SVID (and no token): no catalog.
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = AgentMetrics::register(&mut registry);
    let (stop_plain, rx) = watch::channel(false);
    let plain = agent::spawn_with_svid(
        &agent_config(&api, false),
        cluster.clone(),
        bundles.clone(),
        metrics.clone(),
        rx,
        Some(resolver.clone()),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        plain.catalog.borrow().clusters.is_empty(),
        "an agent without credentials followed the catalog"
    );
    let _ = stop_plain.send(true);

    // With it: the catalog (holding eu-1) arrives over the gRPC watch and
    // the heartbeat marks the cluster connected.
    let (_stop, rx) = watch::channel(false);
    let mut running = agent::spawn_with_svid(
        &agent_config(&api, true),
        cluster,
        bundles,
        metrics,
        rx,
        Some(resolver),
    )
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if running
                .catalog
                .borrow_and_update()
                .clusters
                .contains_key(&"eu-1".parse::<causeway_api::model::ClusterId>().unwrap())
            {
                return;
            }
            running.catalog.changed().await.unwrap();
        }
    })
    .await;
    assert!(got.is_ok(), "no catalog over the svid-authenticated watch");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let c: serde_json::Value = admin.get("/v1/clusters/eu-1").await.unwrap().value;
        if c["status"]["connected"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "heartbeat with the svid never landed: {c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
