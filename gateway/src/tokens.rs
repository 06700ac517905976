//! Tokens a request presents or carries, verified before anything in them
//! is believed: a workload's JWT-SVID and an OIDC bearer token at the
//! egress, and the caller token one gateway signs for another.
//!
//! Every refusal has a typed [`TokenRejection`] (a log field and the
//! `reason` label of `causeway_gateway_token_rejections_total`); a token
//! that does not verify never contributes a claim.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use causeway_api::model::OidcIssuer;
use causeway_trust::jwt::{JwtError, JwtSvidClaims, JwtSvidValidator};
use causeway_trust::{SpiffeId, TrustDomain};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Leeway on `exp` and `nbf` of OIDC tokens.
const LEEWAY: Duration = Duration::from_secs(30);
/// How long fetched keys are used before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// The least time between two fetches of one JWKS (an unknown `kid` asks
/// for a fetch; a flood of forged kids must not become a flood of fetches).
const JWKS_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// A JWKS body larger than this is garbage.
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// Why a presented token was not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a compact JWS with JSON header and claims.
    #[error("malformed token")]
    Malformed,
    /// `alg: none`.
    #[error("unsigned token (alg none)")]
    AlgNone,
    /// The header's `alg` is not the key's.
    #[error("token alg does not match the key")]
    AlgorithmMismatch,
    /// No key with the token's `kid` (after fetching the keys again).
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// Past `exp`.
    #[error("token expired")]
    Expired,
    /// Before `nbf`.
    #[error("token not yet valid")]
    NotYetValid,
    /// The expected audience is not listed.
    #[error("token is for another audience")]
    WrongAudience,
    /// A required claim (`sub`, `aud`, `exp`, `iss`) is missing.
    #[error("required claim missing")]
    MissingClaim,
    /// A JWT-SVID of another trust domain, or whose trust domain is unknown.
    #[error("token subject is not in the expected trust domain")]
    WrongTrustDomain,
    /// A caller token signed by an SVID (its `x5c`) of another gateway than
    /// the peer that sent it.
    #[error("token signed by another identity than the peer")]
    NotThePeer,
    /// An OIDC token whose `iss` no residency policy trusts.
    #[error("token issuer is not configured")]
    UnconfiguredIssuer,
    /// The issuer's JWKS could not be fetched or parsed, and no earlier
    /// copy is held.
    #[error("issuer keys unavailable")]
    JwksUnavailable,
}

impl TokenRejection {
    /// The metric label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::AlgNone => "alg_none",
            Self::AlgorithmMismatch => "alg_mismatch",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim => "missing_claim",
            Self::WrongTrustDomain => "wrong_trust_domain",
            Self::NotThePeer => "not_the_peer",
            Self::UnconfiguredIssuer => "unconfigured_issuer",
            Self::JwksUnavailable => "jwks_unavailable",
        }
    }
}

impl From<&JwtError> for TokenRejection {
    fn from(e: &JwtError) -> Self {
        match e {
            JwtError::AlgNone => Self::AlgNone,
            JwtError::AlgorithmMismatch { .. } => Self::AlgorithmMismatch,
            JwtError::MissingKid | JwtError::UnknownKid { .. } => Self::UnknownKey,
            JwtError::ForeignKey { .. } | JwtError::UnknownTrustDomain(_) => Self::WrongTrustDomain,
            JwtError::BadSignature => Self::BadSignature,
            JwtError::WrongAudience { .. } => Self::WrongAudience,
            JwtError::Expired { .. } => Self::Expired,
            JwtError::NotYetValid { .. } => Self::NotYetValid,
            JwtError::MissingClaim(_) => Self::MissingClaim,
            _ => Self::Malformed,
        }
    }
}

/// Verifies a workload's JWT-SVID presented to the egress: signed by a key
/// of this trust domain's bundle, for `audience` (this gateway's SPIFFE
/// ID), with a subject in `trust_domain` (a workload behind this gateway).
pub fn verify_workload_svid(
    validator: &JwtSvidValidator,
    token: &str,
    audience: &str,
    trust_domain: &TrustDomain,
) -> Result<JwtSvidClaims, TokenRejection> {
    if header_alg(token).is_some_and(|a| a.eq_ignore_ascii_case("none")) {
        return Err(TokenRejection::AlgNone);
    }
    let claims = validator
        .validate(token, audience)
        .map_err(|e| TokenRejection::from(&e))?;
    if claims.spiffe_id.trust_domain() != trust_domain {
        return Err(TokenRejection::WrongTrustDomain);
    }
    Ok(claims)
}

/// The unverified payload of a compact JWS: only to find which verifier a
/// token is for (its `iss`, or a `sub` that is a SPIFFE ID), never believed.
pub fn peek_claims(token: &str) -> Option<Map<String, Value>> {
    let mut parts = token.split('.');
    let (_, Some(claims), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(claims).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn header(token: &str) -> Option<Map<String, Value>> {
    let h = token.split('.').next()?;
    let bytes = URL_SAFE_NO_PAD.decode(h).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn header_alg(token: &str) -> Option<String> {
    header(token)?.get("alg")?.as_str().map(str::to_owned)
}

/// Whether a bearer token looks like a JWT-SVID (its unverified `sub` is a
/// SPIFFE ID): routed to the JWT-SVID verifier, not to an OIDC issuer.
pub fn looks_like_svid(token: &str) -> bool {
    peek_claims(token)
        .and_then(|c| c.get("sub").and_then(|s| s.as_str().map(SpiffeId::new)))
        .is_some_and(|r| r.is_ok())
}

/// One issuer's fetched keys.
#[derive(Debug)]
struct Keys {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// JWKS of the configured OIDC issuers, fetched on first use, again after
/// [`JWKS_TTL`] and when a token names a key id the set lacks (rotation).
/// A failed fetch keeps the last good set.
#[derive(Debug)]
pub struct JwksCache {
    keys: Mutex<HashMap<String, Keys>>,
    min_interval: Duration,
}

impl Default for JwksCache {
    fn default() -> Self {
        Self {
            keys: Mutex::default(),
            min_interval: JWKS_MIN_INTERVAL,
        }
    }
}

/// Which fetch a lookup needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    None,
    Refresh,
}

impl JwksCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the least time between two fetches of one JWKS (tests).
    pub fn with_min_interval(mut self, d: Duration) -> Self {
        self.min_interval = d;
        self
    }

    fn lookup(&self, url: &str, kid: Option<&str>) -> (Option<jsonwebtoken::jwk::Jwk>, Need) {
        let Ok(m) = self.keys.lock() else {
            return (None, Need::None);
        };
        let now = Instant::now();
        let Some(k) = m.get(url) else {
            return (None, Need::Refresh);
        };
        let may_fetch = k
            .attempted
            .is_none_or(|t| now.duration_since(t) >= self.min_interval);
        let stale = k.fetched.is_none_or(|t| now.duration_since(t) >= JWKS_TTL);
        let found = k.set.as_ref().and_then(|s| match kid {
            Some(kid) => s.find(kid).cloned(),
            None if s.keys.len() == 1 => s.keys.first().cloned(),
            None => None,
        });
        let need = if may_fetch && (stale || found.is_none()) {
            Need::Refresh
        } else {
            Need::None
        };
        (found, need)
    }

    async fn fetch(&self, url: &str) {
        if let Ok(mut m) = self.keys.lock() {
            let e = m.entry(url.to_owned()).or_insert(Keys {
                set: None,
                fetched: None,
                attempted: None,
            });
            e.attempted = Some(Instant::now());
        }
        match fetch_jwks(url).await {
            Ok(set) => {
                tracing::info!(url, keys = set.keys.len(), "jwks fetched");
                if let Ok(mut m) = self.keys.lock()
                    && let Some(e) = m.get_mut(url)
                {
                    e.set = Some(set);
                    e.fetched = Some(Instant::now());
                }
            }
            Err(e) => {
                tracing::warn!(url, error = %e, "jwks fetch failed; keeping the last good keys")
            }
        }
    }

    /// Verifies an OIDC bearer token against the issuer that `iss` names
    /// among `issuers`: the key by `kid` from its JWKS (fetched again once
    /// when the kid is unknown), the algorithm from the key, `iss`, `aud`,
    /// `exp` and `nbf`. Returns the issuer and the claims.
    pub async fn verify<'a>(
        &self,
        token: &str,
        issuers: &'a [OidcIssuer],
    ) -> Result<(&'a OidcIssuer, Map<String, Value>), TokenRejection> {
        let h = header(token).ok_or(TokenRejection::Malformed)?;
        let alg = h
            .get("alg")
            .and_then(|a| a.as_str())
            .ok_or(TokenRejection::Malformed)?;
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenRejection::AlgNone);
        }
        let kid = h.get("kid").and_then(|k| k.as_str());
        let peeked = peek_claims(token).ok_or(TokenRejection::Malformed)?;
        let iss = peeked
            .get("iss")
            .and_then(|i| i.as_str())
            .ok_or(TokenRejection::MissingClaim)?;
        let issuer = issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or(TokenRejection::UnconfiguredIssuer)?;
        let (mut jwk, need) = self.lookup(&issuer.jwks_url, kid);
        if need == Need::Refresh {
            self.fetch(&issuer.jwks_url).await;
            jwk = self.lookup(&issuer.jwks_url, kid).0;
        }
        let jwk = match jwk {
            Some(j) => j,
            None => {
                let held = self
                    .keys
                    .lock()
                    .ok()
                    .is_some_and(|m| m.get(&issuer.jwks_url).is_some_and(|k| k.set.is_some()));
                return Err(if held {
                    TokenRejection::UnknownKey
                } else {
                    TokenRejection::JwksUnavailable
                });
            }
        };
        let key_alg = jwk_algorithm(&jwk).ok_or(TokenRejection::UnknownKey)?;
        if format!("{key_alg:?}") != alg {
            return Err(TokenRejection::AlgorithmMismatch);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenRejection::UnknownKey)?;
        let mut v = Validation::new(key_alg);
        v.leeway = LEEWAY.as_secs();
        v.validate_nbf = true;
        v.set_audience(&[&issuer.audience]);
        v.set_issuer(&[&issuer.issuer]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenRejection::BadSignature,
                K::ExpiredSignature => TokenRejection::Expired,
                K::ImmatureSignature => TokenRejection::NotYetValid,
                K::InvalidAudience => TokenRejection::WrongAudience,
                K::InvalidIssuer => TokenRejection::UnconfiguredIssuer,
                K::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
                K::InvalidAlgorithm => TokenRejection::AlgorithmMismatch,
                _ => TokenRejection::Malformed,
            }
        })?;
        Ok((issuer, data.claims))
    }
}

/// The algorithm a JWK is for: its `alg` when stated, else the one its key
/// type implies (EC P-256 → ES256, P-384 → ES384, RSA → RS256, Ed25519 →
/// EdDSA). Never the token's choice.
fn jwk_algorithm(jwk: &jsonwebtoken::jwk::Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    if let Some(a) = jwk.common.key_algorithm {
        return match a {
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::ES384 => Some(Algorithm::ES384),
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::RS384 => Some(Algorithm::RS384),
            KeyAlgorithm::RS512 => Some(Algorithm::RS512),
            KeyAlgorithm::PS256 => Some(Algorithm::PS256),
            KeyAlgorithm::PS384 => Some(Algorithm::PS384),
            KeyAlgorithm::PS512 => Some(Algorithm::PS512),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            _ => None,
        };
    }
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// GETs and parses a JWKS (`http://` or `https://` against the system CAs).
async fn fetch_jwks(url: &str) -> Result<JwkSet, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("not an http(s) url")?;
    let split = rest.find('/').unwrap_or(rest.len());
    let base = &url[..url.len() - rest.len() + split];
    let path = if split == rest.len() {
        "/"
    } else {
        &rest[split..]
    };
    let client = causeway_api::client::Client::new(base, None).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        client.raw(http::Method::GET, path, None, &[]),
    )
    .await
    .map_err(|_| "timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    if !resp.status.is_success() {
        return Err(format!("status {}", resp.status));
    }
    if resp.body.len() > JWKS_MAX_BYTES {
        return Err("jwks too large".into());
    }
    let set: JwkSet = serde_json::from_slice(&resp.body).map_err(|e| format!("not a jwks: {e}"))?;
    if set.keys.is_empty() {
        return Err("jwks has no keys".into());
    }
    Ok(set)
}

#[cfg(test)]
mod tests;
