//! JWT-SVID validation.
//!
//! The signing key is looked up by the header's `kid` in the bundle of the
//! trust domain of the `sub` claim. The algorithm comes from that key (ES256
//! for EC P-256), never from the token: a header that names another
//! algorithm, or `none`, is rejected.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::bundle::BundleStore;
use crate::clock::{Clock, SystemClock};
use crate::id::{SpiffeId, SpiffeIdError, TrustDomain};

/// Default leeway on `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Why a JWT-SVID was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS with three base64url parts and JSON header/claims.
    #[error("malformed token: {0}")]
    Malformed(String),
    /// The header says `alg: none`.
    #[error("unsigned token (alg none) rejected")]
    AlgNone,
    /// The header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// A required claim (`sub`, `aud` or `exp`) is missing.
    #[error("required claim {0:?} is missing")]
    MissingClaim(&'static str),
    /// The `sub` claim is not a SPIFFE ID.
    #[error("sub {sub:?} is not a spiffe id: {source}")]
    InvalidSubject {
        /// The claim.
        sub: String,
        /// The rule it breaks.
        #[source]
        source: SpiffeIdError,
    },
    /// No bundle is held for the subject's trust domain.
    #[error("trust domain {0} is not federated")]
    UnknownTrustDomain(TrustDomain),
    /// The `kid` is not in the subject's trust domain bundle, but in another
    /// trust domain's: a key of one domain tried to speak for another.
    #[error(
        "kid {kid:?} belongs to {key_trust_domain}, not to the subject's {subject_trust_domain}"
    )]
    ForeignKey {
        /// The key id.
        kid: String,
        /// Trust domain of `sub`.
        subject_trust_domain: TrustDomain,
        /// Trust domain whose bundle holds the key.
        key_trust_domain: TrustDomain,
    },
    /// The `kid` is in no bundle.
    #[error("kid {kid:?} is not in the bundle of {trust_domain}")]
    UnknownKid {
        /// The key id.
        kid: String,
        /// Trust domain of `sub`.
        trust_domain: TrustDomain,
    },
    /// The header's `alg` differs from the key's algorithm.
    #[error("token alg {header:?} does not match the key's {key}")]
    AlgorithmMismatch {
        /// `alg` in the header.
        header: String,
        /// The key's algorithm.
        key: String,
    },
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// The token does not list the expected audience.
    #[error("audience {expected:?} not in token audience {found:?}")]
    WrongAudience {
        /// The audience asked for.
        expected: String,
        /// The token's audience.
        found: Vec<String>,
    },
    /// `exp` (plus leeway) is in the past.
    #[error("token expired at {expired_at}")]
    Expired {
        /// The `exp` claim.
        expired_at: OffsetDateTime,
    },
    /// `nbf` (minus leeway) is in the future.
    #[error("token not valid before {not_before}")]
    NotYetValid {
        /// The `nbf` claim.
        not_before: OffsetDateTime,
    },
}

/// The claims of a validated JWT-SVID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSvidClaims {
    /// The subject.
    pub spiffe_id: SpiffeId,
    /// The audience.
    pub audience: Vec<String>,
    /// `exp`.
    pub expiry: OffsetDateTime,
    /// `iat`, if present.
    pub issued_at: Option<OffsetDateTime>,
    /// All claims as sent.
    pub raw: serde_json::Map<String, Value>,
}

/// Validates JWT-SVIDs against the bundles in a [`BundleStore`].
#[derive(Debug, Clone)]
pub struct JwtSvidValidator {
    store: BundleStore,
    leeway: Duration,
    clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    aud: Option<Audience>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
}

impl JwtSvidValidator {
    /// A validator over `store`, using the system clock and a 30 s leeway.
    pub fn new(store: BundleStore) -> Self {
        Self {
            store,
            leeway: DEFAULT_LEEWAY,
            clock: Arc::new(SystemClock),
        }
    }

    /// Sets the leeway applied to `exp` and `nbf`.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Reads the time from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates `token` for `audience` and returns its claims.
    pub fn validate(&self, token: &str, audience: &str) -> Result<JwtSvidClaims, JwtError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(_sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        };
        let header: serde_json::Map<String, Value> = decode_part(header_b64, "header")?;
        let alg = match header.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => return Err(JwtError::Malformed("header has no alg".into())),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(JwtError::AlgNone);
        }
        let kid = match header.get("kid") {
            Some(Value::String(kid)) if !kid.is_empty() => kid.clone(),
            _ => return Err(JwtError::MissingKid),
        };
        let raw: serde_json::Map<String, Value> = decode_part(claims_b64, "claims")?;
        let claims: Claims = serde_json::from_value(Value::Object(raw.clone()))
            .map_err(|e| JwtError::Malformed(format!("claims: {e}")))?;
        let sub = claims.sub.ok_or(JwtError::MissingClaim("sub"))?;
        let spiffe_id = SpiffeId::new(&sub).map_err(|source| JwtError::InvalidSubject {
            sub: sub.clone(),
            source,
        })?;
        let trust_domain = spiffe_id.trust_domain().clone();
        let set = self.store.load();
        let Some(bundle) = set.get(&trust_domain) else {
            return Err(JwtError::UnknownTrustDomain(trust_domain));
        };
        let Some(key) = bundle.jwt_authority(&kid) else {
            if let Some((other, _)) = set.iter().find(|(_, b)| b.jwt_authority(&kid).is_some()) {
                return Err(JwtError::ForeignKey {
                    kid,
                    subject_trust_domain: trust_domain,
                    key_trust_domain: other.clone(),
                });
            }
            return Err(JwtError::UnknownKid { kid, trust_domain });
        };
        let key_alg = key.algorithm();
        if alg != format!("{key_alg:?}") {
            return Err(JwtError::AlgorithmMismatch {
                header: alg,
                key: format!("{key_alg:?}"),
            });
        }
        let decoding_key = jsonwebtoken::DecodingKey::from_ec_components(key.x(), key.y())
            .map_err(|_| JwtError::BadSignature)?;
        let mut validation = jsonwebtoken::Validation::new(key_alg);
        // Time is checked below against the injected clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &decoding_key, &validation)
            .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => JwtError::BadSignature,
            other => JwtError::Malformed(format!("{other:?}")),
        })?;
        let found = match claims.aud.ok_or(JwtError::MissingClaim("aud"))? {
            Audience::One(a) => vec![a],
            Audience::Many(a) => a,
        };
        if !found.iter().any(|a| a == audience) {
            return Err(JwtError::WrongAudience {
                expected: audience.to_owned(),
                found,
            });
        }
        let exp = claims.exp.ok_or(JwtError::MissingClaim("exp"))?;
        let expiry = timestamp(exp)?;
        let now = self.clock.now();
        if now > expiry + self.leeway {
            return Err(JwtError::Expired { expired_at: expiry });
        }
        if let Some(nbf) = claims.nbf {
            let not_before = timestamp(nbf)?;
            if now + self.leeway < not_before {
                return Err(JwtError::NotYetValid { not_before });
            }
        }
        Ok(JwtSvidClaims {
            spiffe_id,
            audience: found,
            expiry,
            issued_at: claims.iat.map(timestamp).transpose()?,
            raw,
        })
    }
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str, what: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| JwtError::Malformed(format!("{what}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| JwtError::Malformed(format!("{what}: {e}")))
}

fn timestamp(secs: i64) -> Result<OffsetDateTime, JwtError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| JwtError::Malformed(format!("timestamp {secs}: {e}")))
}
