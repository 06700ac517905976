//! The REST routes, their OpenAPI description and the shared helpers of the
//! handlers (auth extractor, list pagination, responses with `ETag`).

mod bundles;
mod clusters;
mod exports;
mod imports;
mod ops;
mod patch;
mod policies;
mod watch;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{FromRequestParts, RawQuery};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::catalog::{Listed, Stored};
use super::error::{ApiError, json_error};
use super::{AppState, Authn};
use crate::token::Principal;
use causeway_api::wire::{FieldError, Page, Problem};

/// The OpenAPI document's static part.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Causeway federation API",
        description = "Catalog of clusters, service exports, derived imports, trust bundles and policies.",
        version = "v1"
    ),
    modifiers(&BearerAuth),
    components(schemas(Problem, FieldError, causeway_api::model::Resource)),
    tags(
        (name = "clusters", description = "Member clusters and their heartbeats"),
        (name = "exports", description = "Service exports of a cluster"),
        (name = "imports", description = "Derived service imports (read-only)"),
        (name = "trust", description = "SPIFFE trust bundles per trust domain"),
        (name = "policies", description = "Residency, traffic, access and export policies"),
        (name = "watch", description = "Change streams"),
        (name = "ops", description = "Health, readiness, metrics, version and this document")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(clusters::list_clusters))
        .routes(routes!(
            clusters::get_cluster,
            clusters::put_cluster,
            clusters::delete_cluster
        ))
        .routes(routes!(clusters::heartbeat))
        .routes(routes!(exports::list_exports))
        .routes(routes!(
            exports::get_export,
            exports::put_export,
            exports::delete_export
        ))
        .routes(routes!(imports::list_imports))
        .routes(routes!(imports::get_import))
        .routes(routes!(bundles::list_trust_domains))
        .routes(routes!(bundles::get_bundle, bundles::put_bundle))
        .routes(routes!(policies::list_policies))
        .routes(routes!(
            policies::get_policy,
            policies::put_policy,
            policies::delete_policy
        ))
        .routes(routes!(patch::patch_cluster))
        .routes(routes!(patch::patch_export))
        .routes(routes!(patch::patch_policy))
        .routes(routes!(watch::watch))
        .routes(routes!(ops::version))
        .routes(routes!(ops::openapi_json))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The OpenAPI document of every REST route (built once).
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = api_router().into_openapi();
        super::openapi_extra::describe_edge(&mut doc);
        doc
    })
    .clone()
}

/// The full router: REST, gRPC on the same port, problem+json fallbacks and
/// request metrics.
pub(crate) fn router(state: AppState) -> Router {
    let (rest, _) = api_router().split_for_parts();
    let mut rest = rest.with_state(state.clone());
    if state.0.config.console.enabled {
        rest = rest.merge(super::console::router(state.clone()));
    }
    let rest = rest
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn(super::edge::layer));
    super::grpc::add_to(rest, state.clone()).layer(axum::middleware::from_fn_with_state(
        state,
        super::http_metrics::record,
    ))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A bearer token wins; without one, the connection's X.509-SVID.
        if !parts.headers.contains_key(header::AUTHORIZATION)
            && !matches!(state.0.authn, Authn::Disabled)
            && let Some(super::tls::PeerSvid(id)) = parts.extensions.get::<super::tls::PeerSvid>()
        {
            return super::tls::svid_principal(state, id).await.map(Caller);
        }
        authenticate(&parts.headers, &state.0.authn).map(Caller)
    }
}

/// Verifies the `Authorization: Bearer` header.
pub(crate) fn authenticate(
    headers: &axum::http::HeaderMap,
    authn: &Authn,
) -> Result<Principal, ApiError> {
    let keys = match authn {
        Authn::Disabled => return Ok(Principal::anonymous_admin()),
        Authn::Jwt(k) => k,
    };
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Err(
            ApiError::unauthorized("missing bearer token").with_field("Authorization", "missing")
        );
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::unauthorized("malformed Authorization header"))?;
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))
        .ok_or_else(|| {
            ApiError::unauthorized("expected `Authorization: Bearer <token>`")
                .with_field("Authorization", "not a bearer token")
        })?;
    keys.verify(token.trim())
        .map_err(|m| ApiError::unauthorized(m.clone()).with_field("Authorization", m))
}

impl Caller {
    pub(crate) fn require_read(&self) -> Result<(), ApiError> {
        if self.0.can_read() {
            Ok(())
        } else {
            Err(ApiError::forbidden("token cannot read the catalog"))
        }
    }

    pub(crate) fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.0.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "only an admin token may {what}"
            )))
        }
    }

    /// Takes one write of a member cluster's rate (admins are not limited).
    pub(crate) fn admit_write(&self, s: &AppState, cluster: &str) -> Result<(), ApiError> {
        if self.0.is_admin() {
            return Ok(());
        }
        s.0.quotas.admit_write(&format!("cluster {cluster:?}"))
    }

    pub(crate) fn require_cluster(&self, cluster: &str) -> Result<(), ApiError> {
        if self.0.can_write_cluster(cluster) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "token may not write records of cluster {cluster:?}"
            )))
        }
    }
}

/// Parses a path segment into a validated name; 400 naming the parameter.
pub(crate) fn parse_param<T>(field: &str, value: &str) -> Result<T, ApiError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    value
        .parse::<T>()
        .map_err(|e| ApiError::invalid(field, e.to_string()))
}

/// Decodes a JSON value into a model type, naming the offending field.
pub(crate) fn decode_body<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(v).map_err(json_error)
}

/// Requires the body field `field` to equal the path parameter.
pub(crate) fn same(field: &str, body: &str, path: &str) -> Result<(), ApiError> {
    if body == path {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!("{body:?} does not match {path:?} in the path"),
        ))
    }
}

/// `limit` and `continue` of a list request.
#[derive(Debug, Clone)]
pub(crate) struct ListParams {
    pub(crate) limit: usize,
    pub(crate) after: Option<String>,
}

pub(crate) fn query_map(q: &RawQuery) -> Result<HashMap<String, String>, ApiError> {
    serde_urlencoded::from_str(q.0.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::invalid("query", e.to_string()))
}

impl ListParams {
    pub(crate) fn parse(state: &AppState, q: &RawQuery, prefix: &str) -> Result<Self, ApiError> {
        let m = query_map(q)?;
        for k in m.keys() {
            if k != "limit" && k != "continue" {
                return Err(ApiError::invalid(
                    k.as_str(),
                    "unknown query parameter; expected limit or continue",
                ));
            }
        }
        let cfg = &state.0.config;
        let limit = match m.get("limit") {
            None => cfg.default_page_size,
            Some(l) => match l.parse::<usize>() {
                Ok(n) if (1..=cfg.max_page_size).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("must be an integer between 1 and {}", cfg.max_page_size),
                    ));
                }
            },
        };
        let after = match m.get("continue").filter(|c| !c.is_empty()) {
            None => None,
            Some(t) => {
                let key = URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|k| k.starts_with(prefix))
                    .ok_or_else(|| ApiError::invalid("continue", "invalid continue token"))?;
                Some(key)
            }
        };
        Ok(Self { limit, after })
    }
}

pub(crate) fn continue_token(next_after: Option<&str>) -> Option<String> {
    next_after.map(|k| URL_SAFE_NO_PAD.encode(k.as_bytes()))
}

pub(crate) fn page<T: Serialize>(listed: &Listed, items: Vec<T>) -> Response {
    axum::Json(Page {
        items,
        continue_token: continue_token(listed.next_after.as_deref()),
        revision: listed.revision,
    })
    .into_response()
}

/// A JSON response with `ETag: "<revision>"`.
pub(crate) fn with_etag(status: StatusCode, body: &impl Serialize, revision: u64) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&super::extract::etag(revision)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// The answer to a PUT: 201 when created, 200 when replaced.
pub(crate) fn put_response(stored: &Stored, created: bool, body: &impl Serialize) -> Response {
    with_etag(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        body,
        stored.revision,
    )
}
