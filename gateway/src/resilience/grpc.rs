//! gRPC status classification. A gRPC call answers HTTP 200 whatever
//! happened; its outcome is `grpc-status`, in the trailers or, for a
//! trailers-only response (an error before any message), in the headers.
//! Each code is classified through the gRPC spec's HTTP mapping (the one
//! Envoy uses for outlier detection), so `UNAVAILABLE` counts like a 503.

use http::{HeaderMap, HeaderValue};
use serde::Serialize;

/// The `grpc-status` header or trailer.
pub const GRPC_STATUS: &str = "grpc-status";

/// `CANCELLED`.
pub const CANCELLED: u8 = 1;
/// `UNKNOWN`.
pub const UNKNOWN: u8 = 2;
/// `DEADLINE_EXCEEDED`.
pub const DEADLINE_EXCEEDED: u8 = 4;
/// `RESOURCE_EXHAUSTED`.
pub const RESOURCE_EXHAUSTED: u8 = 8;
/// `INTERNAL`.
pub const INTERNAL: u8 = 13;
/// `UNAVAILABLE`.
pub const UNAVAILABLE: u8 = 14;
/// The highest defined code (`UNAUTHENTICATED`).
pub const MAX_CODE: u8 = 16;

/// Metric label values of the codes, index = code (bounded: 17 values plus
/// `none`, `pending`, `invalid` and `missing`).
const CODE_LABELS: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// What a response said about gRPC so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrpcStatus {
    /// Not a gRPC response (`content-type` is not `application/grpc*`).
    #[default]
    NotGrpc,
    /// A gRPC response whose status will come in the trailers.
    Pending,
    /// A valid code, 0..=16.
    Code(u8),
    /// `grpc-status` is not a number in 0..=16 (classified as `UNKNOWN`).
    Invalid,
    /// The stream ended without a status (classified as `INTERNAL`).
    Missing,
}

/// Whether `content-type` names gRPC (`application/grpc`, `+proto`, ...;
/// not gRPC-Web, whose trailers travel in the body).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.strip_prefix("application/grpc")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
        })
}

fn parse(v: &HeaderValue) -> GrpcStatus {
    let b = v.as_bytes();
    if b.is_empty() || b.len() > 2 || !b.iter().all(u8::is_ascii_digit) {
        return GrpcStatus::Invalid;
    }
    let code = b.iter().fold(0u8, |n, d| n * 10 + (d - b'0'));
    if code <= MAX_CODE {
        GrpcStatus::Code(code)
    } else {
        GrpcStatus::Invalid
    }
}

impl GrpcStatus {
    /// From response headers: the status of a trailers-only response,
    /// `Pending` for a gRPC response with trailers to come, `NotGrpc`
    /// otherwise.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        if !is_grpc(headers) {
            return Self::NotGrpc;
        }
        headers.get(GRPC_STATUS).map_or(Self::Pending, parse)
    }

    /// From response trailers (`Missing` without `grpc-status`).
    pub fn from_trailers(trailers: &HeaderMap) -> Self {
        trailers.get(GRPC_STATUS).map_or(Self::Missing, parse)
    }

    /// The code as the client sees it (`Invalid` is `UNKNOWN`, `Missing`
    /// is `INTERNAL`); `None` before a status or for non-gRPC responses.
    pub fn code(self) -> Option<u8> {
        match self {
            Self::Code(c) => Some(c),
            Self::Invalid => Some(UNKNOWN),
            Self::Missing => Some(INTERNAL),
            Self::NotGrpc | Self::Pending => None,
        }
    }

    /// The HTTP status the code maps to (gRPC's `http-grpc-status-mapping`
    /// read backwards, as Envoy does), for the failure classification.
    pub fn http_equivalent(self) -> Option<u16> {
        self.code().map(http_equivalent)
    }

    /// The bounded `grpc_status` metric label.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotGrpc => "none",
            Self::Pending => "pending",
            Self::Code(c) => CODE_LABELS
                .get(usize::from(c))
                .copied()
                .unwrap_or("invalid"),
            Self::Invalid => "invalid",
            Self::Missing => "missing",
        }
    }
}

/// The HTTP status equivalent of a gRPC code: 5xx for the codes that mean
/// the server failed (`UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`,
/// `INTERNAL`, `UNAVAILABLE`, `DATA_LOSS`), 4xx for the caller's errors.
pub fn http_equivalent(code: u8) -> u16 {
    match code {
        0 => 200,
        1 => 499,
        3 | 9 | 11 => 400,
        4 => 504,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500, // 2 UNKNOWN, 13 INTERNAL, 15 DATA_LOSS, anything else
    }
}
