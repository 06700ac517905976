//! One etcd member process.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A harness failure.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// The etcd binary could not be started.
    #[error("starting etcd ({binary}): {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An I/O error preparing the data dir or ports.
    #[error("etcd harness io: {0}")]
    Io(#[from] std::io::Error),
    /// etcd did not become healthy in time; the log tail says why.
    #[error("etcd did not become healthy within {timeout:?}; log tail:\n{log}")]
    Unhealthy {
        /// How long we waited.
        timeout: Duration,
        /// The end of etcd's log.
        log: String,
    },
    /// The member is not running.
    #[error("etcd member is not running")]
    NotRunning,
}

/// How long to wait for etcd to become healthy.
pub(super) const HEALTH_TIMEOUT: Duration = Duration::from_secs(20);

/// The etcd binary to run.
pub(super) fn etcd_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CAUSEWAY_ETCD_BIN") {
        return PathBuf::from(p);
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("etcd");
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from("/usr/bin/etcd")
}

/// Reserves a free loopback port (bound and released; etcd binds it next).
///
/// The port is drawn below the kernel's ephemeral range: a port from that
/// range can be taken between the reservation and etcd's bind by any
/// outgoing connection (etcd members dialling each other did, in CI).
pub(super) fn free_port() -> Result<u16, HarnessError> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 20000u16.min(ephemeral_low / 2);
    if ephemeral_low > low + 1000 {
        for _ in 0..64 {
            let port = rand::random_range(low..ephemeral_low);
            if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                return Ok(l.local_addr()?.port());
            }
        }
    }
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// TLS for an etcd member's client listener (PEM files).
#[derive(Debug, Clone)]
pub struct EtcdServerTls {
    /// Server certificate (valid for `127.0.0.1`).
    pub cert_file: PathBuf,
    /// Server private key.
    pub key_file: PathBuf,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca_file: Option<PathBuf>,
}

/// The static description of one member, enough to (re)start it.
#[derive(Debug, Clone)]
pub(super) struct MemberSpec {
    pub(super) name: String,
    pub(super) client_port: u16,
    pub(super) metrics_port: u16,
    pub(super) tls: Option<EtcdServerTls>,
    pub(super) peer_port: u16,
    pub(super) initial_cluster: String,
    pub(super) data_dir: PathBuf,
    pub(super) heartbeat_ms: u32,
    pub(super) election_ms: u32,
}

impl MemberSpec {
    pub(super) fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub(super) fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    pub(super) fn spawn(&self, log: &Path) -> Result<Child, HarnessError> {
        let binary = etcd_binary();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let log_err = log_file.try_clone()?;
        let mut cmd = Command::new(&binary);
        if let Some(tls) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&tls.cert_file)
                .arg("--key-file")
                .arg(&tls.key_file);
            if let Some(ca) = &tls.client_ca_file {
                cmd.arg("--client-cert-auth")
                    .arg("--trusted-ca-file")
                    .arg(ca);
            }
        }
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen-client-urls")
            .arg(self.client_url())
            .arg("--advertise-client-urls")
            .arg(self.client_url())
            .arg("--listen-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-advertise-peer-urls")
            .arg(self.peer_url())
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .arg("--listen-metrics-urls")
            .arg(format!("http://127.0.0.1:{}", self.metrics_port))
            .arg("--initial-cluster-token")
            .arg("causeway-test")
            .arg("--heartbeat-interval")
            .arg(self.heartbeat_ms.to_string())
            .arg("--election-timeout")
            .arg(self.election_ms.to_string())
            .arg("--logger")
            .arg("zap")
            .arg("--log-level")
            .arg("warn")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                binary: binary.display().to_string(),
                source,
            })
    }
}

/// Asks etcd's `/health` endpoint on the plain-HTTP metrics listener.
pub(super) async fn healthy(metrics_port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        Some(text.contains("\"health\":\"true\""))
    };
    tokio::time::timeout(Duration::from_secs(1), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// The last lines of a log file.
pub(super) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// One etcd member on loopback, killed (by pid) when dropped.
#[derive(Debug)]
pub struct EtcdProcess {
    spec: MemberSpec,
    child: Option<Child>,
    log: PathBuf,
    // Held for its Drop: removes the data dir.
    _dir: tempfile::TempDir,
}

impl EtcdProcess {
    /// Starts a single-member etcd on free loopback ports with a fresh data
    /// dir and waits until it is healthy. Lease TTLs of 1 s are honoured
    /// (fast heartbeat and election settings).
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with_tls(None).await
    }

    /// Like [`EtcdProcess::start`], serving clients over TLS (`https://`)
    /// when `tls` is set.
    pub async fn start_with_tls(tls: Option<EtcdServerTls>) -> Result<Self, HarnessError> {
        let mut last = None;
        // A reserved port may be taken by someone else before etcd binds it.
        for _ in 0..3 {
            match Self::try_start(tls.clone()).await {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(HarnessError::NotRunning))
    }

    async fn try_start(tls: Option<EtcdServerTls>) -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("causeway-etcd-")
            .tempdir()?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let spec = MemberSpec {
            name: "m0".to_owned(),
            client_port,
            metrics_port: free_port()?,
            tls,
            peer_port,
            initial_cluster: format!("m0=http://127.0.0.1:{peer_port}"),
            data_dir: dir.path().join("data"),
            heartbeat_ms: 10,
            election_ms: 100,
        };
        let log = dir.path().join("etcd.log");
        let child = spec.spawn(&log)?;
        let mut p = Self {
            spec,
            child: Some(child),
            log,
            _dir: dir,
        };
        p.wait_healthy().await?;
        Ok(p)
    }

    /// A shared etcd for the tests of one binary: started on first use and
    /// stopped when the last holder drops its `Arc`. Use a unique key prefix
    /// per test. Compaction affects every user; start a private
    /// [`EtcdProcess`] for tests that compact.
    pub async fn shared() -> Result<Arc<Self>, HarnessError> {
        static SHARED: Mutex<Weak<EtcdProcess>> = Mutex::new(Weak::new());
        static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _starting = STARTING.lock().await;
        if let Some(p) = SHARED.lock().ok().and_then(|w| w.upgrade()) {
            return Ok(p);
        }
        let p = Arc::new(Self::start().await?);
        if let Ok(mut w) = SHARED.lock() {
            *w = Arc::downgrade(&p);
        }
        Ok(p)
    }

    async fn wait_healthy(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            if healthy(self.spec.metrics_port).await {
                return Ok(());
            }
            let exited = match self.child.as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                None => true,
            };
            if exited || Instant::now() > deadline {
                self.kill();
                return Err(HarnessError::Unhealthy {
                    timeout: HEALTH_TIMEOUT,
                    log: log_tail(&self.log),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The client URL, e.g. `http://127.0.0.1:23791`.
    pub fn endpoint(&self) -> String {
        self.spec.client_url()
    }

    /// The client URLs (one).
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// Kills the process (SIGKILL) and reaps it. The data dir is kept.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Restarts a killed (or running) member on the same ports and data dir
    /// and waits until it is healthy.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.kill();
        self.child = Some(self.spec.spawn(&self.log)?);
        self.wait_healthy().await
    }

    /// The etcd log so far (for failure messages).
    pub fn log(&self) -> String {
        log_tail(&self.log)
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
