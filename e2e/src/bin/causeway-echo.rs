//! `causeway-echo`: an HTTP/1.1, h2c and gRPC echo backend that reports the
//! cluster it runs in and counts requests (`GET /__echo/count`).

use std::net::SocketAddr;

use clap::Parser;

/// Echo backend for Causeway demos and tests.
#[derive(Debug, Parser)]
#[command(name = "causeway-echo", version, about)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The cluster this backend reports (`x-served-by`).
    #[arg(long)]
    cluster: String,
    /// The service (`namespace/name`) it serves.
    #[arg(long, default_value = "default/echo")]
    service: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let echo = causeway_e2e::EchoServer::start(args.listen, &args.cluster, &args.service).await?;
    println!(
        "causeway-echo: {} of {} on {}",
        echo.service(),
        echo.cluster(),
        echo.addr()
    );
    tokio::signal::ctrl_c().await?;
    echo.stop().await;
    Ok(())
}
