//! `AccessPolicy`: which callers may call which services.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::selector::ServiceSelector;
use crate::model::{AccessPolicyKind, ClusterId};

super::policy_resource!(
    /// Authorization of callers. If any access policy selects a service, only
    /// callers matching at least one `allow` rule of some selecting policy
    /// may call it; a service selected by no access policy is open to every
    /// authenticated member of the federation.
    AccessPolicy,
    AccessPolicyKind,
    AccessPolicySpec
);

/// The services and the allowed callers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessPolicySpec {
    /// The services the policy applies to; empty selects every service.
    #[serde(default)]
    pub services: ServiceSelector,
    /// Allow rules; a caller is allowed when it matches any rule. An empty
    /// list denies every caller of the selected services.
    #[serde(default)]
    pub allow: Vec<AccessRule>,
}

/// One allow rule. Every non-empty list must match (AND across fields, OR
/// within a field); an empty list matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRule {
    /// Caller trust domains.
    #[serde(default)]
    pub trust_domains: Vec<String>,
    /// Caller clusters.
    #[serde(default)]
    pub clusters: Vec<ClusterId>,
    /// Caller SPIFFE IDs (exact).
    #[serde(default, rename = "spiffeIds")]
    pub spiffe_ids: Vec<String>,
    /// Request path prefixes (HTTP only), matched on a segment boundary
    /// (`/api` matches `/api` and `/api/x`, not `/apix`); a request path that
    /// is not in normal form (dot segments, `//`, a backslash, percent-encoded
    /// `/`, `.` or `\`) never matches a path rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// Request methods (HTTP only, case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
}

/// The verified identity of a caller and the request being authorized.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller<'a> {
    /// The caller's trust domain.
    pub trust_domain: &'a str,
    /// The caller's cluster, when known.
    pub cluster: Option<&'a str>,
    /// The caller's SPIFFE ID, when known.
    pub spiffe_id: Option<&'a str>,
    /// The request path (HTTP).
    pub path: Option<&'a str>,
    /// The request method (HTTP).
    pub method: Option<&'a str>,
}

/// Whether `path` lies under the path prefix `prefix` on a segment boundary
/// and is in normal form, so that no backend can resolve it to a place the
/// rule does not cover (SECURITY-FINDINGS.md F4).
fn path_matches(prefix: &str, path: &str) -> bool {
    is_normal_path(path)
        && path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/'))
}

fn is_normal_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.starts_with('/')
        && !path.contains('\\')
        && !path.contains("//")
        && !path.split('/').any(|s| s == "." || s == "..")
        && !["%2f", "%2e", "%5c", "%00"]
            .iter()
            .any(|e| lower.contains(e))
}

impl AccessRule {
    /// Whether the rule allows the caller.
    pub fn matches(&self, caller: &Caller<'_>) -> bool {
        (self.trust_domains.is_empty()
            || self.trust_domains.iter().any(|t| t == caller.trust_domain))
            && (self.clusters.is_empty()
                || caller
                    .cluster
                    .is_some_and(|c| self.clusters.iter().any(|x| x.as_str() == c)))
            && (self.spiffe_ids.is_empty()
                || caller
                    .spiffe_id
                    .is_some_and(|s| self.spiffe_ids.iter().any(|x| x == s)))
            && (self.paths.is_empty()
                || caller
                    .path
                    .is_some_and(|p| self.paths.iter().any(|x| path_matches(x, p))))
            && (self.methods.is_empty()
                || caller
                    .method
                    .is_some_and(|m| self.methods.iter().any(|x| x.eq_ignore_ascii_case(m))))
    }
}
