//! The gRPC echo: every request message comes back as a response message
//! (unary and bidirectional streaming), then `grpc-status: 0` trailers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};

use super::{EchoBody, SERVED_BY};

/// Forwards the request body's data frames and ends with OK trailers.
struct EchoStream {
    inner: Incoming,
    done: bool,
}

impl Body for EchoStream {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    // Request trailers: ignored.
                }
                Poll::Ready(None) => {
                    self.done = true;
                    let mut t = HeaderMap::new();
                    t.insert("grpc-status", http::HeaderValue::from_static("0"));
                    return Poll::Ready(Some(Ok(Frame::trailers(t))));
                }
            }
        }
    }
}

pub(super) fn grpc_echo(cluster: &str, req: Request<Incoming>) -> Response<EchoBody> {
    let body = EchoStream {
        inner: req.into_body(),
        done: false,
    };
    let mut r = Response::new(body.boxed());
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    if let Ok(v) = http::HeaderValue::from_str(cluster) {
        h.insert(SERVED_BY, v);
    }
    r
}

/// A trailers-only gRPC answer: one HEADERS frame with END_STREAM carrying
/// `grpc-status` (what a gRPC server sends for an error before any message).
pub(super) fn grpc_trailers_only(cluster: &str, code: u64) -> Response<EchoBody> {
    let mut r = Response::new(super::full(Bytes::new()));
    let h = r.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", http::HeaderValue::from(code));
    h.insert(
        "grpc-message",
        http::HeaderValue::from_static("injected by the echo backend"),
    );
    if let Ok(v) = http::HeaderValue::from_str(cluster) {
        h.insert(SERVED_BY, v);
    }
    r
}
