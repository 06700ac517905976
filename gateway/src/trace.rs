//! W3C trace context: propagate `traceparent` with a new span id for the
//! gateway hop, or start a trace when the request has none (or an invalid one).

use http::HeaderValue;

/// The trace context of one request as the gateway forwards it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16-byte trace id.
    pub trace_id: [u8; 16],
    /// The gateway's span id (the parent id of the upstream hop).
    pub span_id: [u8; 8],
    /// Trace flags (bit 0 = sampled).
    pub flags: u8,
}

impl TraceContext {
    /// A new span of the incoming trace, if `value` is a valid `traceparent`.
    pub fn child_of(value: Option<&[u8]>) -> Option<Self> {
        let (trace_id, flags) = value.and_then(parse)?;
        let mut span_id = [0u8; 8];
        fill_nonzero(&mut span_id);
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Continues the incoming `traceparent` (version 00) or starts a new trace.
    pub fn from_incoming(value: Option<&[u8]>) -> Self {
        if let Some(child) = Self::child_of(value) {
            return child;
        }
        let mut span_id = [0u8; 8];
        fill_nonzero(&mut span_id);
        let mut trace_id = [0u8; 16];
        fill_nonzero(&mut trace_id);
        Self {
            trace_id,
            span_id,
            flags: 1,
        }
    }

    /// The `traceparent` header value to send upstream.
    pub fn header_value(&self) -> HeaderValue {
        let mut buf = [0u8; 55];
        buf[..3].copy_from_slice(b"00-");
        hex(&self.trace_id, &mut buf[3..35]);
        buf[35] = b'-';
        hex(&self.span_id, &mut buf[36..52]);
        buf[52] = b'-';
        hex(&[self.flags], &mut buf[53..55]);
        // Only hex digits and '-': always a valid header value.
        HeaderValue::from_bytes(&buf).unwrap_or(HeaderValue::from_static("00"))
    }

    /// The trace id as 32 lowercase hex digits.
    pub fn trace_id_hex(&self) -> String {
        let mut buf = [0u8; 32];
        hex(&self.trace_id, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn fill_nonzero(buf: &mut [u8]) {
    loop {
        rand::fill(buf);
        if buf.iter().any(|&b| b != 0) {
            return;
        }
    }
}

fn hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
}

fn unhex(s: &[u8], out: &mut [u8]) -> Option<()> {
    if s.len() != out.len() * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = (digit(s[2 * i])? << 4) | digit(s[2 * i + 1])?;
    }
    Some(())
}

fn parse(v: &[u8]) -> Option<([u8; 16], u8)> {
    if v.len() < 55 || &v[..3] != b"00-" || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let mut trace = [0u8; 16];
    unhex(&v[3..35], &mut trace)?;
    let mut parent = [0u8; 8];
    unhex(&v[36..52], &mut parent)?;
    let mut flags = [0u8; 1];
    unhex(&v[53..55], &mut flags)?;
    if trace.iter().all(|&b| b == 0) || parent.iter().all(|&b| b == 0) {
        return None;
    }
    Some((trace, flags[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let incoming = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::from_incoming(Some(incoming));
        let v = t.header_value();
        let s = v.to_str().unwrap_or_default();
        assert!(s.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{s}");
        assert!(!s.contains("00f067aa0ba902b7"));
        assert!(s.ends_with("-01"));
    }

    #[test]
    fn starts_a_trace_when_missing_or_invalid() {
        for bad in [
            None,
            Some(&b"garbage"[..]),
            Some(&b"00-00000000000000000000000000000000-00f067aa0ba902b7-01"[..]),
        ] {
            let t = TraceContext::from_incoming(bad);
            assert!(t.trace_id.iter().any(|&b| b != 0));
            assert_eq!(t.header_value().len(), 55);
        }
    }
}
