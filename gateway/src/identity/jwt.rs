//! Caller tokens: the source gateway states the calling workload and the
//! residency verdict for the destination gateway in a short JWT, minted per
//! caller, destination trust domain and verdict, reused until half its
//! lifetime. It is signed with the source gateway's X.509-SVID key (ES256;
//! `kid` [`SVID_BOUND_KID`]), so it needs no JWT authority and works in every
//! identity mode: the destination verifies it with the public key of the
//! certificate the peer presented in the mTLS handshake, which also binds
//! the token to that peer.
//!
//! The token's `x5c` header carries the signing SVID's chain. Across an SVID
//! rotation a pooled connection established with the previous SVID carries
//! tokens signed with the new key (and a new connection may carry a token
//! minted just before): when `x5c` is not the leaf of the connection, the
//! destination verifies the `x5c` chain against the bundle of the peer's
//! trust domain and requires its SPIFFE ID to be the peer's, so the token
//! stays bound to the peer gateway's identity, never to another's. Tokens
//! signed by a JWT authority of the caller's
//! trust domain bundle (older gateways) still verify against the bundle.
//! Verified tokens are cached so that a pooled connection does not pay a
//! signature check per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use causeway_trust::jwt::JwtSvidValidator;
use causeway_trust::{BundleStore, PeerPolicy, SpiffeClientVerifier, SpiffeId, X509Svid};
use http::HeaderValue;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rustls_pki_types::{CertificateDer, UnixTime};
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

/// A verified token: its claims, the audience and the peer it was checked
/// for, and until when the result may be reused. Keyed by the token alone so
/// that a lookup borrows the header value (no copy per request); the peer
/// is compared like the audience, and a token from another peer is
/// verified again (replacing the entry).
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

/// Minted tokens by caller, audience and verdict; verified tokens by value
/// and peer.
#[derive(Debug)]
pub struct CallerJwtCache {
    ttl: Duration,
    /// Verifies `x5c` chains that are not the connection's leaf.
    chains: Option<SpiffeClientVerifier>,
    minted: Mutex<HashMap<String, (HeaderValue, Instant)>>,
    verified: Mutex<HashMap<Box<str>, Verified>>,
}

impl CallerJwtCache {
    /// A cache for tokens of lifetime `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            chains: None,
            minted: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies `x5c` chains of tokens signed by a peer's other (previous or
    /// next) SVID against `bundles`.
    pub fn with_bundles(mut self, bundles: BundleStore) -> Self {
        self.chains = Some(SpiffeClientVerifier::new(bundles, PeerPolicy::AnyFederated));
        self
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
        let verdict = serde_json::to_string(residency).unwrap_or_default();
        let leaf = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            svid.leaf_der().as_ref().hash(&mut h);
            h.finish()
        };
        let key = format!("{caller} {trust_domain} {leaf:016x} {verdict}");
        if let Ok(m) = self.minted.lock()
            && let Some((v, refresh_at)) = m.get(&key)
            && now < *refresh_at
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
        header.x5c = Some(
            svid.cert_chain_der()
                .iter()
                .map(|c| base64::engine::general_purpose::STANDARD.encode(c.as_ref()))
                .collect(),
        );
        let der = svid.private_key_der();
        let signing = EncodingKey::from_ec_der(der.secret_der());
        let token = jsonwebtoken::encode(&header, &claims, &signing)
            .map_err(|e| tracing::warn!(error = %e, "cannot sign caller token with the svid key"))
            .ok()?;
        let value = HeaderValue::from_str(&token).ok()?;
        if let Ok(mut m) = self.minted.lock() {
            if m.len() >= MAX_MINTED {
                m.retain(|_, (_, until)| now < *until);
                if m.len() >= MAX_MINTED {
                    m.clear();
                }
            }
            m.insert(key, (value.clone(), now + self.ttl / 2));
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
            && let Some((claims, aud, from, until)) = m.get(token)
            && now < *until
            && &**aud == audience
            && &**from == peer
        {
            return Ok(claims.clone());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        let (claims, expiry) = if header.kid.as_deref() == Some(SVID_BOUND_KID) {
            let peer_leaf = peer_leaf.ok_or(TokenRejection::UnknownKey)?;
            let signer = self.signer(header.x5c.as_deref(), peer, peer_leaf)?;
            verify_svid_bound(token, audience, signer.as_deref().unwrap_or(peer_leaf))?
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
                (claims.clone(), audience.into(), peer.into(), now + keep),
            );
        }
        Ok(claims)
    }
}

impl CallerJwtCache {
    /// The certificate whose key signed an SVID-bound token: `None` for the
    /// connection's own leaf (no `x5c`, or `x5c` naming that leaf), else the
    /// `x5c` leaf once its chain verified against the bundles and its SPIFFE
    /// ID is the peer's.
    fn signer(
        &self,
        x5c: Option<&[String]>,
        peer: &str,
        peer_leaf: &[u8],
    ) -> Result<Option<Vec<u8>>, TokenRejection> {
        let Some(x5c) = x5c else {
            return Ok(None);
        };
        let chain = x5c
            .iter()
            .map(|c| {
                base64::engine::general_purpose::STANDARD
                    .decode(c)
                    .map(CertificateDer::from)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TokenRejection::Malformed)?;
        let Some(leaf) = chain.first() else {
            return Err(TokenRejection::Malformed);
        };
        if leaf.as_ref() == peer_leaf {
            return Ok(None);
        }
        let verifier = self.chains.as_ref().ok_or(TokenRejection::UnknownKey)?;
        let id = verifier
            .verify_chain(leaf, &chain[1..], UnixTime::now())
            .map_err(|_| TokenRejection::UnknownKey)?;
        if id.to_string() != peer {
            return Err(TokenRejection::NotThePeer);
        }
        Ok(Some(leaf.as_ref().to_vec()))
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
