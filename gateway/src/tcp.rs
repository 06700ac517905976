//! TCP services: one egress port per imported TCP service port, forwarded
//! through the east-west link as an **SNI-routed mTLS stream**.
//!
//! The egress side decides (same `decide`, same residency filter) for the
//! configured `namespace/name` and port. A local route connects to a local
//! endpoint; a remote route opens an mTLS connection to the remote gateway's
//! east-west listener with SNI `tcp-<port>.<name>.<ns>.causeway.internal`,
//! verified and authenticated exactly like HTTP traffic. The remote ingress
//! sees that SNI after the handshake, authorizes the verified peer (export
//! check, AccessPolicy on trust domain and cluster) and splices the stream to
//! a local endpoint. Bytes are copied both ways until either side closes.

use std::sync::Arc;

use causeway_trust::SpiffeId;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::authz::{self, Access};
use crate::config::TcpServiceConfig;
use crate::denial::Denial;
use crate::metrics::{DenyLabels, Label, ListenerLabels};
use crate::proxy::ServiceKey;
use crate::routing::{Decision, RouteRequest, decide};
use crate::state::Shared;

use causeway_api::model::is_dns_label;

const SUFFIX: &str = ".causeway.internal";

/// Whether an SNI names a TCP tunnel.
pub fn is_tunnel_sni(sni: &str) -> bool {
    sni.starts_with("tcp-") && sni.ends_with(SUFFIX)
}

/// The SNI of a tunnel to `namespace/name:port`.
pub fn tunnel_sni(namespace: &str, name: &str, port: u16) -> String {
    format!("tcp-{port}.{name}.{namespace}{SUFFIX}")
}

/// Parses `tcp-<port>.<name>.<ns>.causeway.internal` into `(ns, name, port)`.
/// Only the canonical spelling [`tunnel_sni`] writes is accepted (decimal
/// port 1..=65535 without sign or leading zero, RFC 1123 labels), so one
/// tunnel has exactly one name.
pub fn parse_tunnel_sni(sni: &str) -> Option<(&str, &str, u16)> {
    let rest = sni.strip_prefix("tcp-")?.strip_suffix(SUFFIX)?;
    let mut it = rest.split('.');
    let digits = it.next()?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = digits.parse().ok()?;
    let name = it.next()?;
    let ns = it.next()?;
    if it.next().is_some() || !is_dns_label(name) || !is_dns_label(ns) {
        return None;
    }
    Some((ns, name, port))
}

/// Accepts connections on one TCP egress port until shutdown, then waits
/// for the open tunnels to end.
pub(crate) async fn serve(
    listener: TcpListener,
    cfg: TcpServiceConfig,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = Arc::new(cfg);
    let active = shared
        .metrics
        .active_connections
        .get_or_create_owned(&ListenerLabels { listener: "tcp" });
    let in_flight = crate::listener::InFlight::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => break,
        };
        let Ok((client, _)) = accepted else { continue };
        let _ = client.set_nodelay(true);
        let (shared, cfg, active) = (shared.clone(), cfg.clone(), active.clone());
        let live = in_flight.enter();
        tokio::spawn(async move {
            let _live = live;
            active.inc();
            egress(&shared, &cfg, client).await;
            active.dec();
        });
    }
    // Open tunnels run on until they end or the drain timeout cuts them.
    drop(listener);
    in_flight.idle().await;
}

async fn splice<A, B>(mut a: A, mut b: B)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
}

/// Counts a refused connection (residency denials apart) and logs it.
fn count_denial(shared: &Shared, service: &str, denial: &Denial) {
    let labels = DenyLabels {
        service: Label::from(service),
        reason: denial.reason(),
    };
    if denial.is_residency() {
        shared
            .metrics
            .residency_denials
            .get_or_create(&labels)
            .inc();
    } else {
        shared.metrics.denials.get_or_create(&labels).inc();
    }
    tracing::info!(
        service,
        reason = denial.reason(),
        policy = denial.policy().map_or("", |p| &**p),
        "tcp connection refused"
    );
}

async fn egress(shared: &Shared, cfg: &TcpServiceConfig, client: TcpStream) {
    let (ns, name) = (cfg.service.namespace.as_str(), cfg.service.name.as_str());
    let key = cfg.service.to_string();
    let port = cfg.port.get();
    let state = shared.state();
    let mut tried: Vec<Arc<str>> = Vec::new();
    for _ in 0..=shared.config.upstream.max_retries {
        let decision = {
            let excluded: Vec<&str> = tried.iter().map(|c| &**c).collect();
            let req = RouteRequest::service(ns, name)
                .with_port(port)
                .with_random(rand::random())
                .with_exclude(&excluded);
            decide(&state.catalog.routing, &shared.health, &req)
        };
        let route = match decision {
            Decision::Deny(d) => {
                count_denial(shared, &key, &Denial::from(d));
                return;
            }
            Decision::Route(r) => r,
        };
        let target = route.target;
        if target.local {
            let Some(endpoints) = state.local_for(&key, Some(port)) else {
                return;
            };
            match TcpStream::connect(endpoints.pick()).await {
                Ok(up) => return splice(client, up).await,
                Err(e) => {
                    tracing::info!(service = %cfg.service, error = %e, "tcp local connect failed");
                    return;
                }
            }
        }
        let Some(conns) = shared.remotes.get(&target) else {
            tried.push(target.cluster.clone());
            continue;
        };
        let Ok(sni) = ServerName::try_from(tunnel_sni(ns, name, port)) else {
            return;
        };
        let addr = conns.addrs[rand::random::<u8>() as usize % conns.addrs.len()];
        let connect = tokio::time::timeout(
            shared.config.upstream.connect_timeout,
            conns.h1.tunnel(addr, sni),
        )
        .await;
        match connect {
            Ok(Ok(up)) => return splice(client, up).await,
            _ => {
                tracing::info!(service = %cfg.service, cluster = %target.cluster, "tcp tunnel connect failed");
                shared
                    .metrics
                    .upstream_connect_errors
                    .get_or_create(&crate::metrics::TargetLabels {
                        destination_cluster: Label(target.cluster.clone()),
                    })
                    .inc();
                tried.push(target.cluster.clone());
            }
        }
    }
}

/// The ingress side of TCP tunnels.
pub struct IngressTunnel {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for IngressTunnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngressTunnel").finish_non_exhaustive()
    }
}

impl IngressTunnel {
    /// A tunnel handler over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Authorizes the verified `peer` for the service and port named by
    /// `sni` (the same authorization as HTTP requests, for a port exported
    /// as TCP) and splices `stream` to a local endpoint; closes it otherwise.
    pub(crate) async fn handle<S>(&self, stream: S, peer: &SpiffeId, sni: &str)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let Some((ns, name, port)) = parse_tunnel_sni(sni) else {
            count_denial(&self.shared, "unknown", &Denial::InvalidHost);
            return;
        };
        let key = ServiceKey::new(ns, name, Some(port));
        let state = self.shared.state();
        if let Err(denial) = authz::authorize(&state, peer, &key, None, Access::Tunnel) {
            tracing::info!(%peer, service = key.as_str(), port, "tcp tunnel refused");
            let label = if state.service(key.as_str()).is_some() {
                key.as_str()
            } else {
                "unknown"
            };
            count_denial(&self.shared, label, &denial);
            return;
        }
        let Some(endpoints) = state.local_for(key.as_str(), key.port) else {
            return;
        };
        match TcpStream::connect(endpoints.pick()).await {
            Ok(up) => splice(stream, up).await,
            Err(e) => {
                tracing::info!(service = key.as_str(), error = %e, "tcp local connect failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnel_sni_round_trips() {
        let sni = tunnel_sni("demo", "db", 5432);
        assert!(is_tunnel_sni(&sni));
        assert_eq!(parse_tunnel_sni(&sni), Some(("demo", "db", 5432)));
        assert_eq!(parse_tunnel_sni("tcp-x.db.demo.causeway.internal"), None);
        assert_eq!(parse_tunnel_sni("tcp-1.a.b.c.causeway.internal"), None);
        assert!(!is_tunnel_sni("eu-1.causeway.internal"));
        // One spelling per tunnel: no sign, leading zero, port 0 or case.
        for alias in [
            "tcp-+5432.db.demo.causeway.internal",
            "tcp-05432.db.demo.causeway.internal",
            "tcp-0.db.demo.causeway.internal",
            "tcp-5432.DB.demo.causeway.internal",
            "tcp-5432..demo.causeway.internal",
            "tcp-65536.db.demo.causeway.internal",
        ] {
            assert_eq!(parse_tunnel_sni(alias), None, "{alias}");
        }
    }

    proptest::proptest! {
        /// Whatever the SNI, parsing never panics, and an accepted one is
        /// exactly what `tunnel_sni` writes for what it parsed to.
        #[test]
        fn accepted_tunnel_snis_are_canonical(
            sni in "(tcp-)?[0-9+a-zA-Z.-]{0,24}(\\.causeway\\.internal)?"
        ) {
            if let Some((ns, name, port)) = parse_tunnel_sni(&sni) {
                proptest::prop_assert_eq!(tunnel_sni(ns, name, port), sni.clone());
                proptest::prop_assert!(port > 0 && is_tunnel_sni(&sni));
            }
        }

        #[test]
        fn tunnel_snis_round_trip(
            ns in "[a-z]([a-z0-9-]{0,10}[a-z0-9])?",
            name in "[a-z]([a-z0-9-]{0,10}[a-z0-9])?",
            port in 1u16..,
        ) {
            let sni = tunnel_sni(&ns, &name, port);
            proptest::prop_assert_eq!(parse_tunnel_sni(&sni), Some((ns.as_str(), name.as_str(), port)));
        }
    }
}
