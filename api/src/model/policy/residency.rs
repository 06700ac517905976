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
///
/// A claim is read only from a token the gateway verified: the caller's
/// JWT-SVID (this trust domain's bundle, audience the gateway's SPIFFE ID)
/// or, with `oidc`, a bearer token of that issuer (its JWKS). A token that
/// is presented but does not verify never classifies by the claim it
/// states: `onUnverified` says what happens to the request instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    try_from = "ClassificationFields"
)]
pub struct RequestClassification {
    /// A request header name (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// A claim of the caller's verified JWT-SVID, or of the verified OIDC
    /// token when `oidc` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_claim: Option<String>,
    /// The OIDC issuer whose bearer token (`Authorization: Bearer`) carries
    /// `jwtClaim`; without it the claim is read from the caller's JWT-SVID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcIssuer>,
    /// What a presented token that does not verify (forged, expired, wrong
    /// audience, unknown issuer or key, JWKS unavailable) does to the
    /// request: `deny` refuses it (403), `unclassified` treats it as if no
    /// token were presented. Never classifies it by the claim it states.
    #[serde(default, skip_serializing_if = "OnUnverified::is_default")]
    pub on_unverified: OnUnverified,
    /// The values that select the request.
    #[serde(default)]
    pub values: Vec<String>,
}

/// An OIDC issuer trusted to state a classification claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcIssuer {
    /// The `iss` the token must carry, exactly.
    #[serde(deserialize_with = "deserialize_non_empty")]
    pub issuer: String,
    /// An `aud` the token must list.
    #[serde(deserialize_with = "deserialize_non_empty")]
    pub audience: String,
    /// Where the issuer's JSON Web Key Set is fetched (`http://` or
    /// `https://`); cached, and fetched again for a key id it lacks.
    #[serde(deserialize_with = "deserialize_jwks_url")]
    pub jwks_url: String,
}

/// What a presented but unverifiable token does to a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnUnverified {
    /// Refuse the request (403, reason `unverified_token`).
    #[default]
    Deny,
    /// Route it as if no token had been presented.
    Unclassified,
}

impl OnUnverified {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

fn deserialize_non_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(s)
}

fn deserialize_jwks_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| serde::de::Error::custom("must be an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || rest.contains(char::is_whitespace) {
        return Err(serde::de::Error::custom(
            "must name a host and contain no whitespace",
        ));
    }
    Ok(s)
}

/// The classification as written, checked across fields by `TryFrom`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ClassificationFields {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    jwt_claim: Option<String>,
    #[serde(default)]
    oidc: Option<OidcIssuer>,
    #[serde(default)]
    on_unverified: OnUnverified,
    #[serde(default)]
    values: Vec<String>,
}

impl TryFrom<ClassificationFields> for RequestClassification {
    type Error = String;
    fn try_from(f: ClassificationFields) -> Result<Self, Self::Error> {
        if f.header.is_none() && f.jwt_claim.is_none() {
            return Err("set header or jwtClaim".into());
        }
        if f.oidc.is_some() && f.jwt_claim.is_none() {
            return Err(
                "oidc needs jwtClaim: the claim of the issuer's token to classify by".into(),
            );
        }
        if f.header.as_deref().is_some_and(|h| h.trim().is_empty())
            || f.jwt_claim.as_deref().is_some_and(|c| c.trim().is_empty())
        {
            return Err("header and jwtClaim must not be empty".into());
        }
        Ok(Self {
            header: f.header,
            jwt_claim: f.jwt_claim,
            oidc: f.oidc,
            on_unverified: f.on_unverified,
            values: f.values,
        })
    }
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
