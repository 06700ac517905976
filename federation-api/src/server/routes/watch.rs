//! `GET /v1/watch?since=REV`: the NDJSON change stream.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_stream::StreamExt;

use super::{Caller, query_map};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::watch::{Item, ndjson_line};
use causeway_api::wire::Problem;

/// Parses `since`.
pub(crate) fn parse_since(raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::invalid("since", "must be a non-negative integer revision")),
    }
}

/// Stream catalog changes as NDJSON. Without `since`, the first line is a
/// snapshot `{type: "snapshot", revision, resources}`; then one line per
/// change `{type: "put"|"delete", revision, kind, key, resource}`; idle
/// streams get `{type: "bookmark", revision}`. With `since`, the events after
/// that revision follow (no snapshot). A compacted `since` answers 410.
#[utoipa::path(get, path = "/v1/watch", tag = "watch",
    params(("since" = Option<u64>, Query, description = "Resume after this revision")),
    responses((status = 200, description = "NDJSON stream of watch lines", content_type = "application/x-ndjson"),
              (status = 410, body = Problem, content_type = "application/problem+json", description = "Revision compacted: relist")),
    security(("bearer" = [])))]
pub(super) async fn watch(
    State(s): State<AppState>,
    caller: Caller,
    q: RawQuery,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let m = query_map(&q)?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "since") {
        return Err(ApiError::invalid(
            k.as_str(),
            "unknown query parameter; expected since",
        ));
    }
    let since = parse_since(m.get("since").map(String::as_str))?;
    let stream = crate::server::watch::open(&s.0.catalog, since).await?;
    let guard = s.0.metrics.watch_guard("ndjson");
    let body = stream.map(move |item| {
        let _held = &guard;
        Ok::<_, std::convert::Infallible>(match item {
            Item::Line(line) => ndjson_line(&line),
            Item::Shared(e) => e.ndjson.clone(),
        })
    });
    let mut r = (StatusCode::OK, Body::from_stream(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}
