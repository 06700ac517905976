//! The web console in headless Chromium against the local federation (three
//! gateway processes, the API, sample traffic and residency policies): the
//! map shows every cluster connected and running the newest catalog, a
//! stopped gateway turns stale on the open page,
//! the residency view shows the denial the traffic causes, and the
//! explanation is the one the gateway's `/debug/route` gives. A screenshot
//! of every view is saved under `target/console-e2e/`.
//!
//! Needs Debian's `chromium`, `node` and the pinned `playwright-core` in
//! `e2e/console/node_modules`; `scripts/setup.sh` installs all three. This
//! test fails (never skips) when they are missing.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use causeway_e2e::Store;
use causeway_e2e::federation::host;
use causeway_e2e::local::{TrafficDriver, apply_policies, flows, topology};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn chromium() -> PathBuf {
    std::env::var_os("CAUSEWAY_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

fn artifacts() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("../target"), PathBuf::from)
        .join("console-e2e")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium_shows_map_staleness_denials_and_explanations() -> anyhow::Result<()> {
    let driver_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("console");
    anyhow::ensure!(
        driver_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run scripts/setup.sh",
        driver_dir.display()
    );
    anyhow::ensure!(
        chromium().exists(),
        "{} is missing: run scripts/setup.sh (installs Debian's chromium)",
        chromium().display()
    );
    let mut fed = topology(Store::Embedded).start().await?;
    apply_policies(&fed).await?;
    fed.converge().await?;
    let with_egress: Vec<_> = flows()
        .into_iter()
        .filter_map(|f| {
            let egress = fed.cluster(&f.from).ok()?.egress();
            Some((f, egress))
        })
        .collect();
    let traffic = TrafficDriver::start(with_egress, Duration::from_millis(100));
    let ttl = causeway_e2e::federation::Timings::default().heartbeat_ttl;
    // Lease expiry, then one watch event and one page refresh.
    let stale_within = ttl + Duration::from_secs(5);
    let shots = artifacts();
    let audit = host("payments/audit");
    let mut node = tokio::process::Command::new("node")
        .arg(driver_dir.join("drive.mjs"))
        .current_dir(&driver_dir)
        .env("CONSOLE_BASE", fed.api().url())
        .env("CONSOLE_TOKEN", fed.api().token(&["read"])?)
        .env("SHOT_DIR", &shots)
        .env("CHROMIUM", chromium())
        .env("CLUSTERS", "eu-west-1,eu-central-1,us-east-1")
        .env("STOP_CLUSTER", "eu-central-1")
        .env("STALE_TIMEOUT_MS", stale_within.as_millis().to_string())
        .env("DENIED_SERVICE", "payments/audit")
        .env("EXPLAIN_CLUSTER", "eu-west-1")
        .env("EXPLAIN_HOST", &audit)
        .env("EXPLAIN_HEADERS", "x-data-region: eu")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let mut stdin = node
        .stdin
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
    let stdout = node
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let mut stale_ms = None;
    let mut denial = None;
    let mut explanation = None;
    let mut done = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(next) = tokio::time::timeout(left, lines.next_line()).await else {
            anyhow::bail!("the console driver did not finish in time");
        };
        let Some(line) = next? else { break };
        eprintln!("console driver: {line}");
        if let Some(c) = line.strip_prefix("STOP ") {
            fed.cluster_mut(c)?.gateway.stop();
            stdin.write_all(b"STOPPED\n").await?;
            stdin.flush().await?;
        } else if let Some(ms) = line.strip_prefix("STALE ") {
            stale_ms = Some(ms.parse::<u64>()?);
        } else if let Some(j) = line.strip_prefix("DENIAL ") {
            denial = Some(serde_json::from_str::<Vec<String>>(j)?);
        } else if let Some(j) = line.strip_prefix("EXPLANATION ") {
            explanation = Some(serde_json::from_str::<serde_json::Value>(j)?);
        } else if line == "DONE" {
            done = true;
        } else if line.starts_with("FAIL") {
            anyhow::bail!("{line}");
        }
    }
    let status = node.wait().await?;
    drop(traffic);
    assert!(done && status.success(), "driver exit {status}");
    let stale_ms = stale_ms.ok_or_else(|| anyhow::anyhow!("no STALE line"))?;
    assert!(
        Duration::from_millis(stale_ms) <= stale_within,
        "stale after {stale_ms} ms"
    );
    // [gateway, service, reason, per minute, total]
    let denial = denial.ok_or_else(|| anyhow::anyhow!("no DENIAL line"))?;
    assert_eq!(denial[0], "eu-west-1", "{denial:?}");
    assert_eq!(denial[1], "payments/audit", "{denial:?}");
    assert!(denial[4].parse::<f64>()? >= 1.0, "{denial:?}");
    // The console's explanation is the gateway's own.
    let mut shown = explanation.ok_or_else(|| anyhow::anyhow!("no EXPLANATION line"))?;
    let mut direct = fed
        .cluster("eu-west-1")?
        .gateway
        .debug_route(&audit, &[("x-data-region", "eu")])
        .await?;
    // The catalog revision moves when the stopped gateway's lease lapses.
    shown.as_object_mut().map(|o| o.remove("revision"));
    direct.as_object_mut().map(|o| o.remove("revision"));
    assert_eq!(shown, direct);
    assert!(
        shown["decision"].to_string().contains("residency"),
        "{shown}"
    );
    for view in [
        "map",
        "map-stale",
        "traffic",
        "services",
        "residency",
        "residency-explain",
        "trust",
    ] {
        let p = shots.join(format!("{view}.png"));
        let len = std::fs::metadata(&p)?.len();
        assert!(len > 1000, "{} is {len} bytes", p.display());
    }
    Ok(())
}
