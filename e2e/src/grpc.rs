//! A minimal gRPC client over h2c (no code generation): length-prefixed
//! messages on one HTTP/2 stream, `grpc-status` from the trailers. Enough
//! to show that unary and bidirectional streaming calls cross the egress
//! gateway and the east-west link.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::Request;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::mpsc;

/// A request body fed message by message.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// Frames one gRPC message (uncompressed).
pub fn frame(msg: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + msg.len());
    b.extend_from_slice(&[0]);
    b.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    b.extend_from_slice(msg);
    b.freeze()
}

/// The outcome of a call.
#[derive(Debug, Clone, Default)]
pub struct GrpcReply {
    /// The HTTP status.
    pub http_status: u16,
    /// The cluster that served it (`x-served-by`).
    pub served_by: Option<String>,
    /// Response messages in order.
    pub messages: Vec<Bytes>,
    /// `grpc-status` from the trailers (or headers, for trailers-only answers).
    pub grpc_status: Option<String>,
}

/// Sends `messages` on one stream to `host` (`:authority`) through `egress`;
/// after each message waits for its echo before sending the next (so a
/// reply to the first arrives while the request stream is still open).
pub async fn call(
    egress: SocketAddr,
    host: &str,
    path: &str,
    messages: &[&[u8]],
) -> anyhow::Result<GrpcReply> {
    let run = async {
        let tcp = tokio::net::TcpStream::connect(egress).await?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let req = Request::post(format!("http://{host}{path}"))
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header("te", "trailers")
            .body(ChannelBody { rx })?;
        let mut pending = messages.iter();
        if let Some(first) = pending.next() {
            tx.send(frame(first)).await?;
        }
        let resp = send.send_request(req).await?;
        let mut reply = GrpcReply {
            http_status: resp.status().as_u16(),
            served_by: resp
                .headers()
                .get(crate::echo::SERVED_BY)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            grpc_status: resp
                .headers()
                .get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            messages: Vec::new(),
        };
        let mut body = resp.into_body();
        let mut buf = BytesMut::new();
        let mut tx = Some(tx);
        if messages.len() <= 1 {
            tx = None; // end the request stream
        }
        while let Some(f) = body.frame().await {
            let f = f?;
            if let Some(t) = f.trailers_ref() {
                reply.grpc_status = t
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                continue;
            }
            if let Ok(data) = f.into_data() {
                buf.extend_from_slice(&data);
                while buf.len() >= 5 {
                    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                    if buf.len() < 5 + len {
                        break;
                    }
                    buf.advance(5);
                    reply.messages.push(buf.split_to(len).freeze());
                    match (pending.next(), &tx) {
                        (Some(next), Some(t)) => t.send(frame(next)).await?,
                        _ => tx = None,
                    }
                }
            }
        }
        anyhow::Ok(reply)
    };
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .map_err(|_| anyhow::anyhow!("grpc call to {host} timed out"))?
}
