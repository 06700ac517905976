//! Abuse: hostile input on every endpoint of the OpenAPI document. Malformed,
//! deeply nested, oversized and over-long JSON, unknown fields, wrong types,
//! invalid names and wrong media types: every answer is a 4xx
//! problem+json (never a 5xx or a dropped connection), nothing is written,
//! and the server stays healthy.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::time::Instant;

use causeway_api::client::{Client, Precondition, Versioned};
use http::Method;
use http::header::CONTENT_TYPE;
use serde_json::{Value, json};
use support::*;

const CAP: usize = 64 * 1024;

/// A valid body for the PUT of a route template, given its parameters.
fn valid_body(template: &str, p: &Params) -> Option<Value> {
    Some(match template {
        "/v1/clusters/{cluster}" => cluster(&p.cluster, "eu-1.example.org", "r"),
        "/v1/clusters/{cluster}/exports/{ns}/{name}" => {
            export(&p.cluster, &p.ns, &p.name, 80, "TCP", "ClusterSetIP")
        }
        "/v1/trust-domains/{td}/bundle" => {
            serde_json::from_str(&causeway_trust::Bundle::new(2).to_json()).unwrap()
        }
        "/v1/policies/{kind}/{name}" => {
            json!({"apiVersion": "causeway.dev/v1", "kind": "ExportPolicy",
            "metadata": {"name": p.name}, "spec": {"namespaces": ["shop"], "clusters": ["eu-1"]}})
        }
        _ => return None,
    })
}

#[derive(Clone)]
struct Params {
    cluster: String,
    ns: String,
    name: String,
    td: String,
    kind: String,
}

impl Params {
    fn valid() -> Self {
        Self {
            cluster: "eu-1".into(),
            ns: "shop".into(),
            name: "cart".into(),
            td: "eu-1.example.org".into(),
            kind: "export".into(),
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{cluster}", &self.cluster)
            .replace("{ns}", &self.ns)
            .replace("{name}", &self.name)
            .replace("{td}", &self.td)
            .replace("{kind}", &self.kind)
    }
}

/// Path parameter values that are not valid names (percent-encoded where
/// needed so that they reach the router).
const BAD_NAMES: &[&str] = &[
    "UPPER",
    "under_score",
    "-lead",
    "trail-",
    "a..b",
    "..",
    "%2E%2E",
    "%00",
    "a%00b",
    "%2F",
    "sp%20ace",
    "%C3%A9t%C3%A9",
    "%F0%9F%92%A5",
    "a%0d%0aX-Injected:%201",
    "*",
    "$(id)",
    "'%20OR%201=1",
    "%25",
    "0000000000000000000000000000000000000000000000000000000000000000000",
];

fn nested(depth: usize) -> Vec<u8> {
    let mut v = vec![b'['; depth];
    v.extend(std::iter::repeat_n(b']', depth));
    v
}

fn hostile_bodies(valid: Option<&Value>) -> Vec<(String, Vec<u8>, &'static str)> {
    let j = "application/json";
    let mut out = vec![
        ("empty".to_owned(), Vec::new(), j),
        (
            "truncated".into(),
            br#"{"apiVersion": "causeway.dev/v1", "kind": "#.to_vec(),
            j,
        ),
        ("not json".into(), b"<xml/>".to_vec(), j),
        ("nul bytes".into(), b"{\"a\0\": 1}".to_vec(), j),
        (
            "invalid utf-8".into(),
            b"{\"kind\": \"\xff\xfe\"}".to_vec(),
            j,
        ),
        (
            "lone surrogate".into(),
            br#"{"kind": "\ud800"}"#.to_vec(),
            j,
        ),
        ("100k [".into(), nested(100_000), j),
        (
            "100k {".into(),
            {
                let mut v = b"{\"a\":".repeat(100_000);
                v.extend(b"1");
                v.extend(std::iter::repeat_n(b'}', 100_000));
                v
            },
            j,
        ),
        (
            "oversized".into(),
            {
                let mut v = br#"{"pad": ""#.to_vec();
                v.extend(std::iter::repeat_n(b'a', CAP * 4));
                v.extend(br#""}"#);
                v
            },
            j,
        ),
        ("array".into(), b"[]".to_vec(), j),
        ("scalar".into(), b"42".to_vec(), j),
        ("null".into(), b"null".to_vec(), j),
        (
            "huge number".into(),
            format!("{{\"n\": 1{}}}", "0".repeat(5000)).into_bytes(),
            j,
        ),
        (
            "wrong media type".into(),
            valid
                .map(|v| serde_json::to_vec(v).unwrap())
                .unwrap_or_default(),
            "text/plain",
        ),
        (
            "form".into(),
            b"kind=Cluster".to_vec(),
            "application/x-www-form-urlencoded",
        ),
    ];
    if let Some(v) = valid {
        let mut add =
            |what: &str, v: Value| out.push((what.to_owned(), serde_json::to_vec(&v).unwrap(), j));
        let mut u = v.clone();
        u["evil"] = json!(true);
        add("unknown top-level field", u);
        let mut u = v.clone();
        if u.get("spec").is_some() {
            u["spec"]["evil"] = json!({"x": 1});
            add("unknown spec field", u);
            let mut u = v.clone();
            u["spec"] = json!("string");
            add("spec of the wrong type", u);
        }
        let mut u = v.clone();
        if u.get("metadata").is_some() {
            u["metadata"]["name"] = json!("Bad_Name");
            add("invalid name in body", u);
            let mut u = v.clone();
            u["metadata"]["name"] = json!("a".repeat(300));
            add("over-long name in body", u);
            let mut u = v.clone();
            u["metadata"]["evil"] = json!(1);
            add("unknown metadata field", u);
        }
        let mut u = v.clone();
        u["kind"] = json!(12);
        add("kind of the wrong type", u);
        let mut u = v.clone();
        u["apiVersion"] = json!("causeway.dev/v0");
        add("wrong apiVersion", u);
        if let Some(keys) = v.get("keys") {
            let mut u = v.clone();
            u["keys"] = json!([{"use": "x509-svid", "kty": "EC", "x5c": ["!!!"]}]);
            add("bad bundle key", u);
            let _ = keys;
            let mut u = v.clone();
            u["spiffe_sequence"] = json!(-1);
            add("negative sequence", u);
            let mut u = v.clone();
            u["spiffe_sequence"] = json!(1e300);
            add("float sequence", u);
        }
    }
    out
}

/// Every hostile request is answered within 10 s (a stream that never
/// ends or a stuck handler is a failure, not a hang).
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
}

/// One raw HTTP/1.1 request with exactly the given media type (the typed
/// client always adds its own).
async fn send(
    s: &TestServer,
    method: &str,
    path: &str,
    ct: &str,
    body: &[u8],
) -> (u16, http::HeaderMap, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        s.token(&["admin"]),
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413, or a handler that ignores the body) before
    // reading everything: write and read at the same time.
    let (mut rd, mut wr) = tcp.into_split();
    let body = body.to_vec();
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(&body).await;
        wr
    });
    let mut out = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), rd.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "{method} {path}: no complete response in 10 s ({} bytes)",
        out.len()
    );
    writer.abort();
    let end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {path}: no response ({} bytes)", out.len()));
    let text = String::from_utf8_lossy(&out[..end]).to_string();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = http::HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.append(
                http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
    }
    let mut rbody = out[end + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v == "chunked")
    {
        rbody = dechunk(&rbody);
    }
    (status, headers, rbody)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend(&b[i + 2..i + 2 + n]);
        b = &b[i + 4 + n..];
    }
    out
}

fn check(what: &str, status: u16, headers: &http::HeaderMap, body: &[u8]) {
    assert!(
        status < 500,
        "{what}: {status} {}",
        String::from_utf8_lossy(body)
    );
    if status >= 400 {
        assert_eq!(
            headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{what}: {status}"
        );
        let v: Value =
            serde_json::from_slice(body).unwrap_or_else(|_| panic!("{what}: problem is not json"));
        assert_eq!(v["status"], status, "{what}");
        // Internals do not leak.
        let text = String::from_utf8_lossy(body);
        for leak in ["panicked", "/root/", "src/", "etcd", "backtrace"] {
            assert!(!text.contains(leak), "{what}: leaks {leak:?}: {text}");
        }
    }
}

#[tokio::test]
async fn every_route_rejects_hostile_input_with_a_problem() {
    let t0 = Instant::now();
    let s = TestServer::start_with(memory_store(), |c| c.max_body_bytes = CAP).await;
    let admin = s.admin();
    let _: Versioned<Value> = admin
        .put(
            "/v1/clusters/eu-1",
            &cluster("eu-1", "eu-1.example.org", "r"),
            Precondition::None,
        )
        .await
        .unwrap();
    let doc: Value = admin
        .raw(Method::GET, "/v1/openapi.json", None, &[])
        .await
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 15, "openapi lists {} paths", paths.len());
    let token = s.token(&["admin"]);
    let c = Client::new(&s.base, Some(token)).unwrap();
    let mut requests = 0usize;
    let mut writes_tried = 0usize;
    for (template, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let m: Method = method.to_uppercase().parse().unwrap();
            if template == "/v1/watch" {
                // A stream: hostile query parameters only.
                for q in [
                    "since=-1",
                    "since=abc",
                    "since=99999999999999999999999",
                    "since=%00",
                    "since=1%00",
                ] {
                    let r = within(
                        &format!("{template}?{q}"),
                        c.raw(m.clone(), &format!("{template}?{q}"), None, &[]),
                    )
                    .await
                    .unwrap();
                    check(
                        &format!("{m} {template}?{q}"),
                        r.status.as_u16(),
                        &r.headers,
                        &r.body,
                    );
                    assert!(r.status.is_client_error(), "{q}: {}", r.status);
                    requests += 1;
                }
                continue;
            }
            let valid = valid_body(template, &Params::valid());
            let has_body = m == Method::PUT || m == Method::POST;
            // Hostile bodies at a valid path.
            if has_body {
                let rev = s.store.current_revision().await.unwrap();
                for (what, body, ct) in hostile_bodies(valid.as_ref()) {
                    let path = Params::valid().fill(template);
                    let (status, headers, rbody) = send(&s, m.as_str(), &path, ct, &body).await;
                    let label = format!("{m} {template} [{what}]");
                    check(&label, status, &headers, &rbody);
                    if template.ends_with("/heartbeat") {
                        continue; // takes no body
                    }
                    assert!((400..500).contains(&status), "{label}: {status}");
                    requests += 1;
                    writes_tried += 1;
                }
                if !template.ends_with("/heartbeat") {
                    assert_eq!(
                        s.store.current_revision().await.unwrap(),
                        rev,
                        "{m} {template}: hostile body wrote"
                    );
                }
            }
            // Invalid names in each path parameter, and over-long ones.
            let params: Vec<&str> = ["cluster", "ns", "name", "td", "kind"]
                .into_iter()
                .filter(|p| template.contains(&format!("{{{p}}}")))
                .collect();
            let long = "a".repeat(300);
            let long_td = format!("{}.example.org", "a.".repeat(200));
            for p in &params {
                for bad in BAD_NAMES
                    .iter()
                    .copied()
                    .chain([long.as_str(), long_td.as_str()])
                {
                    let mut ps = Params::valid();
                    match *p {
                        "cluster" => ps.cluster = bad.into(),
                        "ns" => ps.ns = bad.into(),
                        "name" => ps.name = bad.into(),
                        "td" => ps.td = bad.into(),
                        _ => ps.kind = bad.into(),
                    }
                    let path = ps.fill(template);
                    let body = valid_body(template, &ps)
                        .filter(|_| has_body)
                        .map(|v| serde_json::to_vec(&v).unwrap());
                    let rev = s.store.current_revision().await.unwrap();
                    let r = match within(&path, c.raw(m.clone(), &path, body, &[])).await {
                        Ok(r) => r,
                        // A path the HTTP client itself refuses to send.
                        Err(_) => continue,
                    };
                    let label = format!("{m} {path}");
                    check(&label, r.status.as_u16(), &r.headers, &r.body);
                    assert!(r.status.is_client_error(), "{label}: {}", r.status);
                    assert_eq!(
                        s.store.current_revision().await.unwrap(),
                        rev,
                        "{label} wrote"
                    );
                    requests += 1;
                }
            }
            // Hostile query strings on lists.
            if m == Method::GET && params.is_empty()
                || template.ends_with("/exports")
                || template.starts_with("/v1/policies/{kind}") && !template.ends_with("{name}")
            {
                for q in [
                    "limit=0",
                    "limit=-1",
                    "limit=99999999999999999999",
                    "limit=abc",
                    "continue=%00",
                    "continue=!!!",
                    "continue=L2V0Yy9wYXNzd2Q",
                    "unknown=1",
                    "limit=1&limit=2",
                ] {
                    let path = format!("{}?{q}", Params::valid().fill(template));
                    let r = within(&path, c.raw(m.clone(), &path, None, &[]))
                        .await
                        .unwrap();
                    check(&path, r.status.as_u16(), &r.headers, &r.body);
                    requests += 1;
                }
            }
        }
    }
    assert!(writes_tried > 50, "only {writes_tried} hostile writes");
    // Unknown routes and methods.
    for (m, p) in [
        (Method::PATCH, "/v1/clusters/eu-1"),
        (Method::GET, "/v1/../etc/passwd"),
        (Method::GET, "/v2/clusters"),
        (Method::TRACE, "/v1/clusters"),
    ] {
        let r = c.raw(m.clone(), p, None, &[]).await.unwrap();
        check(&format!("{m} {p}"), r.status.as_u16(), &r.headers, &r.body);
        assert!(r.status.is_client_error(), "{m} {p}: {}", r.status);
    }
    // Duplicate keys (finding F3): refused with 400 naming the key, since
    // parsers disagree on which one wins (RFC 8259); nothing is written.
    let before: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
    let text = serde_json::to_string(&cluster("eu-1", "eu-1.example.org", "r")).unwrap();
    let dup = text.replacen('{', r#"{"kind": "AccessPolicy", "#, 1);
    let (status, headers, body) = send(
        &s,
        "PUT",
        "/v1/clusters/eu-1",
        "application/json",
        dup.as_bytes(),
    )
    .await;
    check("duplicate kind", status, &headers, &body);
    assert_eq!(status, 400, "duplicate kind");
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["errors"][0]["field"], "kind", "{problem}");
    let after: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
    assert_eq!(
        after.revision, before.revision,
        "duplicate-key body was written"
    );
    assert_eq!(after.value["kind"], "Cluster");
    let r = c
        .raw(Method::GET, "/v1/policies/access", None, &[])
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap()["items"],
        json!([])
    );
    // Still healthy and still serving.
    let r = c.raw(Method::GET, "/healthz", None, &[]).await.unwrap();
    assert_eq!(r.status, 200);
    let got: Versioned<Value> = admin.get("/v1/clusters/eu-1").await.unwrap();
    assert_eq!(got.value["spec"]["region"], "r");
    eprintln!("{requests} hostile requests in {:?}", t0.elapsed());
}

/// Percent-encoded bytes that are not UTF-8 in a path parameter are refused
/// by axum's `Path` extractor before the handler runs, with a `text/plain`
/// 400 instead of problem+json.
#[tokio::test]
async fn invalid_utf8_path_parameter_is_a_problem() {
    let s = TestServer::start().await;
    let c = s.admin();
    for path in [
        "/v1/clusters/%FF%FE",
        "/v1/clusters/eu-1/exports/%C0/x",
        "/v1/trust-domains/%FF/bundle",
    ] {
        let r = c.raw(Method::GET, path, None, &[]).await.unwrap();
        check(path, r.status.as_u16(), &r.headers, &r.body);
        assert!(r.status.is_client_error(), "{path}");
    }
}
