//! `ResidencyPolicy`: which clusters may serve which traffic.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::selector::ServiceSelector;
use crate::model::ResidencyPolicyKind;
use crate::model::cluster::deserialize_labels;

super::policy_resource!(
    /// A hard filter on the clusters that may serve the selected traffic: a
    /// cluster is allowed when it has any allowed jurisdiction or its region
    /// is allowed. When several residency policies apply to a request, a
    /// cluster must be allowed by every one of them. If no cluster is left,
    /// the request fails (503); failover never widens the set.
    ResidencyPolicy,
    ResidencyPolicyKind,
    ResidencyPolicySpec
);

/// What a residency policy restricts and to where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResidencyPolicySpec {
    /// The services the policy applies to; empty selects every service.
    #[serde(default)]
    pub services: ServiceSelector,
    /// When present, the policy applies only to requests whose header or JWT
    /// claim has one of the listed values.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<RequestClassification>,
    /// Jurisdictions (cluster residency labels) that may serve the traffic.
    #[serde(default, deserialize_with = "deserialize_labels")]
    pub allowed_jurisdictions: Vec<String>,
    /// Regions that may serve the traffic.
    #[serde(default)]
    pub allowed_regions: Vec<String>,
}

impl ResidencyPolicySpec {
    /// Whether a cluster with these jurisdictions and region may serve
    /// traffic governed by this policy.
    pub fn allows(&self, jurisdictions: &[String], region: &str) -> bool {
        jurisdictions
            .iter()
            .any(|j| self.allowed_jurisdictions.contains(j))
            || self.allowed_regions.iter().any(|r| r == region)
    }
}

/// A request classification: a header or a JWT claim and the values that
/// select the request. Exactly one of `header` and `jwtClaim` should be set;
/// when both are, either matching selects the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestClassification {
    /// A request header name (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A claim of the caller's verified JWT-SVID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_claim: Option<String>,
    /// The values that select the request.
    #[serde(default)]
    pub values: Vec<String>,
}

impl RequestClassification {
    /// Whether a request is selected, given lookups of a header value and a
    /// claim value by name.
    pub fn matches<'a>(
        &self,
        header: impl Fn(&str) -> Option<&'a str>,
        claim: impl Fn(&str) -> Option<&'a str>,
    ) -> bool {
        let hit = |v: Option<&str>| v.is_some_and(|v| self.values.iter().any(|x| x == v));
        self.header.as_deref().is_some_and(|h| hit(header(h)))
            || self.jwt_claim.as_deref().is_some_and(|c| hit(claim(c)))
    }
}
