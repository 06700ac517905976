//! An HTTP fake of the Kubernetes API server for the agent's controllers:
//! the real wire protocol (JSON objects with `metadata.resourceVersion`,
//! list with `labelSelector`, `?watch=true` streaming watch events resumable
//! by resourceVersion, create/replace/merge-patch/delete with 404/409
//! semantics, and the status subresource) for the resources the agent uses.
//! kube's `Client` talks to it over loopback HTTP with no auth.
//!
//! It is as strict as the real one where the agent could get it wrong:
//! custom resources are pruned and validated with the structural schema of
//! the CRDs the chart installs (`charts/causeway-crds`), built-in objects
//! are pruned to what `k8s-openapi` knows (what the API server's decoding
//! keeps), `metadata.resourceVersion` in a replace or a patch is a
//! precondition (409 on conflict), the status subresource changes nothing
//! but `status` and the main resource never changes `status`, and every
//! request is recorded (verb, group, resource, namespace, `User-Agent`,
//! bearer token) so tests can compare what the agent did with the RBAC the
//! chart grants and tell replicas apart. Watches asked for bookmarks get a
//! BOOKMARK every 500 ms with the resourceVersion the stream has reached.
//!
//! Used by the agent's tests and the end-to-end scenarios (one per
//! simulated cluster); never part of a release build (feature `testing`).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err
)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::broadcast;

#[derive(Clone, Debug)]
struct Event {
    rv: u64,
    resource: String,
    namespace: String,
    kind: &'static str,
    object: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    uid: u64,
    /// (resource, namespace, name) -> object; resource = `group/version/plural`.
    objects: BTreeMap<(String, String, String), Value>,
    log: Vec<Event>,
}

#[derive(Clone)]
struct State {
    inner: Arc<Mutex<Inner>>,
    tx: broadcast::Sender<Event>,
    requests: Arc<Mutex<Vec<Request>>>,
    schemas: Arc<BTreeMap<String, Value>>,
}

/// One request the fake answered, in Kubernetes authorization terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `get`, `list`, `watch`, `create`, `update`, `patch` or `delete`.
    pub verb: &'static str,
    /// API group (`""` for the core group).
    pub group: String,
    /// Plural resource, with `/status` for the status subresource.
    pub resource: String,
    /// Namespace of a namespaced request.
    pub namespace: Option<String>,
    /// Object name, when the request names one.
    pub name: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// The bearer token the client sent (which replica, in tests), or "".
    pub user: String,
    /// The HTTP status answered.
    pub code: u16,
}

/// A running fake API server.
pub struct FakeKube {
    pub addr: SocketAddr,
    state: State,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn kind_of(plural: &str) -> &'static str {
    match plural {
        "services" => "Service",
        "endpointslices" => "EndpointSlice",
        "serviceexports" => "ServiceExport",
        "serviceimports" => "ServiceImport",
        "clusterproperties" => "ClusterProperty",
        "namespaces" => "Namespace",
        "leases" => "Lease",
        _ => "Unknown",
    }
}

fn has_status_subresource(plural: &str) -> bool {
    matches!(plural, "serviceexports" | "serviceimports" | "services")
}

fn status_error(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn ok(code: u16, v: &Value) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(v.to_string()))
        .unwrap()
}

/// The service IP allocator: a `ClusterIP` Service created without
/// `clusterIP` gets one from 10.96.0.0/16 (`None` stays headless).
fn allocate_cluster_ip(obj: &mut Value, n: u64) {
    let spec = &mut obj["spec"];
    if !spec.is_object() {
        *spec = json!({});
    }
    let type_ = spec["type"].as_str().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return;
    }
    if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
        let ip = format!("10.96.{}.{}", (n / 250) % 250, 1 + n % 250);
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
    }
    if spec.get("type").is_none() {
        spec["type"] = json!("ClusterIP");
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().unwrap();
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn labels_match(obj: &Value, selector: Option<&str>) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    let labels = &obj["metadata"]["labels"];
    sel.split(',').all(|term| {
        if let Some((k, v)) = term.split_once("!=") {
            labels[k].as_str() != Some(v)
        } else if let Some((k, v)) = term.split_once('=') {
            let v = v.trim_start_matches('=');
            labels[k].as_str() == Some(v)
        } else if let Some(k) = term.strip_prefix('!') {
            labels.get(k).is_none()
        } else {
            labels.get(term).is_some()
        }
    })
}

struct Target {
    group: String,
    api_version: String,
    resource: String,
    plural: String,
    namespace: Option<String>,
    name: Option<String>,
    status: bool,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (api_version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ((*v).to_owned(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        _ => (None, rest),
    };
    let (plural, name, status) = match rest {
        [p] => (*p, None, false),
        [p, n] => (*p, Some((*n).to_owned()), false),
        [p, n, "status"] => (*p, Some((*n).to_owned()), true),
        _ => return None,
    };
    Some(Target {
        group: api_version
            .split_once('/')
            .map(|(g, _)| g.to_owned())
            .unwrap_or_default(),
        resource: format!("{api_version}/{plural}"),
        api_version,
        plural: plural.to_owned(),
        namespace,
        name,
        status,
    })
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .map(|q| {
            q.split('&')
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_owned(), urlencoding_decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn urlencoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let h = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match h.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The CRDs the chart installs, with the Helm template lines removed.
const CHART_CRDS: [&str; 3] = [
    include_str!(
        "../../../charts/causeway-crds/templates/serviceexports.multicluster.x-k8s.io.yaml"
    ),
    include_str!(
        "../../../charts/causeway-crds/templates/serviceimports.multicluster.x-k8s.io.yaml"
    ),
    include_str!("../../../charts/causeway-crds/templates/clusterproperties.about.k8s.io.yaml"),
];

/// `group/version/plural` -> `openAPIV3Schema` of every served version of
/// the chart's CRDs.
fn chart_schemas() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for text in CHART_CRDS {
        let plain: String = text
            .lines()
            .filter(|l| !l.contains("{{"))
            .map(|l| format!("{l}\n"))
            .collect();
        let crd: Value = serde_norway::from_str(&plain).expect("chart CRD parses");
        let spec = &crd["spec"];
        let (group, plural) = (
            spec["group"].as_str().unwrap(),
            spec["names"]["plural"].as_str().unwrap(),
        );
        for v in spec["versions"].as_array().unwrap() {
            if v["served"] == json!(true) {
                out.insert(
                    format!("{group}/{}/{plural}", v["name"].as_str().unwrap()),
                    v["schema"]["openAPIV3Schema"].clone(),
                );
            }
        }
    }
    out
}

fn type_ok(schema: &Value, v: &Value) -> bool {
    if schema["x-kubernetes-int-or-string"] == json!(true) {
        return v.is_i64() || v.is_u64() || v.is_string();
    }
    match schema["type"].as_str() {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    }
}

/// Structural-schema pruning and validation of a custom resource, as the
/// API server does it: unknown fields are dropped (unless
/// `x-kubernetes-preserve-unknown-fields`), nulls of non-nullable fields are
/// dropped, and wrong types, values outside an `enum`, missing `required`
/// fields and duplicate keys of `x-kubernetes-list-type: map` lists are
/// reported with their field path.
fn prune_and_validate(schema: &Value, v: &mut Value, path: &str, errors: &mut Vec<String>) {
    if !type_ok(schema, v) {
        errors.push(format!(
            "{path}: Invalid value: {}: {path} in body must be of type {}",
            v,
            schema["type"].as_str().unwrap_or("?")
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        errors.push(format!(
            "{path}: Unsupported value: {v}: supported values: {}",
            allowed
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match v {
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == json!(true);
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let child = props.and_then(|p| p.get(&k)).or(additional);
                let at = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                // The root's apiVersion, kind and metadata are the API
                // server's own business.
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match child {
                    Some(cs) => {
                        if map[&k].is_null() && cs["nullable"] != json!(true) {
                            map.remove(&k);
                            continue;
                        }
                        prune_and_validate(cs, map.get_mut(&k).unwrap(), &at, errors);
                    }
                    None if preserve => {}
                    None => {
                        map.remove(&k);
                    }
                }
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap_or_default();
                if !map.contains_key(r) {
                    let at = if path.is_empty() {
                        r.to_owned()
                    } else {
                        format!("{path}.{r}")
                    };
                    errors.push(format!("{at}: Required value"));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_and_validate(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
            if schema["x-kubernetes-list-type"] == json!("map") {
                let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                for (i, item) in items.iter().enumerate() {
                    let key: Vec<String> = keys.iter().map(|k| item[*k].to_string()).collect();
                    if !seen.insert(key.clone()) {
                        errors.push(format!("{path}[{i}]: Duplicate value: {}", key.join(",")));
                    }
                }
            }
        }
        _ => {}
    }
}

/// A built-in object pruned to the fields `k8s-openapi`'s type has (the API
/// server's decoding drops the rest); `Err` when it does not decode.
fn prune_builtin<K>(v: &Value) -> Result<Value, String>
where
    K: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: K = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

impl State {
    /// Prunes and validates an object about to be stored (create, replace
    /// or patch result).
    fn admit(&self, t: &Target, obj: &mut Value) -> Result<(), Response> {
        use k8s_openapi::api::coordination::v1::Lease;
        use k8s_openapi::api::core::v1::{Namespace, Service};
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        let kind = kind_of(&t.plural);
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let invalid = |errors: Vec<String>| {
            status_error(
                422,
                "Invalid",
                format!(
                    "{kind}.{} \"{name}\" is invalid: {}",
                    t.group,
                    errors.join(", ")
                ),
            )
        };
        if let Some(schema) = self.schemas.get(&t.resource) {
            let mut errors = Vec::new();
            prune_and_validate(schema, obj, "", &mut errors);
            if !errors.is_empty() {
                return Err(invalid(errors));
            }
            return Ok(());
        }
        let pruned = match t.plural.as_str() {
            "services" => prune_builtin::<Service>(obj),
            "endpointslices" => prune_builtin::<EndpointSlice>(obj),
            "leases" => prune_builtin::<Lease>(obj),
            "namespaces" => prune_builtin::<Namespace>(obj),
            _ => Ok(obj.clone()),
        };
        match pruned {
            Ok(p) => {
                *obj = p;
                Ok(())
            }
            Err(e) => Err(invalid(vec![e])),
        }
    }

    fn record(
        &self,
        inner: &mut Inner,
        resource: &str,
        namespace: &str,
        kind: &'static str,
        object: Value,
    ) {
        let ev = Event {
            rv: inner.rv,
            resource: resource.to_owned(),
            namespace: namespace.to_owned(),
            kind,
            object,
        };
        inner.log.push(ev.clone());
        let _ = self.tx.send(ev);
    }

    fn handle(&self, method: &Method, uri: &Uri, body: &[u8]) -> Response {
        let Some(t) = parse_path(uri.path()) else {
            return status_error(404, "NotFound", format!("no route {}", uri.path()));
        };
        let q = query(uri);
        let kind = kind_of(&t.plural);
        let ns = t.namespace.clone().unwrap_or_default();
        let body_json = || -> Result<Value, Response> {
            serde_json::from_slice(body).map_err(|e| status_error(400, "BadRequest", e.to_string()))
        };
        let mut inner = self.inner.lock().unwrap();
        match (method.clone(), &t.name) {
            (Method::GET, None) => {
                let sel = q.get("labelSelector").map(String::as_str);
                let items: Vec<Value> = inner
                    .objects
                    .iter()
                    .filter(|((r, n, _), o)| {
                        r == &t.resource
                            && (t.namespace.is_none() || n == &ns)
                            && labels_match(o, sel)
                    })
                    .map(|(_, o)| o.clone())
                    .collect();
                ok(
                    200,
                    &json!({
                        "apiVersion": t.api_version, "kind": format!("{kind}List"),
                        "metadata": {"resourceVersion": inner.rv.to_string()},
                        "items": items
                    }),
                )
            }
            (Method::GET, Some(name)) => {
                match inner
                    .objects
                    .get(&(t.resource.clone(), ns.clone(), name.clone()))
                {
                    Some(o) => ok(200, o),
                    None => status_error(
                        404,
                        "NotFound",
                        format!("{} \"{name}\" not found", t.plural),
                    ),
                }
            }
            (Method::POST, None) => {
                let mut obj = match body_json() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                let Some(name) = obj["metadata"]["name"].as_str().map(str::to_owned) else {
                    return status_error(422, "Invalid", "metadata.name is required".into());
                };
                if let Err(r) = self.admit(&t, &mut obj) {
                    return r;
                }
                let key = (t.resource.clone(), ns.clone(), name.clone());
                if inner.objects.contains_key(&key) {
                    return status_error(
                        409,
                        "AlreadyExists",
                        format!("{} \"{name}\" already exists", t.plural),
                    );
                }
                inner.rv += 1;
                inner.uid += 1;
                let (rv, uid) = (inner.rv, inner.uid);
                obj["apiVersion"] = json!(t.api_version);
                obj["kind"] = json!(kind);
                let meta = obj["metadata"].as_object_mut().unwrap();
                if t.namespace.is_some() {
                    meta.insert("namespace".into(), json!(ns));
                }
                meta.insert("resourceVersion".into(), json!(rv.to_string()));
                meta.insert("uid".into(), json!(format!("uid-{uid}")));
                meta.insert("generation".into(), json!(1));
                meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
                if has_status_subresource(&t.plural) {
                    obj.as_object_mut().unwrap().remove("status");
                }
                if t.plural == "services" {
                    allocate_cluster_ip(&mut obj, uid);
                }
                inner.objects.insert(key, obj.clone());
                self.record(&mut inner, &t.resource, &ns, "ADDED", obj.clone());
                ok(201, &obj)
            }
            (m @ (Method::PUT | Method::PATCH), Some(name)) => {
                let key = (t.resource.clone(), ns.clone(), name.clone());
                let Some(current) = inner.objects.get(&key).cloned() else {
                    return status_error(
                        404,
                        "NotFound",
                        format!("{} \"{name}\" not found", t.plural),
                    );
                };
                let input = match body_json() {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                let conflict = || {
                    status_error(
                        409,
                        "Conflict",
                        format!(
                            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                            t.plural
                        ),
                    )
                };
                if m == Method::PATCH
                    && let Some(rv) = input["metadata"]["resourceVersion"].as_str()
                    && Some(rv) != current["metadata"]["resourceVersion"].as_str()
                {
                    return conflict();
                }
                let mut next = current.clone();
                if m == Method::PUT {
                    if let Some(rv) = input["metadata"]["resourceVersion"].as_str()
                        && Some(rv) != current["metadata"]["resourceVersion"].as_str()
                    {
                        return conflict();
                    }
                    if t.status {
                        next["status"] = input["status"].clone();
                    } else {
                        next = input;
                        next["metadata"] = current["metadata"].clone();
                        // Labels and annotations come from the request.
                        let req_meta =
                            serde_json::from_slice::<Value>(body).unwrap()["metadata"].clone();
                        for f in ["labels", "annotations"] {
                            match req_meta.get(f) {
                                Some(v) => next["metadata"][f] = v.clone(),
                                None => {
                                    next["metadata"].as_object_mut().unwrap().remove(f);
                                }
                            }
                        }
                        if has_status_subresource(&t.plural) {
                            match current.get("status") {
                                Some(s) => next["status"] = s.clone(),
                                None => {
                                    next.as_object_mut().unwrap().remove("status");
                                }
                            }
                        }
                    }
                } else {
                    if t.status {
                        if let Some(s) = input.get("status") {
                            merge_patch(&mut next["status"], s);
                        }
                    } else {
                        let mut p = input.clone();
                        if has_status_subresource(&t.plural) {
                            p.as_object_mut().map(|o| o.remove("status"));
                        }
                        p.as_object_mut().map(|o| {
                            o.remove("apiVersion");
                            o.remove("kind")
                        });
                        merge_patch(&mut next, &p);
                    }
                }
                next["apiVersion"] = json!(t.api_version);
                next["kind"] = json!(kind);
                if let Err(r) = self.admit(&t, &mut next) {
                    return r;
                }
                if next == current {
                    // A no-op write keeps the resourceVersion and sends no
                    // watch event, as the API server does.
                    return ok(200, &current);
                }
                inner.rv += 1;
                let rv = inner.rv;
                next["metadata"]["resourceVersion"] = json!(rv.to_string());
                if !t.status && next.get("spec") != current.get("spec") {
                    let g = current["metadata"]["generation"].as_i64().unwrap_or(1);
                    next["metadata"]["generation"] = json!(g + 1);
                }
                inner.objects.insert(key, next.clone());
                self.record(&mut inner, &t.resource, &ns, "MODIFIED", next.clone());
                ok(200, &next)
            }
            (Method::DELETE, Some(name)) => {
                let key = (t.resource.clone(), ns.clone(), name.clone());
                let Some(mut obj) = inner.objects.remove(&key) else {
                    return status_error(
                        404,
                        "NotFound",
                        format!("{} \"{name}\" not found", t.plural),
                    );
                };
                inner.rv += 1;
                obj["metadata"]["resourceVersion"] = json!(inner.rv.to_string());
                self.record(&mut inner, &t.resource, &ns, "DELETED", obj.clone());
                ok(200, &obj)
            }
            _ => status_error(405, "MethodNotAllowed", format!("{method} not supported")),
        }
    }

    fn watch(&self, uri: &Uri) -> Response {
        let Some(t) = parse_path(uri.path()) else {
            return status_error(404, "NotFound", "no route".into());
        };
        let q = query(uri);
        let sel = q.get("labelSelector").cloned();
        let since: u64 = q
            .get("resourceVersion")
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let ns = t.namespace.clone();
        let inner = self.inner.lock().unwrap();
        let rx = self.tx.subscribe();
        let matches = {
            let resource = t.resource.clone();
            let ns = ns.clone();
            let sel = sel.clone();
            move |e: &Event| {
                e.resource == resource
                    && ns.as_ref().is_none_or(|n| n == &e.namespace)
                    && labels_match(&e.object, sel.as_deref())
            }
        };
        let initial: Vec<Value> = if since == 0 {
            inner
                .objects
                .iter()
                .filter(|((r, n, _), o)| {
                    r == &t.resource
                        && ns.as_ref().is_none_or(|x| x == n)
                        && labels_match(o, sel.as_deref())
                })
                .map(|(_, o)| json!({"type": "ADDED", "object": o}))
                .collect()
        } else {
            inner
                .log
                .iter()
                .filter(|e| e.rv > since && matches(e))
                .map(|e| json!({"type": e.kind, "object": e.object}))
                .collect()
        };
        let last = inner.rv;
        drop(inner);
        let first = futures::stream::iter(
            initial
                .into_iter()
                .map(|v| Ok::<Bytes, Infallible>(Bytes::from(format!("{v}\n")))),
        );
        // `allowWatchBookmarks=true`: a BOOKMARK with the current
        // resourceVersion every 500 ms, as the API server sends them (the
        // watcher resumes from it after a reconnect).
        // The newest resourceVersion this stream has passed (sent or
        // skipped): a bookmark never claims more than was delivered.
        let seen = Arc::new(std::sync::atomic::AtomicU64::new(last));
        let bookmarks = {
            let seen = seen.clone();
            let (api_version, kind) = (t.api_version.clone(), kind_of(&t.plural));
            let on = matches!(
                q.get("allowWatchBookmarks").map(String::as_str),
                Some("true" | "1")
            );
            futures::stream::unfold(on, move |on| {
                let (seen, api_version) = (seen.clone(), api_version.clone());
                async move {
                    if !on {
                        return std::future::pending().await;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    let rv = seen.load(std::sync::atomic::Ordering::SeqCst);
                    let line = json!({"type": "BOOKMARK", "object": {
                        "apiVersion": api_version, "kind": kind,
                        "metadata": {"resourceVersion": rv.to_string()}
                    }});
                    Some((
                        Ok::<Bytes, Infallible>(Bytes::from(format!("{line}\n"))),
                        on,
                    ))
                }
            })
        };
        let live = futures::stream::unfold((rx, matches), move |(mut rx, m)| {
            let seen = seen.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(e) if e.rv > last && m(&e) => {
                            seen.fetch_max(e.rv, std::sync::atomic::Ordering::SeqCst);
                            let line = json!({"type": e.kind, "object": e.object});
                            return Some((
                                Ok::<Bytes, Infallible>(Bytes::from(format!("{line}\n"))),
                                (rx, m),
                            ));
                        }
                        Ok(e) => {
                            seen.fetch_max(e.rv, std::sync::atomic::Ordering::SeqCst);
                            continue;
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        use futures::StreamExt as _;
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from_stream(
                first.chain(futures::stream::select(live, bookmarks)),
            ))
            .unwrap()
    }
}

impl FakeKube {
    /// Starts on a free loopback port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1".parse().unwrap()).await
    }

    /// Starts on a free port of `ip` (e.g. the host address that gateways
    /// in network namespaces reach).
    pub async fn start_on(ip: std::net::IpAddr) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let state = State {
            inner: Arc::new(Mutex::new(Inner::default())),
            tx,
            requests: Arc::new(Mutex::new(Vec::new())),
            schemas: Arc::new(chart_schemas()),
        };
        let s = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
                let s = s.clone();
                async move {
                    let q = query(&uri);
                    let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
                    let resp = if method == Method::GET && watching {
                        s.watch(&uri)
                    } else {
                        s.handle(&method, &uri, &body)
                    };
                    if let Some(t) = parse_path(uri.path()) {
                        let verb = match (&method, &t.name) {
                            (&Method::GET, _) if watching => "watch",
                            (&Method::GET, None) => "list",
                            (&Method::GET, Some(_)) => "get",
                            (&Method::POST, _) => "create",
                            (&Method::PUT, _) => "update",
                            (&Method::PATCH, _) => "patch",
                            (&Method::DELETE, None) => "deletecollection",
                            (&Method::DELETE, Some(_)) => "delete",
                            _ => "unknown",
                        };
                        s.requests.lock().unwrap().push(Request {
                            verb,
                            group: t.group.clone(),
                            resource: format!(
                                "{}{}",
                                t.plural,
                                if t.status { "/status" } else { "" }
                            ),
                            namespace: t.namespace.clone(),
                            name: t.name.clone(),
                            user_agent: headers
                                .get(axum::http::header::USER_AGENT)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned(),
                            user: headers
                                .get(axum::http::header::AUTHORIZATION)
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.strip_prefix("Bearer "))
                                .unwrap_or_default()
                                .to_owned(),
                            code: resp.status().as_u16(),
                        });
                    }
                    resp
                }
            },
        );
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// A kube client for this server (plain HTTP, no auth).
    pub fn client(&self) -> kube::Client {
        let url: axum::http::Uri = format!("http://{}", self.addr).parse().unwrap();
        let config = kube::Config::new(url);
        kube::Client::try_from(config).unwrap()
    }

    /// A kube client that identifies as the agent (its `User-Agent`), so
    /// its requests count in [`FakeKube::rbac_used`].
    pub fn agent_client(&self) -> kube::Client {
        let url: axum::http::Uri = format!("http://{}", self.addr).parse().unwrap();
        let mut config = kube::Config::new(url);
        config.headers.push((
            axum::http::header::USER_AGENT,
            axum::http::HeaderValue::from_static(crate::kubernetes::USER_AGENT),
        ));
        kube::Client::try_from(config).unwrap()
    }

    /// Like [`FakeKube::agent_client`], identified as `user` (a bearer
    /// token the fake records): one per replica.
    pub fn agent_client_as(&self, user: &str) -> kube::Client {
        let url: axum::http::Uri = format!("http://{}", self.addr).parse().unwrap();
        let mut config = kube::Config::new(url);
        config.headers.push((
            axum::http::header::USER_AGENT,
            axum::http::HeaderValue::from_static(crate::kubernetes::USER_AGENT),
        ));
        config.headers.push((
            axum::http::header::AUTHORIZATION,
            axum::http::HeaderValue::from_str(&format!("Bearer {user}")).unwrap(),
        ));
        kube::Client::try_from(config).unwrap()
    }

    /// Every request seen, as `METHOD plural[/status]` (and `WATCH plural`).
    pub fn calls(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| {
                let method = match r.verb {
                    "watch" => "WATCH",
                    "get" | "list" => "GET",
                    "create" => "POST",
                    "update" => "PUT",
                    "patch" => "PATCH",
                    _ => "DELETE",
                };
                format!("{method} {}", r.resource)
            })
            .collect()
    }

    /// Every request seen, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// The (api group, resource, verb) triples the agent's requests (those
    /// with its `User-Agent`) needed: what its RBAC must grant.
    pub fn rbac_used(&self) -> std::collections::BTreeSet<(String, String, String)> {
        self.requests()
            .into_iter()
            .filter(|r| r.user_agent == crate::kubernetes::USER_AGENT)
            .map(|r| (r.group, r.resource, r.verb.to_owned()))
            .collect()
    }

    /// A kubeconfig whose user sends `user` as its bearer token (recorded
    /// as [`Request::user`]): one per gateway replica.
    pub fn kubeconfig_as(&self, user: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user:\n    token: {user}\ncurrent-context: fake\n",
            addr = self.addr
        )
    }

    /// A kubeconfig file for this server (what an agent outside the cluster
    /// is given as `agent.kubernetes.kubeconfig`).
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\nusers:\n- name: fake\n  user: {{}}\ncurrent-context: fake\n",
            addr = self.addr
        )
    }
}

/// The chart's ClusterRole rules for the agent
/// (`charts/causeway/templates/_rbac.tpl`, `causeway.agent.rbacRules`) as
/// (api group, resource, verb): compare with [`FakeKube::rbac_used`].
pub fn chart_agent_rbac() -> std::collections::BTreeSet<(String, String, String)> {
    let text = include_str!("../../../charts/causeway/templates/_rbac.tpl");
    let yaml: String = text
        .lines()
        .skip_while(|l| !l.contains("define \"causeway.agent.rbacRules\""))
        .skip(1)
        .take_while(|l| !l.contains("{{- end"))
        .map(|l| format!("{l}\n"))
        .collect();
    let rules: Vec<Value> = serde_norway::from_str(&yaml).expect("_rbac.tpl rules parse");
    let mut out = std::collections::BTreeSet::new();
    for r in rules {
        for g in r["apiGroups"].as_array().unwrap() {
            for res in r["resources"].as_array().unwrap() {
                for v in r["verbs"].as_array().unwrap() {
                    out.insert((
                        g.as_str().unwrap().to_owned(),
                        res.as_str().unwrap().to_owned(),
                        v.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    out
}
