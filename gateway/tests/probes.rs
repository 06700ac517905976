//! Active probes of remote gateways over real processes: each remote
//! gateway is probed on its own schedule (a peer whose handshake hangs until
//! the connect timeout does not slow the others' detection), and the
//! unhealthy threshold applies (two failed probes in a row, one probe
//! interval apart at least).
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::client::get;
use support::fixture::{Site, catalog, start_binary, write_catalog};
use tokio::net::TcpListener;

const INTERVAL: Duration = Duration::from_millis(200);
/// Bound of one probe (connect + handshake + `GET /healthz`): the hanging
/// peer holds every probe of it this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `causeway_gateway_peer_probe_failing{destination_cluster=cluster}` as
/// `admin` reports it (None until the first probe of it).
async fn probe_failing(admin: SocketAddr, cluster: &str) -> Option<bool> {
    let r = get(admin, "admin", "/metrics").await.ok()?;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let prefix =
        format!("causeway_gateway_peer_probe_failing{{destination_cluster=\"{cluster}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim() == "1")
}

/// Polls until `cluster`'s probe state on `admin` is `failing`; returns
/// the time it took.
async fn until_probe(admin: SocketAddr, cluster: &str, failing: bool, limit: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        if probe_failing(admin, cluster).await == Some(failing) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "{cluster} never became failing={failing} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_peer_does_not_delay_detecting_another() {
    let dir = tempfile::tempdir().unwrap();
    let eu1 = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let eu2 = Site::new(dir.path(), "eu-2", "eu-west", "eu-west-1b", &["eu"]);
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    // eu-2's "gateway" accepts TCP and never says a word: every probe of it
    // waits out the connect timeout.
    let hang = TcpListener::bind(eu2.ingress).await.unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let cat = dir.path().join("catalog.json");
    write_catalog(&cat, &catalog(1, &[&eu1, &eu2, &us], vec![], vec![]));
    let mut eu1_cfg = eu1.config(&[&eu2, &us], &cat, &[]);
    eu1_cfg.upstream.probe_interval = INTERVAL;
    eu1_cfg.upstream.connect_timeout = CONNECT_TIMEOUT;
    let eu1_gw = start_binary(&eu1_cfg, &dir.path().join("eu1.json")).await;
    let us_cfg = us.config(&[&eu1, &eu2], &cat, &[]);
    let us_path = dir.path().join("us.json");
    let us_gw = start_binary(&us_cfg, &us_path).await;

    let limit = Duration::from_secs(20);
    until_probe(eu1_gw.admin, "us-1", false, limit).await;
    let hang_detected = until_probe(eu1_gw.admin, "eu-2", true, limit).await;

    // us-1's gateway dies: a probe is refused at once; two in a row (one
    // interval apart) mark it failing, however long eu-2's probes hang.
    drop(us_gw);
    let down = until_probe(eu1_gw.admin, "us-1", true, limit).await;
    assert!(
        down >= INTERVAL,
        "two failed probes one interval apart, not one: {down:?}"
    );
    assert!(
        down < CONNECT_TIMEOUT / 2,
        "detected on us-1's own schedule, not after eu-2's hanging probe: {down:?}"
    );

    // It comes back: two passing probes bring it back, still on its own
    // schedule.
    let us_gw = start_binary(&us_cfg, &us_path).await;
    let up = until_probe(eu1_gw.admin, "us-1", false, limit).await;
    assert!(
        up < CONNECT_TIMEOUT / 2,
        "back on us-1's own schedule: {up:?}"
    );
    assert_eq!(
        probe_failing(eu1_gw.admin, "eu-2").await,
        Some(true),
        "eu-2 still hangs"
    );
    eprintln!(
        "probes: hanging eu-2 failing after {hang_detected:?}; us-1 down detected in {down:?}, back in {up:?} (interval {INTERVAL:?}, probe bound {CONNECT_TIMEOUT:?})"
    );
    drop(us_gw);
    drop(eu1_gw);
    holder.abort();
}
