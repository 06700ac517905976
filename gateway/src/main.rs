//! `causeway-gateway`: parse flags and config, start the gateway, wait for a
//! signal. Exit code 2 on an invalid configuration.

use std::process::ExitCode;

use causeway_gateway::Gateway;
use causeway_gateway::cli::Args;
use clap::Parser;

const EX_USAGE: u8 = 2;

/// mimalloc rather than glibc malloc: the proxy path allocates and frees
/// many small buffers per request, and glibc's malloc/free/consolidate were
/// a fifth of the gateway's CPU under load (BENCHMARKS.md, profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("causeway-gateway: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if args.check {
        println!("configuration ok");
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &args.write_bundle {
        // The Workload API source is read asynchronously.
        let loaded = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| {
                rt.block_on(causeway_gateway::identity::Identity::start(&config))
                    .map_err(|e| e.to_string())
            });
        return match loaded {
            Ok(id) => {
                let set = id.bundles.load();
                let Some(bundle) = set.get(&id.trust_domain) else {
                    eprintln!("causeway-gateway: no bundle for {}", id.trust_domain);
                    return ExitCode::FAILURE;
                };
                match std::fs::write(path, bundle.to_json_pretty()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("causeway-gateway: cannot write {}: {e}", path.display());
                        ExitCode::FAILURE
                    }
                }
            }
            Err(e) => {
                eprintln!("causeway-gateway: {e}");
                ExitCode::from(EX_USAGE)
            }
        };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| {
            tracing_subscriber::EnvFilter::try_new(config.observability.log_level.as_str())
        })
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .json()
        .init();
    let threads = if config.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        config.threads
    };
    // One thread: a current-thread runtime, so the listeners, the proxy and
    // the upstream connections share one event loop with no cross-thread
    // wake-ups (the multi-thread runtime would add a worker beside the
    // thread that drives it).
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("causeway-gateway: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let gateway = match Gateway::start(config).await {
            Ok(g) => g,
            Err(e) => {
                eprintln!("causeway-gateway: {e}");
                let code = match e {
                    causeway_gateway::StartError::Config(_)
                    | causeway_gateway::StartError::Identity(_)
                    | causeway_gateway::StartError::Catalog(_)
                    | causeway_gateway::StartError::Agent(_) => EX_USAGE,
                    _ => 1,
                };
                return ExitCode::from(code);
            }
        };
        if wait_for_signal().await == Stop::ParentExited {
            // Nobody is left to send traffic or wait for us.
            gateway.shutdown();
            return ExitCode::SUCCESS;
        }
        tracing::info!("shutting down");
        tokio::select! {
            drained = gateway.drain() => match drained {
                causeway_gateway::Drained::Clean => tracing::info!("drained"),
                causeway_gateway::Drained::TimedOut => {
                    tracing::warn!("drain timeout passed; cutting the connections still open");
                }
            },
            // A second signal means "now".
            _ = wait_for_signal() => tracing::warn!("second signal: exiting without draining"),
        }
        ExitCode::SUCCESS
    })
}

/// Why the gateway stops.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// SIGTERM or Ctrl-C: drain first.
    Signal,
    /// The parent (a test harness, `causeway-local`) went away.
    ParentExited,
}

async fn wait_for_signal() -> Stop {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => Stop::Signal,
            _ = tokio::signal::ctrl_c() => Stop::Signal,
            () = causeway_api::lifecycle::parent_exited() => Stop::ParentExited,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        Stop::Signal
    }
}
