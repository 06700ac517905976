//! The east-west relay: a Unix-domain socket per remote cluster and
//! protocol, private to this process (directory mode 0700). Pingora connects
//! to it as a plaintext HTTP/2 (or HTTP/1.1) upstream; every accepted
//! connection is bridged to one fresh mTLS connection to the remote gateway
//! made by [`SpiffeConnector`] (SPIFFE verification of the peer, this
//! gateway's SVID).
//!
//! Why not hand Pingora the TLS stream directly (a custom L4 connector)?
//! Pingora only reuses a pooled connection whose file descriptor's peer
//! address matches the peer (`matches_fd`); a virtual socket has no fd, so
//! every request would pay a new mTLS handshake. Over the relay, Pingora's
//! pool sees a real socket and keeps one long-lived, multiplexed HTTP/2
//! connection, each backed by one long-lived mTLS connection.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::SpiffeConnector;

/// A running relay; stops and removes its socket when dropped.
#[derive(Debug)]
pub struct Relay {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Relay {
    /// The socket path Pingora connects to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` and bridges each connection to `connector` (endpoints tried
/// round robin, each attempt bounded by `timeout`).
pub fn start(
    handle: &Handle,
    path: PathBuf,
    connector: Arc<SpiffeConnector>,
    addrs: Arc<[SocketAddr]>,
    timeout: Duration,
) -> std::io::Result<Relay> {
    let _ = std::fs::remove_file(&path);
    let _guard = handle.enter();
    let listener = UnixListener::bind(&path)?;
    let next = Arc::new(AtomicUsize::new(0));
    let task = handle.spawn(async move {
        loop {
            let Ok((local, _)) = listener.accept().await else {
                continue;
            };
            let (connector, addrs, next) = (connector.clone(), addrs.clone(), next.clone());
            tokio::spawn(async move {
                let start = next.fetch_add(1, Ordering::Relaxed);
                for i in 0..addrs.len() {
                    let addr = addrs[(start + i) % addrs.len()];
                    match tokio::time::timeout(timeout, connector.handshake(addr)).await {
                        Ok(Ok(mut tls)) => {
                            let mut local = local;
                            let _ = tokio::io::copy_bidirectional(&mut local, &mut tls).await;
                            return;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%addr, error = %e, "east-west connect failed");
                        }
                        Err(_) => tracing::info!(%addr, "east-west connect timed out"),
                    }
                }
                // Dropping `local` tells Pingora the connection failed.
            });
        }
    });
    Ok(Relay { path, task })
}
