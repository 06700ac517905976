//! Pieces shared by the egress and ingress proxies: the per-request
//! contexts, local answers (denials, 429, hygiene errors), metrics and the
//! access log.

pub mod access_log;
mod ctx;
pub mod egress;
pub mod ingress;
mod respond;

pub use access_log::AccessLog;
pub use ctx::{Common, EgressCtx, IngressCtx, ServiceKey};
pub(crate) use respond::{respond_error, respond_rate_limited};

use pingora::proxy::Session;

use crate::denial::Denial;
use crate::headers::{HygieneError, check_request};
use crate::metrics::{DenyLabels, DurationLabels, Label, RequestLabels, status_class};
use crate::state::Shared;
use crate::trace::TraceContext;

/// Runs the hygiene checks; answers and returns `true` when the request was refused.
pub(crate) async fn refuse_malformed(
    shared: &Shared,
    session: &mut Session,
) -> pingora::Result<bool> {
    let limits = &shared.config.limits;
    let raw = session
        .as_downstream()
        .as_http1()
        .map(|s| s.get_headers_raw_bytes());
    let res = check_request(
        session.req_header(),
        raw.as_deref(),
        limits.max_headers.get(),
        limits.max_header_bytes,
    );
    match res {
        Ok(()) => Ok(false),
        Err(e) => {
            let msg = match e {
                HygieneError::AmbiguousFraming => {
                    "request framing is ambiguous (Content-Length with Transfer-Encoding, or repeated Transfer-Encoding)"
                }
                HygieneError::HeadersTooLarge => "request headers exceed the configured limits",
                HygieneError::InvalidRequestLine => {
                    "the request line holds a control character (a bare CR?)"
                }
            };
            session.set_keepalive(None);
            respond_error(session, e.status(), e.reason(), msg).await?;
            Ok(true)
        }
    }
}

/// Refuses a request: counts it (residency denials apart), records it for
/// the access log and answers with its problem body.
pub(crate) async fn deny(
    shared: &Shared,
    session: &mut Session,
    common: &mut Common,
    denial: &Denial,
) -> pingora::Result<()> {
    let labels = DenyLabels {
        service: common.service_label(),
        reason: denial.reason(),
    };
    if denial.is_residency() {
        shared
            .metrics
            .residency_denials
            .get_or_create(&labels)
            .inc();
        tracing::info!(
            reason = denial.reason(),
            policy = denial.policy().map_or("", |p| &**p),
            service = %labels.service.0,
            "residency denial"
        );
    } else {
        shared.metrics.denials.get_or_create(&labels).inc();
    }
    common.status = denial.status();
    common.reason = Some(denial.reason().to_owned());
    common.policy = denial.policy().cloned();
    if denial.is_residency() {
        audit(shared, common, "denied", Some(denial.reason()));
    }
    let detail = denial.to_string();
    let type_ = denial.problem_type();
    let problem = respond::Problem {
        type_: &type_,
        title: denial.public_reason(),
        status: denial.status(),
        detail: &detail,
        reason: denial.public_reason(),
        policy: denial.policy().map(|p| &**p),
    };
    respond::respond_problem(session, &problem, None).await
}

/// Writes the residency audit line of a request: `denied` or `served`.
pub(crate) fn audit(
    shared: &Shared,
    common: &mut Common,
    event: &'static str,
    reason: Option<&str>,
) {
    if shared.audit.is_none() || common.audited {
        return;
    }
    common.audited = true;
    let mut policies: Vec<&str> = common.residency.iter().map(|v| v.policy.as_str()).collect();
    if let Some(p) = &common.policy
        && !policies.contains(&&**p)
    {
        policies.push(p);
    }
    let service = common.service_ref.as_ref().map_or("", |k| k.as_str());
    let trace_id = common.trace.as_ref().map(|t| t.trace_id_hex());
    shared.audit(&crate::audit::AuditRecord {
        time: crate::audit::now_rfc3339(),
        event,
        listener: if common.source_cluster.0.as_ref() == shared.cluster_label.0.as_ref() {
            "egress"
        } else {
            "ingress"
        },
        cluster: shared.config.cluster.id.as_str(),
        service,
        policies,
        destination: common.destination.as_deref(),
        caller: common.caller.as_deref(),
        status: common.status,
        reason,
        trace_id: trace_id.as_deref(),
    });
}

/// Cuts off a request whose body is still arriving `limit` after the
/// request started: a body dripped byte by byte would otherwise hold a
/// downstream and an upstream connection for as long as the client likes.
/// Checked on every body chunk; a body that stalls completely trips the
/// per-read idle timeout instead.
pub(crate) fn check_body_deadline(
    start: std::time::Instant,
    limit: std::time::Duration,
) -> pingora::Result<()> {
    if start.elapsed() > limit {
        return pingora::Error::e_explain(
            pingora::ErrorType::ReadTimedout,
            "request body not received within limits.bodyTimeout",
        );
    }
    Ok(())
}

/// Sets the upstream `traceparent`: a new span of the incoming trace, or
/// (with `observability.traceContext: start`) of a new trace when none came in.
pub(crate) fn forward_trace(
    shared: &Shared,
    session: &Session,
    upstream: &mut pingora::http::RequestHeader,
    common: &mut Common,
) -> pingora::Result<()> {
    let incoming = session
        .req_header()
        .headers
        .get(crate::headers::TRACEPARENT)
        .map(|v| v.as_bytes());
    if common.trace.is_none() {
        common.trace = match shared.config.observability.trace_context {
            crate::config::TraceContextMode::Start => Some(TraceContext::from_incoming(incoming)),
            crate::config::TraceContextMode::Propagate => TraceContext::child_of(incoming),
        };
    }
    match common.trace {
        Some(trace) => upstream.insert_header(crate::headers::TRACEPARENT, trace.header_value()),
        None => Ok(()),
    }
}

/// The host a request is addressed to (`:authority` or `Host`).
pub(crate) fn request_host(session: &Session) -> Option<&str> {
    let req = session.req_header();
    if let Some(a) = req.uri.authority() {
        return Some(a.as_str());
    }
    req.headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
}

/// Records the request metrics of a finished request.
pub(crate) fn record_metrics(shared: &Shared, listener: &'static str, common: &Common) {
    let service = common.service_label();
    let destination = common.destination.clone().map_or_else(Label::none, Label);
    let m = &shared.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            listener,
            service: service.clone(),
            source_cluster: common.source_cluster.clone(),
            destination_cluster: destination.clone(),
            status_class: status_class(common.status),
            grpc_status: common.grpc.label(),
        })
        .inc();
    let labels = DurationLabels {
        listener,
        service,
        destination_cluster: destination,
    };
    m.request_duration
        .get_or_create(&labels)
        .observe(common.start.elapsed().as_secs_f64());
    if let Some(d) = common.upstream_duration {
        m.upstream_duration
            .get_or_create(&labels)
            .observe(d.as_secs_f64());
    }
}

/// Answers a request that failed before or while reaching the upstream,
/// unless a response was already written (e.g. a denial on retry).
pub(crate) async fn fail_response(
    session: &mut Session,
    e: &pingora::Error,
    common: &mut Common,
) -> pingora::proxy::FailToProxy {
    use pingora::{ErrorSource, ErrorType};
    if session.response_written().is_some() {
        return pingora::proxy::FailToProxy {
            error_code: common.status,
            can_reuse_downstream: false,
        };
    }
    let (code, reason) = match e.etype() {
        ErrorType::HTTPStatus(c) => (*c, "upstream_unavailable"),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            (504, "upstream_timeout")
        }
        _ => match e.esource() {
            ErrorSource::Upstream => (502, "upstream_error"),
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => {
                    (0, "downstream_closed")
                }
                _ => (400, "bad_request"),
            },
            ErrorSource::Internal | ErrorSource::Unset => (500, "internal_error"),
        },
    };
    common.status = code;
    if common.reason.is_none() {
        common.reason = Some(reason.to_owned());
    }
    if code > 0 {
        let msg = e.to_string();
        let _ = respond_error(session, code, reason, &msg).await;
    }
    pingora::proxy::FailToProxy {
        error_code: code,
        can_reuse_downstream: false,
    }
}

/// Whether local endpoints of the request's service are spoken to over h2c:
/// always for gRPC, else when the service declares an HTTP/2 `appProtocol`.
/// Everything else uses HTTP/1.1 (Pingora converts).
pub(crate) fn upstream_h2(session: &Session, common: &Common) -> bool {
    let grpc = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    grpc || common.service.as_ref().is_some_and(|s| s.h2)
}
