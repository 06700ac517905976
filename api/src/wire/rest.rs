//! Response bodies of the REST API other than resources.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One page of a list response.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `continue` to get the next page; absent on the last page.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// The store revision the page was read at.
    #[serde(default)]
    pub revision: u64,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAck {
    /// The cluster.
    pub cluster: String,
    /// Always true after a successful heartbeat.
    pub connected: bool,
    /// When this heartbeat was recorded (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_heartbeat: OffsetDateTime,
    /// Seconds until the cluster is reported disconnected without another heartbeat.
    pub ttl_seconds: u64,
}
