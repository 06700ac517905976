//! Starting a gateway: identity, catalog, the three listeners (Pingora
//! applications behind the shared accept loop) and the background tasks.
//!
//! Everything runs on the caller's tokio runtime, so tests can start several
//! gateways in one process with port 0 and read the bound addresses back.

mod background;
mod install;

pub(crate) use background::prepare_remotes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pingora::apps::HttpServerOptions;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use pingora::protocols::http::v2::server::default_h2_options;
use pingora::server::configuration::ServerConf;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::Admin;
use crate::catalog::{CatalogError, CatalogState, load_catalog_file};
use crate::config::GatewayConfig;
use crate::identity::{Identity, IdentityError};
use crate::listener::{ListenerSpec, Transport, serve};
use crate::proxy::AccessLog;
use crate::proxy::egress::Egress;
use crate::proxy::ingress::{Ingress, PeerIdentityCallback};
use crate::state::Shared;

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The identity could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The catalog file could not be loaded.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr} ({listener}): {source}")]
    Bind {
        /// Which listener.
        listener: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The private directory of the east-west relays could not be created.
    #[error("cannot create the east-west relay directory: {0}")]
    Relay(std::io::Error),
    /// The TLS listener could not be configured.
    #[error("tls: {0}")]
    Tls(String),
    /// The cluster agent could not start.
    #[error(transparent)]
    Agent(#[from] causeway_agent::AgentError),
}

/// A running gateway.
pub struct Gateway {
    /// Shared state (catalog, identity, metrics).
    pub shared: Arc<Shared>,
    /// Bound egress address.
    pub egress_addr: SocketAddr,
    /// Bound east-west ingress address.
    pub ingress_addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    /// Bound TCP egress addresses, in `tcp` config order.
    pub tcp_addrs: Vec<SocketAddr>,
    /// Stops the traffic listeners (egress, ingress, TCP) and drains them.
    stop_listeners: watch::Sender<bool>,
    /// Stops everything else (admin, probes, agent) once they drained.
    stop_rest: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every request and tunnel finished within the drain timeout.
    Clean,
    /// The timeout passed with connections still open; they are cut.
    TimedOut,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("egress_addr", &self.egress_addr)
            .field("ingress_addr", &self.ingress_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            listener,
            addr,
            source,
        })
}

fn local_addr(
    l: &TcpListener,
    name: &'static str,
    addr: SocketAddr,
) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|source| StartError::Bind {
        listener: name,
        addr,
        source,
    })
}

/// Starts the cluster agent and installs what it publishes: the persisted
/// catalog (if any) before this returns, then every catalog and every
/// change of the local endpoints.
fn start_agent(
    shared: &Arc<Shared>,
    metrics: causeway_agent::AgentMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, StartError> {
    let c = &shared.config.cluster;
    let cluster = causeway_agent::ClusterInfo {
        id: c
            .id
            .parse()
            .map_err(|e| causeway_agent::AgentError::Config(format!("cluster.id: {e}")))?,
        region: c.region.clone(),
        zone: c.zone.clone(),
        jurisdictions: c.jurisdictions.clone(),
        trust_domain: shared.identity.trust_domain.clone(),
    };
    let agent = causeway_agent::spawn_with_svid(
        &shared.config.agent,
        cluster,
        shared.identity.bundles.clone(),
        metrics,
        shutdown.clone(),
        Some(causeway_api::client::ClientCert(shared.identity.resolver())),
    )?;
    if let Some(revision) = agent.restored {
        tracing::info!(
            revision,
            "serving the persisted catalog until the API answers"
        );
    }
    let mut catalogs = agent.catalog;
    if agent.restored.is_some() {
        install::catalog(shared, catalogs.borrow_and_update().clone());
    }
    let mut tasks = agent.tasks;
    tasks.push(tokio::spawn(install::catalogs(
        shared.clone(),
        catalogs,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(install::local_endpoints(
        shared.clone(),
        agent.local,
        shutdown,
    )));
    Ok(tasks)
}

impl Gateway {
    /// Validates `config`, loads identity and catalog, binds the listeners
    /// and spawns every task on the current runtime.
    pub async fn start(config: GatewayConfig) -> Result<Self, StartError> {
        config.validate()?;
        // Pingora's listener builds its rustls ServerConfig from the process
        // default provider; make sure it is ring (it is the only one we link).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let identity = Identity::start(&config).await?;
        let catalog = match &config.federation.catalog_file {
            Some(p) => CatalogState::build(load_catalog_file(p)?, &config.cluster),
            None => CatalogState::empty(&config.cluster),
        };
        let log = if config.observability.access_log {
            AccessLog::stdout()
        } else {
            AccessLog::disabled()
        };
        let l = config.listeners.clone();
        let limits = config.limits.clone();
        let tcp_config = config.tcp.clone();
        let mut registry = prometheus_client::registry::Registry::default();
        let agent_metrics = causeway_agent::AgentMetrics::register(&mut registry);
        let shared = Shared::new(config, identity, catalog, registry).map_err(StartError::Relay)?;
        background::prepare_remotes(&shared);

        let egress_l = bind("egress", l.egress).await?;
        let ingress_l = bind("ingress", l.ingress).await?;
        let admin_l = bind("admin", l.admin).await?;
        let egress_addr = local_addr(&egress_l, "egress", l.egress)?;
        let ingress_addr = local_addr(&ingress_l, "ingress", l.ingress)?;
        let admin_addr = local_addr(&admin_l, "admin", l.admin)?;

        let conf = Arc::new(ServerConf::default());
        let mut h2 = default_h2_options();
        h2.max_concurrent_streams(limits.h2_max_concurrent_streams);
        h2.max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
        h2.max_pending_accept_reset_streams(64);
        h2.max_local_error_reset_streams(Some(256));
        let mut server_options = HttpServerOptions::default();
        server_options.h2c = true;
        server_options.h2_idle_timeout = Some(limits.idle_timeout);
        let mut ingress_options = server_options.clone();
        ingress_options.h2c = false;

        let mut egress =
            pingora::proxy::http_proxy(&conf, Egress::new(shared.clone(), log.clone()));
        egress.server_options = Some(server_options);
        egress.h2_options = Some(h2.clone());
        let mut ingress = pingora::proxy::http_proxy(&conf, Ingress::new(shared.clone(), log));
        ingress.server_options = Some(ingress_options);
        ingress.h2_options = Some(h2);

        let mut tls = TlsSettings::with_callbacks(Box::new(PeerIdentityCallback))
            .map_err(|e| StartError::Tls(e.to_string()))?;
        tls.set_client_cert_verifier(shared.identity.client_verifier());
        tls.set_cert_resolver(shared.identity.resolver());
        tls.set_alpn(ALPN::H2H1);
        let acceptor = Arc::new(tls.build());

        let (stop_listeners, rx) = watch::channel(false);
        let (stop_rest, rest_rx) = watch::channel(false);
        let mut listeners = Vec::new();
        let mut tasks = Vec::new();
        let m = shared.metrics.clone();
        listeners.push(tokio::spawn(serve(
            ListenerSpec {
                name: "egress",
                listener: egress_l,
                transport: Transport::Plain,
                max_connections: limits.max_connections.get(),
                header_timeout: limits.header_timeout,
                app: Arc::new(egress),
            },
            m.clone(),
            rx.clone(),
        )));
        listeners.push(tokio::spawn(serve(
            ListenerSpec {
                name: "ingress",
                listener: ingress_l,
                transport: Transport::Tls {
                    acceptor,
                    tunnel: Some(Arc::new(crate::tcp::IngressTunnel::new(shared.clone()))),
                },
                max_connections: limits.max_connections.get(),
                header_timeout: limits.header_timeout,
                app: Arc::new(ingress),
            },
            m.clone(),
            rx.clone(),
        )));
        tasks.push(tokio::spawn(serve(
            ListenerSpec {
                name: "admin",
                listener: admin_l,
                transport: Transport::Plain,
                max_connections: 256,
                header_timeout: limits.header_timeout,
                app: Arc::new(Admin::new(shared.clone())),
            },
            m,
            rest_rx.clone(),
        )));
        let mut tcp_addrs = Vec::new();
        for t in &tcp_config {
            let l = bind("tcp", t.listen).await?;
            tcp_addrs.push(local_addr(&l, "tcp", t.listen)?);
            listeners.push(tokio::spawn(crate::tcp::serve(
                l,
                t.clone(),
                shared.clone(),
                rx.clone(),
            )));
        }
        tasks.extend(background::spawn_all(&shared, rest_rx.clone()));
        if shared.config.agent.enabled() {
            tasks.extend(start_agent(&shared, agent_metrics, rest_rx)?);
        }
        shared.ready.store(true, Ordering::Relaxed);
        tracing::info!(
            cluster = %shared.config.cluster.id,
            id = %shared.identity.spiffe_id,
            %egress_addr,
            %ingress_addr,
            %admin_addr,
            "gateway started"
        );
        Ok(Self {
            shared,
            egress_addr,
            ingress_addr,
            admin_addr,
            tcp_addrs,
            stop_listeners,
            stop_rest,
            listeners,
            tasks,
        })
    }

    /// Stops accepting connections and background work at once.
    pub fn shutdown(&self) {
        self.shared.begin_drain();
        let _ = self.stop_listeners.send(true);
        let _ = self.stop_rest.send(true);
    }

    /// Waits until every task has stopped (after [`Self::shutdown`]).
    pub async fn join(self) {
        for t in self.listeners.into_iter().chain(self.tasks) {
            let _ = t.await;
        }
    }

    /// Shuts down gracefully (SIGTERM), as `drain` in the config says:
    /// readiness off at once; after `drain.delay` the traffic listeners stop
    /// accepting, HTTP/2 connections get GOAWAY and idle keep-alive
    /// connections close; in-flight requests and tunnels get up to
    /// `drain.timeout`; then the admin listener, probes and agent stop. The
    /// catalog keeps following the federation API until the end.
    pub async fn drain(self) -> Drained {
        let d = self.shared.config.drain.clone();
        self.shared.begin_drain();
        tracing::info!(delay = ?d.delay, timeout = ?d.timeout, "draining: readiness off");
        tokio::time::sleep(d.delay).await;
        let _ = self.stop_listeners.send(true);
        tracing::info!("draining: listeners closed, waiting for in-flight requests");
        let listeners = self.listeners;
        let outcome = match tokio::time::timeout(d.timeout, async move {
            for t in listeners {
                let _ = t.await;
            }
        })
        .await
        {
            Ok(()) => Drained::Clean,
            Err(_) => Drained::TimedOut,
        };
        let _ = self.stop_rest.send(true);
        let rest = async move {
            for t in self.tasks {
                let _ = t.await;
            }
        };
        // Background tasks stop at their next await; don't let one that
        // is stuck on the network hold the exit.
        let _ = tokio::time::timeout(Duration::from_secs(2), rest).await;
        outcome
    }
}
