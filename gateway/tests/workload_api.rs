//! The SPIFFE Workload API as the gateway's identity source, against a fake
//! Workload API server that speaks the real protobuf (`workload.proto`, tonic
//! stubs) over a Unix socket, as a SPIRE agent does: SVIDs issued under an
//! intermediate CA (SPIRE with an UpstreamAuthority), the peer's bundle
//! delivered as a federated bundle on the stream, a rotation pushed on the
//! stream taken for new connections with zero failed requests, a message
//! whose bundle does not verify its SVID refused, and a socket that
//! disappears and comes back.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use causeway_api::workload_api::{SECURITY_HEADER, concat_der, pb};
use causeway_gateway::config::{IdentityConfig, IdentitySource};
use causeway_trust::testing::{LeafSpec, TestCa, TestLeaf};
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, PeerPolicy, SystemClock,
    TrustDomain,
};
use futures::Stream;
use rustls_pki_types::{CertificateDer, ServerName};
use support::backend::Backend;
use support::client::{get, http1};
use support::fixture::{Site, catalog, export, start_binary, write_catalog};
use tokio::sync::watch;

const EU_HOST: &str = "echo.demo.svc.clusterset.local";
const US_HOST: &str = "api.demo.svc.clusterset.local";

/// A fake SPIFFE Workload API: serves whatever X.509 and JWT bundle
/// messages the test pushes, on a Unix socket, refusing calls without the
/// `workload.spiffe.io: true` metadata as SPIRE does.
struct FakeWorkloadApi {
    socket: PathBuf,
    x509: watch::Sender<Option<pb::X509svidResponse>>,
    jwt: watch::Sender<Option<pb::JwtBundlesResponse>>,
    streams: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Svc {
    x509: watch::Receiver<Option<pb::X509svidResponse>>,
    jwt: watch::Receiver<Option<pb::JwtBundlesResponse>>,
    streams: Arc<AtomicUsize>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

fn follow<T: Clone + Send + Sync + 'static>(rx: watch::Receiver<Option<T>>) -> BoxStream<T> {
    Box::pin(futures::stream::unfold(
        (rx, true),
        |(mut rx, first)| async move {
            if !first && rx.changed().await.is_err() {
                return None;
            }
            loop {
                let current = rx.borrow_and_update().clone();
                if let Some(m) = current {
                    return Some((Ok(m), (rx, false)));
                }
                rx.changed().await.ok()?;
            }
        },
    ))
}

fn checked<T>(r: &tonic::Request<T>) -> Result<(), tonic::Status> {
    if causeway_api::workload_api::has_security_header(r) {
        Ok(())
    } else {
        Err(tonic::Status::invalid_argument(format!(
            "security header missing from request: {SECURITY_HEADER}"
        )))
    }
}

#[tonic::async_trait]
impl pb::spiffe_workload_api_server::SpiffeWorkloadApi for Svc {
    async fn fetch_jwtsvid(
        &self,
        r: tonic::Request<pb::JwtsvidRequest>,
    ) -> Result<tonic::Response<pb::JwtsvidResponse>, tonic::Status> {
        checked(&r)?;
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    type FetchJWTBundlesStream = BoxStream<pb::JwtBundlesResponse>;

    async fn fetch_jwt_bundles(
        &self,
        r: tonic::Request<pb::JwtBundlesRequest>,
    ) -> Result<tonic::Response<Self::FetchJWTBundlesStream>, tonic::Status> {
        checked(&r)?;
        Ok(tonic::Response::new(follow(self.jwt.clone())))
    }

    async fn validate_jwtsvid(
        &self,
        r: tonic::Request<pb::ValidateJwtsvidRequest>,
    ) -> Result<tonic::Response<pb::ValidateJwtsvidResponse>, tonic::Status> {
        checked(&r)?;
        Err(tonic::Status::unimplemented("not in this fake"))
    }

    type FetchX509SVIDStream = BoxStream<pb::X509svidResponse>;

    async fn fetch_x509svid(
        &self,
        r: tonic::Request<pb::X509svidRequest>,
    ) -> Result<tonic::Response<Self::FetchX509SVIDStream>, tonic::Status> {
        checked(&r)?;
        self.streams.fetch_add(1, Ordering::SeqCst);
        Ok(tonic::Response::new(follow(self.x509.clone())))
    }

    type FetchX509BundlesStream = BoxStream<pb::X509BundlesResponse>;

    async fn fetch_x509_bundles(
        &self,
        r: tonic::Request<pb::X509BundlesRequest>,
    ) -> Result<tonic::Response<Self::FetchX509BundlesStream>, tonic::Status> {
        checked(&r)?;
        Err(tonic::Status::unimplemented("not in this fake"))
    }
}

impl FakeWorkloadApi {
    fn start(socket: &Path, first: Option<pb::X509svidResponse>) -> Self {
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        let (x509, x509_rx) = watch::channel(first);
        let (jwt, jwt_rx) = watch::channel(None);
        let streams = Arc::new(AtomicUsize::new(0));
        let svc = pb::spiffe_workload_api_server::SpiffeWorkloadApiServer::new(Svc {
            x509: x509_rx,
            jwt: jwt_rx,
            streams: streams.clone(),
        });
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let svc = svc.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let mut svc = svc.clone();
                        async move { tonic::codegen::Service::call(&mut svc, req).await }
                    });
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
            // `conns` is dropped with the task: aborting it closes every
            // connection, as a dying agent would.
        });
        Self {
            socket: socket.to_owned(),
            x509,
            jwt,
            streams,
            task,
        }
    }

    fn push(&self, m: pb::X509svidResponse) {
        self.x509.send_replace(Some(m));
    }

    fn push_jwt(&self, m: pb::JwtBundlesResponse) {
        self.jwt.send_replace(Some(m));
    }

    /// Stops serving and removes the socket (the agent went away).
    fn stop(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

fn x509_message(
    leaf: &TestLeaf,
    root: &TestCa,
    federated: &[(&str, &Bundle)],
) -> pb::X509svidResponse {
    let id = causeway_trust::peer_spiffe_id(&leaf.chain).unwrap();
    pb::X509svidResponse {
        svids: vec![pb::X509svid {
            spiffe_id: id.to_string(),
            x509_svid: concat_der(&leaf.chain),
            x509_svid_key: leaf.key.secret_pkcs8_der().to_vec(),
            bundle: root.root_der().to_vec(),
            hint: String::new(),
        }],
        crl: vec![],
        federated_bundles: federated
            .iter()
            .map(|(td, b)| {
                (
                    format!("spiffe://{td}"),
                    concat_der(b.x509_authorities().map(|a| a.cert_der())),
                )
            })
            .collect(),
    }
}

fn leaf(ca: &TestCa, id: &str, lifetime: Duration) -> TestLeaf {
    let mut spec = LeafSpec::svid(id);
    spec.not_after = time::OffsetDateTime::now_utc() + lifetime;
    ca.issue(&spec).unwrap()
}

/// The leaf the ingress at `addr` presents on a fresh connection, verified
/// against `trust` and authenticated with `client` (an SVID of a peer).
async fn presented_leaf(
    addr: std::net::SocketAddr,
    trust: BundleStore,
    client: &causeway_trust::X509Svid,
) -> CertificateDer<'static> {
    let opts = causeway_trust::TlsOptions {
        alpn_protocols: vec![b"h2".to_vec()],
        ..Default::default()
    };
    let config =
        causeway_trust::client_config_with(client, trust, PeerPolicy::AnyFederated, &opts).unwrap();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("gateway").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

async fn metric(admin: std::net::SocketAddr, name: &str) -> f64 {
    let r = get(admin, "admin", "/metrics").await.unwrap();
    let body = String::from_utf8_lossy(&r.body).to_string();
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_takes_its_svid_from_the_workload_api_and_rotates_without_failures() {
    let dir = tempfile::tempdir().unwrap();
    // eu-1: an ordinary gateway (its own authority). us-1: SVIDs from the
    // Workload API, issued under an intermediate of a root eu-1 trusts.
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let us_td = TrustDomain::new(&us.trust_domain).unwrap();
    let root = TestCa::new(&us_td).unwrap();
    let mid1 = root.intermediate().unwrap();
    std::fs::write(&us.bundle_file, root.bundle().to_json_pretty()).unwrap();
    let eu_bundle = Bundle::parse_str(&std::fs::read_to_string(&eu.bundle_file).unwrap()).unwrap();
    let us_id = format!("spiffe://{}/causeway/gateway/us-1", us.trust_domain);

    let eu_backend = Backend::start("eu-1").await;
    let us_backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(
            3,
            &[&eu, &us],
            vec![
                export("demo/echo", "eu-1", 1),
                export("demo/api", "us-1", 1),
            ],
            vec![],
        ),
    );

    let socket = dir.path().join("agent.sock");
    let svid1 = leaf(&mid1, &us_id, Duration::from_secs(3600));
    let fake = FakeWorkloadApi::start(
        &socket,
        Some(x509_message(
            &svid1,
            &root,
            &[(&eu.trust_domain, &eu_bundle)],
        )),
    );
    // us-1 names no federated bundle file: eu-1's bundle comes on the stream.
    let mut us_cfg = us.config(&[], &cat, &[("demo/api", us_backend.addr)]);
    us_cfg.identity = IdentityConfig::new(IdentitySource::WorkloadApi {
        socket: socket.clone(),
    });
    let us_gw = start_binary(&us_cfg, &dir.path().join("us.json")).await;
    let _eu_gw = start_binary(
        &eu.config(&[&us], &cat, &[("demo/echo", eu_backend.addr)]),
        &dir.path().join("eu.json"),
    )
    .await;

    // What eu-1 trusts, to look at what us-1 presents on new connections.
    let eu_authority = Authority::load(
        &eu.authority_dir,
        AuthorityConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let eu_svid = eu_authority
        .issue_x509_svid(
            &causeway_gateway::identity::gateway_id(
                &TrustDomain::new(&eu.trust_domain).unwrap(),
                "eu-1",
            )
            .unwrap(),
        )
        .unwrap();
    let trust = BundleStore::new(
        BundleSet::new()
            .with_bundle(us_td.clone(), root.bundle())
            .unwrap(),
    );

    // Both directions over mTLS with the Workload API SVID (leaf +
    // intermediate): us-1 as server (eu -> us) and as client (us -> eu).
    let wait_ok = |addr, host: &'static str, served: &'static str| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = http1(addr, "GET", host, "/", &[]).await;
            if let Ok(r) = &r
                && r.status == 200
            {
                assert_eq!(r.served_by().as_deref(), Some(served));
                return;
            }
            assert!(Instant::now() < deadline, "{host} via {addr}: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_ok(eu.egress, US_HOST, "us-1").await;
    wait_ok(us.egress, EU_HOST, "eu-1").await;
    let presented = presented_leaf(us.ingress, trust.clone(), &eu_svid).await;
    assert_eq!(
        presented, svid1.chain[0],
        "us-1 presents the workload api svid"
    );

    // Load in both directions while the SVID rotates (a new intermediate
    // and leaf, the same root): zero failed requests.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for (addr, host) in [(eu.egress, US_HOST), (us.egress, EU_HOST)] {
        let stop = stop.clone();
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match http1(addr, "GET", host, "/", &[]).await {
                    Ok(r) if r.status == 200 => ok += 1,
                    other => failed.push(format!("{other:?}")),
                }
            }
            (ok, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mid2 = root.intermediate().unwrap();
    let svid2 = leaf(&mid2, &us_id, Duration::from_secs(7200));
    let pushed_at = Instant::now();
    fake.push(x509_message(
        &svid2,
        &root,
        &[(&eu.trust_domain, &eu_bundle)],
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    let rotated_after = loop {
        let p = presented_leaf(us.ingress, trust.clone(), &eu_svid).await;
        if p == svid2.chain[0] {
            break Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "rotation not taken for new connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for l in load {
        let (ok, failed) = l.await.unwrap();
        assert!(failed.is_empty(), "failed during rotation: {failed:?}");
        assert!(ok > 10, "too little load: {ok}");
        eprintln!("during rotation: {ok} requests, 0 failed");
    }
    eprintln!(
        "rotation pushed -> presented on new connections: {:?}",
        rotated_after - pushed_at
    );
    assert!(
        metric(
            us_gw.admin,
            "causeway_gateway_identity_updates_total{kind=\"x509_svid\"}"
        )
        .await
            >= 1.0
    );

    // A message whose bundle does not verify its SVID is refused and
    // counted; the last good SVID keeps serving.
    let stranger = TestCa::new(&us_td).unwrap();
    let bad = leaf(&stranger, &us_id, Duration::from_secs(3600));
    let mut msg = x509_message(&bad, &root, &[]);
    msg.svids[0].bundle = root.root_der().to_vec();
    fake.push(msg);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(
        us_gw.admin,
        "causeway_gateway_identity_source_errors_total{source=\"workload_api\",reason=\"svid_not_verified\"}",
    )
    .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "bad svid not counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        presented_leaf(us.ingress, trust.clone(), &eu_svid).await,
        svid2.chain[0]
    );
    wait_ok(eu.egress, US_HOST, "us-1").await;

    // The agent goes away: traffic goes on with the last good identity;
    // it comes back with a newer SVID, which is taken.
    let streams_before = fake.streams.load(Ordering::SeqCst);
    assert!(streams_before >= 1);
    fake.stop();
    tokio::time::sleep(Duration::from_millis(500)).await;
    wait_ok(eu.egress, US_HOST, "us-1").await;
    wait_ok(us.egress, EU_HOST, "eu-1").await;
    let mid3 = root.intermediate().unwrap();
    let svid3 = leaf(&mid3, &us_id, Duration::from_secs(9000));
    let fake = FakeWorkloadApi::start(
        &socket,
        Some(x509_message(
            &svid3,
            &root,
            &[(&eu.trust_domain, &eu_bundle)],
        )),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented_leaf(us.ingress, trust.clone(), &eu_svid).await != svid3.chain[0] {
        assert!(
            Instant::now() < deadline,
            "svid after the agent came back not taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric(
            us_gw.admin,
            "causeway_gateway_identity_source_errors_total{source=\"workload_api\",reason=\"unreachable\"}"
        )
        .await
            >= 1.0
    );
    wait_ok(eu.egress, US_HOST, "us-1").await;

    // JWT authorities from FetchJWTBundles join the own bundle (they verify
    // workloads' JWT-SVIDs); the X.509 authorities stay.
    // A JWK set as SPIRE serves it: JWT keys only, no `use`.
    let jwt_ca = Authority::new(us_td.clone(), AuthorityConfig::default()).unwrap();
    let mut jwks: serde_json::Value = serde_json::from_str(&jwt_ca.bundle().to_json()).unwrap();
    let keys: Vec<serde_json::Value> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["use"] == "jwt-svid")
        .map(|k| {
            let mut k = k.clone();
            k.as_object_mut().unwrap().remove("use");
            k
        })
        .collect();
    assert!(!keys.is_empty());
    jwks = serde_json::json!({ "keys": keys });
    fake.push_jwt(pb::JwtBundlesResponse {
        bundles: HashMap::from([(
            format!("spiffe://{}", us.trust_domain),
            jwks.to_string().into_bytes(),
        )]),
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(
        us_gw.admin,
        "causeway_gateway_identity_updates_total{kind=\"jwt_bundle\"}",
    )
    .await
        < 1.0
    {
        assert!(Instant::now() < deadline, "jwt bundle not taken");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_ok(eu.egress, US_HOST, "us-1").await;
    fake.stop();
}
