//! A TCP balancer in front of the API replicas: what a Kubernetes Service
//! is to the agents in a real install. Each connection goes to the next
//! replica that accepts it, so agents move to a surviving replica when one
//! is killed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A running balancer; stops accepting when dropped.
#[derive(Debug)]
pub struct ApiBalancer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for ApiBalancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ApiBalancer {
    /// Listens on a free port of `ip` and spreads connections over `replicas`.
    pub async fn start(ip: IpAddr, replicas: Vec<SocketAddr>) -> anyhow::Result<Self> {
        anyhow::ensure!(!replicas.is_empty(), "no API replica to balance");
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let replicas: Arc<[SocketAddr]> = replicas.into();
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let start = next.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(forward(client, replicas.clone(), start));
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://<addr>`, the URL the agents use.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn forward(mut client: TcpStream, replicas: Arc<[SocketAddr]>, start: usize) {
    for i in 0..replicas.len() {
        let replica = replicas[(start + i) % replicas.len()];
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(replica));
        if let Ok(Ok(mut upstream)) = connect.await {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            return;
        }
    }
}
