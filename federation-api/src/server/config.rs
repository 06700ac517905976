//! Server configuration: a YAML or JSON file, overridden by flags and
//! `CAUSEWAY_*` environment variables (see the `causeway-federation` binary).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::token::JwtConfig;

/// The default listen address: loopback only, so that a dev server is never
/// exposed by accident. Set `listen: 0.0.0.0:8080` in a container.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Errors loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid YAML/JSON for this schema.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the field path.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

/// The whole server configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerConfig {
    /// Address of the REST + gRPC listener (one port for both).
    pub listen: SocketAddr,
    /// Where the catalog is stored.
    pub store: StoreConfig,
    /// JWT bearer authentication.
    pub jwt: JwtConfig,
    /// Accept every request as admin. For local experiments only.
    pub danger_disable_auth: bool,
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// TTL of the heartbeat lease: a cluster that does not heartbeat for this
    /// long is reported `connected: false` and its exports `stale`.
    #[serde(with = "humantime_serde")]
    pub heartbeat_ttl: Duration,
    /// When set, exports of a cluster whose last heartbeat is older than this
    /// are withdrawn from the derived imports (never deleted from storage).
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub stale_after: Option<Duration>,
    /// Default page size of list requests without `limit`.
    pub default_page_size: usize,
    /// Largest accepted `limit`.
    pub max_page_size: usize,
    /// Grace period for in-flight requests on SIGTERM/SIGINT.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Per-cluster catalog quotas and write rate (429 past them).
    pub quota: super::quota::QuotaConfig,
    /// The read-only web console at `/ui/` (docs/console.md).
    pub console: ConsoleConfig,
    /// TLS on the listener (hot-reloaded certificate files; clients may
    /// authenticate with an X.509-SVID). None: plaintext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::tls::TlsConfig>,
}

/// The read-only web console at `/ui/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ConsoleConfig {
    /// Serve the console (default true). It only reads, with the same tokens
    /// as the API (read scope).
    pub enabled: bool,
    /// A YAML or JSON map `cluster id: gateway admin base URL`
    /// (`http://10.0.0.5:15000`), re-read when it changes. The console
    /// scrapes `/metrics` of these gateways (traffic, denials, probes,
    /// catalog revision) and asks their `/debug/route`. Unset: the console
    /// shows the catalog only.
    pub gateway_admins_file: Option<PathBuf>,
    /// Refresh period of live views, and the shortest time between two
    /// scrapes of a gateway however many consoles are open.
    #[serde(with = "humantime_serde")]
    pub refresh: Duration,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            gateway_admins_file: None,
            refresh: Duration::from_secs(5),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080))),
            store: StoreConfig::default(),
            jwt: JwtConfig::default(),
            danger_disable_auth: false,
            max_body_bytes: 1024 * 1024,
            heartbeat_ttl: Duration::from_secs(15),
            stale_after: None,
            default_page_size: 100,
            max_page_size: 1000,
            shutdown_grace: Duration::from_secs(10),
            quota: super::quota::QuotaConfig::default(),
            console: ConsoleConfig::default(),
            tls: None,
        }
    }
}

/// Storage configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct StoreConfig {
    /// etcd endpoints (`http://a:2379`). Empty: the embedded in-memory store.
    pub etcd: Vec<String>,
    /// PEM CA bundle to verify etcd's server certificate.
    pub etcd_ca: Option<PathBuf>,
    /// PEM client certificate for etcd mTLS.
    pub etcd_cert: Option<PathBuf>,
    /// PEM client key for etcd mTLS.
    pub etcd_key: Option<PathBuf>,
    /// Key prefix in etcd. Default `/causeway/v1`.
    pub prefix: Option<String>,
    /// Directory where the embedded store persists its data (embedded store only).
    pub data_dir: Option<PathBuf>,
}

impl ServerConfig {
    /// Reads a YAML (`.yaml`, `.yml`) or JSON file; JSON is tried for any
    /// other extension.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let parse = |message: String| ConfigError::Parse {
            path: path.to_owned(),
            message,
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if matches!(ext, "yaml" | "yml") {
            let de = serde_norway::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(de).map_err(|e| parse(e.to_string()))
        } else {
            let mut de = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| parse(e.to_string()))
        }
    }

    /// Checks ranges that serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "maxBodyBytes must be at least 1024".into(),
            ));
        }
        if self.heartbeat_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "heartbeatTtl must be at least 1s".into(),
            ));
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return Err(ConfigError::Invalid(
                "defaultPageSize must be between 1 and maxPageSize".into(),
            ));
        }
        if self.console.refresh < Duration::from_millis(500) {
            return Err(ConfigError::Invalid(
                "console.refresh must be at least 500ms".into(),
            ));
        }
        let s = &self.store;
        if s.etcd.is_empty()
            && (s.etcd_ca.is_some() || s.etcd_cert.is_some() || s.etcd_key.is_some())
        {
            return Err(ConfigError::Invalid(
                "etcd TLS options given without etcd endpoints".into(),
            ));
        }
        if s.etcd_cert.is_some() != s.etcd_key.is_some() {
            return Err(ConfigError::Invalid(
                "etcdCert and etcdKey go together".into(),
            ));
        }
        if !s.etcd.is_empty() && s.data_dir.is_some() {
            return Err(ConfigError::Invalid(
                "dataDir applies to the embedded store only".into(),
            ));
        }
        Ok(())
    }
}
