//! `/v1/clusters`: cluster records and heartbeats.

use crate::server::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Caller, ListParams, decode_body, page, parse_param, put_response, same, with_etag};
use crate::server::AppState;
use crate::server::catalog::Catalog;
use crate::server::error::ApiError;
use crate::server::extract::{Preconditions, StrictJson};
use causeway_api::model::{Cluster, ClusterId, Resource};
use causeway_api::wire::HeartbeatAck;
use causeway_api::wire::Problem;

/// List clusters.
#[utoipa::path(get, path = "/v1/clusters", tag = "clusters",
    params(("limit" = Option<usize>, Query, description = "Page size"),
           ("continue" = Option<String>, Query, description = "Token of the next page")),
    responses((status = 200, description = "A page of clusters (`items`, `continue`, `revision`)"),
              (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_clusters(
    State(s): State<AppState>,
    caller: Caller,
    q: RawQuery,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let cat = &s.0.catalog;
    let prefix = cat.keys().clusters();
    let p = ListParams::parse(&s, &q, &prefix)?;
    let listed = cat.list(&prefix, p.limit, p.after).await?;
    let live = cat.liveness().await?;
    let items: Vec<Resource> = listed
        .items
        .iter()
        .map(|st| {
            let mut r = st.resource.clone();
            if let Resource::Cluster(c) = &mut r {
                c.status = Some(live.status_of(c.id()));
            }
            r
        })
        .collect();
    Ok(page(&listed, items))
}

/// Get a cluster, with its connectivity status.
#[utoipa::path(get, path = "/v1/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster id")),
    responses((status = 200, body = Cluster), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn get_cluster(
    State(s): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let id: ClusterId = parse_param("cluster", &cluster)?;
    let cat = &s.0.catalog;
    let stored = cat
        .get(&cat.keys().cluster(&id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("cluster {id}")))?;
    let live = cat.liveness().await?;
    let mut r = stored.resource;
    if let Resource::Cluster(c) = &mut r {
        c.status = Some(live.status_of(&id));
    }
    Ok(with_etag(StatusCode::OK, &r, stored.revision))
}

/// Create or replace a cluster. `If-Match: "<rev>"` / `If-None-Match: *`.
#[utoipa::path(put, path = "/v1/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster id"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted"),
           ("If-None-Match" = Option<String>, Header, description = "`*` to create only")),
    request_body = Cluster,
    responses((status = 200, body = Cluster, description = "Replaced"), (status = 201, body = Cluster, description = "Created"),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json"),
              (status = 413, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn put_cluster(
    State(s): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    pre: Preconditions,
    StrictJson(body): StrictJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let id: ClusterId = parse_param("cluster", &cluster)?;
    caller.require_cluster(&id)?;
    caller.admit_write(&s, &id)?;
    let c: Cluster = decode_body(body)?;
    same("metadata.name", c.id(), &id)?;
    let cat = &s.0.catalog;
    if !caller.0.is_admin() {
        keep_placement(cat, &c).await?;
        claim_trust_domain(cat, &c).await?;
    }
    let (stored, created) = cat
        .write(&cat.keys().cluster(&id), Resource::Cluster(c), pre)
        .await?;
    let live = cat.liveness().await?;
    let mut r = stored.resource.clone();
    if let Resource::Cluster(c) = &mut r {
        c.status = Some(live.status_of(&id));
    }
    Ok(put_response(&stored, created, &r))
}

/// Region and jurisdictions are placement facts residency policies rely
/// on: a member cluster registers them once (its first registration), after
/// which only an admin may change them. A member token that could move its
/// own cluster into a jurisdiction would defeat every residency policy
/// (SECURITY.md F12). The order of jurisdictions is not a change.
async fn keep_placement(cat: &Catalog, c: &Cluster) -> Result<(), ApiError> {
    let Some(stored) = cat.get(&cat.keys().cluster(c.id())).await? else {
        return Ok(());
    };
    let Resource::Cluster(old) = stored.resource else {
        return Ok(());
    };
    let set = |j: &[String]| j.iter().cloned().collect::<std::collections::BTreeSet<_>>();
    let mut e: Option<ApiError> = None;
    let mut changed = |field: &str, from: String, to: String| {
        let msg = format!("placement is set by an admin: {from} -> {to} refused");
        e = Some(
            e.take()
                .unwrap_or_else(|| {
                    ApiError::forbidden(format!(
                        "only an admin may change the region or jurisdictions of cluster {:?}",
                        c.id().as_str()
                    ))
                })
                .with_field(field, msg),
        );
    };
    if old.spec.region != c.spec.region {
        changed(
            "spec.region",
            format!("{:?}", old.spec.region),
            format!("{:?}", c.spec.region),
        );
    }
    if set(&old.spec.jurisdictions) != set(&c.spec.jurisdictions) {
        changed(
            "spec.jurisdictions",
            format!("{:?}", old.spec.jurisdictions),
            format!("{:?}", c.spec.jurisdictions),
        );
    }
    match e {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A member cluster may keep the trust domain its record already has, but
/// may not claim one that another registered cluster uses: whoever names a
/// trust domain in its record may publish that domain's bundle, so a claim
/// would let it mint identities of the other cluster (SECURITY-FINDINGS.md
/// F1). Admins may set up trust domains shared by several clusters.
async fn claim_trust_domain(cat: &Catalog, c: &Cluster) -> Result<(), ApiError> {
    let td = &c.spec.trust_domain;
    if let Some(stored) = cat.get(&cat.keys().cluster(c.id())).await?
        && let Resource::Cluster(old) = stored.resource
        && &old.spec.trust_domain == td
    {
        return Ok(());
    }
    for other in cat.list_all(&cat.keys().clusters()).await? {
        if let Resource::Cluster(o) = other.resource
            && o.id() != c.id()
            && &o.spec.trust_domain == td
        {
            return Err(ApiError::forbidden(format!(
                "trust domain {:?} belongs to cluster {:?}; only an admin may share it",
                td.as_str(),
                o.id().as_str()
            ))
            .with_field("spec.trustDomain", "trust domain of another cluster"));
        }
    }
    Ok(())
}

/// Delete a cluster record (admin only; its exports stay until deleted).
#[utoipa::path(delete, path = "/v1/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster id"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn delete_cluster(
    State(s): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    pre: Preconditions,
) -> Result<Response, ApiError> {
    let id: ClusterId = parse_param("cluster", &cluster)?;
    // Deleting and re-registering would reset the admin's placement (F12).
    caller.require_admin("delete a cluster record (its placement is set by an admin)")?;
    let cat = &s.0.catalog;
    cat.delete(&cat.keys().cluster(&id), &format!("cluster {id}"), pre)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Record a heartbeat: keeps the cluster's lease alive.
#[utoipa::path(post, path = "/v1/clusters/{cluster}/heartbeat", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster id")),
    responses((status = 200, body = HeartbeatAck), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn heartbeat(
    State(s): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
) -> Result<Response, ApiError> {
    let id: ClusterId = parse_param("cluster", &cluster)?;
    caller.require_cluster(&id)?;
    let cat = &s.0.catalog;
    if cat.get_raw(&cat.keys().cluster(&id)).await?.is_none() {
        return Err(ApiError::not_found(format!("cluster {id}"))
            .with_field("cluster", "register the cluster first"));
    }
    Ok(axum::Json(cat.heartbeat(&id).await?).into_response())
}
