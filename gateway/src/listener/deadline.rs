//! A stream wrapper that cuts off a client whose request header does not
//! arrive completely within a deadline (slowloris protection), for every
//! request of a keep-alive connection, on plaintext and TLS listeners alike.
//!
//! Pingora applies its read timeout per `read()`, so a client trickling one
//! byte every 100 ms would otherwise keep a connection open for as long as it
//! likes. The wrapper scans the bytes read for the end of the header
//! (`\r\n\r\n`; the HTTP/2 preface contains one too) and disarms itself
//! there. The first request's deadline runs from the accept; when a proxy
//! finishes a request it calls [`next_request`], and the next request's
//! deadline runs from its first byte (idle time between requests is the
//! keep-alive timeout's business, not this one's). Bodies, upgraded
//! connections and HTTP/2 streams are never scanned.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::raw_connect::ProxyDigest;
use pingora::protocols::tls::{SslDigest, TlsRef};
use pingora::protocols::{ALPN, Peek, Shutdown, Ssl, Stream, UniqueID, UniqueIDType};
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, SocketDigest, TimingDigest,
};
use pingora::proxy::Session;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const END: &[u8; 4] = b"\r\n\r\n";

/// Where the connection is in its request cycle.
enum Phase {
    /// Reading a request header that must be complete by the deadline.
    Header(Pin<Box<Sleep>>),
    /// The header is complete: body, response, upgraded or HTTP/2 bytes.
    Done,
    /// The previous request finished; the next one's deadline starts with
    /// its first byte.
    Next,
}

/// A stream with a whole-header deadline per request.
pub(crate) struct HeaderDeadline {
    inner: Stream,
    timeout: Duration,
    phase: Phase,
    /// Set by [`next_request`] (through a shared reference to the stream).
    next: AtomicBool,
    /// How many bytes of `END` matched so far.
    matched: usize,
    timeouts: Counter,
}

impl fmt::Debug for HeaderDeadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderDeadline")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HeaderDeadline {
    /// Wraps `inner`; the first header must be complete `timeout` from now.
    pub(crate) fn new(inner: Stream, timeout: Duration, timeouts: Counter) -> Self {
        Self {
            inner,
            timeout,
            phase: Phase::Header(Box::pin(tokio::time::sleep_until(Instant::now() + timeout))),
            next: AtomicBool::new(false),
            matched: 0,
            timeouts,
        }
    }
}

/// Tells the connection under `session` that its request is finished, so
/// that the next request on it gets its own header deadline. Called by the
/// proxies when a request ends; a no-op for HTTP/2 and unwrapped streams.
pub(crate) fn next_request(session: &Session) {
    let stream = session.as_downstream().stream();
    // `(**s)`: the concrete stream behind the box, not the box itself.
    if let Some(d) = stream.and_then(|s| (**s).as_any().downcast_ref::<HeaderDeadline>()) {
        d.next.store(true, Ordering::Relaxed);
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.next.swap(false, Ordering::Relaxed) {
            this.phase = Phase::Next;
            this.matched = 0;
        }
        if let Phase::Header(sleep) = &mut this.phase
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.phase = Phase::Done;
            this.timeouts.inc();
            tracing::debug!("request header deadline exceeded, closing");
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request header deadline exceeded",
            )));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if matches!(res, Poll::Ready(Ok(()))) && !new.is_empty() {
            if matches!(this.phase, Phase::Next) {
                let deadline = Instant::now() + this.timeout;
                this.phase = Phase::Header(Box::pin(tokio::time::sleep_until(deadline)));
            }
            if matches!(this.phase, Phase::Header(_)) && scan_with(&mut this.matched, new) {
                this.phase = Phase::Done;
            }
        }
        res
    }
}

fn scan_with(matched: &mut usize, bytes: &[u8]) -> bool {
    for &b in bytes {
        if b == END[*matched] {
            *matched += 1;
            if *matched == END.len() {
                return true;
            }
        } else {
            *matched = usize::from(b == b'\r');
        }
    }
    false
}

impl AsyncWrite for HeaderDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

// What Pingora asks of a stream, answered by the wrapped one.

#[async_trait]
impl Shutdown for HeaderDeadline {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for HeaderDeadline {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for HeaderDeadline {
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for HeaderDeadline {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for HeaderDeadline {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for HeaderDeadline {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for HeaderDeadline {
    async fn try_peek(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_header_end_across_chunks() {
        let mut m = 0;
        assert!(!scan_with(&mut m, b"GET / HTTP/1.1\r\nHost: a\r"));
        assert!(!scan_with(&mut m, b"\n\r"));
        assert!(scan_with(&mut m, b"\n"));
        let mut m = 0;
        assert!(!scan_with(&mut m, b"a\r\r\n\ra"));
        assert!(scan_with(&mut m, b"\r\r\n\r\n"));
    }

    #[test]
    fn h2_preface_disarms() {
        let mut m = 0;
        assert!(scan_with(&mut m, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    }
}
