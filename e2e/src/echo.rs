//! Echo backends: HTTP/1.1, h2c and gRPC (unary and streaming) on one port.
//! Every answer says which cluster served it (`x-served-by` header and the
//! JSON body); `GET /__echo/count` reports the number of requests served
//! (not counting itself). A backend can be stopped (listener and every open
//! connection closed), restarted on the same address, or told to fail with
//! 500s (or gRPC calls with a trailers-only status).

mod body;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::{JoinHandle, JoinSet};

/// The header naming the cluster that served a request.
pub const SERVED_BY: &str = "x-served-by";
/// The path that reports the request counter.
pub const COUNT_PATH: &str = "/__echo/count";

#[derive(Debug)]
struct EchoState {
    cluster: String,
    service: String,
    count: AtomicU64,
    /// Fail every n-th request (0 = never, 1 = always).
    fail_every: AtomicU64,
    /// Answer gRPC calls trailers-only with this `grpc-status` (0 = echo).
    grpc_status: AtomicU64,
}

/// A running (or stopped) echo backend.
#[derive(Debug, Clone)]
pub struct EchoServer {
    addr: SocketAddr,
    state: Arc<EchoState>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl EchoServer {
    /// Starts a backend for `service` of `cluster` on `addr` (port 0 = any).
    pub async fn start(addr: SocketAddr, cluster: &str, service: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(EchoState {
            cluster: cluster.to_owned(),
            service: service.to_owned(),
            count: AtomicU64::new(0),
            fail_every: AtomicU64::new(0),
            grpc_status: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Self {
            addr,
            state,
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The cluster it reports.
    pub fn cluster(&self) -> &str {
        &self.state.cluster
    }

    /// The `namespace/name` it serves.
    pub fn service(&self) -> &str {
        &self.state.service
    }

    /// Requests served so far (including failed ones, excluding counter reads).
    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Answer every request with 500 (`true`) or normally (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.set_fail_every(u64::from(failing));
    }

    /// Answer every `n`-th request with 500 (0 = never, 1 = always).
    pub fn set_fail_every(&self, n: u64) {
        self.state.fail_every.store(n, Ordering::Relaxed);
    }

    /// Answer every gRPC call with a trailers-only response (HTTP 200,
    /// `grpc-status: code` in the headers, no body), as a gRPC server does
    /// for an error before any message; 0 = echo normally.
    pub fn set_grpc_status(&self, code: u8) {
        self.state
            .grpc_status
            .store(u64::from(code), Ordering::Relaxed);
    }

    /// Whether it is accepting connections.
    pub async fn is_running(&self) -> bool {
        self.task.lock().await.is_some()
    }

    /// Closes the listener and every open connection.
    pub async fn stop(&self) {
        if let Some(t) = self.task.lock().await.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Stops serving without waiting (for `Drop` impls).
    pub fn abort(&self) {
        if let Ok(mut g) = self.task.try_lock()
            && let Some(t) = g.take()
        {
            t.abort();
        }
    }

    /// Starts serving again on the same address (the counter continues).
    pub async fn restart(&self) -> anyhow::Result<()> {
        let mut guard = self.task.lock().await;
        if guard.is_some() {
            return Ok(());
        }
        let listener = TcpListener::bind(self.addr).await?;
        *guard = Some(tokio::spawn(accept_loop(listener, self.state.clone())));
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<EchoState>) {
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

type EchoBody = BoxBody<Bytes, hyper::Error>;

fn full(b: impl Into<Bytes>) -> EchoBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

async fn handle(
    state: Arc<EchoState>,
    req: Request<Incoming>,
) -> Result<Response<EchoBody>, Infallible> {
    if req.uri().path() == COUNT_PATH {
        let body = serde_json::json!({
            "cluster": state.cluster,
            "service": state.service,
            "count": state.count.load(Ordering::Relaxed),
        });
        return Ok(json(StatusCode::OK, &state, &body));
    }
    let n = state.count.fetch_add(1, Ordering::Relaxed) + 1;
    let grpc = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let every = state.fail_every.load(Ordering::Relaxed);
    if every > 0 && n.is_multiple_of(every) {
        let body = serde_json::json!({"cluster": state.cluster, "failing": true});
        return Ok(json(StatusCode::INTERNAL_SERVER_ERROR, &state, &body));
    }
    if grpc {
        let code = state.grpc_status.load(Ordering::Relaxed);
        if code != 0 {
            return Ok(body::grpc_trailers_only(&state.cluster, code));
        }
        return Ok(body::grpc_echo(&state.cluster, req));
    }
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-") || k.as_str() == "traceparent")
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                serde_json::Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let body = serde_json::json!({
        "cluster": state.cluster,
        "service": state.service,
        "method": req.method().as_str(),
        "path": req.uri().path(),
        "count": n,
        "headers": headers,
    });
    Ok(json(StatusCode::OK, &state, &body))
}

fn json(status: StatusCode, state: &EchoState, body: &serde_json::Value) -> Response<EchoBody> {
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&state.cluster) {
        h.insert(SERVED_BY, v);
    }
    r
}
