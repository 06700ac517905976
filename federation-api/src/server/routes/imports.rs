//! `/v1/imports`: ServiceImports derived on read from every export.

use crate::server::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Caller, parse_param, query_map};
use crate::server::AppState;
use crate::server::error::ApiError;
use causeway_api::model::{Namespace, ServiceImport, ServiceName, ServiceRef};
use causeway_api::wire::Page;
use causeway_api::wire::Problem;

/// List the derived imports.
#[utoipa::path(get, path = "/v1/imports", tag = "imports",
    params(("limit" = Option<usize>, Query, description = "Page size"),
           ("continue" = Option<String>, Query, description = "Token of the next page")),
    responses((status = 200, description = "A page of ServiceImports"), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_imports(
    State(s): State<AppState>,
    caller: Caller,
    q: RawQuery,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let m = query_map(&q)?;
    let cfg = &s.0.config;
    let limit = match m.get("limit") {
        None => cfg.default_page_size,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=cfg.max_page_size).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be an integer between 1 and {}", cfg.max_page_size),
                )
            })?,
    };
    let after: Option<ServiceRef> = match m.get("continue").filter(|c| !c.is_empty()) {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ApiError::invalid("continue", "invalid continue token"))?,
        ),
    };
    let revision =
        s.0.catalog
            .store()
            .current_revision()
            .await
            .map_err(crate::server::catalog::store_error)?;
    let imports = s.0.catalog.imports().await?;
    let mut items: Vec<ServiceImport> = imports
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .map(|(_, v)| v)
        .take(limit + 1)
        .collect();
    let more = items.len() > limit;
    items.truncate(limit);
    let continue_token = if more {
        items
            .last()
            .map(|i| URL_SAFE_NO_PAD.encode(i.service().to_string().as_bytes()))
    } else {
        None
    };
    Ok(axum::Json(Page {
        items,
        continue_token,
        revision,
    })
    .into_response())
}

/// Get the import of one service.
#[utoipa::path(get, path = "/v1/imports/{ns}/{name}", tag = "imports",
    params(("ns" = String, Path, description = "Namespace"), ("name" = String, Path, description = "Service name")),
    responses((status = 200, body = ServiceImport), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn get_import(
    State(s): State<AppState>,
    caller: Caller,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let n: Namespace = parse_param("namespace", &ns)?;
    let sn: ServiceName = parse_param("name", &name)?;
    let svc = ServiceRef::new(n, sn);
    let cat = &s.0.catalog;
    let live = cat.liveness().await?;
    let clusters = cat.clusters(&live).await?;
    let exports = cat.exports_of(&svc).await?;
    let policies = cat.export_policies().await?;
    let import = cat
        .derive(&exports, &clusters, &live, &policies)
        .ok_or_else(|| ApiError::not_found(format!("import {svc} (no cluster exports it)")))?;
    Ok((StatusCode::OK, axum::Json(import)).into_response())
}
