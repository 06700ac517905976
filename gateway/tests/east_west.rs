//! Several gateways, each its own cluster and trust domain with an authority
//! in a temp dir, bundles exchanged via files, running as the built binary
//! (child processes killed by pid on drop): the mTLS east-west path,
//! rejection of non-federated peers, residency, failover and back.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::backend::{Backend, grpc_messages};
use support::client::{get, grpc, http1};
use support::fixture::{
    GatewayProc, Site, access_ids, catalog, export, export_tcp, free_port, residency, start_binary,
    start_binary_opts, write_catalog,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOST: &str = "echo.demo.svc.clusterset.local";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_to_remote_ingress_over_mtls_h2() {
    let dir = tempfile::tempdir().unwrap();
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let us_backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(7, &[&eu, &us], vec![export("demo/echo", "us-1", 2)], vec![]),
    );
    let _us_gw = start_binary(
        &us.config(&[&eu], &cat, &[("demo/echo", us_backend.addr)]),
        &dir.path().join("us.json"),
    )
    .await;
    let mut eu_cfg = eu.config(&[&us], &cat, &[]);
    eu_cfg.observability.access_log = true;
    let mut eu_gw = start_binary_opts(&eu_cfg, &dir.path().join("eu.json"), true).await;
    let stdout = eu_gw.child.stdout.take().unwrap();
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });

    // HTTP/1.1 from the client, HTTP/2 over mTLS between the gateways.
    let r = http1(
        eu.egress,
        "GET",
        HOST,
        "/across",
        &[("x-causeway-source-cluster", "forged")],
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.served_by().as_deref(), Some("us-1"));
    let h = &r.json()["headers"];
    assert_eq!(h["x-causeway-source-cluster"], "eu-1");
    assert_eq!(
        h["x-causeway-source-gateway"],
        "spiffe://eu-1.causeway.test/causeway/gateway/eu-1"
    );
    assert_eq!(
        h["x-causeway-source-workload"],
        "spiffe://eu-1.causeway.test/causeway/gateway/eu-1"
    );
    assert!(
        h.get("x-causeway-caller-jwt").is_none(),
        "caller jwt must not reach the backend"
    );
    assert!(h["traceparent"].as_str().unwrap().starts_with("00-"));
    let trace_id = &h["traceparent"].as_str().unwrap()[3..35];

    // One JSON access-log line for that request, with the same trace id.
    let line = tokio::time::timeout(Duration::from_secs(5), line_rx.recv())
        .await
        .unwrap()
        .unwrap();
    let log: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(log["listener"], "egress");
    assert_eq!(log["trace_id"], trace_id);
    assert_eq!(log["destination_cluster"], "us-1");
    assert_eq!(log["service"], "demo/echo");
    assert_eq!(log["status"], 200);
    assert!(log["total_ms"].as_f64().unwrap() >= log["upstream_ms"].as_f64().unwrap());

    // gRPC streaming across the link keeps trailers.
    let g = grpc(eu.egress, HOST, &[b"x", b"y"]).await.unwrap();
    assert_eq!(grpc_messages(&g.body).len(), 2);
    let t = g.trailers.expect("trailers across the link");
    assert_eq!(t["grpc-status"], "0");
    assert_eq!(t["x-echo-count"], "2");

    // WebSocket upgrade across the link (HTTP/1.1 over mTLS).
    let mut s = TcpStream::connect(eu.egress).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"over-the-link").await.unwrap();
    let mut got = Vec::new();
    while got.len() < 13 {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(&got, b"over-the-link");

    // A request for a service us-1 does not export never reaches a backend.
    let before = us_backend.count();
    let r = get(eu.egress, "other.demo.svc.clusterset.local", "/")
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(us_backend.count(), before);

    // Metrics on the source gateway name both clusters.
    let m = get(eu.admin, "admin", "/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(
        text.contains("destination_cluster=\"us-1\""),
        "metrics lack the destination: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_from_non_federated_trust_domain_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let evil = Site::new(dir.path(), "evil", "us-east", "us-east-1b", &["us"]);
    let backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(
            1,
            &[&us, &evil],
            vec![export("demo/echo", "us-1", 1)],
            vec![],
        ),
    );
    // us-1 does not federate with evil; evil trusts us-1 (so only the
    // ingress side can refuse).
    let _us_gw = start_binary(
        &us.config(&[], &cat, &[("demo/echo", backend.addr)]),
        &dir.path().join("us.json"),
    )
    .await;
    let _evil_gw = start_binary(
        &evil.config(&[&us], &cat, &[]),
        &dir.path().join("evil.json"),
    )
    .await;
    for _ in 0..3 {
        let r = get(evil.egress, HOST, "/").await.unwrap();
        assert!(r.status >= 500, "status {}", r.status);
    }
    assert_eq!(
        backend.count(),
        0,
        "a request from a non-federated peer reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residency_denies_when_allowed_clusters_are_down() {
    let dir = tempfile::tempdir().unwrap();
    let eu1 = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let eu2 = Site::new(dir.path(), "eu-2", "eu-central", "eu-central-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let us_backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(
            3,
            &[&eu1, &eu2, &us],
            vec![
                export("demo/echo", "eu-2", 1),
                export("demo/echo", "us-1", 1),
            ],
            vec![residency("eu-only", &["demo/echo"], &["eu"])],
        ),
    );
    // eu-2 (the only allowed cluster) is not running; us-1 is healthy.
    let _us_gw = start_binary(
        &us.config(&[&eu1, &eu2], &cat, &[("demo/echo", us_backend.addr)]),
        &dir.path().join("us.json"),
    )
    .await;
    let _eu_gw = start_binary(
        &eu1.config(&[&eu2, &us], &cat, &[]),
        &dir.path().join("eu1.json"),
    )
    .await;
    let mut reasons = Vec::new();
    for _ in 0..10 {
        let r = get(eu1.egress, HOST, "/").await.unwrap();
        assert_eq!(r.status, 503, "{:?}", r.body);
        reasons.push(r.header("x-causeway-deny-reason").unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(us_backend.count(), 0, "residency violated");
    assert_eq!(
        reasons.last().map(String::as_str),
        Some("residency"),
        "{reasons:?}"
    );
    let body = get(eu1.egress, HOST, "/").await.unwrap().json();
    assert_eq!(body["reason"], "residency");
    assert_eq!(body["policy"], "eu-only");
    let explained = get(eu1.admin, "admin", &format!("/debug/route?host={HOST}"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&explained.body).contains("eu-only"));
}

async fn served_by(site: &Site, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = get(site.egress, HOST, "/").await.unwrap();
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.push(r.served_by().unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_tier_and_back_without_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let eu1 = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let eu2 = Site::new(dir.path(), "eu-2", "eu-west", "eu-west-1b", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let eu2_backend = Backend::start("eu-2").await;
    let us_backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(
            4,
            &[&eu1, &eu2, &us],
            vec![
                export("demo/echo", "eu-2", 1),
                export("demo/echo", "us-1", 1),
            ],
            vec![],
        ),
    );
    let eu2_cfg = eu2.config(&[&eu1, &us], &cat, &[("demo/echo", eu2_backend.addr)]);
    let eu2_path = dir.path().join("eu2.json");
    let mut eu2_gw: Option<GatewayProc> = Some(start_binary(&eu2_cfg, &eu2_path).await);
    let _us_gw = start_binary(
        &us.config(&[&eu1, &eu2], &cat, &[("demo/echo", us_backend.addr)]),
        &dir.path().join("us.json"),
    )
    .await;
    let _eu1_gw = start_binary(
        &eu1.config(&[&eu2, &us], &cat, &[]),
        &dir.path().join("eu1.json"),
    )
    .await;

    // Same region first.
    assert!(served_by(&eu1, 5).await.iter().all(|c| c == "eu-2"));
    assert_eq!(us_backend.count(), 0);

    // eu-2's gateway dies: requests fail over (retries, then probes) with
    // no failed request.
    drop(eu2_gw.take());
    let after_kill = served_by(&eu1, 10).await;
    assert!(after_kill.iter().all(|c| c == "us-1"), "{after_kill:?}");

    // eu-2 comes back: traffic returns once its probe passes.
    eu2_gw = Some(start_binary(&eu2_cfg, &eu2_path).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(eu1.egress, HOST, "/").await.unwrap();
        assert_eq!(r.status, 200);
        if r.served_by().as_deref() == Some("eu-2") {
            break;
        }
        assert!(Instant::now() < deadline, "traffic never returned to eu-2");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(eu2_gw.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_exits_with_code_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "cluster: { id: Bad_Id, trustDomain: t.test }\nidentity: { authorityDir: /tmp/x }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_causeway-gateway"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster.id"));
    std::fs::write(
        &path,
        "cluster: { id: a, trustDomain: t.test, colour: blue }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_causeway-gateway"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_policy_authorizes_the_caller_workload_from_its_jwt_svid() {
    let dir = tempfile::tempdir().unwrap();
    let eu1 = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let eu2 = Site::new(dir.path(), "eu-2", "eu-west", "eu-west-1b", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    let frontend = "spiffe://eu-1.causeway.test/ns/demo/sa/frontend";
    let mut c = catalog(
        5,
        &[&eu1, &eu2, &us],
        vec![export("demo/echo", "us-1", 1)],
        vec![],
    );
    let p = access_ids("frontend-only", &["demo/echo"], &[frontend]);
    c.policies.access.insert(p.name().clone(), p);
    write_catalog(&cat, &c);
    let _us = start_binary(
        &us.config(&[&eu1, &eu2], &cat, &[("demo/echo", backend.addr)]),
        &dir.path().join("us.json"),
    )
    .await;
    let mut eu1_cfg = eu1.config(&[&us], &cat, &[]);
    eu1_cfg.identity.workload_id = Some(frontend.parse().unwrap());
    let _eu1 = start_binary(&eu1_cfg, &dir.path().join("eu1.json")).await;
    let _eu2 = start_binary(&eu2.config(&[&us], &cat, &[]), &dir.path().join("eu2.json")).await;

    let ok = get(eu1.egress, HOST, "/").await.unwrap();
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.json()["headers"]["x-causeway-source-workload"], frontend);
    assert_eq!(backend.count(), 1);

    let denied = get(eu2.egress, HOST, "/").await.unwrap();
    assert_eq!(denied.status, 403, "{:?}", denied.body);
    assert_eq!(denied.json()["reason"], "access_denied");
    assert_eq!(backend.count(), 1, "a denied caller reached the backend");
}

async fn tcp_echo_server() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, conns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_service_is_tunnelled_over_the_mtls_link() {
    let dir = tempfile::tempdir().unwrap();
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let evil = Site::new(dir.path(), "evil", "us-east", "us-east-1b", &["us"]);
    let (db, conns) = tcp_echo_server().await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(
            9,
            &[&eu, &us, &evil],
            vec![export_tcp("demo/db", "us-1", 1, 5432)],
            vec![],
        ),
    );
    let _us = start_binary(
        &us.config(&[&eu], &cat, &[("demo/db", db)]),
        &dir.path().join("us.json"),
    )
    .await;
    let tcp_port = free_port();
    let mut eu_cfg = eu.config(&[&us], &cat, &[]);
    eu_cfg.tcp.push(causeway_gateway::config::TcpServiceConfig {
        service: "demo/db".parse().unwrap(),
        port: std::num::NonZeroU16::new(5432).unwrap(),
        listen: format!("127.0.0.1:{tcp_port}").parse().unwrap(),
    });
    let _eu = start_binary(&eu_cfg, &dir.path().join("eu.json")).await;

    let mut s = TcpStream::connect(("127.0.0.1", tcp_port)).await.unwrap();
    s.write_all(b"SELECT 1;").await.unwrap();
    let mut buf = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"SELECT 1;");
    drop(s);
    assert_eq!(conns.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A gateway of a trust domain us-1 does not federate with cannot open a tunnel.
    let evil_port = free_port();
    let mut evil_cfg = evil.config(&[&us], &cat, &[]);
    evil_cfg
        .tcp
        .push(causeway_gateway::config::TcpServiceConfig {
            service: "demo/db".parse().unwrap(),
            port: std::num::NonZeroU16::new(5432).unwrap(),
            listen: format!("127.0.0.1:{evil_port}").parse().unwrap(),
        });
    let _evil = start_binary(&evil_cfg, &dir.path().join("evil.json")).await;
    let mut s = TcpStream::connect(("127.0.0.1", evil_port)).await.unwrap();
    let _ = s.write_all(b"x").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(out.is_empty());
    assert_eq!(
        conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "evil reached the backend"
    );
}

/// A local endpoint that refuses connections (its process died, the
/// catalog still says ready): the request falls through to the next tier
/// within the same request, so no caller sees an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_local_endpoint_falls_through_to_a_remote_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let us_backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(
            4,
            &[&eu, &us],
            vec![
                export("demo/echo", "eu-1", 1),
                export("demo/echo", "us-1", 1),
            ],
            vec![],
        ),
    );
    let dead: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let _us_gw = start_binary(
        &us.config(&[&eu], &cat, &[("demo/echo", us_backend.addr)]),
        &dir.path().join("us.json"),
    )
    .await;
    let _eu_gw = start_binary(
        &eu.config(&[&us], &cat, &[("demo/echo", dead)]),
        &dir.path().join("eu.json"),
    )
    .await;
    let served = served_by(&eu, 10).await;
    assert!(served.iter().all(|c| c == "us-1"), "{served:?}");
    assert_eq!(us_backend.count(), 10);
}
