//! Command-line flags of the `causeway-gateway` binary; each flag can also be
//! set through a `CAUSEWAY_GATEWAY_*` environment variable and overrides the
//! config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use causeway_api::model::ClusterId;

use crate::config::{ConfigError, GatewayConfig, LogFilter, Overrides, load_file};

/// The Causeway east-west gateway.
#[derive(Debug, Parser)]
#[command(name = "causeway-gateway", version, about)]
pub struct Args {
    /// Configuration file (YAML or JSON).
    #[arg(short, long, env = "CAUSEWAY_GATEWAY_CONFIG")]
    pub config: PathBuf,
    /// Overrides `cluster.id`.
    #[arg(long, env = "CAUSEWAY_GATEWAY_CLUSTER_ID")]
    pub cluster_id: Option<ClusterId>,
    /// Overrides `listeners.egress`.
    #[arg(long, env = "CAUSEWAY_GATEWAY_EGRESS")]
    pub egress: Option<SocketAddr>,
    /// Overrides `listeners.ingress`.
    #[arg(long, env = "CAUSEWAY_GATEWAY_INGRESS")]
    pub ingress: Option<SocketAddr>,
    /// Overrides `listeners.admin`.
    #[arg(long, env = "CAUSEWAY_GATEWAY_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// Overrides `federation.catalogFile`.
    #[arg(long, env = "CAUSEWAY_GATEWAY_CATALOG_FILE")]
    pub catalog_file: Option<PathBuf>,
    /// Overrides `observability.accessLog`.
    #[arg(long, env = "CAUSEWAY_GATEWAY_ACCESS_LOG")]
    pub access_log: Option<bool>,
    /// Overrides `observability.logLevel` (a `tracing` filter, e.g. `info,causeway_agent=debug`).
    #[arg(long, env = "CAUSEWAY_GATEWAY_LOG_LEVEL")]
    pub log_level: Option<LogFilter>,
    /// Overrides `agent.endpoint`: the federation API URL (turns the agent on).
    #[arg(long, env = "CAUSEWAY_GATEWAY_FEDERATION_ENDPOINT")]
    pub federation_endpoint: Option<String>,
    /// Overrides `agent.tokenFile`: the cluster token for the federation API.
    #[arg(long, env = "CAUSEWAY_GATEWAY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    pub check: bool,
    /// Load (or, with `identity.authorityDir`, create) the identity, write
    /// this trust domain's SPIFFE bundle to the given file and exit.
    #[arg(long, value_name = "FILE")]
    pub write_bundle: Option<PathBuf>,
}

impl Args {
    /// Reads the file, applies flag/env overrides and validates the result.
    pub fn load_config(&self) -> Result<GatewayConfig, ConfigError> {
        let mut config = load_file(&self.config)?;
        config.apply(&Overrides {
            cluster_id: self.cluster_id.clone(),
            egress: self.egress,
            ingress: self.ingress,
            admin: self.admin,
            catalog_file: self.catalog_file.clone(),
            access_log: self.access_log,
            log_level: self.log_level.clone(),
            federation_endpoint: self.federation_endpoint.clone(),
            token_file: self.token_file.clone(),
        });
        config.validate()?;
        Ok(config)
    }
}
