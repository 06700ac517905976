//! RFC 9457 `application/problem+json` error documents.

use serde::{Deserialize, Serialize};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Base of the `type` URIs of Causeway problems.
pub const PROBLEM_TYPE_BASE: &str = "https://causeway.dev/problems/";

/// One offending field of a rejected request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON path (`spec.ports[0].port`), header (`If-Match`), path or query
    /// parameter (`name`, `limit`) that was rejected.
    pub field: String,
    /// Why it was rejected.
    pub message: String,
}

/// The RFC 9457 problem document, as sent and as parsed by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type, `https://causeway.dev/problems/<slug>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// A human-readable explanation of this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The offending fields (extension member).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    /// The last segment of `type` (`validation`, `not-found`, ...).
    pub fn slug(&self) -> &str {
        self.type_uri.rsplit('/').next().unwrap_or_default()
    }
}
