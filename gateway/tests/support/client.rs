//! Minimal HTTP/1.1 and h2c clients (hyper, one connection per call).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// A response as the client saw it.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub trailers: Option<http::HeaderMap>,
}

impl Resp {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The `x-served-by` header (which cluster's backend answered).
    pub fn served_by(&self) -> Option<String> {
        self.headers
            .get("x-served-by")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }
}

async fn collect(resp: hyper::Response<hyper::body::Incoming>) -> Resp {
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: collected.to_bytes(),
        trailers,
    }
}

/// One HTTP/1.1 request.
pub async fn http1(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Resp> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let resp = send.send_request(b.body(Full::new(Bytes::new()))?).await?;
    Ok(collect(resp).await)
}

/// A GET over HTTP/1.1.
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> anyhow::Result<Resp> {
    http1(addr, "GET", host, path, &[]).await
}

/// One h2c (prior knowledge) request.
pub async fn h2c(
    addr: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Resp> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let mut b = Request::builder()
        .version(Version::HTTP_2)
        .uri(format!("http://{host}{path}"));
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let resp = send.send_request(b.body(Full::new(Bytes::new()))?).await?;
    Ok(collect(resp).await)
}

/// A gRPC call over h2c sending `messages` (client streaming when several),
/// returning the response with its trailers.
pub async fn grpc(addr: SocketAddr, host: &str, messages: &[&[u8]]) -> anyhow::Result<Resp> {
    let tcp = TcpStream::connect(addr).await?;
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = messages
        .iter()
        .map(|m| Ok(Frame::data(super::backend::grpc_frame(m))))
        .collect();
    let body = StreamBody::new(futures::stream::iter(frames));
    let req = Request::builder()
        .version(Version::HTTP_2)
        .method("POST")
        .uri(format!("http://{host}/echo.Echo/Say"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)?;
    let resp = send.send_request(req).await?;
    Ok(collect(resp).await)
}
