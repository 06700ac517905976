//! Caller JWT-SVIDs: minted by the source gateway once per destination trust
//! domain and reused until half their lifetime, validated by the destination
//! gateway against the bundle of the caller's trust domain (with a small
//! cache so that a pooled connection does not pay a signature check per
//! request).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use causeway_trust::jwt::JwtSvidValidator;
use causeway_trust::{Authority, SpiffeId};
use http::HeaderValue;

const MAX_VERIFIED: usize = 4096;

/// A verified token: its subject, the audience it was checked for, and
/// until when the result may be reused.
type Verified = (SpiffeId, Box<str>, Instant);

/// Minted tokens by audience, and verified tokens by value.
#[derive(Debug)]
pub struct CallerJwtCache {
    ttl: Duration,
    minted: Mutex<HashMap<Arc<str>, (HeaderValue, Instant)>>,
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

    /// A token stating `workload` for the destination trust domain
    /// `trust_domain` (audience `spiffe://<trust_domain>`), minted by
    /// `authority` or reused from the cache. `None` without an authority or
    /// on failure.
    pub fn token(
        &self,
        authority: Option<&Authority>,
        workload: &SpiffeId,
        trust_domain: &Arc<str>,
    ) -> Option<HeaderValue> {
        let now = Instant::now();
        if let Ok(m) = self.minted.lock()
            && let Some((v, refresh_at)) = m.get(trust_domain)
            && now < *refresh_at
        {
            return Some(v.clone());
        }
        let authority = authority?;
        let audience = format!("spiffe://{trust_domain}");
        let svid = authority
            .issue_jwt_svid_with_ttl(workload, &[audience.as_str()], self.ttl)
            .map_err(|e| tracing::warn!(error = %e, "cannot mint caller jwt-svid"))
            .ok()?;
        let value = HeaderValue::from_str(svid.token()).ok()?;
        if let Ok(mut m) = self.minted.lock() {
            m.insert(trust_domain.clone(), (value.clone(), now + self.ttl / 2));
        }
        Some(value)
    }

    /// Validates `token` for `audience`; the SPIFFE ID it states.
    pub fn verify(
        &self,
        validator: &JwtSvidValidator,
        token: &str,
        audience: &str,
    ) -> Result<SpiffeId, String> {
        let now = Instant::now();
        if let Ok(m) = self.verified.lock()
            && let Some((id, aud, until)) = m.get(token)
            && now < *until
            && &**aud == audience
        {
            return Ok(id.clone());
        }
        let claims = validator
            .validate(token, audience)
            .map_err(|e| e.to_string())?;
        let remaining = claims.expiry - time::OffsetDateTime::now_utc();
        let keep = Duration::try_from(remaining)
            .unwrap_or_default()
            .min(self.ttl);
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= MAX_VERIFIED {
                m.retain(|_, (_, _, until)| now < *until);
                if m.len() >= MAX_VERIFIED {
                    m.clear();
                }
            }
            m.insert(
                token.into(),
                (claims.spiffe_id.clone(), audience.into(), now + keep),
            );
        }
        Ok(claims.spiffe_id)
    }
}
