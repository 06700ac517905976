//! Connection settings of the etcd store.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Connection settings of [`EtcdStore`](super::EtcdStore). `Debug` never
/// prints the password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct EtcdStoreConfig {
    /// etcd client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// TLS to etcd; required for `https://` endpoints.
    pub tls: Option<EtcdTls>,
    /// Username for etcd authentication.
    pub user: Option<String>,
    /// Password for etcd authentication.
    pub password: Option<String>,
    /// Timeout of each request (default 5s).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Timeout of connecting (default 5s).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// An isolation namespace prepended to every key and stripped from
    /// results (like etcd's namespace proxy); empty by default. The
    /// `/causeway/v1` layout prefix is part of the keys, not of this.
    pub namespace: String,
}

impl Default for EtcdStoreConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".to_owned()],
            tls: None,
            user: None,
            password: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            namespace: String::new(),
        }
    }
}

impl std::fmt::Debug for EtcdStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStoreConfig")
            .field("endpoints", &self.endpoints)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// TLS settings for etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EtcdTls {
    /// PEM CA bundle that signs the etcd server certificates.
    pub ca_file: PathBuf,
    /// PEM client certificate (mutual TLS), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM client private key.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The server name to verify (default: the endpoint host).
    #[serde(default)]
    pub domain: Option<String>,
}
