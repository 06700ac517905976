//! Upstream peers: local endpoints (plaintext HTTP/1.1 or h2c) and remote
//! gateways (mTLS HTTP/2 through [`relay`] and [`tls::SpiffeConnector`],
//! pooled by Pingora).

pub mod relay;
pub mod tls;

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use pingora::protocols::ALPN;
use pingora::upstreams::peer::HttpPeer;
use rustls_pki_types::ServerName;

use crate::catalog::Timeouts;
use crate::config::UpstreamConfig;
use crate::identity::{ALPN_H1, ALPN_H2, Identity, gateway_id};
use crate::routing::Target;

pub use tls::SpiffeConnector;

/// Connectors to one remote cluster's gateway.
#[derive(Debug)]
pub struct ClusterConnectors {
    /// HTTP/2 connector (normal traffic).
    pub h2: Arc<SpiffeConnector>,
    /// HTTP/1.1 connector (upgrades: WebSocket).
    pub h1: Arc<SpiffeConnector>,
    /// Resolved east-west endpoints.
    pub addrs: Arc<[SocketAddr]>,
    endpoints: Arc<[String]>,
    /// Kept alive for as long as these connectors are in use.
    _h2_relay: relay::Relay,
    _h1_relay: relay::Relay,
    h2_path: String,
    h1_path: String,
    sni: String,
}

/// Connectors per remote cluster, built off the request path when the
/// catalog changes (DNS resolution happens there too).
pub struct RemoteConnectors {
    identity: Arc<Identity>,
    config: UpstreamConfig,
    map: ArcSwap<HashMap<Arc<str>, Arc<ClusterConnectors>>>,
    runtime: tokio::runtime::Handle,
    dir: PathBuf,
    seq: AtomicUsize,
}

impl Drop for RemoteConnectors {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for RemoteConnectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConnectors").finish_non_exhaustive()
    }
}

impl RemoteConnectors {
    /// An empty set; relays live in a fresh private directory (mode 0700)
    /// under the temp dir. Must be called inside a tokio runtime.
    pub fn new(identity: Arc<Identity>, config: UpstreamConfig) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!(
            "causeway-gw-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self {
            identity,
            config,
            map: ArcSwap::from_pointee(HashMap::new()),
            runtime: tokio::runtime::Handle::current(),
            dir,
            seq: AtomicUsize::new(0),
        })
    }

    /// The connectors for `target`, building them if needed (blocking DNS
    /// for host names: call [`Self::prepare`] off the request path first).
    pub fn get(&self, target: &Target) -> Option<Arc<ClusterConnectors>> {
        if let Some(c) = self.map.load().get(&target.cluster)
            && (Arc::ptr_eq(&c.endpoints, &target.gateway_endpoints)
                || c.endpoints == target.gateway_endpoints)
        {
            return Some(c.clone());
        }
        let built = Arc::new(self.build(target)?);
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(target.cluster.clone(), built.clone());
            m
        });
        Some(built)
    }

    /// Builds connectors for every target (called when a catalog is installed).
    pub fn prepare<'a>(&self, targets: impl IntoIterator<Item = &'a Target>) {
        for t in targets {
            let _ = self.get(t);
        }
    }

    fn build(&self, target: &Target) -> Option<ClusterConnectors> {
        let td = causeway_trust::TrustDomain::new(&target.trust_domain).ok()?;
        let peer_id = gateway_id(&td, &target.cluster)?;
        let name = ServerName::try_from(format!("{}.causeway.internal", target.cluster)).ok()?;
        let h2 = Arc::new(SpiffeConnector::new(
            self.identity.client_config(peer_id.clone(), ALPN_H2),
            name.clone(),
            ALPN_H2,
        ));
        let h1 = Arc::new(SpiffeConnector::new(
            self.identity.client_config(peer_id, ALPN_H1),
            name,
            ALPN_H1,
        ));
        let addrs: Vec<SocketAddr> = target
            .gateway_endpoints
            .iter()
            .flat_map(|e| match e.parse::<SocketAddr>() {
                Ok(a) => vec![a],
                Err(_) => e.to_socket_addrs().map(|i| i.collect()).unwrap_or_default(),
            })
            .collect();
        if addrs.is_empty() {
            tracing::warn!(cluster = %target.cluster, "remote gateway has no resolvable endpoint");
            return None;
        }
        let addrs: Arc<[SocketAddr]> = addrs.into();
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let timeout = self.config.connect_timeout;
        let start = |proto: &str, c: &Arc<SpiffeConnector>| {
            let path = self.dir.join(format!("r{n}-{proto}.sock"));
            relay::start(&self.runtime, path, c.clone(), addrs.clone(), timeout)
                .map_err(|e| tracing::warn!(cluster = %target.cluster, error = %e, "cannot start east-west relay"))
                .ok()
        };
        let h2_relay = start("h2", &h2)?;
        let h1_relay = start("h1", &h1)?;
        Some(ClusterConnectors {
            h2_path: h2_relay.path().to_string_lossy().into_owned(),
            h1_path: h1_relay.path().to_string_lossy().into_owned(),
            sni: format!("{}.causeway.internal", target.cluster),
            h2,
            h1,
            addrs,
            endpoints: target.gateway_endpoints.clone(),
            _h2_relay: h2_relay,
            _h1_relay: h1_relay,
        })
    }

    /// A peer for the remote gateway behind `c` (through its relay);
    /// `upgrade` selects the HTTP/1.1 relay (WebSocket and other upgrades).
    pub fn peer(
        &self,
        c: &ClusterConnectors,
        upgrade: bool,
        timeouts: Option<Timeouts>,
    ) -> Option<Box<HttpPeer>> {
        let path = if upgrade { &c.h1_path } else { &c.h2_path };
        let mut peer = HttpPeer::new_uds(path, false, c.sni.clone()).ok()?;
        let o = &mut peer.options;
        if upgrade {
            o.alpn = ALPN::H1;
            peer.group_key = 2;
        } else {
            o.alpn = ALPN::H2;
            o.max_h2_streams = self.config.h2_streams_per_connection.get();
            o.h2_ping_interval = Some(std::time::Duration::from_secs(30));
            peer.group_key = 1;
        }
        self.timeouts(&mut peer, timeouts);
        Some(Box::new(peer))
    }

    /// A peer for a local endpoint; `h2` selects h2c (prior knowledge).
    pub fn local_peer(
        &self,
        addr: SocketAddr,
        h2: bool,
        timeouts: Option<Timeouts>,
    ) -> Box<HttpPeer> {
        let mut peer = HttpPeer::new(addr, false, String::new());
        if h2 {
            peer.options.alpn = ALPN::H2;
            peer.options.max_h2_streams = self.config.h2_streams_per_connection.get();
            peer.group_key = 3;
        } else {
            peer.group_key = 4;
        }
        self.timeouts(&mut peer, timeouts);
        Box::new(peer)
    }

    fn timeouts(&self, peer: &mut HttpPeer, t: Option<Timeouts>) {
        let t = t.unwrap_or(Timeouts {
            connect: self.config.connect_timeout,
            request: self.config.request_timeout,
        });
        let o = &mut peer.options;
        o.connection_timeout = Some(t.connect);
        o.total_connection_timeout = Some(t.connect * 2);
        o.read_timeout = Some(t.request);
        o.write_timeout = Some(t.request);
        o.idle_timeout = Some(self.config.pool_idle_timeout);
    }
}
