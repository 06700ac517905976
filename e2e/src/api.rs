//! The federation API as separate processes (the built `causeway-federation`
//! binary): one or more stateless replicas over etcd, or one replica over
//! the embedded store. HS256 tokens are minted in-process from the shared
//! secret.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use causeway_api::client::Client;
use causeway_federation::token::{JwtKeys, Scope};

use crate::process::ChildGuard;

/// How long a token minted by the harness is valid.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// One API replica.
#[derive(Debug)]
pub struct Replica {
    /// Its listen address (REST and gRPC).
    pub addr: SocketAddr,
    proc: Option<ChildGuard>,
}

/// Settings of the API processes.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// etcd client URLs; empty = embedded store (one replica only).
    pub etcd: Vec<String>,
    /// Heartbeat lease TTL.
    pub heartbeat_ttl: Duration,
    /// `RUST_LOG`-style log level of the server.
    pub log_level: String,
    /// The loopback address the replicas listen on.
    pub ip: IpAddr,
    /// Refresh period of the web console's live views (and its gateway scrapes).
    pub console_refresh: Duration,
}

/// The API replicas and the key their tokens are signed with.
#[derive(Debug)]
pub struct FederationApi {
    dir: PathBuf,
    secret_file: PathBuf,
    keys: JwtKeys,
    settings: ApiSettings,
    replicas: Vec<Replica>,
    /// Cluster id -> gateway admin URL, written to `gateway-admins.yaml`
    /// for the console.
    admins: std::collections::BTreeMap<String, String>,
}

impl FederationApi {
    /// Starts `replicas` API processes (addresses on 127.0.0.1) and waits for `/readyz`.
    pub async fn start(dir: &Path, replicas: usize, settings: ApiSettings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // 32 random bytes, hex: the HS256 secret shared by the replicas.
        let mut raw = [0u8; 32];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut raw)?;
        let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let secret_file = dir.join("jwt-secret");
        std::fs::write(&secret_file, &secret)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600))?;
        }
        let keys = JwtKeys::hs256(secret.as_bytes(), "causeway", None);
        let mut api = Self {
            dir: dir.to_owned(),
            secret_file,
            keys,
            settings,
            replicas: Vec::new(),
            admins: std::collections::BTreeMap::new(),
        };
        api.write_admins()?;
        for addr in crate::net::free_addrs(api.settings.ip, replicas.max(1))? {
            api.replicas.push(Replica { addr, proc: None });
        }
        for i in 0..api.replicas.len() {
            api.start_replica(i).await?;
        }
        Ok(api)
    }

    fn command(&self, i: usize) -> anyhow::Result<Command> {
        let mut cmd = Command::new(crate::binaries::binary("causeway-federation")?);
        cmd.arg("--listen")
            .arg(self.replicas[i].addr.to_string())
            .arg("--jwt-secret-file")
            .arg(&self.secret_file)
            .arg("--heartbeat-ttl")
            .arg(format!("{}ms", self.settings.heartbeat_ttl.as_millis()))
            .arg("--console-gateways")
            .arg(self.admins_file())
            .arg("--console-refresh")
            .arg(format!("{}ms", self.settings.console_refresh.as_millis()))
            .env("RUST_LOG", &self.settings.log_level);
        if !self.settings.etcd.is_empty() {
            cmd.arg("--etcd").arg(self.settings.etcd.join(","));
        }
        Ok(cmd)
    }

    /// (Re)starts replica `i` and waits until it is ready.
    pub async fn start_replica(&mut self, i: usize) -> anyhow::Result<()> {
        self.stop_replica(i);
        let log = self.dir.join(format!("api-{i}.log"));
        let cmd = self.command(i)?;
        let guard = ChildGuard::spawn(&format!("causeway-federation[{i}]"), cmd, &log)?;
        self.replicas[i].proc = Some(guard);
        let url = self.url_of(i);
        let client = Client::new(&url, None)?;
        let proc = &mut self.replicas[i].proc;
        crate::wait::until(
            "federation API /readyz",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                let client = client.clone();
                async move { client.ready().await.ok().filter(|r| *r).map(|_| ()) }
            },
        )
        .await
        .map_err(|e| {
            let tail = proc.as_ref().map(|p| p.log_tail(30)).unwrap_or_default();
            anyhow::anyhow!("{e}; log tail:\n{tail}")
        })
    }

    /// The console's gateway admins file (`cluster: url`).
    pub fn admins_file(&self) -> PathBuf {
        self.dir.join("gateway-admins.yaml")
    }

    fn write_admins(&self) -> anyhow::Result<()> {
        // Written whole, then renamed: the API never reads half a file.
        let tmp = self.dir.join("gateway-admins.yaml.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&self.admins)?)?;
        std::fs::rename(&tmp, self.admins_file())?;
        Ok(())
    }

    /// Tells the console where `cluster`'s gateway admin endpoint is.
    pub fn add_gateway_admin(&mut self, cluster: &str, admin: SocketAddr) -> anyhow::Result<()> {
        self.admins
            .insert(cluster.to_owned(), format!("http://{admin}"));
        self.write_admins()
    }

    /// The web console's URL (`/ui/`) on the first replica.
    pub fn console_url(&self) -> String {
        format!("{}/ui/", self.url())
    }

    /// Kills replica `i` (SIGKILL).
    pub fn stop_replica(&mut self, i: usize) {
        if let Some(mut p) = self.replicas[i].proc.take() {
            p.kill();
        }
    }

    /// Kills every replica.
    pub fn stop_all(&mut self) {
        for i in 0..self.replicas.len() {
            self.stop_replica(i);
        }
    }

    /// Restarts every stopped replica.
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.replicas.len() {
            if self.replicas[i].proc.is_none() {
                self.start_replica(i).await?;
            }
        }
        Ok(())
    }

    /// The URL of replica `i`.
    pub fn url_of(&self, i: usize) -> String {
        format!("http://{}", self.replicas[i].addr)
    }

    /// The URL of the first replica.
    pub fn url(&self) -> String {
        self.url_of(0)
    }

    /// Every replica URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.replicas.len()).map(|i| self.url_of(i)).collect()
    }

    /// The replicas.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The shared HS256 secret file (for `causewayctl token mint`).
    pub fn secret_file(&self) -> &Path {
        &self.secret_file
    }

    /// Mints a token with `scopes` (`admin`, `read`, `cluster:<id>`).
    pub fn token(&self, scopes: &[&str]) -> anyhow::Result<String> {
        let scopes = scopes
            .iter()
            .map(|s| s.parse::<Scope>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.keys.mint(&scopes, TOKEN_TTL, Some("causeway-e2e"))?)
    }

    /// An admin client of replica `i`.
    pub fn admin_client_of(&self, i: usize) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url_of(i), Some(self.token(&["admin"])?))?)
    }

    /// An admin client of the first replica.
    pub fn admin_client(&self) -> anyhow::Result<Client> {
        self.admin_client_of(0)
    }

    /// A client of the first replica acting as cluster `id`.
    pub fn cluster_client(&self, id: &str) -> anyhow::Result<Client> {
        self.cluster_client_of(0, id)
    }

    /// A client of replica `i` acting as cluster `id`.
    pub fn cluster_client_of(&self, i: usize, id: &str) -> anyhow::Result<Client> {
        Ok(Client::new(
            &self.url_of(i),
            Some(self.token(&[&format!("cluster:{id}")])?),
        )?)
    }
}
