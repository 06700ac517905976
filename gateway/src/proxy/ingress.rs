//! The east-west ingress proxy: mTLS-only requests from peer gateways for
//! services this cluster exports, authorized by AccessPolicy on the verified
//! caller, forwarded to local endpoints.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use causeway_trust::{SpiffeId, peer_spiffe_id};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use super::access_log::{Extra, log_request};
use super::{
    AccessLog, Common, IngressCtx, ServiceKey, deny, record_metrics, refuse_malformed,
    request_host, respond_rate_limited,
};
use crate::authz::{self, Access};
use crate::denial::Denial;
use crate::headers::{
    CALLER_JWT, PROBE_HOST, SOURCE_CLUSTER, SOURCE_GATEWAY, SOURCE_WORKLOAD, strip_identity_headers,
};
use crate::identity::CallerClaims;
use crate::metrics::Label;
use crate::resilience::GrpcStatus;
use crate::routing::{Headers, parse_host};
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
    /// The peer's leaf certificate (DER): caller tokens are signed with its key.
    pub leaf: Option<Box<[u8]>>,
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
        let leaf = certs.first().map(|c| Box::from(c.as_ref()));
        Some(Arc::new(PeerIdentity {
            id,
            id_str,
            sni,
            leaf,
        }))
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

    /// Verifies the caller token, if the peer sent one: signed with the key
    /// of the certificate the peer presented (or by a JWT authority of the
    /// caller's trust domain), for this trust domain. The authorization then
    /// requires the caller's trust domain to be the peer's.
    fn caller(
        &self,
        session: &Session,
        peer: &PeerIdentity,
    ) -> Result<Option<CallerClaims>, Denial> {
        let Some(v) = session.req_header().headers.get(CALLER_JWT) else {
            return Ok(None);
        };
        let token = v.to_str().unwrap_or_default();
        self.shared
            .identity
            .caller_jwts
            .verify_caller(
                &self.shared.jwt_validator,
                token,
                &self.shared.jwt_audience,
                &peer.id_str,
                peer.leaf.as_deref(),
            )
            .map(Some)
            .map_err(|r| {
                self.shared.token_rejected("caller_jwt", r);
                tracing::info!(peer = %peer.id, reason = r.as_str(), "caller token rejected");
                Denial::InvalidCallerJwt
            })
    }

    /// Answers the gateway health probe of a peer: 200 while this gateway
    /// serves (a catalog installed; draining replicas still serve until
    /// their listeners close), else 503 so that peers stop routing here.
    async fn answer_probe(
        &self,
        session: &mut Session,
        ctx: &mut IngressCtx,
    ) -> pingora::Result<()> {
        let ready = self.shared.serving().is_ok();
        let (status, body): (u16, &'static [u8]) = if ready {
            (200, b"ok\n")
        } else {
            (503, b"not ready\n")
        };
        ctx.probe = true;
        ctx.common.status = status;
        let mut resp = ResponseHeader::build(status, Some(2))?;
        resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
        session.set_keepalive(None);
        session.write_response_header(Box::new(resp), false).await?;
        session
            .write_response_body(Some(bytes::Bytes::from_static(body)), true)
            .await?;
        Ok(())
    }
}

/// The session's TLS digest, which carries the verified [`PeerIdentity`]:
/// the request borrows the identity from this `Arc` instead of copying the
/// SPIFFE ID and the leaf certificate per request.
fn peer_tls(session: &Session) -> Option<Arc<SslDigest>> {
    session.digest()?.ssl_digest.clone()
}

#[async_trait]
impl ProxyHttp for Ingress {
    type CTX = IngressCtx;

    fn new_ctx(&self) -> IngressCtx {
        IngressCtx::new(Common::new(self.shared.state(), Label::unknown()))
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut IngressCtx,
    ) -> pingora::Result<()> {
        super::check_body_deadline(ctx.common.start, self.shared.config.limits.body_timeout)
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut IngressCtx,
    ) -> pingora::Result<bool> {
        let tls = peer_tls(session);
        let Some(peer) = tls
            .as_deref()
            .and_then(|d| d.extension.get::<PeerIdentity>())
        else {
            deny(
                &self.shared,
                session,
                &mut ctx.common,
                &Denial::Unauthenticated,
            )
            .await?;
            return Ok(true);
        };
        ctx.peer = Some(peer.id_str.clone());
        if refuse_malformed(&self.shared, session).await? {
            return Ok(true);
        }
        if session.req_header().uri.path() == "/healthz"
            && request_host(session) == Some(PROBE_HOST)
        {
            self.answer_probe(session, ctx).await?;
            return Ok(true);
        }
        let state = ctx.common.state.clone();
        if let Some(c) = authz::source_cluster(&state, &peer.id) {
            ctx.common.source_cluster = Label::from(c);
        }
        let Some(h) = request_host(session).and_then(|host| parse_host(host).ok()) else {
            deny(&self.shared, session, &mut ctx.common, &Denial::InvalidHost).await?;
            return Ok(true);
        };
        let key = ServiceKey::new(&h.namespace, &h.name, h.port);
        ctx.common.service = state.service(key.as_str()).cloned();
        let caller = match self.caller(session, peer) {
            Ok(c) => c,
            Err(denial) => {
                deny(&self.shared, session, &mut ctx.common, &denial).await?;
                return Ok(true);
            }
        };
        if let Some(claims) = &caller {
            ctx.common.caller = Some(Arc::from(claims.caller.to_string()));
            ctx.common.residency = claims.residency.clone();
            // The source's verdict: refused unless every policy that
            // governed the request there allows this cluster.
            let local = &self.shared.config.cluster;
            if let Some(v) = claims
                .residency
                .iter()
                .find(|v| !v.allows(&local.jurisdictions, &local.region))
            {
                let denial = Denial::ResidencyForbidsLocal {
                    policy: Arc::from(v.policy.as_str()),
                };
                ctx.common.destination = Some(self.shared.cluster_label.0.clone());
                ctx.common.service_ref = Some(key);
                deny(&self.shared, session, &mut ctx.common, &denial).await?;
                return Ok(true);
            }
        }
        let caller = caller.map(|c| c.caller);
        let req = session.req_header();
        let access = Access::Http {
            path: req.uri.path(),
            method: req.method.as_str(),
            headers: Headers::from(&req.headers),
        };
        let verdict = authz::authorize(&state, &peer.id, &key, caller.as_ref(), access);
        ctx.common.service_ref = Some(key);
        if let Err(denial) = verdict {
            deny(&self.shared, session, &mut ctx.common, &denial).await?;
            return Ok(true);
        }
        // The verified caller, already formatted for the access log and the
        // backend header (the same string as `common.caller`).
        ctx.caller = caller.and(ctx.common.caller.clone());
        let c = &mut ctx.common;
        c.destination = Some(self.shared.cluster_label.0.clone());
        if let Some(svc) = &c.service
            && let Err(limited) = svc.check_rate(&c.source_cluster.0, Instant::now())
        {
            self.shared.health.count_rate_limited(svc);
            c.status = 429;
            c.reason = Some("rate_limited".to_owned());
            respond_rate_limited(session, limited.retry_after_secs).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut IngressCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let c = &mut ctx.common;
        c.attempts += 1;
        c.upstream_start = Some(Instant::now());
        let Some(key) = &c.service_ref else {
            return Error::e_explain(ErrorType::InternalError, "no service");
        };
        let Some(endpoints) = c.state.local_for(key.as_str(), key.port) else {
            return Error::e_explain(ErrorType::HTTPStatus(404), "not exported");
        };
        let endpoint = endpoints.pick();
        let timeouts = c.service.as_ref().and_then(|s| s.timeouts);
        c.h2 = super::upstream_h2(session, c);
        Ok(self.shared.remotes.local_peer(endpoint, c.h2, timeouts))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut IngressCtx,
    ) -> pingora::Result<()> {
        strip_identity_headers(upstream);
        super::forward_trace(&self.shared, session, upstream, &mut ctx.common)?;
        if let Some(id) = &ctx.peer {
            upstream.insert_header(SOURCE_GATEWAY, &**id)?;
        }
        let source = &ctx.common.source_cluster.0;
        if source.as_ref() != "unknown" {
            upstream.insert_header(SOURCE_CLUSTER, &**source)?;
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
        ctx: &mut IngressCtx,
    ) -> pingora::Result<()> {
        let c = &mut ctx.common;
        c.responded = true;
        c.status = resp.status.as_u16();
        if let Some(t) = c.upstream_start {
            c.upstream_duration = Some(t.elapsed());
        }
        c.grpc = GrpcStatus::from_headers(&resp.headers);
        Ok(())
    }

    fn upstream_response_trailer_filter(
        &self,
        _session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut IngressCtx,
    ) -> pingora::Result<()> {
        if ctx.common.grpc == GrpcStatus::Pending {
            ctx.common.grpc = GrpcStatus::from_trailers(trailers);
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut IngressCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let c = &ctx.common;
        let n = c
            .state
            .local_count(c.service_ref.as_ref().map_or("", |k| k.as_str()))
            .max(1);
        e.set_retry((c.attempts as usize) < n.min(self.shared.config.upstream.max_retries + 1));
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut IngressCtx,
    ) -> pingora::proxy::FailToProxy {
        super::fail_response(session, e, &mut ctx.common).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut IngressCtx) {
        // The next request on this connection gets its own header deadline.
        crate::listener::next_request(session);
        if ctx.probe {
            // Gateway health probes are neither traffic nor worth a log line.
            return;
        }
        let caller = ctx.caller.clone().or_else(|| ctx.common.caller.clone());
        let c = &mut ctx.common;
        if c.grpc == GrpcStatus::Pending {
            c.grpc = GrpcStatus::Missing;
        }
        if c.status == 0 {
            c.status = session
                .response_written()
                .map_or(if e.is_some() { 502 } else { 0 }, |r| r.status.as_u16());
        }
        record_metrics(&self.shared, "ingress", c);
        if !c.residency.is_empty() && !c.audited {
            super::audit(&self.shared, c, "served", None);
        }
        let extra = Extra {
            source_identity: ctx.peer.as_deref(),
            caller: caller.as_deref(),
            tier: None,
        };
        log_request(&self.log, "ingress", session, c, extra, e);
    }
}
