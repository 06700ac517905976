//! A socket wrapper that cuts off a client whose first request header does
//! not arrive completely within a deadline (slowloris protection).
//!
//! Pingora applies its read timeout per `read()`, so a client trickling one
//! byte every 100 ms would otherwise keep a connection open for as long as it
//! likes. The wrapper scans the bytes read for the end of the header
//! (`\r\n\r\n`; the HTTP/2 preface contains one too) and disarms itself there.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pingora::protocols::l4::virt::{VirtualSockOpt, VirtualSocket};
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

const END: &[u8; 4] = b"\r\n\r\n";

/// A TCP stream with a whole-header deadline on its first request.
#[derive(Debug)]
pub(crate) struct HeaderDeadline {
    inner: TcpStream,
    /// Armed until the end of the first header was seen.
    sleep: Option<Pin<Box<Sleep>>>,
    /// How many bytes of `END` matched so far.
    matched: usize,
    timeouts: Counter,
}

impl HeaderDeadline {
    /// Wraps `inner`; the header must be complete `timeout` from now.
    pub(crate) fn new(inner: TcpStream, timeout: Duration, timeouts: Counter) -> Self {
        Self {
            inner,
            sleep: Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout))),
            matched: 0,
            timeouts,
        }
    }
}

impl AsyncRead for HeaderDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(sleep) = this.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.sleep = None;
            this.timeouts.inc();
            tracing::debug!("request header deadline exceeded, closing");
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request header deadline exceeded",
            )));
        }
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.sleep.is_some() && matches!(res, Poll::Ready(Ok(()))) {
            let end = {
                let new = &buf.filled()[before..];
                let mut m = this.matched;
                let done = scan_with(&mut m, new);
                this.matched = m;
                done
            };
            if end {
                this.sleep = None;
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

impl VirtualSocket for HeaderDeadline {
    fn set_socket_option(&self, opt: VirtualSockOpt) -> std::io::Result<()> {
        match opt {
            VirtualSockOpt::NoDelay => self.inner.set_nodelay(true),
            _ => Ok(()),
        }
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
