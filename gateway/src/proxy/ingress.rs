//! The east-west ingress proxy: mTLS-only requests from peer gateways for
//! services this cluster exports, authorized by AccessPolicy on the verified
//! caller, forwarded to local endpoints.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use causeway_api::model::policy::Caller;
use causeway_trust::{SpiffeId, peer_spiffe_id};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use super::access_log::log_request;
use super::{
    AccessLog, RequestCtx, ServiceKey, record_metrics, refuse_malformed, request_host,
    respond_json, respond_rate_limited,
};
use crate::headers::{
    CALLER_JWT, PROBE_HOST, SOURCE_CLUSTER, SOURCE_GATEWAY, SOURCE_WORKLOAD, strip_identity_headers,
};
use crate::identity::cluster_of_gateway;
use crate::metrics::{DenyLabels, Label};
use crate::routing::parse_host;
use crate::state::Shared;

/// The verified identity of a connected peer gateway, attached to the TLS
/// session by [`PeerIdentityCallback`].
#[derive(Debug)]
pub struct PeerIdentity {
    /// The peer's SPIFFE ID (verified against its trust domain's bundle).
    pub id: SpiffeId,
    /// The same, as a string.
    pub id_str: Arc<str>,
    /// The SNI the peer sent (`tcp-<port>.<name>.<ns>.causeway.internal`
    /// selects a TCP tunnel instead of HTTP).
    pub sni: Option<Box<str>>,
}

/// Reads the verified peer SPIFFE ID after the handshake.
#[derive(Debug)]
pub struct PeerIdentityCallback;

#[async_trait]
impl TlsAccept for PeerIdentityCallback {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let certs = tls.peer_cert_chain_der()?;
        let id = peer_spiffe_id(certs).ok()?;
        let id_str = Arc::from(id.to_string());
        let sni = tls.server_name().map(Box::from);
        Some(Arc::new(PeerIdentity { id, id_str, sni }))
    }
}

/// The ingress proxy application.
pub struct Ingress {
    shared: Arc<Shared>,
    log: AccessLog,
}

impl Ingress {
    /// An ingress proxy over `shared`.
    pub fn new(shared: Arc<Shared>, log: AccessLog) -> Self {
        Self { shared, log }
    }

    async fn deny(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        reason: &'static str,
        message: &str,
    ) -> pingora::Result<bool> {
        let service = ctx
            .service
            .as_ref()
            .map_or_else(|| Label::from_static("unknown"), |s| s.label.clone());
        self.shared
            .metrics
            .denials
            .get_or_create(&DenyLabels { service, reason })
            .inc();
        ctx.status = status;
        ctx.reason = Some(reason.to_owned());
        respond_json(session, status, reason, None, message).await?;
        Ok(true)
    }
}

fn peer_identity(session: &Session) -> Option<(SpiffeId, Arc<str>)> {
    let digest = session.digest()?;
    let ssl = digest.ssl_digest.as_ref()?;
    let p = ssl.extension.get::<PeerIdentity>()?;
    Some((p.id.clone(), p.id_str.clone()))
}

#[async_trait]
impl ProxyHttp for Ingress {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(Label::from_static("unknown"))
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        super::check_body_deadline(ctx.start, self.shared.config.limits.body_timeout)
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let Some((peer, peer_str)) = peer_identity(session) else {
            return self
                .deny(
                    session,
                    ctx,
                    403,
                    "unauthenticated",
                    "no verified peer identity",
                )
                .await;
        };
        ctx.source_identity = Some(peer_str);
        if refuse_malformed(&self.shared, session).await? {
            return Ok(true);
        }
        if session.req_header().uri.path() == "/healthz"
            && request_host(session) == Some(PROBE_HOST)
        {
            ctx.status = 200;
            ctx.reason = Some("probe".to_owned());
            let mut resp = ResponseHeader::build(200, Some(2))?;
            resp.insert_header(http::header::CONTENT_LENGTH, 3)?;
            session.set_keepalive(None);
            session.write_response_header(Box::new(resp), false).await?;
            session
                .write_response_body(Some(bytes::Bytes::from_static(b"ok\n")), true)
                .await?;
            return Ok(true);
        }
        // An owned snapshot (not a guard): this function awaits while using it.
        let state = self.shared.catalog.load_full();
        // The peer's cluster: the gateway ID names it, and the catalog must
        // agree that the cluster belongs to the peer's trust domain.
        let peer_td = peer.trust_domain().name();
        let source_cluster = cluster_of_gateway(&peer).filter(|c| {
            state
                .cluster_trust_domains
                .get(*c)
                .is_some_and(|td| &**td == peer_td)
        });
        if let Some(c) = source_cluster {
            ctx.source_cluster = Label::from(c);
        }
        let Some(host) = request_host(session) else {
            return self
                .deny(session, ctx, 400, "invalid_host", "request has no host")
                .await;
        };
        let Ok(h) = parse_host(host) else {
            return self
                .deny(
                    session,
                    ctx,
                    400,
                    "invalid_host",
                    "host is not a clusterset service name",
                )
                .await;
        };
        let key = ServiceKey::new(&h.namespace, &h.name, h.port);
        ctx.service = self.shared.health.service(key.namespace(), key.name());
        let (Some(rules), true) = (
            state.local_exports.get(key.as_str()),
            self.shared.has_local(key.as_str()),
        ) else {
            return self
                .deny(
                    session,
                    ctx,
                    404,
                    "not_exported",
                    "this cluster does not export the service",
                )
                .await;
        };
        // The calling workload, from the caller JWT-SVID: verified against
        // the bundle of its trust domain, which must be the peer's.
        let caller = match session.req_header().headers.get(CALLER_JWT) {
            None => None,
            Some(v) => {
                let token = v.to_str().unwrap_or_default();
                match self.shared.identity.caller_jwts.verify(
                    &self.shared.jwt_validator,
                    token,
                    &self.shared.jwt_audience,
                ) {
                    Ok(id) if id.trust_domain() == peer.trust_domain() => Some(id),
                    Ok(_) => {
                        return self
                            .deny(
                                session,
                                ctx,
                                403,
                                "caller_trust_domain_mismatch",
                                "caller jwt-svid is not from the peer's trust domain",
                            )
                            .await;
                    }
                    Err(e) => {
                        tracing::info!(peer = %peer, error = %e, "caller jwt-svid rejected");
                        return self
                            .deny(
                                session,
                                ctx,
                                403,
                                "invalid_caller_jwt",
                                "caller jwt-svid rejected",
                            )
                            .await;
                    }
                }
            }
        };
        let caller_str = caller.as_ref().map(|c| c.to_string());
        if let Some(rules) = rules {
            let req = session.req_header();
            let who = Caller {
                trust_domain: peer_td,
                cluster: source_cluster,
                spiffe_id: caller_str.as_deref(),
                path: Some(req.uri.path()),
                method: Some(req.method.as_str()),
            };
            if !rules.iter().any(|r| r.matches(&who)) {
                return self
                    .deny(
                        session,
                        ctx,
                        403,
                        "access_denied",
                        "no access policy allows this caller",
                    )
                    .await;
            }
        }
        ctx.caller = caller_str.map(Arc::from);
        ctx.service_ref = Some(key);
        ctx.local = true;
        ctx.destination = Some(Arc::from(self.shared.config.cluster.id.as_str()));
        if let Some(svc) = &ctx.service
            && let Err(limited) = svc.check_rate(&ctx.source_cluster.0, Instant::now())
        {
            self.shared.health.count_rate_limited(svc);
            ctx.status = 429;
            respond_rate_limited(session, limited.retry_after_secs).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        ctx.attempts += 1;
        ctx.upstream_start = Some(Instant::now());
        let Some(key) = &ctx.service_ref else {
            return Error::e_explain(ErrorType::InternalError, "no service");
        };
        let timeouts = super::egress::state_timeouts(&self.shared, key);
        let Some(endpoint) = self.shared.local_endpoint(key.as_str()) else {
            return Error::e_explain(ErrorType::HTTPStatus(404), "not exported");
        };
        ctx.h2 = super::upstream_h2(&self.shared, session, key.as_str());
        Ok(self.shared.remotes.local_peer(endpoint, ctx.h2, timeouts))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        strip_identity_headers(upstream);
        super::forward_trace(&self.shared, session, upstream, ctx)?;
        if let Some(id) = &ctx.source_identity {
            upstream.insert_header(SOURCE_GATEWAY, &**id)?;
        }
        if ctx.source_cluster.0.as_ref() != "unknown" {
            upstream.insert_header(SOURCE_CLUSTER, &*ctx.source_cluster.0)?;
        }
        if let Some(c) = &ctx.caller {
            upstream.insert_header(SOURCE_WORKLOAD, &**c)?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.responded = true;
        ctx.status = resp.status.as_u16();
        if let Some(t) = ctx.upstream_start {
            ctx.upstream_duration = Some(t.elapsed());
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let n = self
            .shared
            .local_endpoint_count(ctx.service_ref.as_ref().map_or("", |k| k.as_str()))
            .max(1);
        e.set_retry((ctx.attempts as usize) < n.min(self.shared.config.upstream.max_retries + 1));
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> pingora::proxy::FailToProxy {
        super::fail_response(session, e, ctx).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if ctx.reason.as_deref() == Some("probe") {
            // Gateway health probes are neither traffic nor worth a log line.
            return;
        }
        if ctx.status == 0 {
            ctx.status = session
                .response_written()
                .map_or(if e.is_some() { 502 } else { 0 }, |r| r.status.as_u16());
        }
        record_metrics(&self.shared, "ingress", ctx, ctx.status);
        log_request(&self.log, "ingress", session, ctx, e);
    }
}
