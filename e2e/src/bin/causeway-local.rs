//! `causeway-local`: starts a local Causeway federation (API, three
//! clusters in two jurisdictions, sample services and traffic) and shows a
//! live view until Ctrl-C. `./scripts/local-federation.sh` builds and runs it.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use causeway_e2e::local::{self, Snapshot, TrafficDriver, render};
use causeway_e2e::{Federation, Store};
use clap::Parser;

/// Start a local Causeway federation and watch it route.
///
/// Starts the federation API (embedded store, or a real etcd with --etcd),
/// three gateways as separate processes - eu-west-1 (eu), eu-central-1
/// (eu, de) and us-east-1 (us) - each on its own loopback address with echo
/// backends, applies residency policies (payments/* stays in the EU;
/// shop/profile requests with `x-data-region: eu` too), drives a little
/// traffic and prints, every refresh, which cluster serves each caller and
/// why. Ctrl-C stops every process.
#[derive(Debug, Parser)]
#[command(name = "causeway-local", version, verbatim_doc_comment)]
struct Args {
    /// Use this etcd (client URLs, comma separated) instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
    /// Keep state and logs here (default: a temporary directory removed at exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Do not drive sample traffic.
    #[arg(long)]
    no_traffic: bool,
    /// Seconds between refreshes of the live view.
    #[arg(long, default_value_t = 2.0)]
    refresh: f64,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration: Option<f64>,
    /// Print one view after the first refresh and exit (for scripts and tests).
    #[arg(long)]
    once: bool,
}

fn step(msg: &str) {
    eprintln!("causeway-local: {msg}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = if args.etcd.is_empty() {
        Store::Embedded
    } else {
        Store::External(args.etcd.clone())
    };
    let store_label = if args.etcd.is_empty() {
        "embedded store".to_owned()
    } else {
        format!("etcd {}", args.etcd.join(","))
    };
    step(&format!(
        "starting the federation API ({store_label}) and 3 gateways"
    ));
    let started = Instant::now();
    let mut builder = local::topology(store);
    if let Some(d) = &args.dir {
        builder = builder.dir(d);
    }
    let fed = tokio::select! {
        f = builder.start() => f?,
        _ = tokio::signal::ctrl_c() => { step("interrupted"); return Ok(()); }
    };
    step("applying residency policies");
    local::apply_policies(&fed).await?;
    let token_file = fed.dir().join("admin.token");
    std::fs::write(&token_file, fed.api().token(&["admin"])?)?;
    step(&format!(
        "up in {:.1?}; state and logs in {}",
        started.elapsed(),
        fed.dir().display()
    ));

    let flows = local::flows();
    let driver = (!args.no_traffic).then(|| {
        let with_egress: Vec<_> = flows
            .iter()
            .filter_map(|f| Some((f.clone(), fed.cluster(&f.from).ok()?.egress())))
            .collect();
        TrafficDriver::start(with_egress, Duration::from_millis(250))
    });
    // The console signs in from the URL fragment, which never reaches a
    // server log; a read token is all it needs.
    let console = format!(
        "{}#token={}",
        fed.api().console_url(),
        fed.api().token(&["read"])?
    );
    let help = guide(&fed, &token_file, &console);
    println!("{help}");

    let refresh = Duration::from_secs_f64(args.refresh.max(0.2));
    let deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    let redraw = std::io::stdout().is_terminal() && !args.once;
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(refresh) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let stats = driver.as_ref().map(TrafficDriver::take).unwrap_or_default();
        let period = last.elapsed();
        last = Instant::now();
        let snap = Snapshot::gather(&fed, &store_label, stats, &flows, period).await;
        let text = render(&snap);
        let mut out = std::io::stdout().lock();
        if redraw {
            let _ = write!(
                out,
                "\x1b[2J\x1b[H{text}\n{help}\n(Ctrl-C stops everything)\n"
            );
        } else {
            let _ = writeln!(out, "{text}");
        }
        let _ = out.flush();
        drop(out);
        if args.once || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    step("stopping gateways, API and backends");
    drop(driver);
    drop(fed);
    step("stopped");
    Ok(())
}

/// URLs and commands to try.
fn guide(fed: &Federation, token_file: &std::path::Path, console: &str) -> String {
    let api = fed.api().url();
    let mut s = String::new();
    s.push_str(&format!(
        "Console       {console}\n              (read-only web console: map, traffic, services, residency, trust)\n"
    ));
    s.push_str(&format!(
        "REST API      {api}/v1/clusters   (OpenAPI: {api}/v1/openapi.json)\n"
    ));
    for c in fed.clusters() {
        let admin = c.gateway.admin();
        s.push_str(&format!(
            "{:<13} egress http://{}  metrics http://{admin}/metrics  route http://{admin}/debug/route?host=cart.shop.svc.clusterset.local\n",
            c.def.id,
            c.egress(),
        ));
    }
    let us = fed
        .cluster("us-east-1")
        .map(|c| (c.egress(), c.gateway.admin()));
    let eu = fed.cluster("eu-west-1").map(|c| c.gateway.admin());
    s.push_str("\nTry:\n");
    s.push_str(&format!(
        "  export CAUSEWAY_SERVER={api} CAUSEWAY_TOKEN=$(cat {})\n",
        token_file.display()
    ));
    s.push_str("  causewayctl get clusters            # target/debug/causewayctl\n");
    s.push_str("  causewayctl get imports\n");
    if let Ok((egress, admin)) = us {
        s.push_str(&format!(
            "  curl -s -H 'Host: ledger.payments.svc.clusterset.local' http://{egress}/    # from us-east-1, served in the EU\n"
        ));
        s.push_str(&format!(
            "  causewayctl explain --gateway http://{admin} profile.shop.svc.clusterset.local -H x-data-region:eu\n"
        ));
    }
    if let Ok(admin) = eu {
        s.push_str(&format!(
            "  curl -s 'http://{admin}/debug/route?host=audit.payments.svc.clusterset.local'   # residency denial\n"
        ));
    }
    s
}
