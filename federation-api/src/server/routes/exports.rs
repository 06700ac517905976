//! `/v1/clusters/{cluster}/exports`: a cluster's service exports, with MCS
//! conditions computed across every export of the same service.

use std::collections::BTreeMap;

use crate::server::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Caller, ListParams, decode_body, page, parse_param, put_response, same, with_etag};
use crate::server::AppState;
use crate::server::catalog::Catalog;
use crate::server::error::ApiError;
use crate::server::extract::{Preconditions, StrictJson};
use causeway_api::model::policy::export_allowed;
use causeway_api::model::{ClusterId, Namespace, Resource, ServiceExport, ServiceName, ServiceRef};
use causeway_api::wire::Problem;

/// Fills the status of `targets` from every export of their services.
async fn decorate(cat: &Catalog, targets: &mut [ServiceExport]) -> Result<(), ApiError> {
    let live = cat.liveness().await?;
    let clusters = cat.clusters(&live).await?;
    let policies = cat.export_policies().await?;
    let mut by_service: BTreeMap<ServiceRef, Vec<ServiceExport>> = BTreeMap::new();
    if targets.len() > 1 {
        for e in cat.all_exports().await? {
            by_service.entry(e.service()).or_default().push(e);
        }
    } else if let Some(t) = targets.first() {
        by_service.insert(t.service(), cat.exports_of(&t.service()).await?);
    }
    for t in targets.iter_mut() {
        let all = by_service.get(&t.service()).cloned().unwrap_or_default();
        cat.decorate_exports(&all, &clusters, &live, &policies, std::slice::from_mut(t));
    }
    Ok(())
}

fn export_key(
    cat: &Catalog,
    cluster: &str,
    ns: &str,
    name: &str,
) -> Result<(ClusterId, Namespace, ServiceName, String), ApiError> {
    let c: ClusterId = parse_param("cluster", cluster)?;
    let n: Namespace = parse_param("namespace", ns)?;
    let s: ServiceName = parse_param("name", name)?;
    let key = cat.keys().export(&n, &s, &c);
    Ok((c, n, s, key))
}

/// List the exports of a cluster.
#[utoipa::path(get, path = "/v1/clusters/{cluster}/exports", tag = "exports",
    params(("cluster" = String, Path, description = "Cluster id"),
           ("limit" = Option<usize>, Query, description = "Page size"),
           ("continue" = Option<String>, Query, description = "Token of the next page")),
    responses((status = 200, description = "A page of exports"), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_exports(
    State(s): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    q: RawQuery,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let id: ClusterId = parse_param("cluster", &cluster)?;
    let cat = &s.0.catalog;
    let p = ListParams::parse(&s, &q, &cat.keys().exports())?;
    // Exports are keyed by service first; filter this cluster's in pages of
    // the global export range.
    let mut exports = Vec::new();
    let mut after = p.after;
    let mut last_listed;
    loop {
        let listed = cat
            .list(&cat.keys().exports(), p.limit, after.clone())
            .await?;
        last_listed = listed.clone();
        for st in listed.items {
            if let Resource::ServiceExport(e) = st.resource
                && e.metadata.cluster == id
            {
                exports.push(e);
            }
        }
        match listed.next_after {
            Some(k) if exports.len() < p.limit => after = Some(k),
            _ => break,
        }
    }
    decorate(cat, &mut exports).await?;
    if exports.len() < p.limit {
        last_listed.next_after = None;
    }
    let items: Vec<Resource> = exports.into_iter().map(Resource::ServiceExport).collect();
    Ok(page(&last_listed, items))
}

/// Get one export with its status.
#[utoipa::path(get, path = "/v1/clusters/{cluster}/exports/{ns}/{name}", tag = "exports",
    params(("cluster" = String, Path, description = "Cluster id"), ("ns" = String, Path, description = "Namespace"),
           ("name" = String, Path, description = "Service name")),
    responses((status = 200, body = ServiceExport), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn get_export(
    State(s): State<AppState>,
    caller: Caller,
    Path((cluster, ns, name)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let cat = &s.0.catalog;
    let (_, _, _, key) = export_key(cat, &cluster, &ns, &name)?;
    let stored = cat
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("export {ns}/{name} of cluster {cluster}")))?;
    let Resource::ServiceExport(e) = stored.resource else {
        return Err(ApiError::internal(&"stored export has the wrong kind"));
    };
    let mut v = [e];
    decorate(cat, &mut v).await?;
    let [e] = v;
    Ok(with_etag(StatusCode::OK, &e, stored.revision))
}

/// Create or replace an export. The cluster's token and the ExportPolicies
/// must allow it.
#[utoipa::path(put, path = "/v1/clusters/{cluster}/exports/{ns}/{name}", tag = "exports",
    params(("cluster" = String, Path, description = "Cluster id"), ("ns" = String, Path, description = "Namespace"),
           ("name" = String, Path, description = "Service name"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted"),
           ("If-None-Match" = Option<String>, Header, description = "`*` to create only")),
    request_body = ServiceExport,
    responses((status = 200, body = ServiceExport), (status = 201, body = ServiceExport),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "Per-cluster export quota or write rate exceeded (`Retry-After`)")),
    security(("bearer" = [])))]
pub(super) async fn put_export(
    State(s): State<AppState>,
    caller: Caller,
    Path((cluster, ns, name)): Path<(String, String, String)>,
    pre: Preconditions,
    StrictJson(body): StrictJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let cat = &s.0.catalog;
    let (c, n, sname, key) = export_key(cat, &cluster, &ns, &name)?;
    caller.require_cluster(&c)?;
    caller.admit_write(&s, &c)?;
    let e: ServiceExport = decode_body(body)?;
    same("metadata.cluster", &e.metadata.cluster, &c)?;
    same("metadata.namespace", &e.metadata.namespace, &n)?;
    same("metadata.name", &e.metadata.name, &sname)?;
    // Copied onto the ServiceImport of every importing cluster: refused
    // here, so one bad export cannot make importing agents' creates fail.
    e.spec
        .check_exported_metadata()
        .map_err(|(field, message)| ApiError::invalid(format!("spec.{field}"), message))?;
    let policies = cat.export_policies().await?;
    if !export_allowed(&policies, &n, &c) {
        return Err(ApiError::forbidden(format!(
            "no ExportPolicy allows cluster {c:?} to export namespace {n:?}"
        ))
        .with_field("metadata.namespace", "namespace owned by other clusters"));
    }
    let write = cat.write(&key, Resource::ServiceExport(e.clone()), pre);
    let (stored, created) = if caller.0.is_admin() {
        write.await?
    } else {
        // Quota: one more export (when new) and the change in size.
        let old = cat.get_raw(&key).await?;
        let new_len = serde_json::to_vec(&e).map_or(0, |b| b.len());
        let old_len = old.as_ref().map_or(0, |kv| kv.value.len());
        let delta = isize::try_from(new_len).unwrap_or(isize::MAX)
            - isize::try_from(old_len).unwrap_or(isize::MAX);
        s.0.quotas
            .export_write(cat, &c, usize::from(old.is_none()), delta, write)
            .await?
    };
    let Resource::ServiceExport(e) = stored.resource.clone() else {
        return Err(ApiError::internal(&"stored export has the wrong kind"));
    };
    let mut v = [e];
    decorate(cat, &mut v).await?;
    let [e] = v;
    Ok(put_response(&stored, created, &e))
}

/// Delete an export.
#[utoipa::path(delete, path = "/v1/clusters/{cluster}/exports/{ns}/{name}", tag = "exports",
    params(("cluster" = String, Path, description = "Cluster id"), ("ns" = String, Path, description = "Namespace"),
           ("name" = String, Path, description = "Service name"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn delete_export(
    State(s): State<AppState>,
    caller: Caller,
    Path((cluster, ns, name)): Path<(String, String, String)>,
    pre: Preconditions,
) -> Result<Response, ApiError> {
    let cat = &s.0.catalog;
    let (c, _, _, key) = export_key(cat, &cluster, &ns, &name)?;
    caller.require_cluster(&c)?;
    caller.admit_write(&s, &c)?;
    let r = cat
        .delete(
            &key,
            &format!("export {ns}/{name} of cluster {cluster}"),
            pre,
        )
        .await;
    s.0.quotas.forget(&c);
    r?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
