//! The `causeway-federation` binary as a test server: ES256 keys, the
//! embedded store in a temporary directory, a free loopback port; killed by
//! pid when dropped.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use causeway_api::client::Client;
use causeway_federation::token::{JwtKeys, Scope, generate_es256_pem};

pub struct ServerProcess {
    pub base: String,
    pub keys: JwtKeys,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts the server binary and waits until `/readyz` answers 200.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = generate_es256_pem().unwrap();
        std::fs::write(dir.path().join("private.pem"), &private).unwrap();
        std::fs::write(dir.path().join("public.pem"), &public).unwrap();
        let keys = JwtKeys::es256(
            public.as_bytes(),
            Some(private.as_bytes()),
            "causeway",
            None,
        )
        .unwrap();
        // A port taken between the probe and the bind is retried.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            let log_out = log.try_clone().unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_causeway-federation"))
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .arg("--jwt-public-key")
                .arg(dir.path().join("public.pem"))
                .env_remove("CAUSEWAY_CONFIG")
                .stdin(Stdio::null())
                .stdout(log_out)
                .stderr(log)
                .spawn()
                .unwrap();
            let base = format!("http://127.0.0.1:{port}");
            let probe = Client::new(&base, None).unwrap();
            for _ in 0..200 {
                if probe.ready().await.unwrap_or(false) {
                    return Self {
                        base,
                        keys,
                        dir,
                        child,
                    };
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "causeway-federation did not become ready:\n{}",
            std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
        );
    }

    pub fn token(&self, scopes: &[&str]) -> String {
        let scopes: Vec<Scope> = scopes.iter().map(|s| s.parse().unwrap()).collect();
        self.keys
            .mint(&scopes, Duration::from_secs(600), Some("test"))
            .unwrap()
    }

    pub fn client(&self, scopes: &[&str]) -> Client {
        Client::new(&self.base, Some(self.token(scopes))).unwrap()
    }

    pub fn admin(&self) -> Client {
        self.client(&["admin"])
    }
}
