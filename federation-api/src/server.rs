//! The federation API server: REST (axum) and the gRPC watch (tonic) on one
//! port, JWT auth, problem+json errors, OpenAPI and Prometheus metrics.
//!
//! # REST and watch
//! The wire contract (paths, `PUT`/`ETag`/precondition semantics, list
//! pages, problem+json errors, the NDJSON and gRPC watch streams) is
//! documented with its types in [`causeway_api::wire`]. This server produces
//! it: handlers return [`ApiError`], which renders as a
//! [`causeway_api::wire::Problem`]; the watch engine emits
//! [`causeway_api::wire::WatchLine`]s.
//!
//! # Auth
//! JWT bearer tokens (keys, scopes and minting: [`crate::token`]), ES256
//! (public key verifies, private key mints) or HS256 (shared secret); the
//! algorithm comes from the configured key. `exp`
//! and `aud` (default `causeway`) are required, `iss` when configured,
//! `nbf` checked when present. Scopes (`scopes` claim, an array): `admin`;
//! `read` (every GET); `cluster:<id>` (read, plus writes of that cluster's
//! record, heartbeat and exports, and of the bundle of its trust domain).
//! `ExportPolicy` resources further restrict which clusters may export a
//! namespace (403). Policies are written by admins only. Unauthenticated:
//! `/healthz`, `/readyz`, `/metrics`, `/v1/openapi.json` and
//! `GET /v1/trust-domains/{td}/bundle` (bare SPIFFE bundle for SPIRE).
//!
//! # Heartbeats
//! `POST /v1/clusters/{c}/heartbeat` renews (or grants) an etcd lease of
//! `heartbeatTtl` (default 15 s) holding `<prefix>/heartbeats/<c>`, and
//! records `<prefix>/lastseen/<c>`. A lapsed lease makes the cluster
//! `connected: false` and its exports `stale: true`; exports are never
//! deleted. With `staleAfter`, exports of a cluster silent for that long are
//! left out of the derived imports.
//!
//! # Configuration
//! `causeway-federation --config federation.yaml` (or `.json`), overridden by
//! flags and `CAUSEWAY_*` variables (`--listen`, `--etcd a,b,c`,
//! `--etcd-ca/--etcd-cert/--etcd-key`, `--data-dir`, `--jwt-public-key`,
//! `--jwt-private-key`, `--jwt-secret-file`, `--jwt-audience`,
//! `--jwt-issuer`, `--heartbeat-ttl`, `--stale-after`,
//! `--max-exports-per-cluster`, `--max-export-bytes-per-cluster`,
//! `--cluster-writes-per-second`, `--cluster-write-burst`). The default listen
//! address is `127.0.0.1:8080` (loopback: a dev server is never exposed by
//! accident; containers set `0.0.0.0:8080`). Without `--etcd` the embedded
//! store is used. `causeway-federation token --key-file K --scope admin
//! --ttl 1h` mints a bootstrap token.
//!
//! ```yaml
//! listen: 0.0.0.0:8080
//! store:
//!   etcd: [https://etcd-0:2379, https://etcd-1:2379, https://etcd-2:2379]
//!   etcdCa: /etc/causeway/etcd-ca.pem
//! jwt:
//!   algorithm: ES256
//!   publicKeyFile: /etc/causeway/jwt-public.pem
//!   audience: causeway
//! heartbeatTtl: 15s
//! staleAfter: 5m
//! quota:                          # per member cluster; admins are not limited
//!   maxExportsPerCluster: 2000    # 429 quota-exceeded past it (0: unlimited)
//!   maxExportBytesPerCluster: 16777216
//!   writesPerSecond: 50           # per cluster credential, token bucket
//!   writeBurst: 500
//! ```
//!
//! # Metrics (`/metrics`, prefix `causeway_federation_`)
//! `http_requests_total{route,method,status}`,
//! `http_request_duration_seconds{route,method}`, `watch_streams{protocol}`,
//! `store_operation_duration_seconds{op}`, `store_errors_total{op}`, and
//! `causeway_build_info{version,commit}`; every one is described in
//! `docs/metrics.md`.
//!
//! # Console
//! `/ui/` serves a read-only web console (Map, Traffic, Services,
//! Residency, Trust) with the same tokens (read scope), live over
//! Server-Sent Events from the watch hub; `console.gatewayAdminsFile` lists
//! the gateway admin endpoints it scrapes and asks. See docs/console.md.
//!
//! # Version
//! `GET /v1/version` (no authentication) answers
//! [`causeway_api::wire::VersionInfo`]: `{version, gitCommit?}`, the commit
//! being known when the build set `CAUSEWAY_GIT_COMMIT`.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use causeway_federation::server::{Server, ServerConfig};
//! let config = ServerConfig { danger_disable_auth: true, ..ServerConfig::default() };
//! let server = Server::from_config(config).await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! server.serve(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod catalog;
pub mod config;
mod console;
mod edge;
pub mod error;
mod extract;
mod grpc;
mod http_metrics;
pub mod metrics;
mod openapi_extra;
pub mod quota;
mod routes;
mod run;
pub mod tls;
pub mod watch;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

pub use self::catalog::{Catalog, Listed, Liveness, Stored};
pub use self::config::{ConsoleConfig, ServerConfig, StoreConfig};
pub use self::error::ApiError;
use self::extract::BodyLimit;
pub use self::extract::{Preconditions, etag};
pub use self::metrics::Metrics;
pub use self::run::{ServerArgs, main as server_main, open_store};
use crate::store::Store;
use crate::token::{AuthError, JwtKeys};

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// Keys could not be loaded.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The store could not be opened.
    #[error("cannot open store: {0}")]
    Store(String),
    /// Serving failed.
    #[error("server i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Authn {
    /// Every request is an admin (`dangerDisableAuth`).
    Disabled,
    /// JWT bearer tokens verified with these keys.
    Jwt(JwtKeys),
}

pub(crate) struct Inner {
    pub(crate) catalog: Catalog,
    pub(crate) authn: Authn,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Metrics,
    pub(crate) registry: Registry,
    pub(crate) quotas: quota::Quotas,
    pub(crate) console: console::Scraper,
}

/// The shared state of every handler.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl FromRef<AppState> for BodyLimit {
    fn from_ref(s: &AppState) -> Self {
        BodyLimit(s.0.config.max_body_bytes)
    }
}

/// A built server, ready to serve on a listener.
#[derive(Debug, Clone)]
pub struct Server {
    state: AppState,
}

impl Server {
    /// Builds a server over an open store.
    pub fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        authn: Authn,
    ) -> Result<Self, ServerError> {
        config.validate()?;
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let catalog = Catalog::new(store, &config, metrics.clone());
        let console = console::Scraper::new(
            config.console.gateway_admins_file.clone(),
            config.console.refresh,
        );
        Ok(Self {
            state: AppState(Arc::new(Inner {
                catalog,
                authn,
                quotas: quota::Quotas::new(config.quota),
                config,
                metrics,
                registry,
                console,
            })),
        })
    }

    /// Opens the configured store and loads the configured keys.
    pub async fn from_config(config: ServerConfig) -> Result<Self, ServerError> {
        config.validate()?;
        let store = open_store(&config.store).await?;
        let authn = if config.danger_disable_auth {
            tracing::warn!(
                "authentication is disabled (dangerDisableAuth): every request is admin"
            );
            Authn::Disabled
        } else {
            let keys = JwtKeys::load(&config.jwt)?;
            if !keys.can_verify() {
                return Err(ServerError::Config(config::ConfigError::Invalid(
                    "no JWT verification key configured (jwt.publicKeyFile or jwt.secretFile); \
                     set dangerDisableAuth for a local experiment"
                        .into(),
                )));
            }
            Authn::Jwt(keys)
        };
        Self::new(config, store, authn)
    }

    /// The catalog facade (for embedding and tests).
    pub fn catalog(&self) -> &Catalog {
        &self.state.0.catalog
    }

    /// The axum router serving REST and gRPC.
    pub fn router(&self) -> Router {
        routes::router(self.state.clone())
    }

    /// The OpenAPI document.
    pub fn openapi(&self) -> utoipa::openapi::OpenApi {
        routes::openapi()
    }

    /// Serves until `shutdown` completes, then drains in-flight requests
    /// (watch streams end at shutdown).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        if let Some(tls) = self.state.0.config.tls.clone() {
            return self.serve_tls(listener, tls, shutdown).await;
        }
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, "serving federation api");
        let stop = self.state.0.catalog.shutdown_token();
        let app = self.router();
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.cancel();
            })
            .await?;
        Ok(())
    }

    async fn serve_tls(
        self,
        listener: TcpListener,
        tls: tls::TlsConfig,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let invalid =
            |e: String| ServerError::Config(config::ConfigError::Invalid(format!("tls: {e}")));
        let certs = Arc::new(tls::CertReloader::new(tls.clone()).map_err(invalid)?);
        let bundles = causeway_trust::BundleStore::new(causeway_trust::BundleSet::new());
        if let Ok(set) = tls::catalog_bundles(&self.state).await {
            bundles.replace(set);
        }
        let config = tls::server_config(certs.clone(), bundles.clone())
            .map_err(|e| invalid(e.to_string()))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, "serving federation api over tls");
        let refresher = {
            let state = self.state.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(tls.reload_interval);
                loop {
                    tick.tick().await;
                    certs.reload();
                    match tls::catalog_bundles(&state).await {
                        Ok(set) => bundles.replace(set),
                        Err(e) => {
                            tracing::warn!(error = %e.detail(), "trust bundles for client certificates not refreshed")
                        }
                    }
                }
            })
        };
        let stop = self.state.0.catalog.shutdown_token();
        let grace = self.state.0.config.shutdown_grace;
        let app = self.router();
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (tcp, _) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
                let stream = match handshake.await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(error = %e, "tls handshake refused");
                        return;
                    }
                    Err(_) => return,
                };
                let peer = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| causeway_trust::peer_spiffe_id(c).ok());
                let svc = tower::ServiceExt::map_request(
                    app,
                    move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        if let Some(p) = &peer {
                            req.extensions_mut().insert(tls::PeerSvid(p.clone()));
                        }
                        req
                    },
                );
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = builder.serve_connection_with_upgrades(
                    TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(svc),
                );
                let _ = watcher.watch(conn).await;
            });
        }
        stop.cancel();
        refresher.abort();
        let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
        Ok(())
    }
}
