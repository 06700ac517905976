//! A real HTTP backend (HTTP/1.1 + h2c, hyper) that says which "cluster"
//! served a request and counts requests. Paths:
//! - `/status/<code>`: answers that status;
//! - `/sleep/<ms>`: answers after a delay;
//! - `Upgrade: websocket`: 101, then echoes raw bytes;
//! - `content-type: application/grpc`: echoes every gRPC message, then
//!   trailers `grpc-status: 0`, `grpc-message: ok`, `x-echo-count: <n>`;
//! - anything else: 200 with a JSON body `{cluster, path, headers}`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A running backend.
pub struct Backend {
    pub addr: SocketAddr,
    pub cluster: String,
    count: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// Starts a backend on a free loopback port.
    pub async fn start(cluster: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, cluster)
    }

    /// Starts a backend on `listener`.
    pub fn serve(listener: TcpListener, cluster: &str) -> Self {
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let name: Arc<str> = Arc::from(cluster);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let c = c.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let c = c.clone();
                        let name = name.clone();
                        async move { Ok::<_, Infallible>(handle(req, &name, &c).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            cluster: cluster.to_owned(),
            count,
            task,
        }
    }

    /// Requests served so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

async fn handle(req: Request<Incoming>, cluster: &str, count: &AtomicUsize) -> Response<Body> {
    count.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_owned();
    let is_grpc = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if req
        .headers()
        .get("upgrade")
        .is_some_and(|v| v == "websocket")
    {
        return websocket(req, cluster);
    }
    if is_grpc {
        return grpc(req, cluster).await;
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        return Response::builder()
            .status(code)
            .header("x-served-by", cluster)
            .body(full(format!("status {code} from {cluster}")))
            .unwrap();
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let version = format!("{:?}", req.version());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let json = serde_json::json!({
        "cluster": cluster,
        "path": path,
        "version": version,
        "headers": headers,
        "bodyLen": body.len(),
    });
    Response::builder()
        .header("x-served-by", cluster)
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(&json).unwrap()))
        .unwrap()
}

fn websocket(req: Request<Incoming>, cluster: &str) -> Response<Body> {
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            loop {
                match io.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }
    });
    Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("x-served-by", cluster)
        .body(full(Bytes::new()))
        .unwrap()
}

/// Splits a gRPC body into messages (5-byte prefix: flag + u32 length).
pub fn grpc_messages(mut b: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while b.len() >= 5 {
        let len = u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        if b.len() < 5 + len {
            break;
        }
        out.push(b[5..5 + len].to_vec());
        b = &b[5 + len..];
    }
    out
}

/// Frames one gRPC message.
pub fn grpc_frame(msg: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(msg.len() + 5);
    v.push(0);
    v.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    v.extend_from_slice(msg);
    Bytes::from(v)
}

async fn grpc(req: Request<Incoming>, cluster: &str) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    let mut body = req.into_body();
    tokio::spawn(async move {
        let mut pending = Vec::new();
        let mut n = 0u32;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                pending.extend_from_slice(&data);
                let msgs = grpc_messages(&pending);
                let consumed: usize = msgs.iter().map(|m| m.len() + 5).sum();
                pending.drain(..consumed);
                for m in msgs {
                    n += 1;
                    let mut echo = b"echo:".to_vec();
                    echo.extend_from_slice(&m);
                    if tx.send(Ok(Frame::data(grpc_frame(&echo)))).await.is_err() {
                        return;
                    }
                }
            }
        }
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        trailers.insert("grpc-message", "ok".parse().unwrap());
        trailers.insert("x-echo-count", n.to_string().parse().unwrap());
        let _ = tx.send(Ok(Frame::trailers(trailers))).await;
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .header("content-type", "application/grpc")
        .header("x-served-by", cluster)
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
