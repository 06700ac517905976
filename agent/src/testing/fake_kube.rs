//! An HTTP fake of the Kubernetes API server for the agent's controllers:
//! the real wire protocol (JSON objects with `metadata.resourceVersion`,
//! list with `labelSelector`, `?watch=true` streaming watch events resumable
//! by resourceVersion, create/replace/merge-patch/delete with 404/409
//! semantics, and the status subresource) for the resources the agent uses.
//! kube's `Client` talks to it over loopback HTTP with no auth.
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
    calls: Arc<Mutex<Vec<String>>>,
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

impl State {
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
        self.calls.lock().unwrap().push(format!(
            "{method} {}{}",
            t.plural,
            if t.status { "/status" } else { "" }
        ));
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
                let mut next = current.clone();
                if m == Method::PUT {
                    if let Some(rv) = input["metadata"]["resourceVersion"].as_str()
                        && Some(rv) != current["metadata"]["resourceVersion"].as_str()
                    {
                        return status_error(
                            409,
                            "Conflict",
                            format!(
                                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified",
                                t.plural
                            ),
                        );
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
                inner.rv += 1;
                let rv = inner.rv;
                next["apiVersion"] = json!(t.api_version);
                next["kind"] = json!(kind);
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
        self.calls
            .lock()
            .unwrap()
            .push(format!("WATCH {}", t.plural));
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
        let live = futures::stream::unfold((rx, matches), move |(mut rx, m)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.rv > last && m(&e) => {
                        let line = json!({"type": e.kind, "object": e.object});
                        return Some((
                            Ok::<Bytes, Infallible>(Bytes::from(format!("{line}\n"))),
                            (rx, m),
                        ));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        use futures::StreamExt as _;
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from_stream(first.chain(live)))
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
            calls: Arc::new(Mutex::new(Vec::new())),
        };
        let s = state.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let s = s.clone();
            async move {
                let q = query(&uri);
                let watching = matches!(q.get("watch").map(String::as_str), Some("true" | "1"));
                if method == Method::GET && watching {
                    s.watch(&uri)
                } else {
                    s.handle(&method, &uri, &body)
                }
            }
        });
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

    /// Every request seen, as `METHOD plural[/status]` (and `WATCH plural`).
    pub fn calls(&self) -> Vec<String> {
        self.state.calls.lock().unwrap().clone()
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
