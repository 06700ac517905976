//! A per-trust-domain certificate authority that issues X.509-SVIDs and
//! JWT-SVIDs and rotates its keys with an injected [`Clock`].
//!
//! # Rotation
//!
//! The authority holds *slots*. Each slot is one CA certificate (ECDSA P-256)
//! plus one JWT signing key (ES256). Rotation follows SPIRE's shape:
//!
//! 1. **prepare**: a new slot is generated and published in the bundle
//!    (sequence bumped) at least [`AuthorityConfig::prepare_ahead`] (default
//!    three refresh hints) before it signs anything, so that every peer has
//!    fetched it by the time the first SVID it signed is presented;
//! 2. **activate**: at half the active CA's lifetime (and not before the
//!    prepared slot has been published for `prepare_ahead`), the prepared
//!    slot starts signing; the old one signs nothing more;
//! 3. **retire**: the old slot leaves the bundle (sequence bumped) only once
//!    the last SVID it signed has expired (plus
//!    [`AuthorityConfig::retire_grace`]).
//!
//! [`Authority::tick`] drives these steps from the clock; call it
//! periodically (e.g. every refresh hint).

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::bundle::{Bundle, BundleError, JwtAuthority};
use crate::clock::{Clock, SystemClock};
use crate::id::{SpiffeId, TrustDomain};

mod error;
mod persist;
mod svid;

pub use error::AuthorityError;
pub use svid::{JwtSvid, SvidError, X509Svid};

/// Settings of an [`Authority`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthorityConfig {
    /// Lifetime of each CA certificate.
    #[serde(with = "secs")]
    pub ca_ttl: Duration,
    /// Default lifetime of X.509-SVIDs (capped by the signing CA's expiry).
    #[serde(with = "secs")]
    pub x509_svid_ttl: Duration,
    /// Default lifetime of JWT-SVIDs.
    #[serde(with = "secs")]
    pub jwt_svid_ttl: Duration,
    /// `spiffe_refresh_hint` published in the bundle.
    #[serde(with = "secs")]
    pub refresh_hint: Duration,
    /// How long a new slot is published before it signs; `None` means three
    /// refresh hints.
    #[serde(with = "opt_secs")]
    pub prepare_ahead: Option<Duration>,
    /// Extra time an old slot stays in the bundle after its last SVID
    /// expired (covers verifier skew and JWT leeway).
    #[serde(with = "secs")]
    pub retire_grace: Duration,
    /// How far `not_before` is backdated on issued certificates, to tolerate
    /// clock skew between peers.
    #[serde(with = "secs")]
    pub backdate: Duration,
}

impl Default for AuthorityConfig {
    fn default() -> Self {
        Self {
            ca_ttl: Duration::from_secs(24 * 3600),
            x509_svid_ttl: Duration::from_secs(3600),
            jwt_svid_ttl: Duration::from_secs(300),
            refresh_hint: Duration::from_secs(300),
            prepare_ahead: None,
            retire_grace: Duration::from_secs(60),
            backdate: Duration::from_secs(10),
        }
    }
}

impl AuthorityConfig {
    /// The effective prepare-ahead time (default three refresh hints).
    pub fn prepare_ahead(&self) -> Duration {
        self.prepare_ahead.unwrap_or(self.refresh_hint * 3)
    }

    fn validate(&self) -> Result<(), AuthorityError> {
        if self.ca_ttl.is_zero() || self.x509_svid_ttl.is_zero() || self.jwt_svid_ttl.is_zero() {
            return Err(AuthorityError::Config("ttls must be positive".into()));
        }
        if self.prepare_ahead() * 2 >= self.ca_ttl {
            return Err(AuthorityError::Config(format!(
                "ca_ttl ({}s) must exceed twice prepare_ahead ({}s)",
                self.ca_ttl.as_secs(),
                self.prepare_ahead().as_secs()
            )));
        }
        Ok(())
    }
}

/// A rotation step taken by [`Authority::tick`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationEvent {
    /// A new slot was generated and published in the bundle.
    Prepared {
        /// Slot number.
        slot: u64,
        /// Expiry of its CA certificate.
        not_after: OffsetDateTime,
    },
    /// The prepared slot became the one that signs.
    Activated {
        /// Slot number.
        slot: u64,
    },
    /// An old slot left the bundle.
    Retired {
        /// Slot number.
        slot: u64,
    },
}

/// One CA key + certificate and one JWT key.
struct Slot {
    id: u64,
    issuer: Issuer<'static, KeyPair>,
    ca_cert: CertificateDer<'static>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    jwt_key: KeyPair,
    jwt_kid: String,
    /// When the slot entered the bundle.
    published_at: OffsetDateTime,
    /// When the slot stopped signing (retiring slots only).
    deactivated_at: Option<OffsetDateTime>,
    /// Latest expiry of anything it signed.
    last_svid_expiry: Option<OffsetDateTime>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("id", &self.id)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("jwt_kid", &self.jwt_kid)
            .finish_non_exhaustive()
    }
}

impl Slot {
    fn generate(
        id: u64,
        trust_domain: &TrustDomain,
        now: OffsetDateTime,
        config: &AuthorityConfig,
    ) -> Result<Self, AuthorityError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Causeway");
        dn.push(
            DnType::CommonName,
            format!("causeway ca {trust_domain} #{id}"),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.subject_alt_names = vec![SanType::URI(trust_domain.id().to_string().try_into()?)];
        params.not_before = now - config.backdate;
        params.not_after = now + config.ca_ttl;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        let (not_before, not_after) = (params.not_before, params.not_after);
        let jwt_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        Ok(Self {
            id,
            issuer: Issuer::new(params, key),
            ca_cert: cert.der().clone(),
            not_before,
            not_after,
            jwt_key,
            jwt_kid: random_kid(),
            published_at: now,
            deactivated_at: None,
            last_svid_expiry: None,
        })
    }

    /// Midpoint of the CA lifetime: when the next slot takes over.
    fn activate_next_at(&self) -> OffsetDateTime {
        self.not_before + (self.not_after - self.not_before) / 2
    }

    fn retire_at(&self, grace: Duration) -> OffsetDateTime {
        let last = match (self.last_svid_expiry, self.deactivated_at) {
            (Some(exp), _) => exp,
            (None, Some(deactivated)) => deactivated,
            (None, None) => self.not_after,
        };
        (last + grace).min(self.not_after)
    }

    fn jwt_authority(&self) -> Result<JwtAuthority, BundleError> {
        let (x, y) = ec_coordinates(self.jwt_key.public_key_raw());
        JwtAuthority::new(&self.jwt_kid, &x, &y)
    }

    fn note_expiry(&mut self, expiry: OffsetDateTime) {
        self.last_svid_expiry = Some(self.last_svid_expiry.map_or(expiry, |e| e.max(expiry)));
    }
}

struct State {
    sequence: u64,
    next_slot_id: u64,
    active: Slot,
    prepared: Option<Slot>,
    retiring: Vec<Slot>,
    bundle: Bundle,
}

impl State {
    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.retiring
            .iter()
            .chain(std::iter::once(&self.active))
            .chain(self.prepared.iter())
    }

    fn rebuild_bundle(&mut self, refresh_hint: Duration) -> Result<(), AuthorityError> {
        let mut bundle = Bundle::new(self.sequence).with_refresh_hint(Some(refresh_hint));
        let slots: Vec<&Slot> = self.slots().collect();
        for slot in &slots {
            bundle.add_x509_authority(slot.ca_cert.clone())?;
        }
        for slot in &slots {
            bundle.add_jwt_authority(slot.jwt_authority()?)?;
        }
        self.bundle = bundle;
        Ok(())
    }
}

/// A per-trust-domain certificate authority.
///
/// All methods take `&self`; the state sits behind a mutex, so an
/// `Arc<Authority>` can be shared between the issuing path and the task that
/// calls [`Authority::tick`].
pub struct Authority {
    trust_domain: TrustDomain,
    config: AuthorityConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("trust_domain", &self.trust_domain)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A new authority with a fresh, active slot, using the system clock.
    pub fn new(trust_domain: TrustDomain, config: AuthorityConfig) -> Result<Self, AuthorityError> {
        Self::with_clock(trust_domain, config, Arc::new(SystemClock))
    }

    /// A new authority with a fresh, active slot, reading time from `clock`.
    pub fn with_clock(
        trust_domain: TrustDomain,
        config: AuthorityConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthorityError> {
        config.validate()?;
        let active = Slot::generate(1, &trust_domain, whole_seconds(clock.now()), &config)?;
        let mut state = State {
            sequence: 1,
            next_slot_id: 2,
            active,
            prepared: None,
            retiring: Vec::new(),
            bundle: Bundle::new(1),
        };
        state.rebuild_bundle(config.refresh_hint)?;
        Ok(Self {
            trust_domain,
            config,
            clock,
            state: Mutex::new(state),
        })
    }

    /// The trust domain this authority signs for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The configuration.
    pub fn config(&self) -> &AuthorityConfig {
        &self.config
    }

    /// The bundle to publish: every slot that is prepared, active or still
    /// has live SVIDs. Its sequence grows on every change.
    pub fn bundle(&self) -> Bundle {
        self.lock().bundle.clone()
    }

    /// Expiry of the CA certificate that currently signs.
    pub fn active_ca_not_after(&self) -> OffsetDateTime {
        self.lock().active.not_after
    }

    /// DER of the CA certificate that currently signs.
    pub fn active_ca_cert(&self) -> CertificateDer<'static> {
        self.lock().active.ca_cert.clone()
    }

    /// Runs every rotation step that is due at the clock's current time and
    /// returns what happened (empty if nothing was due).
    pub fn tick(&self) -> Result<Vec<RotationEvent>, AuthorityError> {
        let now = whole_seconds(self.clock.now());
        let prepare_ahead = self.config.prepare_ahead();
        let mut state = self.lock();
        let mut events = Vec::new();
        let mut bundle_changed = false;
        // A long pause (or a clock jump) may make several steps due at once;
        // two rounds cover prepare+activate after an expired active CA.
        for _ in 0..2 {
            let activate_at = state.active.activate_next_at();
            let active_expired = now >= state.active.not_after;
            if state.prepared.is_none() && (now + prepare_ahead >= activate_at || active_expired) {
                let id = state.next_slot_id;
                state.next_slot_id += 1;
                let slot = Slot::generate(id, &self.trust_domain, now, &self.config)?;
                tracing::info!(trust_domain = %self.trust_domain, slot = id, "prepared next ca");
                events.push(RotationEvent::Prepared {
                    slot: id,
                    not_after: slot.not_after,
                });
                state.prepared = Some(slot);
                bundle_changed = true;
            }
            let ready = state
                .prepared
                .as_ref()
                .is_some_and(|p| now >= p.published_at + prepare_ahead);
            if ((ready && now >= activate_at) || active_expired)
                && let Some(next) = state.prepared.take()
            {
                let mut old = std::mem::replace(&mut state.active, next);
                old.deactivated_at = Some(now);
                let slot = state.active.id;
                tracing::info!(trust_domain = %self.trust_domain, slot, "activated ca");
                events.push(RotationEvent::Activated { slot });
                state.retiring.push(old);
                continue;
            }
            break;
        }
        let grace = self.config.retire_grace;
        let mut retired = Vec::new();
        state.retiring.retain(|slot| {
            let keep = now < slot.retire_at(grace);
            if !keep {
                retired.push(slot.id);
            }
            keep
        });
        for slot in retired {
            tracing::info!(trust_domain = %self.trust_domain, slot, "retired ca");
            events.push(RotationEvent::Retired { slot });
            bundle_changed = true;
        }
        if bundle_changed {
            state.sequence += 1;
            state.rebuild_bundle(self.config.refresh_hint)?;
        }
        Ok(events)
    }

    /// Alias of [`Authority::tick`].
    pub fn rotate_if_due(&self) -> Result<Vec<RotationEvent>, AuthorityError> {
        self.tick()
    }

    /// Issues an X.509-SVID for `id` with the configured TTL.
    pub fn issue_x509_svid(&self, id: &SpiffeId) -> Result<X509Svid, AuthorityError> {
        self.issue_x509_svid_with_ttl(id, self.config.x509_svid_ttl)
    }

    /// Issues an X.509-SVID for `id` valid for `ttl` (capped by the signing
    /// CA's expiry).
    pub fn issue_x509_svid_with_ttl(
        &self,
        id: &SpiffeId,
        ttl: Duration,
    ) -> Result<X509Svid, AuthorityError> {
        self.check_member(id)?;
        let now = whole_seconds(self.clock.now());
        let mut state = self.lock();
        let slot = &mut state.active;
        let not_after = (now + ttl).min(slot.not_after);
        if not_after <= now {
            return Err(AuthorityError::CaExpired {
                not_after: slot.not_after,
            });
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Causeway");
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.subject_alt_names = vec![SanType::URI(id.to_string().try_into()?)];
        params.not_before = (now - self.config.backdate).max(slot.not_before);
        params.not_after = not_after;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &slot.issuer)?;
        slot.note_expiry(not_after);
        Ok(X509Svid::new_unchecked(
            id.clone(),
            vec![cert.der().clone()],
            key.serialize_der(),
            params.not_before,
            not_after,
        ))
    }

    /// Issues a JWT-SVID for `id` and `audience` with the configured TTL.
    pub fn issue_jwt_svid(
        &self,
        id: &SpiffeId,
        audience: &[&str],
    ) -> Result<JwtSvid, AuthorityError> {
        self.issue_jwt_svid_with_ttl(id, audience, self.config.jwt_svid_ttl)
    }

    /// Issues a JWT-SVID (ES256, header `kid`) for `id` and `audience`
    /// valid for `ttl`.
    pub fn issue_jwt_svid_with_ttl(
        &self,
        id: &SpiffeId,
        audience: &[&str],
        ttl: Duration,
    ) -> Result<JwtSvid, AuthorityError> {
        self.check_member(id)?;
        if audience.is_empty() || audience.iter().any(|a| a.is_empty()) {
            return Err(AuthorityError::EmptyAudience);
        }
        let now = whole_seconds(self.clock.now());
        let expiry = now + ttl;
        let mut state = self.lock();
        let slot = &mut state.active;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(slot.jwt_kid.clone());
        header.typ = Some("JWT".into());
        let claims = svid::JwtClaimsOut {
            sub: id.to_string(),
            aud: audience.iter().map(|a| (*a).to_owned()).collect(),
            exp: expiry.unix_timestamp(),
            iat: now.unix_timestamp(),
        };
        let key = jsonwebtoken::EncodingKey::from_ec_der(slot.jwt_key.serialized_der());
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        slot.note_expiry(expiry);
        Ok(JwtSvid::new(token, id.clone(), claims.aud, expiry))
    }

    /// Runs the due rotation steps ([`Self::tick`]); after any, saves the
    /// authority to `dir`, so that a restart neither brings back retired
    /// keys nor loses a prepared one.
    pub fn tick_and_save(&self, dir: Option<&Path>) -> Result<Vec<RotationEvent>, AuthorityError> {
        let events = self.tick()?;
        if !events.is_empty() {
            tracing::info!(events = ?events, "trust authority rotated");
            if let Some(dir) = dir {
                self.save(dir)?;
            }
        }
        Ok(events)
    }

    /// Writes the authority's state to `dir` (created if missing). Private
    /// keys are written with mode 0600; files are replaced atomically.
    pub fn save(&self, dir: &Path) -> Result<(), AuthorityError> {
        let state = self.lock();
        persist::save(dir, &self.trust_domain, &state)
    }

    /// Loads an authority saved with [`Authority::save`].
    pub fn load(
        dir: &Path,
        config: AuthorityConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthorityError> {
        config.validate()?;
        let (trust_domain, mut state) = persist::load(dir)?;
        state.rebuild_bundle(config.refresh_hint)?;
        Ok(Self {
            trust_domain,
            config,
            clock,
            state: Mutex::new(state),
        })
    }

    /// Loads the authority from `dir` if it holds one, otherwise creates one
    /// and saves it there. Fails if the saved trust domain differs.
    pub fn load_or_create(
        dir: &Path,
        trust_domain: TrustDomain,
        config: AuthorityConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthorityError> {
        if persist::exists(dir) {
            let authority = Self::load(dir, config, clock)?;
            if authority.trust_domain != trust_domain {
                return Err(AuthorityError::TrustDomainMismatch {
                    expected: trust_domain,
                    found: authority.trust_domain,
                });
            }
            return Ok(authority);
        }
        let authority = Self::with_clock(trust_domain, config, clock)?;
        authority.save(dir)?;
        Ok(authority)
    }

    fn check_member(&self, id: &SpiffeId) -> Result<(), AuthorityError> {
        if !id.is_member_of(&self.trust_domain) {
            return Err(AuthorityError::ForeignId {
                id: id.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        if id.path().is_empty() {
            return Err(AuthorityError::EmptyPath { id: id.clone() });
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere
        // while holding the lock does not leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// X.509 times have whole seconds; keep ours equal to what is encoded.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn random_kid() -> String {
    use base64::Engine as _;
    let bytes: [u8; 24] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url x and y of an uncompressed SEC1 P-256 point.
fn ec_coordinates(point: &[u8]) -> (String, String) {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let coords = point.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    (engine.encode(x), engine.encode(y))
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_secs))
    }
}
