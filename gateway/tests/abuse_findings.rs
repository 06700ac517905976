//! Regression tests for the gateway findings of the outside abuse run
//! (SECURITY-FINDINGS.md F6–F10, F15, F16), against the gateway binary as a child
//! process, spoken to as a genuine federated peer gateway (eu-1) or an
//! in-cluster client would. One test per finding; each asserts what reached
//! the backend and what the attacker saw.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use causeway_api::model::{ResidencyPolicy, ResidencyPolicySpec, ServiceSelector};
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, PeerPolicy, SystemClock,
    TrustDomain, client_config,
};
use rustls_pki_types::ServerName;
use support::backend::Backend;
use support::client::get;
use support::fixture::{
    GatewayProc, Site, catalog, export, export_tcp, residency, start_binary, write_catalog,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const ECHO: &str = "echo.demo.svc.clusterset.local";
const LEDGER: &str = "ledger.pay.svc.clusterset.local";

/// A raw TCP backend: counts connections and bytes received.
struct Raw {
    addr: SocketAddr,
    conns: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn raw_echo() -> Raw {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (conns, bytes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, b) = (conns.clone(), bytes.clone());
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let b = b.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    b.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    Raw {
        addr,
        conns,
        bytes,
        task,
    }
}

struct Env {
    _dir: tempfile::TempDir,
    _gw: GatewayProc,
    us: Site,
    /// demo/echo (HTTP) and pay/ledger (HTTP, EU-only).
    http: Backend,
    /// db/pg (TCP) and pay/vault (TCP, EU-only).
    raw: Raw,
    /// TLS client config of the genuine peer gateway eu-1 (HTTP/1.1).
    peer: Arc<rustls::ClientConfig>,
}

/// us-1 runs the binary; eu-1 is a federated peer whose SVID the test holds.
async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let us = Site::new(dir.path(), "us-1", "us-east", "us-east-1a", &["us"]);
    let eu = Site::new(dir.path(), "eu-1", "eu-west", "eu-west-1a", &["eu"]);
    let http = Backend::start("us-1").await;
    let raw = raw_echo().await;
    let cat_file = dir.path().join("catalog.json");
    let mut cat = catalog(
        1,
        &[&us, &eu],
        vec![
            export("demo/echo", "us-1", 1),
            export("pay/ledger", "us-1", 1),
            export_tcp("db/pg", "us-1", 1, 5432),
            export_tcp("pay/vault", "us-1", 1, 5432),
        ],
        vec![residency("pay-eu", &["pay/ledger", "pay/vault"], &["eu"])],
    );
    let by_header = ResidencyPolicy::new(
        "eu-data".parse().unwrap(),
        ResidencyPolicySpec {
            services: ServiceSelector(vec!["demo/echo".parse().unwrap()]),
            match_: Some(
                serde_json::from_value(
                    serde_json::json!({"header": "x-data-region", "values": ["eu"]}),
                )
                .unwrap(),
            ),
            allowed_jurisdictions: vec!["eu".into()],
            ..ResidencyPolicySpec::default()
        },
    );
    cat.policies
        .residency
        .insert(by_header.name().clone(), by_header);
    write_catalog(&cat_file, &cat);
    let mut cfg = us.config(
        &[&eu],
        &cat_file,
        &[
            ("demo/echo", http.addr),
            ("pay/ledger", http.addr),
            ("db/pg", raw.addr),
            ("pay/vault", raw.addr),
        ],
    );
    cfg.limits.header_timeout = Duration::from_secs(1);
    let gw = start_binary(&cfg, &dir.path().join("us.json")).await;

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
    let mut peer = client_config(&svid, store, PeerPolicy::AnyFederated).unwrap();
    peer.alpn_protocols = vec![b"http/1.1".to_vec()];
    Env {
        _dir: dir,
        _gw: gw,
        us,
        http,
        raw,
        peer: Arc::new(peer),
    }
}

impl Env {
    /// An mTLS connection to us-1's ingress as eu-1, with `sni`.
    async fn connect(&self, sni: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.us.ingress).await.unwrap();
        TlsConnector::from(self.peer.clone())
            .connect(ServerName::try_from(sni.to_owned()).unwrap(), tcp)
            .await
            .unwrap()
    }

    /// Writes `bytes` on a connection with `sni` and reads until the gateway
    /// closes it (or 3 s pass); what came back.
    async fn exchange(&self, sni: &str, bytes: &[u8]) -> String {
        let mut tls = self.connect(sni).await;
        let _ = tls.write_all(bytes).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The sum of the samples of `metric` whose labels contain every one of
    /// `labels` (`name="value"`).
    async fn metric(&self, metric: &str, labels: &[&str]) -> f64 {
        let text = get(self.us.admin, "admin", "/metrics").await.unwrap();
        let text = String::from_utf8_lossy(&text.body).into_owned();
        text.lines()
            .filter(|l| l.starts_with(metric) && labels.iter().all(|x| l.contains(x)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Reads one whole HTTP/1.1 response (header and `Content-Length` body).
async fn read_response(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if out.len() >= end + 4 + len {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            return String::from_utf8_lossy(&out).into_owned();
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn status(resp: &str) -> u16 {
    resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// F7 (High): a peer asked for a raw TCP tunnel to port 1 of an exported
/// HTTP service and got a byte stream to the backend, through which a CL.TE
/// request smuggled a second request. Only ports exported as TCP tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f7_tunnel_opens_only_ports_exported_as_tcp() {
    let e = env().await;
    let smuggle = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /SMUGGLED-tcp HTTP/1.1\r\nHost: x\r\n\r\n";
    for sni in [
        "tcp-1.echo.demo.causeway.internal",
        "tcp-9999.pg.db.causeway.internal",
        "tcp-5432.nope.db.causeway.internal",
    ] {
        let out = e.exchange(sni, smuggle.as_bytes()).await;
        assert!(out.is_empty(), "{sni}: the tunnel answered {out:?}");
    }
    assert_eq!(e.http.count(), 0, "a request reached the HTTP backend");
    assert_eq!(e.raw.conns.load(Ordering::SeqCst), 0, "a tunnel was opened");
    assert_eq!(
        e.metric(
            "causeway_gateway_denials_total",
            &["reason=\"port_not_exported\""]
        )
        .await,
        2.0
    );
    // The refused SNI's service name is attacker-chosen: it never becomes a label.
    assert_eq!(
        e.metric("causeway_gateway_denials_total", &["service=\"db/nope\""])
            .await,
        0.0
    );
    // A port exported as TCP still tunnels.
    let mut t = e.connect("tcp-5432.pg.db.causeway.internal").await;
    t.write_all(b"SELECT 1;").await.unwrap();
    let mut buf = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), t.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"SELECT 1;");
    assert_eq!(e.raw.conns.load(Ordering::SeqCst), 1);
}

/// F8 (High): through a tunnel to an HTTP port a peer sent identity
/// headers the HTTP ingress would have stripped; the backend got them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f8_tunnel_to_an_http_port_is_refused() {
    let e = env().await;
    let forged = format!(
        "GET /admin HTTP/1.1\r\nHost: {ECHO}\r\nx-causeway-source-cluster: us-1\r\n\
         x-causeway-source-workload: spiffe://us-1.causeway.test/ns/admin/sa/root\r\n\r\n"
    );
    let out = e
        .exchange("tcp-8080.echo.demo.causeway.internal", forged.as_bytes())
        .await;
    assert!(out.is_empty(), "the tunnel answered {out:?}");
    assert_eq!(e.http.count(), 0, "the forged request reached the backend");
    assert_eq!(
        e.metric(
            "causeway_gateway_denials_total",
            &["reason=\"not_tunnelable\"", "service=\"demo/echo\""]
        )
        .await,
        1.0
    );
}

/// F9 (High): a valid peer that ignored residency (misconfigured or
/// compromised) was served by a cluster outside the allowed jurisdiction,
/// over HTTP and over the tunnel. The destination checks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f9_destination_refuses_requests_residency_keeps_elsewhere() {
    let e = env().await;
    let req = |host: &str, extra: &str| {
        format!("GET / HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
    };
    let out = e.exchange(LEDGER, req(LEDGER, "").as_bytes()).await;
    assert_eq!(status(&out), 403, "{out}");
    assert!(out.contains("\"policy\":\"pay-eu\""), "{out}");
    assert!(out.contains("\"reason\":\"residency\""), "{out}");
    let marked = req(ECHO, "x-data-region: eu\r\n");
    let out = e.exchange(ECHO, marked.as_bytes()).await;
    assert_eq!(status(&out), 403, "{out}");
    assert!(out.contains("\"policy\":\"eu-data\""), "{out}");
    assert_eq!(e.http.count(), 0, "a residency-bound request was served");
    // Unmarked requests of the same service are not bound.
    let out = e.exchange(ECHO, req(ECHO, "").as_bytes()).await;
    assert_eq!(status(&out), 200, "{out}");
    assert_eq!(e.http.count(), 1);
    let out = e
        .exchange("tcp-5432.vault.pay.causeway.internal", b"SELECT 1;")
        .await;
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.raw.bytes.load(Ordering::SeqCst), 0);
    assert_eq!(
        e.metric(
            "causeway_gateway_residency_denials_total",
            &["reason=\"residency_forbids_destination\""]
        )
        .await,
        3.0
    );
}

/// Drips `req` one byte per 100 ms on `s`; how long until the gateway
/// closed the connection (None: still open after 5 s).
async fn drip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    req: &[u8],
) -> Option<Duration> {
    let t = Instant::now();
    for b in req.iter().cycle() {
        if s.write_all(&[*b]).await.is_err() {
            return Some(t.elapsed());
        }
        let mut buf = [0u8; 512];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await
        {
            return Some(t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(5) {
            return None;
        }
    }
    None
}

/// F10 (Medium): the header deadline covered only the first request of a
/// connection (egress), and not the ingress at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f10_every_request_header_has_a_deadline_on_both_listeners() {
    let e = env().await;
    let slow = format!(
        "GET / HTTP/1.1\r\nHost: {ECHO}\r\nX-Slow: {}\r\n",
        "s".repeat(200)
    );
    // Egress: a complete first request, then a dripped second one.
    let mut s = TcpStream::connect(e.us.egress).await.unwrap();
    let whole = format!("GET / HTTP/1.1\r\nHost: {ECHO}\r\n\r\n");
    s.write_all(whole.as_bytes()).await.unwrap();
    assert_eq!(status(&read_response(&mut s).await), 200);
    let cut = drip(&mut s, slow.as_bytes()).await;
    assert!(
        cut.is_some_and(|d| d < Duration::from_secs(3)),
        "egress: second request dripped for {cut:?}"
    );
    // Ingress: the first request, dripped over mTLS.
    let mut t = e.connect(ECHO).await;
    let cut = drip(&mut t, slow.as_bytes()).await;
    assert!(
        cut.is_some_and(|d| d < Duration::from_secs(3)),
        "ingress: first request dripped for {cut:?}"
    );
    assert_eq!(
        e.http.count(),
        1,
        "only the one complete request was served"
    );
    // Idle keep-alive time before a request is not header time: a client
    // that waits longer than the deadline and then sends a whole request
    // is served.
    let mut s = TcpStream::connect(e.us.egress).await.unwrap();
    s.write_all(whole.as_bytes()).await.unwrap();
    assert_eq!(status(&read_response(&mut s).await), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.write_all(whole.as_bytes()).await.unwrap();
    assert_eq!(status(&read_response(&mut s).await), 200);
}

/// Reads what the gateway answers on `s` until it closes (or 3 s pass).
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    bytes: &[u8],
) -> String {
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Item 8 (Low), three HTTP/1.1 parser discrepancies on both listeners: a
/// bare CR in the request line was forwarded percent-encoded (RFC 9112
/// §2.2: refuse or replace by SP), 10,000 header lines closed the ingress
/// connection without an answer, and a `0x0` chunk size (F6) must be
/// refused. Each gets a 4xx answer; the first two never reach the backend
/// (a chunked body streams, so the backend may see the header of the third
/// before the gateway meets the bad chunk and aborts both sides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_parser_lows_are_answered_on_both_listeners() {
    let e = env().await;
    let many_lines: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "bare CR in the request line",
            format!("GET /a\rb HTTP/1.1\r\nHost: {ECHO}\r\n\r\n").into_bytes(),
        ),
        (
            "10,000 header lines",
            format!("GET / HTTP/1.1\r\nHost: {ECHO}\r\n{many_lines}\r\n").into_bytes(),
        ),
        (
            "0x0 chunk size (F6)",
            format!(
                "POST / HTTP/1.1\r\nHost: {ECHO}\r\nTransfer-Encoding: chunked\r\n\r\n0x0\r\n\r\n"
            )
            .into_bytes(),
        ),
    ];
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let mut s = TcpStream::connect(e.us.egress).await.unwrap();
        let egress = answer(&mut s, bytes).await;
        let mut t = e.connect(ECHO).await;
        let ingress = answer(&mut t, bytes).await;
        for (listener, resp) in [("egress", &egress), ("ingress", &ingress)] {
            let st = status(resp);
            assert!(
                (400..500).contains(&st),
                "{what} on the {listener}: answered {st} ({:?})",
                resp.lines().next()
            );
        }
        if i < 2 {
            assert_eq!(e.http.count(), 0, "{what}: the backend saw a request");
        }
    }
}
