//! Header names the gateway owns, identity-header stripping and request
//! hygiene checks that Pingora does not do itself.

use http::HeaderName;
use pingora::http::RequestHeader;

/// The caller JWT-SVID the source gateway adds for the destination gateway.
pub const CALLER_JWT: HeaderName = HeaderName::from_static("x-causeway-caller-jwt");
/// A JWT-SVID the calling workload presents to the egress (audience: the
/// gateway's SPIFFE ID); consumed, never forwarded.
pub const WORKLOAD_JWT: HeaderName = HeaderName::from_static("x-causeway-workload-jwt");
/// Set by the ingress gateway for the backend: the verified SPIFFE ID of the peer gateway.
pub const SOURCE_GATEWAY: HeaderName = HeaderName::from_static("x-causeway-source-gateway");
/// Set by the ingress gateway for the backend: the verified calling workload.
pub const SOURCE_WORKLOAD: HeaderName = HeaderName::from_static("x-causeway-source-workload");
/// Set by the ingress gateway for the backend: the source cluster id.
pub const SOURCE_CLUSTER: HeaderName = HeaderName::from_static("x-causeway-source-cluster");
/// Machine-readable reason of a denial.
pub const DENY_REASON: HeaderName = HeaderName::from_static("x-causeway-deny-reason");
/// Host of the active health probe between gateways (`GET /healthz`).
pub const PROBE_HOST: &str = "causeway-probe.internal";
/// W3C trace context.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Headers that claim an identity and are never taken from a client.
const IDENTITY_HEADERS: [&str; 4] = [
    "x-forwarded-client-cert",
    "x-client-cert",
    "x-ssl-client-cert",
    "l5d-client-id",
];

/// Removes every `x-causeway-*` header and well-known identity headers.
pub fn strip_identity_headers(req: &mut RequestHeader) {
    // Collect first: the header map cannot be mutated while iterating. The
    // common case (no such header) allocates nothing.
    let mut found: Option<Vec<HeaderName>> = None;
    for name in req.headers.keys() {
        let s = name.as_str();
        if s.starts_with("x-causeway-") || IDENTITY_HEADERS.contains(&s) {
            found.get_or_insert_with(Vec::new).push(name.clone());
        }
    }
    for name in found.into_iter().flatten() {
        req.remove_header(&name);
    }
}

/// Why a request is malformed or too large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HygieneError {
    /// Both `Content-Length` and `Transfer-Encoding`, or `Transfer-Encoding` repeated (400).
    AmbiguousFraming,
    /// Too many headers or header bytes (431).
    HeadersTooLarge,
    /// A control character (a bare CR, NUL, ...) in the request path, raw
    /// or percent-encoded (400). RFC 9112 §2.2 allows refusing or replacing
    /// a bare CR; Pingora's parser percent-encodes it before we see the
    /// request, so a raw and an encoded one cannot be told apart and both
    /// are refused (a path has no use for them). In the query they stay
    /// percent-encoded, which is inert.
    InvalidRequestLine,
}

impl HygieneError {
    /// The status to answer with.
    pub fn status(self) -> u16 {
        match self {
            HygieneError::AmbiguousFraming => 400,
            HygieneError::HeadersTooLarge => 431,
            HygieneError::InvalidRequestLine => 400,
        }
    }

    /// Machine-readable reason.
    pub fn reason(self) -> &'static str {
        match self {
            HygieneError::AmbiguousFraming => "ambiguous_framing",
            HygieneError::HeadersTooLarge => "headers_too_large",
            HygieneError::InvalidRequestLine => "invalid_request_line",
        }
    }
}

/// Checks header count and size, and framing ambiguity.
///
/// `raw_h1` is the raw HTTP/1 header block when available: Pingora drops
/// `Content-Length` when `Transfer-Encoding` is also present, so the raw
/// bytes are the only place the conflict is still visible.
pub fn check_request(
    req: &RequestHeader,
    raw_h1: Option<&[u8]>,
    max_headers: usize,
    max_header_bytes: usize,
) -> Result<(), HygieneError> {
    if !path_is_clean(req.uri.path()) {
        return Err(HygieneError::InvalidRequestLine);
    }
    if req.headers.len() > max_headers {
        return Err(HygieneError::HeadersTooLarge);
    }
    let mut bytes = req.uri.path_and_query().map_or(0, |p| p.as_str().len());
    for (n, v) in &req.headers {
        bytes += n.as_str().len() + v.len() + 4;
    }
    if bytes > max_header_bytes {
        return Err(HygieneError::HeadersTooLarge);
    }
    let te = req.headers.get_all(http::header::TRANSFER_ENCODING);
    let mut te_iter = te.iter();
    if te_iter.next().is_some() {
        if te_iter.next().is_some() {
            return Err(HygieneError::AmbiguousFraming);
        }
        if req.headers.contains_key(http::header::CONTENT_LENGTH)
            || raw_h1.is_some_and(raw_has_content_length)
        {
            return Err(HygieneError::AmbiguousFraming);
        }
    }
    Ok(())
}

/// Whether the path holds no control character, raw or percent-encoded.
fn path_is_clean(path: &str) -> bool {
    let b = path.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    !b.iter().enumerate().any(|(i, &c)| {
        c < 0x20
            || c == 0x7f
            || (c == b'%'
                && matches!(
                    (b.get(i + 1).and_then(|&h| hex(h)), b.get(i + 2).and_then(|&l| hex(l))),
                    (Some(h), Some(l)) if h * 16 + l < 0x20 || h * 16 + l == 0x7f
                ))
    })
}

fn raw_has_content_length(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n')
        .skip(1)
        .any(|line| line.len() > 15 && line[..15].eq_ignore_ascii_case(b"content-length:"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("GET", b"/", None).unwrap();
        for (n, v) in headers {
            r.append_header(n.to_string(), *v).unwrap();
        }
        r
    }

    #[test]
    fn strips_identity_headers() {
        let mut r = req(&[
            ("x-causeway-caller-jwt", "forged"),
            ("X-Causeway-Source-Cluster", "forged"),
            ("x-forwarded-client-cert", "forged"),
            ("accept", "*/*"),
        ]);
        strip_identity_headers(&mut r);
        assert_eq!(r.headers.len(), 1);
        assert!(r.headers.contains_key("accept"));
    }

    #[test]
    fn refuses_te_with_cl_in_raw_bytes() {
        let r = req(&[("transfer-encoding", "chunked")]);
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            check_request(&r, Some(raw), 100, 10_000),
            Err(HygieneError::AmbiguousFraming)
        );
        assert_eq!(
            check_request(&r, Some(b"POST / HTTP/1.1\r\n\r\n"), 100, 10_000),
            Ok(())
        );
    }

    #[test]
    fn refuses_repeated_te() {
        let r = req(&[
            ("transfer-encoding", "chunked"),
            ("transfer-encoding", "chunked"),
        ]);
        assert_eq!(
            check_request(&r, None, 100, 10_000),
            Err(HygieneError::AmbiguousFraming)
        );
    }

    #[test]
    fn limits_header_count_and_size() {
        let r = req(&[("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(
            check_request(&r, None, 2, 10_000),
            Err(HygieneError::HeadersTooLarge)
        );
        assert_eq!(
            check_request(&r, None, 3, 10),
            Err(HygieneError::HeadersTooLarge)
        );
        assert_eq!(check_request(&r, None, 3, 10_000), Ok(()));
    }

    #[test]
    fn control_characters_in_the_path_are_refused() {
        let at = |path: &str| {
            let r = RequestHeader::build("GET", path.as_bytes(), None).unwrap();
            check_request(&r, None, 100, 65536)
        };
        for ok in ["/a", "/a%20b", "/%7e", "/a?x=%0D%0A", "/100%25"] {
            assert_eq!(at(ok), Ok(()), "{ok}");
        }
        for bad in ["/a%0Db", "/a%0d", "/%00", "/x%7F", "/%1f"] {
            assert_eq!(at(bad), Err(HygieneError::InvalidRequestLine), "{bad}");
        }
    }
}
