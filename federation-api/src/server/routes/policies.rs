//! `/v1/policies/{kind}`: residency, traffic, access and export policies.
//! Reading needs any scope; writing needs `admin`.

use crate::server::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Caller, ListParams, decode_body, page, parse_param, put_response, same, with_etag};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{Preconditions, StrictJson};
use causeway_api::model::{PolicyKind, PolicyName, Resource};
use causeway_api::wire::Problem;

fn kind_of(kind: &str) -> Result<PolicyKind, ApiError> {
    parse_param("kind", kind)
}

/// List the policies of a kind.
#[utoipa::path(get, path = "/v1/policies/{kind}", tag = "policies",
    params(("kind" = String, Path, description = "residency | traffic | access | export"),
           ("limit" = Option<usize>, Query, description = "Page size"),
           ("continue" = Option<String>, Query, description = "Token of the next page")),
    responses((status = 200, description = "A page of policies"), (status = 400, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_policies(
    State(s): State<AppState>,
    caller: Caller,
    Path(kind): Path<String>,
    q: RawQuery,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let kind = kind_of(&kind)?;
    let cat = &s.0.catalog;
    let prefix = cat.keys().policies(kind);
    let p = ListParams::parse(&s, &q, &prefix)?;
    let listed = cat.list(&prefix, p.limit, p.after).await?;
    let items: Vec<Resource> = listed.items.iter().map(|st| st.resource.clone()).collect();
    Ok(page(&listed, items))
}

/// Get a policy.
#[utoipa::path(get, path = "/v1/policies/{kind}/{name}", tag = "policies",
    params(("kind" = String, Path, description = "residency | traffic | access | export"),
           ("name" = String, Path, description = "Policy name")),
    responses((status = 200, body = Resource), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn get_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let kind = kind_of(&kind)?;
    let name: PolicyName = parse_param("name", &name)?;
    let cat = &s.0.catalog;
    let st = cat
        .get(&cat.keys().policy(kind, &name))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{} {name}", kind.kind_name())))?;
    Ok(with_etag(StatusCode::OK, &st.resource, st.revision))
}

fn decode_policy(
    kind: PolicyKind,
    body: serde_json::Value,
) -> Result<(Resource, String), ApiError> {
    let body_kind = body
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_owned();
    if body_kind != kind.kind_name() {
        return Err(ApiError::invalid(
            "kind",
            format!(
                "expected {:?} for /v1/policies/{kind}, got {body_kind:?}",
                kind.kind_name()
            ),
        ));
    }
    Ok(match kind {
        PolicyKind::Residency => {
            let p: causeway_api::model::ResidencyPolicy = decode_body(body)?;
            let n = p.name().to_string();
            (Resource::ResidencyPolicy(p), n)
        }
        PolicyKind::Traffic => {
            let p: causeway_api::model::TrafficPolicy = decode_body(body)?;
            let n = p.name().to_string();
            (Resource::TrafficPolicy(p), n)
        }
        PolicyKind::Access => {
            let p: causeway_api::model::AccessPolicy = decode_body(body)?;
            let n = p.name().to_string();
            (Resource::AccessPolicy(p), n)
        }
        PolicyKind::Export => {
            let p: causeway_api::model::ExportPolicy = decode_body(body)?;
            let n = p.name().to_string();
            (Resource::ExportPolicy(p), n)
        }
    })
}

/// Create or replace a policy (admin).
#[utoipa::path(put, path = "/v1/policies/{kind}/{name}", tag = "policies",
    params(("kind" = String, Path, description = "residency | traffic | access | export"),
           ("name" = String, Path, description = "Policy name"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted"),
           ("If-None-Match" = Option<String>, Header, description = "`*` to create only")),
    request_body = Resource,
    responses((status = 200, body = Resource), (status = 201, body = Resource),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn put_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, name)): Path<(String, String)>,
    pre: Preconditions,
    StrictJson(body): StrictJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    caller.require_admin("write policies")?;
    let kind = kind_of(&kind)?;
    let pname: PolicyName = parse_param("name", &name)?;
    let (resource, body_name) = decode_policy(kind, body)?;
    same("metadata.name", &body_name, &pname)?;
    let cat = &s.0.catalog;
    let (stored, created) = cat
        .write(&cat.keys().policy(kind, &pname), resource, pre)
        .await?;
    Ok(put_response(&stored, created, &stored.resource))
}

/// Delete a policy (admin).
#[utoipa::path(delete, path = "/v1/policies/{kind}/{name}", tag = "policies",
    params(("kind" = String, Path, description = "residency | traffic | access | export"),
           ("name" = String, Path, description = "Policy name"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn delete_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, name)): Path<(String, String)>,
    pre: Preconditions,
) -> Result<Response, ApiError> {
    caller.require_admin("delete policies")?;
    let kind = kind_of(&kind)?;
    let pname: PolicyName = parse_param("name", &name)?;
    let cat = &s.0.catalog;
    cat.delete(
        &cat.keys().policy(kind, &pname),
        &format!("{} {pname}", kind.kind_name()),
        pre,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
