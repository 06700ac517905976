//! Abuse at the east-west (mTLS) ingress, spoken to directly as a federated
//! peer gateway would: identity headers sent by the client, a forged caller
//! JWT-SVID, Host vs SNI vs `:authority` mismatches, path tricks against an
//! AccessPolicy path rule, and services this cluster does not export.
//! Each one is refused (or its effect neutralised), and nothing reaches a
//! backend it should not.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use causeway_api::model::{AccessPolicy, AccessPolicySpec, AccessRule, ServiceSelector};
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, PeerPolicy, SystemClock,
    TrustDomain, client_config,
};
use rustls_pki_types::ServerName;
use support::fixture::{Site, catalog, export, start_inproc, write_catalog};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

const ECHO: &str = "echo.demo.svc.clusterset.local";
const SECRET: &str = "secret.demo.svc.clusterset.local";

type Seen = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A strict backend recording the path and headers of every request.
struct Recorder {
    addr: SocketAddr,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }
}

async fn recorder() -> Recorder {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let headers = req
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect();
                        s.lock()
                            .unwrap()
                            .push((req.uri().path().to_owned(), headers));
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                            ))
                        }
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Recorder { addr, seen, task }
}

struct Env {
    _dir: tempfile::TempDir,
    gw: causeway_gateway::Gateway,
    echo: Recorder,
    secret: Recorder,
    /// TLS client config of the peer gateway eu-1 (a genuine, federated peer).
    peer: Arc<rustls::ClientConfig>,
    peer_h2: Arc<rustls::ClientConfig>,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let echo = recorder().await;
    let secret = recorder().await;
    let cat = dir.path().join("catalog.json");
    // us-1 exports demo/echo (not demo/secret, which is only a local
    // service); eu-1 may call it under /public only.
    let mut c = catalog(1, &[&us, &eu], vec![export("demo/echo", "us-1", 1)], vec![]);
    let p = AccessPolicy::new(
        "public-only".parse().unwrap(),
        AccessPolicySpec {
            services: ServiceSelector(vec!["demo/echo".parse().unwrap()]),
            allow: vec![AccessRule {
                trust_domains: vec![eu.trust_domain.clone()],
                paths: vec!["/public".into()],
                ..AccessRule::default()
            }],
        },
    );
    c.policies.access.insert(p.name().clone(), p);
    write_catalog(&cat, &c);
    let mut cfg = us.config(
        &[&eu],
        &cat,
        &[("demo/echo", echo.addr), ("demo/secret", secret.addr)],
    );
    cfg.listeners.egress = "127.0.0.1:0".parse().unwrap();
    cfg.listeners.ingress = "127.0.0.1:0".parse().unwrap();
    cfg.listeners.admin = "127.0.0.1:0".parse().unwrap();
    let gw = start_inproc(cfg).await;
    // The peer: eu-1's own authority issues its gateway SVID.
    let eu_td = TrustDomain::new(&eu.trust_domain).unwrap();
    let ca = Authority::load_or_create(
        &eu.authority_dir,
        eu_td.clone(),
        AuthorityConfig::default(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let svid = ca
        .issue_x509_svid(&eu_td.spiffe_id("/causeway/gateway/eu-1").unwrap())
        .unwrap();
    let us_bundle = Bundle::parse_str(&std::fs::read_to_string(&us.bundle_file).unwrap()).unwrap();
    let store = BundleStore::new(
        BundleSet::new()
            .with_bundle(TrustDomain::new(&us.trust_domain).unwrap(), us_bundle)
            .unwrap(),
    );
    let mut h1 = client_config(&svid, store.clone(), PeerPolicy::AnyFederated).unwrap();
    h1.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut h2 = client_config(&svid, store, PeerPolicy::AnyFederated).unwrap();
    h2.alpn_protocols = vec![b"h2".to_vec()];
    Env {
        _dir: dir,
        gw,
        echo,
        secret,
        peer: Arc::new(h1),
        peer_h2: Arc::new(h2),
    }
}

/// One raw HTTP/1.1 exchange over mTLS with the given SNI; returns the
/// status (0 if the connection closed without an answer) and the response.
async fn mtls(e: &Env, sni: &str, raw: &str) -> (u16, String) {
    let tcp = tokio::net::TcpStream::connect(e.gw.ingress_addr)
        .await
        .unwrap();
    let mut tls = TlsConnector::from(e.peer.clone())
        .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(raw.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

fn get(host: &str, path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_from_the_peer_are_replaced_not_trusted() {
    let e = env().await;
    let forged = "X-Causeway-Source-Workload: spiffe://us-1.causeway.test/ns/admin/sa/root\r\n\
                  x-causeway-source-cluster: us-1\r\n\
                  X-CAUSEWAY-SOURCE-GATEWAY: spiffe://us-1.causeway.test/causeway/gateway/us-1\r\n\
                  x-causeway-source-cluster: us-1\r\n";
    let (st, resp) = mtls(&e, ECHO, &get(ECHO, "/public/x", forged)).await;
    assert_eq!(st, 200, "{resp}");
    let seen = e.echo.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].1;
    assert_eq!(
        h.get("x-causeway-source-cluster").map(String::as_str),
        Some("eu-1"),
        "{h:?}"
    );
    assert_eq!(
        h.get("x-causeway-source-gateway").map(String::as_str),
        Some("spiffe://eu-1.causeway.test/causeway/gateway/eu-1"),
        "{h:?}"
    );
    assert!(
        !h.contains_key("x-causeway-source-workload"),
        "forged workload passed: {h:?}"
    );
    // A forged caller JWT-SVID is refused outright.
    let (st, _) = mtls(&e, ECHO, &get(ECHO, "/public/x", "x-causeway-caller-jwt: eyJhbGciOiJub25lIn0.eyJzdWIiOiJzcGlmZmU6Ly91cy0xLmNhdXNld2F5LnRlc3QvYWRtaW4ifQ.\r\n")).await;
    assert_eq!(st, 403);
    assert_eq!(
        e.echo.paths().len(),
        1,
        "a forged caller reached the backend"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_sni_and_authority_cannot_disagree_into_an_unexported_service() {
    let e = env().await;
    let cases: Vec<(&str, String)> = vec![
        // Not exported at all.
        (SECRET, get(SECRET, "/public/x", "")),
        // SNI names the exported service, Host the unexported one.
        (ECHO, get(SECRET, "/public/x", "")),
        // Absolute-form target names one, Host the other (both orders).
        (
            ECHO,
            format!(
                "GET http://{SECRET}/public/x HTTP/1.1\r\nHost: {ECHO}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            SECRET,
            format!(
                "GET http://{ECHO}/public/x HTTP/1.1\r\nHost: {SECRET}\r\nConnection: close\r\n\r\n"
            ),
        ),
        // Two Host headers, in both orders.
        (
            ECHO,
            format!(
                "GET /public/x HTTP/1.1\r\nHost: {ECHO}\r\nHost: {SECRET}\r\nConnection: close\r\n\r\n"
            ),
        ),
        (
            ECHO,
            format!(
                "GET /public/x HTTP/1.1\r\nHost: {SECRET}\r\nHost: {ECHO}\r\nConnection: close\r\n\r\n"
            ),
        ),
        // Host with odd spellings of the unexported service.
        (
            ECHO,
            get("SECRET.DEMO.svc.clusterset.local.", "/public/x", ""),
        ),
        (ECHO, get(&format!("{SECRET}:8080"), "/public/x", "")),
        (ECHO, get(&format!("{SECRET}%00.x"), "/public/x", "")),
        (ECHO, get(&format!("user@{SECRET}"), "/public/x", "")),
        (ECHO, get(&format!("{ECHO}@{SECRET}"), "/public/x", "")),
        (ECHO, get(&format!("{SECRET} {ECHO}"), "/public/x", "")),
    ];
    for (sni, req) in &cases {
        let (st, resp) = mtls(&e, sni, req).await;
        assert!(
            st == 0 || st == 200 || (400..500).contains(&st),
            "{req:?}: {st}\n{resp}"
        );
        assert!(
            e.secret.paths().is_empty(),
            "{req:?} reached the unexported service ({st})"
        );
    }
    // HTTP/2: :authority names one service, a host header the other.
    let tcp = tokio::net::TcpStream::connect(e.gw.ingress_addr)
        .await
        .unwrap();
    let tls = TlsConnector::from(e.peer_h2.clone())
        .connect(ServerName::try_from(ECHO).unwrap(), tcp)
        .await
        .unwrap();
    let (mut client, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for (authority, host) in [(ECHO, SECRET), (SECRET, ECHO)] {
        let req = http::Request::get(format!("https://{authority}/public/x"))
            .header("host", host)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(3), client.send_request(req)).await;
    }
    assert!(
        e.secret.paths().is_empty(),
        "h2 authority/host mismatch reached the unexported service"
    );
}

/// Resolves dot segments and percent-encoded `/` and `.` the way many
/// backends and frameworks do.
fn normalise(path: &str) -> String {
    let decoded = path
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%2E", ".")
        .replace("%2e", ".")
        .replace('\\', "/");
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn within_public(path: &str) -> bool {
    let n = normalise(path);
    n == "/public" || n.starts_with("/public/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_tricks_do_not_escape_an_access_policy_path_rule() {
    let e = env().await;
    let tricks = [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public%2F..%2Fadmin",
        "/public/./../admin",
        "/public/..%2Fadmin",
        "/public/..\\admin",
        "/publicadmin",
        "/public-internal/secrets",
        "//public/../admin",
        "/PUBLIC/x",
        "/admin#/public",
        "/admin?/public",
        "/admin;/public",
    ];
    let mut escaped = Vec::new();
    for t in tricks {
        let before = e.echo.paths().len();
        let (st, _) = mtls(&e, ECHO, &get(ECHO, t, "")).await;
        let paths = e.echo.paths();
        for p in &paths[before..] {
            if !within_public(p) {
                escaped.push(format!(
                    "{t} -> status {st}, backend saw {p:?} (normalised {})",
                    normalise(p)
                ));
            }
        }
    }
    // Control: a path under the rule does reach the backend.
    let (st, _) = mtls(&e, ECHO, &get(ECHO, "/public/ok", "")).await;
    assert_eq!(st, 200);
    assert!(
        escaped.is_empty(),
        "escaped the /public rule:\n{}",
        escaped.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disallowed_paths_and_case_tricks_on_the_host_are_refused() {
    let e = env().await;
    for host in [
        ECHO,
        "ECHO.Demo.SVC.clusterset.local",
        "echo.demo.svc.clusterset.local.",
    ] {
        let (st, resp) = mtls(&e, ECHO, &get(host, "/admin", "")).await;
        assert_eq!(st, 403, "{host}: {resp}");
    }
    assert!(
        e.echo.paths().is_empty(),
        "a refused path reached the backend: {:?}",
        e.echo.paths()
    );
    let (st, _) = mtls(
        &e,
        ECHO,
        &get("ECHO.Demo.SVC.clusterset.local", "/public/x", ""),
    )
    .await;
    assert_eq!(st, 200);
}
