//! `/v1/trust-domains`: SPIFFE bundles, one per trust domain, never merged.
//! `GET .../bundle` serves the bare SPIFFE bundle without authentication so
//! that SPIRE can federate with it (`https_web` profile).

use crate::server::extract::Path;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Caller, ListParams, decode_body, page, parse_param, put_response, same};
use crate::server::AppState;
use crate::server::catalog::Catalog;
use crate::server::error::ApiError;
use crate::server::extract::{Preconditions, StrictJson, etag};
use causeway_api::model::{Cluster, ClusterId, Resource, TrustBundle, TrustDomainName};
use causeway_api::wire::Problem;

/// List the trust domains and their bundles (TrustBundle resources).
#[utoipa::path(get, path = "/v1/trust-domains", tag = "trust",
    params(("limit" = Option<usize>, Query, description = "Page size"),
           ("continue" = Option<String>, Query, description = "Token of the next page")),
    responses((status = 200, description = "A page of TrustBundles"), (status = 401, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn list_trust_domains(
    State(s): State<AppState>,
    caller: Caller,
    q: RawQuery,
) -> Result<Response, ApiError> {
    caller.require_read()?;
    let cat = &s.0.catalog;
    let prefix = cat.keys().bundles();
    let p = ListParams::parse(&s, &q, &prefix)?;
    let listed = cat.list(&prefix, p.limit, p.after).await?;
    let items: Vec<Resource> = listed.items.iter().map(|st| st.resource.clone()).collect();
    Ok(page(&listed, items))
}

/// The bare SPIFFE bundle of a trust domain (no authentication).
#[utoipa::path(get, path = "/v1/trust-domains/{td}/bundle", tag = "trust",
    params(("td" = String, Path, description = "Trust domain")),
    responses((status = 200, description = "SPIFFE bundle (JWKS with spiffe_sequence)", content_type = "application/json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(super) async fn get_bundle(
    State(s): State<AppState>,
    Path(td): Path<String>,
) -> Result<Response, ApiError> {
    let td: TrustDomainName = parse_param("td", &td)?;
    let cat = &s.0.catalog;
    let stored = cat
        .get(&cat.keys().bundle(&td))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("bundle of trust domain {td}")))?;
    let Resource::TrustBundle(b) = stored.resource else {
        return Err(ApiError::internal(&"stored bundle has the wrong kind"));
    };
    let mut r = (StatusCode::OK, b.spec.bundle.to_json()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag(stored.revision)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    Ok(r)
}

async fn cluster(cat: &Catalog, id: &ClusterId) -> Result<Option<Cluster>, ApiError> {
    Ok(cat
        .get(&cat.keys().cluster(id))
        .await?
        .and_then(|s| match s.resource {
            Resource::Cluster(c) => Some(c),
            _ => None,
        }))
}

/// Publish the bundle of a trust domain: a TrustBundle resource, or the bare
/// SPIFFE bundle (the owner is then the caller's cluster). Only the cluster
/// whose `spec.trustDomain` is `td` (or an admin) may publish; the
/// `spiffe_sequence` must grow.
#[utoipa::path(put, path = "/v1/trust-domains/{td}/bundle", tag = "trust",
    params(("td" = String, Path, description = "Trust domain"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    request_body = TrustBundle,
    responses((status = 200, body = TrustBundle), (status = 201, body = TrustBundle),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn put_bundle(
    State(s): State<AppState>,
    caller: Caller,
    Path(td): Path<String>,
    pre: Preconditions,
    StrictJson(body): StrictJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let td: TrustDomainName = parse_param("td", &td)?;
    let cat = &s.0.catalog;
    // The clusters of the caller that own this trust domain.
    let mut owners = Vec::new();
    for id in caller.0.clusters() {
        let Ok(id) = ClusterId::new(id) else { continue };
        if let Some(c) = cluster(cat, &id).await?
            && c.spec.trust_domain == td
        {
            owners.push(id);
        }
    }
    if !caller.0.is_admin() && owners.is_empty() {
        return Err(ApiError::forbidden(format!(
            "only the cluster whose spec.trustDomain is {td:?} (or an admin) may publish its bundle"
        )));
    }
    let bundle: TrustBundle = if body.get("kind").is_none() && body.get("keys").is_some() {
        let raw = serde_json::to_vec(&body).map_err(|e| ApiError::internal(&e))?;
        let b = causeway_trust::Bundle::parse(&raw)
            .map_err(|e| ApiError::invalid("keys", e.to_string()))?;
        let owner = owners.first().cloned().ok_or_else(|| {
            ApiError::invalid(
                "kind",
                "an admin must send a TrustBundle resource naming spec.ownerCluster",
            )
        })?;
        TrustBundle::new(td.clone(), owner, b)
    } else {
        decode_body(body)?
    };
    same("metadata.name", bundle.trust_domain(), &td)?;
    let owner = &bundle.spec.owner_cluster;
    if !caller.0.is_admin() && !owners.contains(owner) {
        return Err(ApiError::forbidden(format!(
            "token may not publish for cluster {owner:?}"
        )));
    }
    match cluster(cat, owner).await? {
        Some(c) if c.spec.trust_domain == td => {}
        Some(c) => {
            return Err(ApiError::invalid(
                "spec.ownerCluster",
                format!(
                    "cluster {owner:?} has trust domain {:?}, not {td:?}",
                    c.spec.trust_domain.as_str()
                ),
            ));
        }
        None => {
            return Err(ApiError::invalid(
                "spec.ownerCluster",
                format!("cluster {owner:?} is not registered"),
            ));
        }
    }
    let key = cat.keys().bundle(&td);
    let current = cat.get(&key).await?;
    // A member may replace only a bundle it owns (SECURITY-FINDINGS.md F1).
    if !caller.0.is_admin()
        && let Some(cur) = &current
        && let Resource::TrustBundle(old) = &cur.resource
        && !owners.contains(&old.spec.owner_cluster)
    {
        return Err(ApiError::forbidden(format!(
            "the bundle of {td} is owned by cluster {:?}",
            old.spec.owner_cluster.as_str()
        )));
    }
    // Compare-and-swap on what the sequence was checked against.
    let pre = match (pre, &current) {
        (Preconditions::None, Some(cur)) => Preconditions::Revision(cur.revision),
        (Preconditions::None, None) => Preconditions::MustNotExist,
        (p, _) => p,
    };
    if let Some(cur) = current
        && let Resource::TrustBundle(old) = &cur.resource
        && bundle.sequence() <= old.sequence()
    {
        {
            if bundle.spec == old.spec {
                return Ok(put_response(&cur, false, &cur.resource));
            }
            return Err(ApiError::conflict(
                "spec.bundle.spiffe_sequence",
                format!(
                    "spiffe_sequence must grow: stored {}, got {}",
                    old.sequence(),
                    bundle.sequence()
                ),
            ));
        }
    }
    let (stored, created) = cat.write(&key, Resource::TrustBundle(bundle), pre).await?;
    Ok(put_response(&stored, created, &stored.resource))
}
