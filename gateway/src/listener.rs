//! The accept loop shared by every HTTP listener: connection cap, active
//! connection gauge, handshake deadline (TLS), a whole-header deadline for
//! every request, then the Pingora application.

mod deadline;
mod in_flight;

use std::sync::Arc;
use std::time::Duration;

use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::{GetSocketDigest, SocketDigest, Stream};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::metrics::{ListenerLabels, Metrics};

pub(crate) use deadline::{HeaderDeadline, next_request};
pub(crate) use in_flight::InFlight;

/// How connections of one listener are prepared before the application.
pub(crate) enum Transport {
    /// Plaintext.
    Plain,
    /// TLS (mTLS for the east-west ingress); the handshake must finish
    /// within the header deadline.
    Tls {
        /// The Pingora rustls acceptor with its post-handshake callback.
        acceptor: Arc<Acceptor>,
        /// Handles connections whose SNI selects a TCP tunnel.
        tunnel: Option<Arc<crate::tcp::IngressTunnel>>,
    },
}

/// One listening socket and what to do with its connections.
pub(crate) struct ListenerSpec<A> {
    /// Metric label.
    pub(crate) name: &'static str,
    /// The bound socket.
    pub(crate) listener: TcpListener,
    /// Plaintext or TLS.
    pub(crate) transport: Transport,
    /// Concurrent connection cap.
    pub(crate) max_connections: usize,
    /// Whole-header deadline of every request (and of the TLS handshake).
    pub(crate) header_timeout: Duration,
    /// The Pingora application (proxy or admin).
    pub(crate) app: Arc<A>,
}

/// Accepts connections until `shutdown` turns true, then drains: the
/// application wakes its idle keep-alive connections so they close, HTTP/2
/// connections get GOAWAY (Pingora watches the same `shutdown`), and this
/// returns once the last connection has ended.
pub(crate) async fn serve<A>(
    spec: ListenerSpec<A>,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) where
    A: ServerApp + Send + Sync + 'static,
{
    let ListenerSpec {
        name,
        listener,
        transport,
        max_connections,
        header_timeout,
        app,
    } = spec;
    let transport = Arc::new(transport);
    let permits = Arc::new(Semaphore::new(max_connections));
    let labels = ListenerLabels { listener: name };
    let active = metrics.active_connections.get_or_create_owned(&labels);
    let refused = metrics.connections_refused.get_or_create_owned(&labels);
    let accepted_total = metrics.connections.get_or_create_owned(&labels);
    let slow = metrics.slow_clients.get_or_create_owned(&labels);
    let mut stop = shutdown.clone();
    let in_flight = InFlight::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused.inc();
            tracing::debug!(listener = name, %peer, "connection cap reached, closing");
            drop(tcp);
            continue;
        };
        accepted_total.inc();
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let transport = transport.clone();
        let active = active.clone();
        let slow = slow.clone();
        let shutdown = shutdown.clone();
        let live = in_flight.enter();
        tokio::spawn(async move {
            let _permit = permit;
            let _live = live;
            active.inc();
            let l4 = with_peer_digest(tcp, peer);
            let stream: Option<Stream> = match &*transport {
                Transport::Plain => Some(Box::new(l4)),
                Transport::Tls { acceptor, tunnel } => {
                    // The handshake and tunnel futures are boxed: inline, their
                    // state (about 20 KiB) would stay allocated in this task
                    // for the whole life of every connection, idle or not.
                    let handshake = Box::pin(acceptor.tls_handshake(l4));
                    match tokio::time::timeout(header_timeout, handshake).await {
                        Ok(Ok(tls)) => {
                            let peer_id = tls.ssl_digest().and_then(|d| {
                                d.extension
                                    .get::<crate::proxy::ingress::PeerIdentity>()
                                    .filter(|p| {
                                        p.sni.as_deref().is_some_and(crate::tcp::is_tunnel_sni)
                                    })
                                    .map(|p| (p.id.clone(), p.sni.clone()))
                            });
                            match (peer_id, tunnel) {
                                (Some((id, Some(sni))), Some(t)) => {
                                    Box::pin(t.handle(tls, &id, &sni)).await;
                                    None
                                }
                                _ => Some(Box::new(tls) as Stream),
                            }
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "tls handshake failed");
                            None
                        }
                        Err(_) => {
                            slow.inc();
                            tracing::debug!(%peer, "tls handshake timed out");
                            None
                        }
                    }
                }
            };
            let stream = stream
                .map(|s| Box::new(HeaderDeadline::new(s, header_timeout, slow.clone())) as Stream);
            if let Some(stream) = stream {
                let mut next = app.process_new(stream, &shutdown).await;
                while let Some(s) = next {
                    next = app.process_new(s, &shutdown).await;
                }
            }
            active.dec();
        });
    }
    drop(listener);
    app.cleanup().await;
    in_flight.idle().await;
}

/// The Pingora stream of an accepted connection, with a socket digest that
/// already knows the peer's address (from `accept`, no `getpeername`):
/// `Session::client_addr` reads it (`callers.byAddress`, access logs).
fn with_peer_digest(tcp: tokio::net::TcpStream, peer: std::net::SocketAddr) -> L4Stream {
    use std::os::fd::AsRawFd;
    let digest = SocketDigest::from_raw_fd(tcp.as_raw_fd());
    let _ = digest.peer_addr.set(Some(SocketAddr::Inet(peer)));
    let mut l4 = L4Stream::from(tcp);
    l4.set_socket_digest(digest);
    l4
}
