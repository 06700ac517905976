//! The `causeway-federation` binary: YAML config + flags, token minting,
//! readiness, and a clean exit on SIGTERM.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use causeway_api::client::Client;
use causeway_federation::token::generate_es256_pem;

struct Guard(Option<tokio::process::Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.start_kill();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_from_config_mints_tokens_and_stops_on_sigterm() {
    let bin = env!("CARGO_BIN_EXE_causeway-federation");
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = generate_es256_pem().unwrap();
    std::fs::write(dir.path().join("private.pem"), private).unwrap();
    std::fs::write(dir.path().join("public.pem"), public).unwrap();
    let port = free_port();
    let config = dir.path().join("federation.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:1\njwt:\n  algorithm: ES256\n  publicKeyFile: {}\n  audience: causeway\nheartbeatTtl: 5s\n",
            dir.path().join("public.pem").display()
        ),
    )
    .unwrap();
    // An unknown config field is a usage error naming it.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "listen: 127.0.0.1:0\nlisten_port: 3\n").unwrap();
    let o = tokio::process::Command::new(bin)
        .args(["--config", bad.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("listen_port"));
    // Mint a bootstrap token with the server binary.
    let o = tokio::process::Command::new(bin)
        .args([
            "token",
            "--key-file",
            dir.path().join("private.pem").to_str().unwrap(),
            "--scope",
            "admin",
            "--ttl",
            "5m",
        ])
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    // Serve: the flag overrides the file's listen address; embedded store persisted in --data-dir.
    let child = tokio::process::Command::new(bin)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--data-dir", dir.path().join("data").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut guard = Guard(Some(child));
    let base = format!("http://127.0.0.1:{port}");
    let c = Client::new(&base, Some(token)).unwrap();
    let mut ready = false;
    for _ in 0..100 {
        if c.ready().await.unwrap_or(false) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "server became ready");
    let clusters: Vec<serde_json::Value> = c.list("/v1/clusters").await.unwrap();
    assert!(clusters.is_empty());
    // SIGTERM with a watch open: the stream ends and the process exits 0 promptly.
    let mut watch = c.watch(None).await.unwrap();
    assert!(watch.next().await.unwrap().is_ok());
    let mut child = guard.0.take().unwrap();
    let pid = child.id().unwrap();
    let k = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(
        end.is_none() || end.is_some_and(|r| r.is_err()),
        "the watch ended"
    );
}
