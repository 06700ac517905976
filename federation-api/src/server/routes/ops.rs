//! Health, readiness, metrics and the OpenAPI document (no authentication).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::AppState;
use crate::server::error::ApiError;
use causeway_api::wire::{Problem, VersionInfo};

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "ok", body = String)))]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, description = "ready", body = String),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    if s.0.catalog.ready().await {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        ApiError::unavailable(&"readiness probe: store did not answer").into_response()
    }
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "OpenMetrics text", body = String)))]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &s.0.registry) {
        return ApiError::internal(&e).into_response();
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops", responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json")))]
pub(super) async fn openapi_json() -> Response {
    static JSON: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = JSON.get_or_init(|| serde_json::to_vec(&super::openapi()).unwrap_or_default());
    let mut r = body.clone().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The server's version and the commit it was built from (no authentication,
/// like the health endpoints: `causewayctl version` prints it).
#[utoipa::path(get, path = "/v1/version", tag = "ops", responses((status = 200, body = VersionInfo)))]
pub(super) async fn version() -> axum::Json<VersionInfo> {
    axum::Json(VersionInfo::this_build())
}
