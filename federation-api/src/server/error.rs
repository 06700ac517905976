//! RFC 9457 `application/problem+json` errors: the one place where failures
//! become HTTP responses ([`causeway_api::wire::Problem`] documents).
//! Internals are logged, never shown to clients.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use causeway_api::wire::{FieldError, PROBLEM_JSON, PROBLEM_TYPE_BASE, Problem};

/// An error at the HTTP edge of the federation API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: Option<String>,
    errors: Vec<FieldError>,
    www_authenticate: bool,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        Self {
            status,
            slug,
            title,
            detail: None,
            errors: Vec::new(),
            www_authenticate: false,
            retry_after: None,
        }
    }

    /// The human-readable detail, if any.
    pub fn detail(&self) -> &str {
        self.detail.as_deref().unwrap_or(self.slug)
    }

    /// Attaches a human-readable detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Names an offending field.
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self
    }

    /// 400: the request is malformed; `field` names what is wrong.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::BAD_REQUEST, "validation", "Invalid request")
            .with_detail(message.clone())
            .with_field(field, message)
    }

    /// 400 with several offending fields.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e =
            Self::new(StatusCode::BAD_REQUEST, "validation", "Invalid request").with_detail(detail);
        e.errors = errors;
        e
    }

    /// 401: no valid credentials. The detail never says more than needed.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut e =
            Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized").with_detail(detail);
        e.www_authenticate = true;
        e
    }

    /// 403: the credentials do not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").with_detail(detail)
    }

    /// 404: no such resource.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found")
            .with_detail(format!("{} not found", what.into()))
    }

    /// 405: the route exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method not allowed",
        )
    }

    /// 409: the write conflicts with the stored state.
    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict")
            .with_detail(message.clone())
            .with_field(field, message)
    }

    /// 410: the watch revision was compacted; relist.
    pub fn compacted(requested: i64, compact_revision: i64) -> Self {
        Self::new(StatusCode::GONE, "compacted", "Revision compacted")
            .with_detail(format!(
                "revision {requested} has been compacted (oldest available is {compact_revision}); relist and watch again"
            ))
            .with_field("since", "revision compacted")
    }

    /// 412: `If-Match` / `If-None-Match` did not hold.
    pub fn precondition_failed(field: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
        )
        .with_detail(message.clone())
        .with_field(field, message)
    }

    /// 413: the body exceeds the configured cap.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
        )
        .with_detail(format!("request body exceeds {limit} bytes"))
        .with_field("body", format!("larger than {limit} bytes"))
    }

    /// 415: the body is not JSON.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail("expected content-type: application/json")
        .with_field("Content-Type", "expected application/json")
    }

    /// 415 for a body that must have the media type `expected`.
    pub fn unsupported_media_type_for(expected: &'static str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
        )
        .with_detail(format!("expected content-type: {expected}"))
        .with_field("Content-Type", format!("expected {expected}"))
    }

    /// 503: the store cannot be reached. The cause is logged, not shown.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "store unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
        )
        .with_detail("the catalog store is unavailable; retry later")
    }

    /// 503 `outcome-unknown`: a write reached the store but was not
    /// confirmed (an etcd leader election, a timeout); it may or may not
    /// have been applied. Distinct from `unavailable` (nothing written) so
    /// that clients retry idempotently: re-read and compare, or repeat the
    /// write with `If-Match`.
    pub fn outcome_unknown(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "store write outcome unknown");
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome-unknown",
            "Write outcome unknown",
        )
        .with_detail(
            "the catalog store did not confirm the write; it may or may not have been applied: \
             re-read the resource before retrying, or retry with If-Match",
        );
        e.retry_after = Some(1);
        e
    }

    /// 429 `quota-exceeded`: a per-cluster catalog quota or write rate is
    /// exhausted; `retry_after` seconds is when trying again may succeed.
    pub fn quota_exceeded(detail: impl Into<String>, field: &str, retry_after: u64) -> Self {
        let detail = detail.into();
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "quota-exceeded",
            "Quota exceeded",
        )
        .with_detail(detail.clone())
        .with_field(field, detail);
        e.retry_after = Some(retry_after.max(1));
        e
    }

    /// 500: a bug or an unexpected failure. The cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal server error",
        )
        .with_detail("an internal error occurred; see the server log")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            type_uri: format!("{PROBLEM_TYPE_BASE}{}", self.slug),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: None,
            request_id: None,
            errors: self.errors.clone(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.title)?;
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        // The edge layer adds `instance` and `requestId` and renders again.
        resp.extensions_mut().insert(problem);
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if self.www_authenticate {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Maps a serde error to the JSON path of the offending field.
pub fn json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let mut path = err.path().to_string();
    let inner = err.inner();
    let msg = inner.to_string();
    // serde reports unknown and missing fields at the parent path; name the
    // field itself.
    let named = msg
        .strip_prefix("unknown field `")
        .or_else(|| msg.strip_prefix("missing field `"))
        .and_then(|rest| rest.split('`').next());
    if let Some(name) = named
        && path != name
        && !path.ends_with(&format!(".{name}"))
    {
        path = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
    }
    if path.is_empty() || path == "." {
        path = "body".to_owned();
    }
    // Drop serde's " at line X column Y" suffix: the field says where.
    let message = match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    };
    ApiError::invalid(path, message)
}
