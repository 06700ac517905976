//! The `causeway-federation` binary's logic: flags over config file over
//! defaults, store selection, token minting, graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::config::{ServerConfig, StoreConfig};
use super::{Server, ServerError};
use crate::store::{EtcdStore, EtcdStoreConfig, EtcdTls, MemoryStore, MemoryStoreConfig, Store};
use crate::token::{JwtAlgorithm, MintArgs};

/// The Causeway federation API server.
#[derive(Debug, Parser)]
#[command(
    name = "causeway-federation",
    version,
    about = "Causeway federation API server"
)]
pub struct ServerArgs {
    /// Subcommand; serves when absent.
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
    /// Serving flags (override the config file).
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Server subcommands.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Serve the API (the default).
    Serve,
    /// Mint a bootstrap token signed with the configured key.
    Token(MintArgs),
}

/// Flags of `serve`; each overrides the config file.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// YAML (.yaml/.yml) or JSON config file.
    #[arg(long, short = 'c', env = "CAUSEWAY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Listen address for REST and gRPC (default 127.0.0.1:8080).
    #[arg(long, env = "CAUSEWAY_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// etcd endpoints, comma separated (`http://a:2379,http://b:2379`).
    /// Without it, the embedded in-memory store is used.
    #[arg(long, env = "CAUSEWAY_ETCD", value_delimiter = ',')]
    pub etcd: Vec<String>,
    /// PEM CA bundle of etcd's server certificates.
    #[arg(long, env = "CAUSEWAY_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// PEM client certificate for etcd.
    #[arg(long, env = "CAUSEWAY_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// PEM client key for etcd.
    #[arg(long, env = "CAUSEWAY_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
    /// Key prefix (default /causeway/v1).
    #[arg(long, env = "CAUSEWAY_PREFIX")]
    pub prefix: Option<String>,
    /// Persist the embedded store under this directory.
    #[arg(long, env = "CAUSEWAY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// ES256 public key PEM (verification).
    #[arg(long, env = "CAUSEWAY_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,
    /// ES256 private key PEM (token minting).
    #[arg(long, env = "CAUSEWAY_JWT_PRIVATE_KEY")]
    pub jwt_private_key: Option<PathBuf>,
    /// HS256 shared secret file (instead of an ES256 key pair).
    #[arg(long, env = "CAUSEWAY_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// Required token audience (default `causeway`).
    #[arg(long, env = "CAUSEWAY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Required token issuer.
    #[arg(long, env = "CAUSEWAY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Heartbeat lease TTL, e.g. `15s`.
    #[arg(long, env = "CAUSEWAY_HEARTBEAT_TTL", value_parser = humantime::parse_duration)]
    pub heartbeat_ttl: Option<Duration>,
    /// Withdraw exports of clusters silent for this long from imports.
    #[arg(long, env = "CAUSEWAY_STALE_AFTER", value_parser = humantime::parse_duration)]
    pub stale_after: Option<Duration>,
    /// Most exports one member cluster may hold (0: unlimited).
    #[arg(long, env = "CAUSEWAY_MAX_EXPORTS_PER_CLUSTER")]
    pub max_exports_per_cluster: Option<usize>,
    /// Most bytes the exports of one member cluster may take (0: unlimited).
    #[arg(long, env = "CAUSEWAY_MAX_EXPORT_BYTES_PER_CLUSTER")]
    pub max_export_bytes_per_cluster: Option<usize>,
    /// Sustained writes per second of one member cluster (0: unlimited).
    #[arg(long, env = "CAUSEWAY_CLUSTER_WRITES_PER_SECOND")]
    pub cluster_writes_per_second: Option<u32>,
    /// Writes a member cluster may burst above its sustained rate.
    #[arg(long, env = "CAUSEWAY_CLUSTER_WRITE_BURST")]
    pub cluster_write_burst: Option<u32>,
    /// Gateway admin URLs for the console: a YAML/JSON map `cluster: url`.
    #[arg(long, env = "CAUSEWAY_CONSOLE_GATEWAYS")]
    pub console_gateways: Option<PathBuf>,
    /// Refresh period of the console's live views, e.g. `5s`.
    #[arg(long, env = "CAUSEWAY_CONSOLE_REFRESH", value_parser = humantime::parse_duration)]
    pub console_refresh: Option<Duration>,
    /// Accept every request as admin (local experiments only).
    #[arg(long, env = "CAUSEWAY_DANGER_DISABLE_AUTH")]
    pub danger_disable_auth: bool,
}

impl ServeArgs {
    /// The effective configuration: defaults, then the file, then flags/env.
    pub fn config(&self) -> Result<ServerConfig, ServerError> {
        let mut c = match &self.config {
            Some(p) => ServerConfig::from_file(p)?,
            None => ServerConfig::default(),
        };
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if !self.etcd.is_empty() {
            c.store.etcd = self.etcd.clone();
        }
        let s = &mut c.store;
        s.etcd_ca = self.etcd_ca.clone().or(s.etcd_ca.take());
        s.etcd_cert = self.etcd_cert.clone().or(s.etcd_cert.take());
        s.etcd_key = self.etcd_key.clone().or(s.etcd_key.take());
        s.prefix = self.prefix.clone().or(s.prefix.take());
        s.data_dir = self.data_dir.clone().or(s.data_dir.take());
        let j = &mut c.jwt;
        if self.jwt_secret_file.is_some() {
            j.algorithm = JwtAlgorithm::HS256;
            j.secret_file = self.jwt_secret_file.clone();
        }
        if self.jwt_public_key.is_some() || self.jwt_private_key.is_some() {
            j.algorithm = JwtAlgorithm::ES256;
        }
        j.public_key_file = self.jwt_public_key.clone().or(j.public_key_file.take());
        j.private_key_file = self.jwt_private_key.clone().or(j.private_key_file.take());
        j.audience = self.jwt_audience.clone().or(j.audience.take());
        j.issuer = self.jwt_issuer.clone().or(j.issuer.take());
        if let Some(t) = self.heartbeat_ttl {
            c.heartbeat_ttl = t;
        }
        if self.stale_after.is_some() {
            c.stale_after = self.stale_after;
        }
        let q = &mut c.quota;
        q.max_exports_per_cluster = self
            .max_exports_per_cluster
            .unwrap_or(q.max_exports_per_cluster);
        q.max_export_bytes_per_cluster = self
            .max_export_bytes_per_cluster
            .unwrap_or(q.max_export_bytes_per_cluster);
        q.writes_per_second = self
            .cluster_writes_per_second
            .unwrap_or(q.writes_per_second);
        q.write_burst = self.cluster_write_burst.unwrap_or(q.write_burst);
        if self.console_gateways.is_some() {
            c.console.gateway_admins_file = self.console_gateways.clone();
        }
        if let Some(r) = self.console_refresh {
            c.console.refresh = r;
        }
        c.danger_disable_auth |= self.danger_disable_auth;
        c.validate()?;
        Ok(c)
    }
}

/// Opens the configured store: etcd when endpoints are given, else the
/// embedded store (persisted under `dataDir` when set).
pub async fn open_store(c: &StoreConfig) -> Result<Arc<dyn Store>, ServerError> {
    if c.etcd.is_empty() {
        let persist_path = match &c.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                Some(d.join("catalog.json"))
            }
            None => None,
        };
        let store = MemoryStore::with_config(MemoryStoreConfig {
            persist_path,
            ..MemoryStoreConfig::default()
        })
        .map_err(|e| ServerError::Store(e.to_string()))?;
        tracing::info!(persisted = c.data_dir.is_some(), "using the embedded store");
        return Ok(Arc::new(store));
    }
    let tls = c.etcd_ca.as_ref().map(|ca| EtcdTls {
        ca_file: ca.clone(),
        cert_file: c.etcd_cert.clone(),
        key_file: c.etcd_key.clone(),
        domain: None,
    });
    let config = EtcdStoreConfig {
        endpoints: c.etcd.clone(),
        tls,
        ..EtcdStoreConfig::default()
    };
    let store = EtcdStore::connect(&config)
        .await
        .map_err(|e| ServerError::Store(e.to_string()))?;
    tracing::info!(endpoints = ?c.etcd, "using etcd");
    Ok(Arc::new(store))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
        _ = causeway_api::lifecycle::parent_exited() => {},
    }
    tracing::info!("shutdown signal received; draining");
}

async fn serve(config: ServerConfig) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let grace = config.shutdown_grace;
    let server = Server::from_config(config).await?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async move {
        let _ = rx.await;
    }));
    shutdown_signal().await;
    let _ = tx.send(());
    match tokio::time::timeout(grace, serving).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(ServerError::Io(std::io::Error::other(e))),
        Err(_) => {
            tracing::warn!("grace period elapsed; exiting with requests in flight");
            Ok(())
        }
    }
}

/// Entry point of `causeway-federation`.
pub fn main() -> ExitCode {
    let args = ServerArgs::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(ServerCommand::Token(m)) = &args.command {
        return match crate::token::mint(m) {
            Ok(t) => {
                println!("{t}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let config = match args.serve.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
