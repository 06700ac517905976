//! Residency policies compiled for the snapshot: which clusters each policy
//! allows (precomputed) and whether a request is classified by it.

use std::sync::Arc;

use causeway_api::model::{OidcIssuer, OnUnverified, ResidencyPolicy, ServiceSelector};
use serde::{Deserialize, Serialize};

use super::request::{HeaderSource, RouteRequest};
use super::snapshot::ClusterEntry;

/// A request classification: header and/or claim and the selecting values.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    pub(crate) header: Option<Box<str>>,
    pub(crate) claim: Option<Box<str>>,
    /// The OIDC issuer whose token carries `claim` (`None`: the JWT-SVID).
    pub(crate) issuer: Option<Box<str>>,
    pub(crate) on_unverified: OnUnverified,
    pub(crate) values: Box<[Box<str>]>,
}

impl Matcher {
    /// Whether `value` selects the request. Deliberately broad, since a
    /// policy that applies can only narrow the allowed set: ASCII
    /// case-insensitive, surrounding whitespace ignored, and each element of
    /// a comma-separated list is tested too.
    fn hit(&self, value: &str) -> bool {
        let eq = |v: &str| {
            let v = v.trim();
            self.values.iter().any(|x| x.eq_ignore_ascii_case(v))
        };
        eq(value) || (value.contains(',') && value.split(',').any(eq))
    }

    pub(crate) fn matches(&self, req: &RouteRequest<'_>) -> bool {
        if self.values.is_empty() {
            return false;
        }
        if let Some(h) = &self.header
            && req.headers.any_value(h, &mut |v| self.hit(v))
        {
            return true;
        }
        if let (Some(c), Some(claims)) = (&self.claim, req.claims)
            && claims.any_value_from(self.issuer.as_deref(), c, &mut |v| self.hit(v))
        {
            return true;
        }
        false
    }

    /// Whether the request must be refused: it presented the token this
    /// matcher reads its claim from, the token did not verify, and the
    /// policy says `onUnverified: deny`.
    pub(crate) fn refuses_unverified(&self, req: &RouteRequest<'_>) -> bool {
        self.claim.is_some()
            && self.on_unverified == OnUnverified::Deny
            && req
                .claims
                .is_some_and(|c| c.unverified(self.issuer.as_deref()))
    }
}

/// One residency policy, compiled against the snapshot's clusters.
#[derive(Debug, Clone)]
pub(crate) struct ResidencyRule {
    pub(crate) name: Arc<str>,
    pub(crate) services: ServiceSelector,
    pub(crate) matcher: Option<Matcher>,
    pub(crate) allowed_jurisdictions: Vec<String>,
    pub(crate) allowed_regions: Vec<String>,
    /// The OIDC issuer the classification trusts, if any.
    pub(crate) oidc: Option<OidcIssuer>,
    /// Indexed by the snapshot's cluster index.
    allowed: Vec<bool>,
}

impl ResidencyRule {
    pub(crate) fn compile(p: &ResidencyPolicy, clusters: &[ClusterEntry]) -> Self {
        let spec = &p.spec;
        let allowed = clusters
            .iter()
            .map(|c| spec.allows(&c.jurisdictions, &c.region))
            .collect();
        Self {
            name: Arc::from(p.name().as_str()),
            services: spec.services.clone(),
            matcher: spec.match_.as_ref().map(|m| Matcher {
                header: m.header.as_deref().map(Box::from),
                claim: m.jwt_claim.as_deref().map(Box::from),
                issuer: m.oidc.as_ref().map(|o| Box::from(o.issuer.as_str())),
                on_unverified: m.on_unverified,
                values: m.values.iter().map(|v| Box::from(v.as_str())).collect(),
            }),
            allowed_jurisdictions: spec.allowed_jurisdictions.clone(),
            allowed_regions: spec.allowed_regions.clone(),
            oidc: spec.match_.as_ref().and_then(|m| m.oidc.clone()),
            allowed,
        }
    }

    /// Whether a cluster with these jurisdictions and region may serve
    /// traffic governed by this rule (the same test as `allows`, for a
    /// cluster the snapshot may not list).
    pub(crate) fn allows_locality(&self, jurisdictions: &[String], region: &str) -> bool {
        jurisdictions
            .iter()
            .any(|j| self.allowed_jurisdictions.contains(j))
            || self.allowed_regions.iter().any(|r| r == region)
    }

    /// Whether the cluster with snapshot index `cluster` may serve traffic
    /// governed by this rule.
    pub(crate) fn allows(&self, cluster: u32) -> bool {
        self.allowed.get(cluster as usize).copied().unwrap_or(false)
    }
}

/// One residency policy that governed a request, as the source gateway
/// states it in the caller token for the destination: the destination
/// refuses the request unless it is allowed by every entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidencyVerdict {
    /// The policy's name.
    pub policy: String,
    /// Its allowed jurisdictions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jurisdictions: Vec<String>,
    /// Its allowed regions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
}

impl ResidencyVerdict {
    /// Whether a cluster with these jurisdictions and region may serve the
    /// request.
    pub fn allows(&self, jurisdictions: &[String], region: &str) -> bool {
        jurisdictions.iter().any(|j| self.jurisdictions.contains(j))
            || self.regions.iter().any(|r| r == region)
    }
}
