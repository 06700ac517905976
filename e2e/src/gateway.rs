//! A gateway as a separate process (the built `causeway-gateway` binary):
//! its configuration file, logs (access log on stdout, diagnostics on
//! stderr), and admin endpoints.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use causeway_gateway::config::GatewayConfig;

use crate::client::HttpClient;
use crate::process::ChildGuard;

/// One gateway process.
#[derive(Debug)]
pub struct GatewayProcess {
    /// The configuration it runs with.
    pub config: GatewayConfig,
    /// The network namespace it runs in (`ip netns exec`), if any.
    pub namespace: Option<String>,
    dir: PathBuf,
    proc: Option<ChildGuard>,
    http: HttpClient,
}

impl GatewayProcess {
    /// Writes `config` under `dir` (without starting the process).
    pub fn new(dir: &Path, config: GatewayConfig) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("gateway.json"),
            serde_json::to_vec_pretty(&config)?,
        )?;
        Ok(Self {
            config,
            namespace: None,
            dir: dir.to_owned(),
            proc: None,
            http: HttpClient::new(Duration::from_secs(3)),
        })
    }

    /// Starts the process (if stopped) and waits for `/readyz`.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.proc.as_mut().is_some_and(ChildGuard::is_running) {
            return Ok(());
        }
        let binary = crate::binaries::binary("causeway-gateway")?;
        // `ip netns exec` execs the gateway: the pid stays the gateway's.
        let mut cmd = match &self.namespace {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        cmd.arg("--config").arg(self.dir.join("gateway.json")).env(
            "RUST_LOG",
            std::env::var("CAUSEWAY_E2E_GATEWAY_LOG").unwrap_or_else(|_| "warn".into()),
        );
        let name = format!("causeway-gateway[{}]", self.config.cluster.id);
        self.proc = Some(ChildGuard::spawn_split(
            &name,
            cmd,
            &self.access_log_path(),
            &self.log_path(),
        )?);
        let admin = self.admin();
        let http = self.http.clone();
        let res = crate::wait::until(
            "gateway /readyz",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                let http = http.clone();
                async move {
                    let r = http.get(admin, "admin", "/readyz", &[]).await.ok()?;
                    (r.status == 200).then_some(())
                }
            },
        )
        .await;
        if let Err(e) = res {
            let tail = self
                .proc
                .as_ref()
                .map(|p| p.log_tail(30))
                .unwrap_or_default();
            anyhow::bail!("{name}: {e}; log tail:\n{tail}");
        }
        Ok(())
    }

    /// Kills the process (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// SIGTERM (the gateway drains), then waits up to `timeout` for it to
    /// exit: its exit status, or `None` when it is still running (then
    /// killed).
    pub async fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let p = self.proc.as_mut()?;
        p.sigterm();
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = p.try_exit() {
                self.proc = None;
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop();
        None
    }

    /// Whether the process was started and not stopped since.
    pub fn is_started(&self) -> bool {
        self.proc.is_some()
    }

    /// Whether the process runs.
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(ChildGuard::is_running)
    }

    /// The egress listener.
    pub fn egress(&self) -> SocketAddr {
        self.config.listeners.egress
    }

    /// The east-west (mTLS) listener.
    pub fn ingress(&self) -> SocketAddr {
        self.config.listeners.ingress
    }

    /// The admin listener.
    pub fn admin(&self) -> SocketAddr {
        self.config.listeners.admin
    }

    /// The access log (one JSON line per request).
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// The diagnostic log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("gateway.log")
    }

    /// The access-log lines parsed as JSON.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.access_log_path())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The residency audit log's lines parsed as JSON (empty when off).
    pub fn audit_log(&self) -> Vec<serde_json::Value> {
        self.config
            .observability
            .audit_log
            .as_ref()
            .and_then(|a| std::fs::read_to_string(&a.path).ok())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(self.admin(), "admin", "/metrics", &[])
            .await?
            .body)
    }

    /// `GET /debug/config` as JSON.
    pub async fn debug_config(&self) -> anyhow::Result<serde_json::Value> {
        let r = self
            .http
            .get(self.admin(), "admin", "/debug/config", &[])
            .await?;
        Ok(serde_json::from_str(&r.body)?)
    }

    /// The catalog revision the gateway serves.
    pub async fn revision(&self) -> anyhow::Result<u64> {
        let c = self.debug_config().await?;
        c.get("revision")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| anyhow::anyhow!("/debug/config has no revision"))
    }

    /// `GET /debug/route?host=..&header=name:value` as JSON.
    pub async fn debug_route(
        &self,
        host: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<serde_json::Value> {
        let mut q = format!("/debug/route?host={}", encode(host));
        for (k, v) in headers {
            q.push_str(&format!("&header={}", encode(&format!("{k}:{v}"))));
        }
        let r = self.http.get(self.admin(), "admin", &q, &[]).await?;
        Ok(serde_json::from_str(&r.body)?)
    }
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
