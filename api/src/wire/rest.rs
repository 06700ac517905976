//! Response bodies of the REST API other than resources.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The media type of an RFC 7396 JSON merge patch, the body of `PATCH`.
pub const MERGE_PATCH_JSON: &str = "application/merge-patch+json";

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

/// The answer of `GET /v1/version`: the server's build (no authentication).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The release version, e.g. `0.1.0`.
    pub version: String,
    /// The commit the binary was built from, when the build knew it (set
    /// `CAUSEWAY_GIT_COMMIT` at build time; the image build does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
}

impl VersionInfo {
    /// The build of the running binary (every Causeway crate shares the
    /// workspace version).
    pub fn this_build() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            git_commit: option_env!("CAUSEWAY_GIT_COMMIT")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        }
    }

    /// The labels of a `causeway_build_info` metric: `version` and `commit`
    /// (`unknown` when the build did not know it; labels are always present).
    pub fn labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("version", self.version.clone()),
            (
                "commit",
                self.git_commit.clone().unwrap_or_else(|| "unknown".into()),
            ),
        ]
    }

    /// `version`, with ` (commit)` when known.
    pub fn display(&self) -> String {
        match &self.git_commit {
            Some(c) => format!("{} ({c})", self.version),
            None => self.version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_labels_are_always_present() {
        let v = VersionInfo {
            version: "1.2.3".into(),
            git_commit: None,
        };
        assert_eq!(
            v.labels(),
            [
                ("version", "1.2.3".to_owned()),
                ("commit", "unknown".to_owned())
            ]
        );
        assert_eq!(v.display(), "1.2.3");
        let v = VersionInfo {
            git_commit: Some("abc123".into()),
            ..v
        };
        assert_eq!(v.labels()[1].1, "abc123");
        assert_eq!(v.display(), "1.2.3 (abc123)");
        assert_eq!(
            serde_json::to_value(&v).unwrap_or_default(),
            serde_json::json!({"version": "1.2.3", "gitCommit": "abc123"})
        );
    }
}
