//! SIGTERM drains the gateway binary: readiness turns off at once, the
//! listeners keep accepting for `drain.delay`, in-flight requests finish,
//! HTTP/2 peers get GOAWAY and move to another replica without a failed
//! request, and the process exits 0.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::backend::Backend;
use support::client::{get, http1};
use support::fixture::{
    GatewayProc, Site, catalog, export, free_port, start_binary, write_catalog,
};

const HOST: &str = "echo.demo.svc.clusterset.local";

fn sigterm(p: &GatewayProc) {
    let ok = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {}", p.child.id());
}

/// Waits for the process to exit; its status, or `None` past `timeout`.
async fn exit_status(p: &mut GatewayProc, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(s) = p.child.try_wait().unwrap() {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

async fn accepts(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readiness_off_finishes_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(1, &[&eu, &us], vec![export("demo/echo", "us-1", 1)], vec![]),
    );
    let mut us_cfg = us.config(&[&eu], &cat, &[("demo/echo", backend.addr)]);
    us_cfg.drain.delay = Duration::from_secs(1);
    us_cfg.drain.timeout = Duration::from_secs(10);
    let mut us_gw = start_binary(&us_cfg, &dir.path().join("us.json")).await;
    let _eu_gw = start_binary(&eu.config(&[&us], &cat, &[]), &dir.path().join("eu.json")).await;
    assert_eq!(get(eu.egress, HOST, "/warm").await.unwrap().status, 200);

    let slow = tokio::spawn(async move { get(eu.egress, HOST, "/sleep/2500").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let signalled = Instant::now();
    sigterm(&us_gw);

    // Readiness is off at once...
    let deadline = Instant::now() + Duration::from_millis(500);
    loop {
        let r = get(us.admin, "admin", "/readyz").await.unwrap();
        if r.status == 503 {
            assert_eq!(&r.body[..], b"draining\n");
            break;
        }
        assert!(Instant::now() < deadline, "readyz still {}", r.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...while the listeners still accept during the delay (load balancers
    // are still catching up)...
    assert!(signalled.elapsed() < Duration::from_millis(900));
    assert!(
        accepts(us.ingress).await,
        "ingress refused during drain.delay"
    );
    // ...and the in-flight request finishes after the listeners closed.
    let r = slow.await.unwrap().unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.served_by().as_deref(), Some("us-1"));
    assert!(signalled.elapsed() > Duration::from_secs(1));
    let status = exit_status(&mut us_gw, Duration::from_secs(5))
        .await
        .expect("gateway did not exit after draining");
    assert!(status.success(), "exit status {status}");
    assert!(!accepts(us.ingress).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_cuts_what_is_still_open_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let site = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    write_catalog(
        &cat,
        &catalog(1, &[&site], vec![export("demo/echo", "us-1", 1)], vec![]),
    );
    let mut cfg = site.config(&[], &cat, &[("demo/echo", backend.addr)]);
    cfg.drain.delay = Duration::from_millis(100);
    cfg.drain.timeout = Duration::from_millis(700);
    let mut gw = start_binary(&cfg, &dir.path().join("us.json")).await;
    let egress = site.egress;
    let stuck = tokio::spawn(async move { get(egress, HOST, "/sleep/30000").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signalled = Instant::now();
    sigterm(&gw);
    let status = exit_status(&mut gw, Duration::from_secs(5))
        .await
        .expect("gateway did not exit at the drain timeout");
    assert!(status.success(), "exit status {status}");
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "exit after {took:?}, want delay + timeout"
    );
    assert!(
        stuck.await.unwrap().is_err(),
        "the cut request cannot succeed"
    );
}

/// Two replicas of the serving cluster (both its gateway endpoints), a
/// steady mix of GET and POST from the other cluster, and each replica
/// drained and restarted in turn: no request fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_the_serving_replicas_fails_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let us_a = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    // The second replica: same cluster and identity, its own ports.
    let mut us_b = us_a.clone();
    let loopback = |p| SocketAddr::from(([127, 0, 0, 1], p));
    us_b.egress = loopback(free_port());
    us_b.ingress = loopback(free_port());
    us_b.admin = loopback(free_port());
    let backend = Backend::start("us-1").await;
    let cat = dir.path().join("catalog.json");
    let mut snapshot = catalog(
        1,
        &[&eu, &us_a],
        vec![export("demo/echo", "us-1", 1)],
        vec![],
    );
    let us_id: causeway_api::model::ClusterId = "us-1".parse().unwrap();
    let us_cluster = snapshot.clusters.get_mut(&us_id).unwrap();
    us_cluster
        .spec
        .gateway
        .endpoints
        .push(us_b.ingress.to_string().parse().unwrap());
    write_catalog(&cat, &snapshot);
    let replica = |site: &Site| {
        let mut c = site.config(&[&eu], &cat, &[("demo/echo", backend.addr)]);
        c.drain.delay = Duration::from_millis(500);
        c.drain.timeout = Duration::from_secs(5);
        c
    };
    let (cfg_a, cfg_b) = (replica(&us_a), replica(&us_b));
    let mut a = start_binary(&cfg_a, &dir.path().join("us-a.json")).await;
    let mut b = start_binary(&cfg_b, &dir.path().join("us-b.json")).await;
    let _eu_gw = start_binary(&eu.config(&[&us_a], &cat, &[]), &dir.path().join("eu.json")).await;
    assert_eq!(get(eu.egress, HOST, "/warm").await.unwrap().status, 200);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        let egress = eu.egress;
        load.push(tokio::spawn(async move {
            let method = if worker % 2 == 0 { "GET" } else { "POST" };
            while !stop.load(Ordering::Relaxed) {
                match http1(egress, method, HOST, "/sleep/20", &[]).await {
                    Ok(r) if r.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.lock().unwrap().push(format!(
                        "{method} {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    )),
                    Err(e) => failures.lock().unwrap().push(format!("{method}: {e}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (proc, cfg, name) in [(&mut a, &cfg_a, "us-a"), (&mut b, &cfg_b, "us-b")] {
        sigterm(proc);
        let status = exit_status(proc, Duration::from_secs(10))
            .await
            .expect("replica did not exit after draining");
        assert!(status.success(), "{name} exit status {status}");
        *proc = start_binary(cfg, &dir.path().join(format!("{name}.json"))).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    let served = ok.load(Ordering::Relaxed);
    assert!(served > 50, "only {served} requests served");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(5)]
    );
}
