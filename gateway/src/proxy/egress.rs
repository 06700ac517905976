//! The egress proxy: in-cluster clients call
//! `<svc>.<ns>.svc.clusterset.local[:port]`; the routing engine decides;
//! local targets go to local endpoints, remote ones over mTLS HTTP/2 to the
//! remote cluster's east-west gateway.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};

use super::access_log::{Extra, log_request};
use super::{
    AccessLog, Common, EgressCtx, ServiceKey, deny, record_metrics, refuse_malformed, request_host,
    respond_rate_limited,
};
use crate::callers::{CallerSource, UnknownCaller, VerifiedClaims};
use crate::denial::Denial;
use crate::headers::{CALLER_JWT, WORKLOAD_JWT, strip_identity_headers};
use crate::metrics::{Label, ServiceLabels, TargetLabels};
use crate::resilience::{BreakerLimit, GrpcStatus, TryOutcome};
use crate::routing::{Decision, RouteRequest, decide, parse_host};
use crate::state::{GatewayState, Shared};
use crate::tokens::{looks_like_svid, verify_workload_svid};

/// The egress proxy application.
pub struct Egress {
    shared: Arc<Shared>,
    log: AccessLog,
}

impl Egress {
    /// An egress proxy over `shared`.
    pub fn new(shared: Arc<Shared>, log: AccessLog) -> Self {
        Self { shared, log }
    }

    /// Decides (again, on retries) where the request goes; answers denials.
    /// Returns `Ok(true)` when a response was sent.
    async fn route(&self, session: &mut Session, ctx: &mut EgressCtx) -> pingora::Result<bool> {
        let c = &mut ctx.common;
        let Some(host) = request_host(session) else {
            deny(&self.shared, session, c, &Denial::InvalidHost).await?;
            return Ok(true);
        };
        if c.service_ref.is_none()
            && let Ok(h) = parse_host(host)
        {
            c.service_ref = Some(ServiceKey::new(&h.namespace, &h.name, h.port));
        }
        let refusal = c.service_ref.as_ref().and_then(|k| {
            let req = RouteRequest::host(host)
                .with_headers(&session.req_header().headers)
                .with_claims(&*ctx.claims);
            c.state
                .catalog
                .routing
                .unverified_refusal(k.namespace(), k.name(), &req)
        });
        if let Some(policy) = refusal {
            if c.service.is_none()
                && let Some(k) = &c.service_ref
            {
                c.service = c.state.service(k.as_str()).cloned();
            }
            deny(
                &self.shared,
                session,
                c,
                &Denial::UnverifiedToken { policy },
            )
            .await?;
            return Ok(true);
        }
        let decision = self.decide_excluding_tried(
            session,
            &c.state,
            host,
            &ctx.tried,
            &ctx.claims,
            rand::random(),
        );
        if c.service.is_none()
            && let Some(k) = &c.service_ref
        {
            c.service = c.state.service(k.as_str()).cloned();
        }
        let governed = match &decision {
            Decision::Deny(d) => d.reason.is_residency(),
            Decision::Route(r) => r.reason.residency_governed(),
        };
        if governed && let Some(k) = &c.service_ref {
            let req = RouteRequest::host(host)
                .with_headers(&session.req_header().headers)
                .with_claims(&*ctx.claims);
            c.residency = c
                .state
                .catalog
                .routing
                .residency_verdict(k.namespace(), k.name(), &req);
        }
        match decision {
            Decision::Deny(d) => {
                deny(&self.shared, session, c, &Denial::from(d)).await?;
                Ok(true)
            }
            Decision::Route(r) => {
                if r.reason.residency_governed() {
                    c.policy = r.reason.residency_policy.clone();
                }
                if self.log.enabled() {
                    c.reason = Some(r.reason.to_string());
                }
                ctx.local = r.target.local;
                c.destination = Some(r.target.cluster.clone());
                ctx.tier = Some(r.tier);
                ctx.route_target = Some(r.target);
                Ok(false)
            }
        }
    }
}

impl Egress {
    /// Establishes who is calling and which claims the request may be
    /// classified by: a JWT-SVID the workload presents (`x-causeway-workload-jwt`,
    /// or `Authorization: Bearer` whose subject is a SPIFFE ID), verified
    /// against this trust domain's bundle for this gateway's SPIFFE ID; an
    /// OIDC bearer token of an issuer a residency policy trusts; then the
    /// source address in `callers.byAddress`; then `callers.unknown`.
    /// Answers (403) and returns `Ok(true)` when the caller is refused.
    async fn identify(&self, session: &mut Session, ctx: &mut EgressCtx) -> pingora::Result<bool> {
        let headers = &session.req_header().headers;
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let workload = headers.get(WORKLOAD_JWT).and_then(|v| v.to_str().ok());
        let (svid_token, oidc_token) = match (workload, bearer) {
            (Some(w), b) => (Some(w), b),
            (None, Some(b)) if looks_like_svid(b) => {
                ctx.consumed_authorization = true;
                (Some(b), None)
            }
            (None, b) => (None, b),
        };
        let mut claims = VerifiedClaims::default();
        let mut source = None;
        let id = &self.shared.identity;
        if let Some(t) = svid_token {
            match verify_workload_svid(
                &self.shared.jwt_validator,
                t,
                &self.shared.egress_audience,
                &id.trust_domain,
            ) {
                Ok(c) => {
                    ctx.caller_id = Some(c.spiffe_id);
                    source = Some(CallerSource::JwtSvid);
                    claims.svid = Some(c.raw);
                }
                Err(r) => {
                    self.shared.token_rejected("jwt_svid", r);
                    claims.svid_rejected = Some(r);
                }
            }
        }
        if let Some(t) = oidc_token {
            let issuers = ctx.common.state.catalog.routing.oidc_issuers();
            if !issuers.is_empty() {
                match self.shared.jwks.verify(t, issuers).await {
                    Ok((issuer, c)) => claims.oidc = Some((issuer.issuer.clone(), c)),
                    Err(r) => {
                        self.shared.token_rejected("oidc", r);
                        claims.oidc_rejected = Some(r);
                    }
                }
            }
        }
        if ctx.caller_id.is_none()
            && let Some(ip) = session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip())
            && let Some(w) = self.shared.config.callers.by_address(ip)
        {
            ctx.caller_id = Some(w.clone());
            source = Some(CallerSource::Address);
        }
        if ctx.caller_id.is_none() {
            match self.shared.config.callers.unknown {
                UnknownCaller::Default => {
                    ctx.caller_id = Some(id.workload_id.clone());
                    source = Some(CallerSource::Default);
                }
                UnknownCaller::Refuse => {
                    ctx.claims = Arc::new(claims);
                    deny(
                        &self.shared,
                        session,
                        &mut ctx.common,
                        &Denial::UnknownCaller,
                    )
                    .await?;
                    return Ok(true);
                }
            }
        }
        if let (Some(c), Some(s)) = (&ctx.caller_id, source) {
            ctx.common.caller = Some(Arc::from(c.to_string()));
            tracing::debug!(caller = %c, source = s.as_str(), "caller identified");
        }
        ctx.claims = Arc::new(claims);
        Ok(false)
    }

    /// Feeds a failed try to outlier detection (once per try) and excludes
    /// the cluster from the next decision.
    fn failed_try(&self, ctx: &mut EgressCtx, outcome: TryOutcome) {
        self.end_try(ctx, outcome, true);
    }

    /// Records how the current try ended (once per try: outlier detection,
    /// the rollback guard); with `exclude`, the cluster is not chosen again
    /// by a retry.
    fn end_try(&self, ctx: &mut EgressCtx, outcome: TryOutcome, exclude: bool) {
        let c = &mut ctx.common;
        let Some(start) = c.upstream_start.take() else {
            return;
        };
        if let Some(dest) = &c.destination {
            if let Some(svc) = &c.service {
                self.shared
                    .health
                    .record(svc, dest, outcome, start.elapsed());
            }
            if !exclude {
                return;
            }
            // A remote cluster is done after one failed try (its gateway
            // balances); the local one after each of its endpoints failed.
            let exhausted = !ctx.local || {
                ctx.local_failures += 1;
                let endpoints = c
                    .service_ref
                    .as_ref()
                    .map_or(0, |k| c.state.local_count(k.as_str()));
                ctx.local_failures as usize >= endpoints
            };
            if exhausted && !ctx.tried.contains(dest) {
                ctx.tried.push(dest.clone());
            }
        }
    }

    /// Records the status a gRPC response's trailers (or their absence)
    /// gave: the try is over, it is not retried.
    fn record_grpc(&self, ctx: &EgressCtx) {
        let c = &ctx.common;
        if let (Some(svc), Some(dest), Some(code)) = (&c.service, &c.destination, c.grpc.code()) {
            self.shared.health.record(
                svc,
                dest,
                TryOutcome::Grpc(code),
                c.upstream_duration.unwrap_or_default(),
            );
        }
    }

    /// Whether routing again without the clusters tried so far finds a
    /// target (no response is written).
    fn can_reroute(&self, session: &Session, ctx: &EgressCtx) -> bool {
        request_host(session).is_some_and(|host| {
            matches!(
                self.decide_excluding_tried(
                    session,
                    &ctx.common.state,
                    host,
                    &ctx.tried,
                    &ctx.claims,
                    0
                ),
                Decision::Route(_)
            )
        })
    }

    /// The routing decision for `host` over the current catalog, without
    /// the clusters already tried.
    fn decide_excluding_tried(
        &self,
        session: &Session,
        state: &GatewayState,
        host: &str,
        tried: &[Arc<str>],
        claims: &VerifiedClaims,
        random: u64,
    ) -> Decision {
        let tried: Vec<&str> = tried.iter().map(|c| &**c).collect();
        let req = RouteRequest::host(host)
            .with_headers(&session.req_header().headers)
            .with_claims(claims)
            .with_random(random)
            .with_exclude(&tried);
        decide(&state.catalog.routing, &self.shared.health, &req)
    }

    /// Whether the failed try may be retried: the service's retry policy
    /// (`retryOn`, attempts, idempotency), the gateway cap and the budget.
    /// When every local endpoint failed and no other cluster can take the
    /// request, the try's own error (502, 504) is the answer, not a routing
    /// denial.
    fn may_retry(&self, session: &Session, ctx: &EgressCtx, outcome: TryOutcome) -> bool {
        let c = &ctx.common;
        let Some(svc) = &c.service else {
            return false;
        };
        let local_exhausted = ctx.local
            && c.destination
                .as_ref()
                .is_some_and(|d| ctx.tried.contains(d));
        if local_exhausted && !self.can_reroute(session, ctx) {
            return false;
        }
        let retries_done = c.attempts.saturating_sub(1);
        if retries_done as usize >= self.shared.config.upstream.max_retries {
            return false;
        }
        if svc
            .retry
            .may_retry(&session.req_header().method, outcome, retries_done)
            .is_err()
        {
            return false;
        }
        if !svc.res.retry_budget().try_retry(Instant::now()) {
            return false;
        }
        self.shared
            .metrics
            .retries
            .get_or_create(&ServiceLabels {
                service: svc.label.clone(),
            })
            .inc();
        true
    }
}

#[async_trait]
impl ProxyHttp for Egress {
    type CTX = EgressCtx;

    fn new_ctx(&self) -> EgressCtx {
        EgressCtx::new(Common::new(
            self.shared.state(),
            self.shared.cluster_label.clone(),
        ))
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        _end_of_stream: bool,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<()> {
        super::check_body_deadline(ctx.common.start, self.shared.config.limits.body_timeout)
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<bool> {
        if refuse_malformed(&self.shared, session).await? {
            return Ok(true);
        }
        if self.identify(session, ctx).await? {
            return Ok(true);
        }
        if self.route(session, ctx).await? {
            return Ok(true);
        }
        let c = &mut ctx.common;
        if let Some(svc) = &c.service {
            svc.res.retry_budget().record_request(Instant::now());
            if let Err(limited) = svc.check_rate("egress", Instant::now()) {
                self.shared.health.count_rate_limited(svc);
                c.status = 429;
                c.reason = Some("rate_limited".to_owned());
                respond_rate_limited(session, limited.retry_after_secs).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let destination_failed = ctx
            .common
            .destination
            .as_ref()
            .is_some_and(|d| ctx.tried.contains(d));
        if ctx.common.attempts > 0 && destination_failed {
            // Retry after the destination cluster failed: decide again
            // without the clusters already tried (the next local endpoint is
            // tried first while there is one); the residency filter is
            // applied again, so the set never widens.
            if self.route(session, ctx).await? {
                return Error::e_explain(
                    ErrorType::HTTPStatus(ctx.common.status),
                    "denied on retry",
                );
            }
        }
        let c = &mut ctx.common;
        c.attempts += 1;
        c.upstream_start = Some(Instant::now());
        let Some(target) = ctx.route_target.clone() else {
            return Error::e_explain(ErrorType::InternalError, "no route");
        };
        let timeouts = c.service.as_ref().and_then(|s| s.timeouts);
        if target.local {
            let Some(key) = &c.service_ref else {
                return Error::e_explain(ErrorType::InternalError, "no service");
            };
            let Some(endpoints) = c.state.local_for(key.as_str(), key.port) else {
                return Error::e_explain(
                    ErrorType::HTTPStatus(503),
                    "service routed locally but no local endpoints are configured",
                );
            };
            let endpoint = endpoints.pick();
            c.h2 = super::upstream_h2(session, c);
            return Ok(self.shared.remotes.local_peer(endpoint, c.h2, timeouts));
        }
        if let Some(svc) = &c.service {
            match svc
                .res
                .breaker(&target.cluster)
                .try_acquire(BreakerLimit::Requests)
            {
                Ok(p) => ctx.permit = Some(p),
                Err(open) => {
                    self.shared
                        .metrics
                        .circuit_open
                        .get_or_create(&TargetLabels {
                            destination_cluster: Label(target.cluster.clone()),
                        })
                        .set(1);
                    return Error::e_explain(ErrorType::HTTPStatus(503), open.to_string());
                }
            }
        }
        let Some(conns) = self.shared.remotes.get(&target) else {
            return Error::e_explain(ErrorType::HTTPStatus(503), "remote gateway unreachable");
        };
        let upgrade = session.is_upgrade_req();
        match self.shared.remotes.peer(&conns, upgrade, timeouts) {
            Some(p) => Ok(p),
            None => Error::e_explain(ErrorType::InternalError, "bad relay path"),
        }
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<()> {
        strip_identity_headers(upstream);
        if ctx.consumed_authorization {
            upstream.remove_header(&http::header::AUTHORIZATION);
        }
        super::forward_trace(&self.shared, session, upstream, &mut ctx.common)?;
        let id = &self.shared.identity;
        if !ctx.local
            && let Some(target) = &ctx.route_target
            && let Some(caller) = &ctx.caller_id
            && let Some(jwt) = id.caller_jwts.token(
                &id.svid(),
                caller,
                &target.trust_domain,
                &ctx.common.residency,
            )
        {
            upstream.insert_header(CALLER_JWT, jwt)?;
        }
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<()> {
        if resp.status.is_informational() {
            return Ok(());
        }
        let c = &mut ctx.common;
        c.upstream_duration = c.upstream_start.map(|t| t.elapsed());
        c.grpc = GrpcStatus::from_headers(&resp.headers);
        if c.grpc == GrpcStatus::Pending {
            // Decided by the trailers; the body will have been streamed to
            // the caller by then, so this try is final.
            ctx.outcome_pending = true;
            c.upstream_start = None;
            return Ok(());
        }
        let outcome = c
            .grpc
            .code()
            .map_or(TryOutcome::Status(resp.status.as_u16()), TryOutcome::Grpc);
        let retriable = c.service.as_ref().is_some_and(|s| s.retry.matches(outcome));
        self.end_try(ctx, outcome, retriable || !outcome.is_success());
        if retriable
            && !session.as_ref().retry_buffer_truncated()
            && self.may_retry(session, ctx, outcome)
        {
            // Nothing was sent to the caller yet: drop this response and
            // try another target (the error is retried in
            // `error_while_proxy`).
            ctx.retry_response = true;
            return Error::e_explain(
                ErrorType::HTTPStatus(resp.status.as_u16()),
                format!("retrying on {outcome:?}"),
            );
        }
        Ok(())
    }

    fn upstream_response_trailer_filter(
        &self,
        _session: &mut Session,
        trailers: &mut http::HeaderMap,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<()> {
        if std::mem::take(&mut ctx.outcome_pending) {
            ctx.common.grpc = GrpcStatus::from_trailers(trailers);
            self.record_grpc(ctx);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut EgressCtx,
    ) -> pingora::Result<()> {
        let c = &mut ctx.common;
        c.responded = true;
        c.status = resp.status.as_u16();
        Ok(())
    }

    fn fail_to_connect(
        &self,
        session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut EgressCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        ctx.permit = None;
        if let Some(dest) = &ctx.common.destination {
            self.shared
                .metrics
                .upstream_connect_errors
                .get_or_create(&TargetLabels {
                    destination_cluster: Label(dest.clone()),
                })
                .inc();
        }
        self.failed_try(ctx, TryOutcome::ConnectFailed);
        let retry = self.may_retry(session, ctx, TryOutcome::ConnectFailed);
        e.set_retry(retry);
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut EgressCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let mut e = e.more_context(format!("peer: {peer}"));
        ctx.permit = None;
        if std::mem::take(&mut ctx.retry_response) {
            // Raised by `upstream_response_filter` for a response in
            // `retryOn`; the retry was already granted (and budgeted).
            e.set_retry(true);
            return e;
        }
        if ctx.common.responded || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
            return e;
        }
        // Pingora decides `retry = true` only when the peer never processed
        // the stream: GOAWAY (a draining gateway), REFUSED_STREAM, an h2
        // downgrade. That is the connection going away, not the service or
        // the cluster failing: no health record, the cluster stays
        // eligible, and any method may go again. Everything else is a reset
        // the upstream may have acted on: `may_retry` refuses
        // non-idempotent requests for it, on a reused pooled connection
        // (the usual way a dead peer shows up) and on a fresh one alike.
        let _ = client_reused;
        let outcome = if matches!(e.retry, pingora::RetryType::Decided(true)) {
            ctx.common.upstream_start = None;
            TryOutcome::RefusedStream
        } else {
            self.failed_try(ctx, TryOutcome::Reset);
            TryOutcome::Reset
        };
        e.set_retry(self.may_retry(session, ctx, outcome));
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut EgressCtx,
    ) -> pingora::proxy::FailToProxy {
        super::fail_response(session, e, &mut ctx.common).await
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut EgressCtx) {
        // The next request on this connection gets its own header deadline.
        crate::listener::next_request(session);
        ctx.permit = None;
        if !ctx.common.responded && e.is_some() && ctx.common.upstream_start.is_some() {
            self.failed_try(ctx, TryOutcome::Reset);
        }
        if std::mem::take(&mut ctx.outcome_pending) {
            // A gRPC stream that ended (or broke) without a status.
            ctx.common.grpc = GrpcStatus::Missing;
            self.record_grpc(ctx);
        }
        let c = &mut ctx.common;
        if c.status == 0 {
            c.status = session
                .response_written()
                .map_or(if e.is_some() { 502 } else { 0 }, |r| r.status.as_u16());
        }
        record_metrics(&self.shared, "egress", c);
        let caller = c.caller.clone();
        if !c.residency.is_empty() && !c.audited {
            super::audit(&self.shared, c, "served", None);
        }
        let extra = Extra {
            tier: ctx.tier.as_ref().map(|t| t.as_str()),
            caller: caller.as_deref(),
            ..Extra::default()
        };
        log_request(&self.log, "egress", session, c, extra, e);
    }
}
