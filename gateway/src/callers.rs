//! Who is calling the egress: the calling workload's SPIFFE ID, in order of
//! strength (a verified JWT-SVID the workload presents, then its source
//! address in a static CIDR map), else the configured default or a refusal.
//! Headers that merely claim an identity are never read.
//!
//! Also the claims a request may be classified by for residency
//! ([`VerifiedClaims`]): only from tokens that verified.

use std::net::IpAddr;
use std::str::FromStr;

use causeway_trust::SpiffeId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::routing::ClaimSource;
use crate::tokens::TokenRejection;

/// `callers:` in the gateway configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CallersConfig {
    /// Source address ranges and the workload each stands for (VM sites,
    /// or pod CIDRs per node/namespace); the longest prefix wins.
    pub by_address: Vec<AddressIdentity>,
    /// A caller neither a JWT-SVID nor the address map identifies:
    /// `default` (the `identity.workloadId`, or the gateway's own ID) or
    /// `refuse` (403 `unknown_caller`).
    pub unknown: UnknownCaller,
}

/// One entry of `callers.byAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressIdentity {
    /// `10.1.0.0/24`, `fd00::/64` or a single address.
    pub cidr: Cidr,
    /// The workload calling from that range.
    pub spiffe_id: SpiffeId,
}

/// What an unidentified caller gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnknownCaller {
    /// The default workload ID.
    #[default]
    Default,
    /// A 403.
    Refuse,
}

/// An address range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = s.split_once('/').map_or((s, None), |(a, p)| (a, Some(p)));
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?}: not an IP address or CIDR"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> Self {
        format!("{}/{}", c.addr, c.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// How the caller was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerSource {
    /// A verified JWT-SVID.
    JwtSvid,
    /// `callers.byAddress`.
    Address,
    /// `callers.unknown: default`.
    Default,
}

impl CallerSource {
    /// For the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JwtSvid => "jwt_svid",
            Self::Address => "address",
            Self::Default => "default",
        }
    }
}

impl CallersConfig {
    /// The workload calling from `ip`: the longest matching prefix.
    pub fn by_address(&self, ip: IpAddr) -> Option<&SpiffeId> {
        self.by_address
            .iter()
            .filter(|e| e.cidr.contains(ip))
            .max_by_key(|e| e.cidr.prefix)
            .map(|e| &e.spiffe_id)
    }
}

/// The claims a request may be classified by: those of the workload's
/// JWT-SVID and of an OIDC token, each only when it verified; and which
/// presented tokens did not.
#[derive(Debug, Default)]
pub struct VerifiedClaims {
    /// The verified JWT-SVID's claims.
    pub svid: Option<Map<String, Value>>,
    /// A JWT-SVID was presented and refused.
    pub svid_rejected: Option<TokenRejection>,
    /// The verified OIDC token: its issuer and claims.
    pub oidc: Option<(String, Map<String, Value>)>,
    /// An OIDC bearer token was presented and refused.
    pub oidc_rejected: Option<TokenRejection>,
}

impl ClaimSource for VerifiedClaims {
    fn any_value(&self, name: &str, pred: &mut dyn FnMut(&str) -> bool) -> bool {
        self.svid.as_ref().is_some_and(|c| c.any_value(name, pred))
    }

    fn any_value_from(
        &self,
        issuer: Option<&str>,
        name: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> bool {
        match issuer {
            None => self.any_value(name, pred),
            Some(i) => self
                .oidc
                .as_ref()
                .is_some_and(|(iss, c)| iss == i && c.any_value(name, pred)),
        }
    }

    fn unverified(&self, issuer: Option<&str>) -> bool {
        match issuer {
            None => self.svid_rejected.is_some(),
            // A bearer token that verified for another issuer is no token of
            // this one; a refused one may have been meant for it.
            Some(_) => self.oidc_rejected.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cidrs_parse_and_match_the_longest_prefix() {
        let c: CallersConfig = serde_json::from_value(serde_json::json!({
            "byAddress": [
                {"cidr": "10.1.0.0/16", "spiffeId": "spiffe://eu.test/vm/any"},
                {"cidr": "10.1.2.0/24", "spiffeId": "spiffe://eu.test/vm/billing"},
                {"cidr": "fd00::/64", "spiffeId": "spiffe://eu.test/vm/v6"},
                {"cidr": "127.0.0.2", "spiffeId": "spiffe://eu.test/vm/one"}
            ],
            "unknown": "refuse"
        }))
        .unwrap();
        let id = |ip: &str| c.by_address(ip.parse().unwrap()).map(|s| s.to_string());
        assert_eq!(
            id("10.1.2.9").as_deref(),
            Some("spiffe://eu.test/vm/billing")
        );
        assert_eq!(id("10.1.3.9").as_deref(), Some("spiffe://eu.test/vm/any"));
        assert_eq!(
            id("::ffff:10.1.2.9").as_deref(),
            Some("spiffe://eu.test/vm/billing")
        );
        assert_eq!(id("fd00::1").as_deref(), Some("spiffe://eu.test/vm/v6"));
        assert_eq!(id("127.0.0.2").as_deref(), Some("spiffe://eu.test/vm/one"));
        assert_eq!(id("127.0.0.3"), None);
        assert_eq!(id("10.2.0.1"), None);
        assert_eq!(c.unknown, UnknownCaller::Refuse);
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .map(|c| c.contains("8.8.8.8".parse().unwrap())),
            Ok(true)
        );
    }

    #[test]
    fn claims_come_only_from_verified_tokens_of_the_named_issuer() {
        let mut m = Map::new();
        m.insert("data_region".into(), Value::from("eu"));
        let c = VerifiedClaims {
            svid: None,
            svid_rejected: Some(TokenRejection::Expired),
            oidc: Some(("https://idp".into(), m)),
            oidc_rejected: None,
        };
        let hit = |issuer| c.any_value_from(issuer, "data_region", &mut |v| v == "eu");
        assert!(hit(Some("https://idp")));
        assert!(!hit(Some("https://other")));
        assert!(!hit(None), "the oidc claim is not a jwt-svid claim");
        assert!(c.unverified(None));
        assert!(!c.unverified(Some("https://idp")));
    }
}
