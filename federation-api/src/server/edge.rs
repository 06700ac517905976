//! What every REST response gets on its way out: the request id
//! (`X-Request-Id`), the `instance` and `requestId` of problem documents, and
//! `304 Not Modified` for a `GET` whose `If-None-Match` names the `ETag`.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use causeway_api::wire::{PROBLEM_JSON, Problem, REQUEST_ID_HEADER};
use tracing::Instrument;

/// The longest request id taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// The request id of a request: the client's `X-Request-Id` when it is a
/// sane token, else a fresh random one. Never rejected: a bad id is replaced.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=MAX_REQUEST_ID).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
        })
        .map_or_else(|| format!("{:032x}", rand::random::<u128>()), str::to_owned)
}

/// Whether `If-None-Match` (a list of entity tags, or `*`) names `etag`.
/// GET uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored.
pub(crate) fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let etag = strip(etag);
    if_none_match
        .split(',')
        .map(strip)
        .any(|t| t == "*" || t == etag)
}

/// The middleware.
pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let id = request_id(req.headers());
    let path = req.uri().path().to_owned();
    let if_none_match = (req.method() == Method::GET)
        .then(|| req.headers().get(header::IF_NONE_MATCH).cloned())
        .flatten();
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = next.run(req).instrument(span).await;
    if let Some(mut problem) = resp.extensions_mut().remove::<Problem>() {
        problem.instance = Some(path);
        problem.request_id = Some(id.clone());
        resp = render_problem(resp, &problem);
    } else if let Some(inm) = if_none_match
        && resp.status() == StatusCode::OK
        && let Some(etag) = resp.headers().get(header::ETAG)
        && let (Ok(inm), Ok(etag)) = (inm.to_str(), etag.to_str())
        && none_match_hits(inm, etag)
    {
        resp = not_modified(&resp);
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// The response with its body replaced by `problem`, status and headers kept.
fn render_problem(resp: Response, problem: &Problem) -> Response {
    let (mut parts, _) = resp.into_parts();
    let body = serde_json::to_vec(problem).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// `304 Not Modified` for `resp`: no body; the validator and caching headers
/// a 200 would have carried (RFC 9110 §15.4.5).
fn not_modified(resp: &Response) -> Response {
    let mut r = StatusCode::NOT_MODIFIED.into_response();
    for h in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
        if let Some(v) = resp.headers().get(&h) {
            r.headers_mut().insert(h, v.clone());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        assert!(none_match_hits("\"7\"", "\"7\""));
        assert!(none_match_hits("\"3\", W/\"7\"", "\"7\""));
        assert!(none_match_hits("*", "\"7\""));
        assert!(!none_match_hits("\"70\"", "\"7\""));
        assert!(!none_match_hits("7", "\"7\""));
    }

    #[test]
    fn request_ids_are_kept_when_sane_and_replaced_otherwise() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h), "abc-123");
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("a b"));
        let generated = request_id(&h);
        assert_eq!(generated.len(), 32);
        assert_ne!(generated, request_id(&h), "fresh ids differ");
        h.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&"x".repeat(129)).unwrap_or(HeaderValue::from_static("x")),
        );
        assert_eq!(request_id(&h).len(), 32);
    }
}
