//! `PATCH` with an RFC 7396 JSON merge patch
//! (`Content-Type: application/merge-patch+json`) for clusters, exports and
//! policies.
//!
//! The patch is merged into the stored resource and the result is written
//! by the resource's own `PUT` handler: the same validation, authorization
//! (ExportPolicy, trust-domain claims, admin-only policies, ...) and
//! problem documents as a `PUT` of the whole resource. `If-Match: "<rev>"`
//! (or `metadata.resourceVersion` in the patch, 409 as for a `PUT`) makes
//! it conditional (412 when the resource moved on); without either the
//! server patches the latest revision, retrying when a concurrent write
//! wins the compare-and-swap. A patch that changes nothing writes nothing:
//! the resource and its revision are answered as a `GET` would.
//! Trust bundles are not patchable (their `spiffe_sequence` must grow with
//! every change: `PUT` the new bundle).

use std::future::Future;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::{Caller, clusters, exports, parse_param, policies};
use crate::server::AppState;
use crate::server::catalog::{check, decode_stored};
use crate::server::error::ApiError;
use crate::server::extract::{MergePatch, Path, Preconditions, StrictJson};
use causeway_api::model::{ClusterId, Namespace, PolicyKind, PolicyName, ServiceName};
use causeway_api::wire::Problem;

/// How often a patch without `If-Match` is re-applied after losing a race.
const ATTEMPTS: usize = 5;

/// The resource a patch applies to.
struct Target<'a> {
    /// Store key.
    key: String,
    /// Name for a 404 (`cluster eu-1`).
    what: String,
    /// The write permission the `PUT` would require, checked before a no-op
    /// answer (the `PUT` handler checks it, and more, for real writes).
    authorize: &'a (dyn Fn(&Caller) -> Result<(), ApiError> + Sync),
}

/// Merges `patch` into the stored resource and hands the result to `put`;
/// answers `get` when the patch changes nothing.
async fn merge_patch<P, PF, G, GF>(
    s: &AppState,
    caller: &Caller,
    target: Target<'_>,
    pre: Preconditions,
    patch: &Value,
    put: P,
    get: G,
) -> Result<Response, ApiError>
where
    P: Fn(Preconditions, Value) -> PF,
    PF: Future<Output = Result<Response, ApiError>>,
    G: FnOnce() -> GF,
    GF: Future<Output = Result<Response, ApiError>>,
{
    caller.require_read()?;
    let cat = &s.0.catalog;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let raw = cat
            .get_raw(&target.key)
            .await?
            .ok_or_else(|| ApiError::not_found(target.what.clone()))?;
        let stored = decode_stored(&raw)?;
        let original =
            serde_json::to_value(&stored.resource).map_err(|e| ApiError::internal(&e))?;
        let mut merged = original.clone();
        json_patch::merge(&mut merged, patch);
        if merged == original {
            (target.authorize)(caller)?;
            check(pre, Some(&raw))?;
            return get().await;
        }
        // The write must land on the revision the patch was merged into.
        // A `metadata.resourceVersion` in the patch is the client's own
        // precondition: the PUT compares it (409 when it is not current).
        let names_revision = patch
            .pointer("/metadata/resourceVersion")
            .is_some_and(|v| !v.is_null());
        let retry = pre == Preconditions::None && !names_revision;
        let write_pre = if retry {
            Preconditions::Revision(stored.revision)
        } else {
            pre
        };
        match put(write_pre, merged).await {
            Err(e)
                if retry && e.status() == StatusCode::PRECONDITION_FAILED && attempt < ATTEMPTS =>
            {
                continue;
            }
            r => return r,
        }
    }
}

/// Merge-patch a cluster.
#[utoipa::path(patch, path = "/v1/clusters/{cluster}", tag = "clusters",
    params(("cluster" = String, Path, description = "Cluster id"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "RFC 7396 merge patch of the Cluster; `null` removes a member"),
    responses((status = 200, body = causeway_api::model::Cluster, description = "Patched (or unchanged)"),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json"),
              (status = 415, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn patch_cluster(
    State(s): State<AppState>,
    caller: Caller,
    Path(cluster): Path<String>,
    pre: Preconditions,
    MergePatch(patch): MergePatch,
) -> Result<Response, ApiError> {
    let id: ClusterId = parse_param("cluster", &cluster)?;
    let target = Target {
        key: s.0.catalog.keys().cluster(&id),
        what: format!("cluster {id}"),
        authorize: &|c: &Caller| c.require_cluster(&id),
    };
    merge_patch(
        &s,
        &caller,
        target,
        pre,
        &patch,
        |pre, body| {
            clusters::put_cluster(
                State(s.clone()),
                caller.clone(),
                Path(cluster.clone()),
                pre,
                StrictJson(body),
            )
        },
        || clusters::get_cluster(State(s.clone()), caller.clone(), Path(cluster.clone())),
    )
    .await
}

/// Merge-patch an export.
#[utoipa::path(patch, path = "/v1/clusters/{cluster}/exports/{ns}/{name}", tag = "exports",
    params(("cluster" = String, Path, description = "Cluster id"), ("ns" = String, Path, description = "Namespace"),
           ("name" = String, Path, description = "Service name"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "RFC 7396 merge patch of the ServiceExport; arrays (`ports`, `endpoints`) are replaced whole"),
    responses((status = 200, body = causeway_api::model::ServiceExport, description = "Patched (or unchanged)"),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json"),
              (status = 415, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn patch_export(
    State(s): State<AppState>,
    caller: Caller,
    Path((cluster, ns, name)): Path<(String, String, String)>,
    pre: Preconditions,
    MergePatch(patch): MergePatch,
) -> Result<Response, ApiError> {
    let c: ClusterId = parse_param("cluster", &cluster)?;
    let n: Namespace = parse_param("namespace", &ns)?;
    let sn: ServiceName = parse_param("name", &name)?;
    let target = Target {
        key: s.0.catalog.keys().export(&n, &sn, &c),
        what: format!("export {ns}/{name} of cluster {cluster}"),
        authorize: &|caller: &Caller| caller.require_cluster(&c),
    };
    let path = || Path((cluster.clone(), ns.clone(), name.clone()));
    merge_patch(
        &s,
        &caller,
        target,
        pre,
        &patch,
        |pre, body| {
            exports::put_export(
                State(s.clone()),
                caller.clone(),
                path(),
                pre,
                StrictJson(body),
            )
        },
        || exports::get_export(State(s.clone()), caller.clone(), path()),
    )
    .await
}

/// Merge-patch a policy (admin).
#[utoipa::path(patch, path = "/v1/policies/{kind}/{name}", tag = "policies",
    params(("kind" = String, Path, description = "residency | traffic | access | export"),
           ("name" = String, Path, description = "Policy name"),
           ("If-Match" = Option<String>, Header, description = "Expected resourceVersion, quoted")),
    request_body(content = Object, content_type = "application/merge-patch+json",
        description = "RFC 7396 merge patch of the policy"),
    responses((status = 200, body = causeway_api::model::Resource, description = "Patched (or unchanged)"),
              (status = 400, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json"),
              (status = 415, body = Problem, content_type = "application/problem+json")),
    security(("bearer" = [])))]
pub(super) async fn patch_policy(
    State(s): State<AppState>,
    caller: Caller,
    Path((kind, name)): Path<(String, String)>,
    pre: Preconditions,
    MergePatch(patch): MergePatch,
) -> Result<Response, ApiError> {
    let k: PolicyKind = parse_param("kind", &kind)?;
    let pname: PolicyName = parse_param("name", &name)?;
    let target = Target {
        key: s.0.catalog.keys().policy(k, &pname),
        what: format!("{} {pname}", k.kind_name()),
        authorize: &|c: &Caller| c.require_admin("write policies"),
    };
    let path = || Path((kind.clone(), name.clone()));
    merge_patch(
        &s,
        &caller,
        target,
        pre,
        &patch,
        |pre, body| {
            policies::put_policy(
                State(s.clone()),
                caller.clone(),
                path(),
                pre,
                StrictJson(body),
            )
        },
        || policies::get_policy(State(s.clone()), caller.clone(), path()),
    )
    .await
}
