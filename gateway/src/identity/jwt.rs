//! Caller tokens: the source gateway states the calling workload and the
//! residency verdict for the destination gateway in a short JWT, minted per
//! caller, destination trust domain and verdict, reused until half its
//! lifetime. It is signed with the source gateway's X.509-SVID key (ES256;
//! `kid` [`SVID_BOUND_KID`]), so it needs no JWT authority and works in every
//! identity mode: the destination verifies it with the public key of the
//! certificate the peer presented in the mTLS handshake, which also binds
//! the token to that peer. Tokens signed by a JWT authority of the caller's
//! trust domain bundle (older gateways) still verify against the bundle.
//! Verified tokens are cached so that a pooled connection does not pay a
//! signature check per request.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use causeway_trust::jwt::JwtSvidValidator;
use causeway_trust::{SpiffeId, X509Svid};
use http::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::routing::ResidencyVerdict;
use crate::tokens::TokenRejection;

const MAX_VERIFIED: usize = 4096;
const MAX_MINTED: usize = 4096;

/// The `kid` of a caller token signed with the source gateway's X.509-SVID
/// key.
pub const SVID_BOUND_KID: &str = "causeway-x509-svid";

/// A verified caller token: who called and under which residency verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerClaims {
    /// The calling workload.
    pub caller: SpiffeId,
    /// The residency policies that governed the request at the source,
    /// with what each allows; empty when none did.
    pub residency: Vec<ResidencyVerdict>,
}

/// A verified token: its claims, the peer and audience it was checked for,
/// and until when the result may be reused. Keyed by the token alone so that
/// a lookup borrows the header value (no copy per request); the peer is
/// compared like the audience, and a token from another peer is verified
/// again (replacing the entry).
type Verified = (CallerClaims, Box<str>, Box<str>, Instant);

#[derive(Serialize, Deserialize)]
struct TokenClaims {
    sub: String,
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        rename = "causeway_residency"
    )]
    residency: Vec<ResidencyVerdict>,
}

/// What a minted token states. The cache keys it by its hash and compares
/// it in full, so that a lookup (once per request) neither formats nor
/// allocates; a hash collision is a miss that replaces the entry.
#[derive(Debug)]
struct MintKey {
    caller: SpiffeId,
    trust_domain: Box<str>,
    not_before: i64,
    residency: Vec<ResidencyVerdict>,
}

impl MintKey {
    fn hash_of(
        caller: &SpiffeId,
        trust_domain: &str,
        not_before: i64,
        residency: &[ResidencyVerdict],
    ) -> u64 {
        let mut h = DefaultHasher::new();
        caller.hash(&mut h);
        trust_domain.hash(&mut h);
        not_before.hash(&mut h);
        // Verdicts are not `Hash`; their policies spread them well enough
        // (the full comparison follows).
        residency.len().hash(&mut h);
        for v in residency {
            v.policy.hash(&mut h);
        }
        h.finish()
    }

    fn is(
        &self,
        caller: &SpiffeId,
        trust_domain: &str,
        not_before: i64,
        residency: &[ResidencyVerdict],
    ) -> bool {
        self.not_before == not_before
            && &*self.trust_domain == trust_domain
            && self.caller == *caller
            && self.residency == residency
    }
}

/// A minted token: what it states, its header value, when to mint anew.
type Minted = (MintKey, HeaderValue, Instant);

/// Minted tokens by caller, audience and verdict; verified tokens by value
/// and peer.
#[derive(Debug)]
pub struct CallerJwtCache {
    ttl: Duration,
    minted: Mutex<HashMap<u64, Minted>>,
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

impl CallerJwtCache {
    /// A cache for tokens of lifetime `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            minted: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// A token stating `caller` and `residency` for the destination trust
    /// domain `trust_domain` (audience `spiffe://<trust_domain>`), signed
    /// with `svid`'s key or reused from the cache. `None` when the key
    /// cannot sign ES256 (only EC P-256 SVID keys can).
    pub fn token(
        &self,
        svid: &X509Svid,
        caller: &SpiffeId,
        trust_domain: &str,
        residency: &[ResidencyVerdict],
    ) -> Option<HeaderValue> {
        let now = Instant::now();
        let not_before = svid.not_before().unix_timestamp();
        let hash = MintKey::hash_of(caller, trust_domain, not_before, residency);
        if let Ok(m) = self.minted.lock()
            && let Some((k, v, refresh_at)) = m.get(&hash)
            && now < *refresh_at
            && k.is(caller, trust_domain, not_before, residency)
        {
            return Some(v.clone());
        }
        let iat = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = TokenClaims {
            sub: caller.to_string(),
            aud: vec![format!("spiffe://{trust_domain}")],
            exp: iat + i64::try_from(self.ttl.as_secs()).unwrap_or(300),
            iat,
            residency: residency.to_vec(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(SVID_BOUND_KID.to_owned());
        let der = svid.private_key_der();
        let signing = EncodingKey::from_ec_der(der.secret_der());
        let token = jsonwebtoken::encode(&header, &claims, &signing)
            .map_err(|e| tracing::warn!(error = %e, "cannot sign caller token with the svid key"))
            .ok()?;
        let value = HeaderValue::from_str(&token).ok()?;
        if let Ok(mut m) = self.minted.lock() {
            if m.len() >= MAX_MINTED {
                m.retain(|_, (_, _, until)| now < *until);
                if m.len() >= MAX_MINTED {
                    m.clear();
                }
            }
            let key = MintKey {
                caller: caller.clone(),
                trust_domain: trust_domain.into(),
                not_before,
                residency: residency.to_vec(),
            };
            m.insert(hash, (key, value.clone(), now + self.ttl / 2));
        }
        Some(value)
    }

    /// Verifies a caller token sent by the peer gateway `peer` whose
    /// handshake presented `peer_leaf` (DER), for `audience`: signed with the
    /// leaf's key ([`SVID_BOUND_KID`]) or, otherwise, by a JWT authority of
    /// the subject's trust domain bundle.
    pub fn verify_caller(
        &self,
        validator: &JwtSvidValidator,
        token: &str,
        audience: &str,
        peer: &str,
        peer_leaf: Option<&[u8]>,
    ) -> Result<CallerClaims, TokenRejection> {
        let now = Instant::now();
        if let Ok(m) = self.verified.lock()
            && let Some((claims, by, aud, until)) = m.get(token)
            && now < *until
            && &**by == peer
            && &**aud == audience
        {
            return Ok(claims.clone());
        }
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenRejection::Malformed)?
            .kid;
        let (claims, expiry) = if kid.as_deref() == Some(SVID_BOUND_KID) {
            verify_svid_bound(
                token,
                audience,
                peer_leaf.ok_or(TokenRejection::UnknownKey)?,
            )?
        } else {
            let c = validator
                .validate(token, audience)
                .map_err(|e| TokenRejection::from(&e))?;
            let residency = c
                .raw
                .get("causeway_residency")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            (
                CallerClaims {
                    caller: c.spiffe_id,
                    residency,
                },
                c.expiry.unix_timestamp(),
            )
        };
        let remaining = expiry - time::OffsetDateTime::now_utc().unix_timestamp();
        let keep = Duration::from_secs(u64::try_from(remaining).unwrap_or(0)).min(self.ttl);
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= MAX_VERIFIED {
                m.retain(|_, (_, _, _, until)| now < *until);
                if m.len() >= MAX_VERIFIED {
                    m.clear();
                }
            }
            m.insert(
                token.into(),
                (claims.clone(), peer.into(), audience.into(), now + keep),
            );
        }
        Ok(claims)
    }
}

/// Verifies a token signed with the key of the certificate `leaf` (an EC
/// P-256 X.509-SVID): ES256 only, the audience, `exp` (30 s leeway).
fn verify_svid_bound(
    token: &str,
    audience: &str,
    leaf: &[u8],
) -> Result<(CallerClaims, i64), TokenRejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
    if header.alg != Algorithm::ES256 {
        return Err(TokenRejection::AlgorithmMismatch);
    }
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|_| TokenRejection::UnknownKey)?;
    let point = &cert.tbs_certificate.subject_pki.subject_public_key.data;
    // An uncompressed P-256 point: 0x04 || x (32) || y (32).
    if point.len() != 65 || point[0] != 4 {
        return Err(TokenRejection::UnknownKey);
    }
    let key = DecodingKey::from_ec_components(
        &URL_SAFE_NO_PAD.encode(&point[1..33]),
        &URL_SAFE_NO_PAD.encode(&point[33..]),
    )
    .map_err(|_| TokenRejection::UnknownKey)?;
    let mut v = Validation::new(Algorithm::ES256);
    v.leeway = 30;
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "aud", "sub"]);
    let data = jsonwebtoken::decode::<TokenClaims>(token, &key, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => TokenRejection::BadSignature,
            K::ExpiredSignature => TokenRejection::Expired,
            K::ImmatureSignature => TokenRejection::NotYetValid,
            K::InvalidAudience => TokenRejection::WrongAudience,
            K::MissingRequiredClaim(_) => TokenRejection::MissingClaim,
            K::InvalidAlgorithm => TokenRejection::AlgorithmMismatch,
            _ => TokenRejection::Malformed,
        }
    })?;
    let caller = SpiffeId::new(&data.claims.sub).map_err(|_| TokenRejection::Malformed)?;
    Ok((
        CallerClaims {
            caller,
            residency: data.claims.residency,
        },
        data.claims.exp,
    ))
}
