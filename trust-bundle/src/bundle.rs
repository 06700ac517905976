//! The SPIFFE bundle document (a JWKS with SPIFFE extensions), the set of
//! bundles of all federated trust domains, and the swappable [`BundleStore`]
//! the verifiers read on every handshake.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::id::TrustDomain;

mod error;
mod set;

pub use error::{BundleError, BundleSetError};
pub use set::{BundleSet, BundleStore};

/// `use` value of an X.509 authority key.
pub const USE_X509_SVID: &str = "x509-svid";
/// `use` value of a JWT authority key.
pub const USE_JWT_SVID: &str = "jwt-svid";

/// One SPIFFE bundle: the trust anchors of one trust domain.
///
/// The bundle does not name its trust domain; a [`BundleSet`] maps trust
/// domains to bundles. An empty key list means every key was revoked.
#[derive(Debug, Clone)]
pub struct Bundle {
    keys: Vec<BundleKey>,
    sequence: u64,
    refresh_hint: Option<u64>,
    /// Trust anchors derived from the X.509 authorities (same order).
    anchors: Vec<TrustAnchor<'static>>,
}

impl PartialEq for Bundle {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys
            && self.sequence == other.sequence
            && self.refresh_hint == other.refresh_hint
    }
}

impl Eq for Bundle {}

/// One key of a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleKey {
    /// A CA certificate that signs X.509-SVIDs.
    X509(X509Authority),
    /// A public key that signs JWT-SVIDs.
    Jwt(JwtAuthority),
}

/// A CA certificate (`use` = `x509-svid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Authority {
    cert: CertificateDer<'static>,
    raw: Map<String, Value>,
}

impl X509Authority {
    /// When the CA certificate expires (its notAfter); `None` when the
    /// certificate does not parse.
    pub fn not_after(&self) -> Option<time::OffsetDateTime> {
        let (_, c) = x509_parser::parse_x509_certificate(self.cert.as_ref()).ok()?;
        Some(c.validity().not_after.to_datetime())
    }

    /// The CA certificate in DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }
}

/// An EC P-256 public key (`use` = `jwt-svid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtAuthority {
    kid: String,
    x: String,
    y: String,
    raw: Map<String, Value>,
}

impl JwtAuthority {
    /// Builds a JWT authority from a key id and the base64url coordinates of
    /// an EC P-256 public key.
    pub fn new(kid: &str, x: &str, y: &str) -> Result<Self, BundleError> {
        let mut raw = Map::new();
        raw.insert("use".into(), USE_JWT_SVID.into());
        raw.insert("kty".into(), "EC".into());
        raw.insert("crv".into(), "P-256".into());
        raw.insert("kid".into(), kid.into());
        raw.insert("x".into(), x.into());
        raw.insert("y".into(), y.into());
        parse_jwt_key(0, raw)
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The base64url x coordinate.
    pub fn x(&self) -> &str {
        &self.x
    }

    /// The base64url y coordinate.
    pub fn y(&self) -> &str {
        &self.y
    }

    /// The JWS algorithm this key verifies (always ES256 today). Tokens are
    /// verified with this algorithm, never with the one in their header.
    pub fn algorithm(&self) -> jsonwebtoken::Algorithm {
        jsonwebtoken::Algorithm::ES256
    }
}

impl Bundle {
    /// An empty bundle (all keys revoked) with the given sequence number.
    pub fn new(sequence: u64) -> Self {
        Self {
            keys: Vec::new(),
            sequence,
            refresh_hint: None,
            anchors: Vec::new(),
        }
    }

    /// Parses and validates a bundle document.
    pub fn parse(json: &[u8]) -> Result<Self, BundleError> {
        let doc: RawDocument = serde_json::from_slice(json).map_err(BundleError::Json)?;
        Self::from_raw(doc)
    }

    /// Parses and validates a bundle document from a string.
    pub fn parse_str(json: &str) -> Result<Self, BundleError> {
        Self::parse(json.as_bytes())
    }

    /// Serialises the bundle document (compact JSON).
    pub fn to_json(&self) -> String {
        Value::from(self.to_raw()).to_string()
    }

    /// Serialises the bundle document (indented JSON).
    pub fn to_json_pretty(&self) -> String {
        // Serialising a `Value` to a string cannot fail.
        serde_json::to_string_pretty(&Value::from(self.to_raw())).unwrap_or_default()
    }

    /// `spiffe_sequence`; 0 if the document had none.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// `spiffe_refresh_hint`, if present.
    pub fn refresh_hint(&self) -> Option<Duration> {
        self.refresh_hint.map(Duration::from_secs)
    }

    /// Returns the bundle with another sequence number.
    pub fn with_sequence(mut self, sequence: u64) -> Self {
        self.sequence = sequence;
        self
    }

    /// Returns the bundle with another refresh hint (whole seconds).
    pub fn with_refresh_hint(mut self, hint: Option<Duration>) -> Self {
        self.refresh_hint = hint.map(|d| d.as_secs());
        self
    }

    /// All keys, in document order.
    pub fn keys(&self) -> &[BundleKey] {
        &self.keys
    }

    /// Whether the bundle has no keys (everything revoked).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The X.509 authorities (CA certificates).
    pub fn x509_authorities(&self) -> impl Iterator<Item = &X509Authority> {
        self.keys.iter().filter_map(|k| match k {
            BundleKey::X509(a) => Some(a),
            BundleKey::Jwt(_) => None,
        })
    }

    /// The JWT authorities.
    pub fn jwt_authorities(&self) -> impl Iterator<Item = &JwtAuthority> {
        self.keys.iter().filter_map(|k| match k {
            BundleKey::Jwt(a) => Some(a),
            BundleKey::X509(_) => None,
        })
    }

    /// The JWT authority with key id `kid`.
    pub fn jwt_authority(&self, kid: &str) -> Option<&JwtAuthority> {
        self.jwt_authorities().find(|a| a.kid == kid)
    }

    /// Trust anchors for path validation, derived from the X.509 authorities.
    pub fn trust_anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// Adds a CA certificate (validated like a parsed one).
    pub fn add_x509_authority(&mut self, cert: CertificateDer<'static>) -> Result<(), BundleError> {
        let index = self.keys.len();
        let mut raw = Map::new();
        raw.insert("use".into(), USE_X509_SVID.into());
        raw.insert("kty".into(), key_type_of(&cert).into());
        raw.insert(
            "x5c".into(),
            Value::Array(vec![STANDARD.encode(cert.as_ref()).into()]),
        );
        let (authority, anchor) = parse_x509_key(index, raw)?;
        if self.x509_authorities().any(|a| a.cert == authority.cert) {
            return Ok(());
        }
        self.keys.push(BundleKey::X509(authority));
        self.anchors.push(anchor);
        Ok(())
    }

    /// Adds a JWT authority; its `kid` must be unique in the bundle.
    pub fn add_jwt_authority(&mut self, authority: JwtAuthority) -> Result<(), BundleError> {
        if self.jwt_authority(&authority.kid).is_some() {
            return Err(BundleError::DuplicateKid { kid: authority.kid });
        }
        self.keys.push(BundleKey::Jwt(authority));
        Ok(())
    }

    /// Removes every key (X.509 or JWT) for which `keep` returns false.
    pub fn retain_keys(&mut self, mut keep: impl FnMut(&BundleKey) -> bool) {
        self.keys.retain(|k| keep(k));
        self.rebuild_anchors();
    }

    fn rebuild_anchors(&mut self) {
        self.anchors = self
            .x509_authorities()
            .filter_map(|a| {
                webpki::anchor_from_trusted_cert(&a.cert)
                    .ok()
                    .map(|t| t.to_owned())
            })
            .collect();
    }

    fn from_raw(doc: RawDocument) -> Result<Self, BundleError> {
        let mut bundle = Self::new(doc.spiffe_sequence.unwrap_or(0));
        bundle.refresh_hint = doc.spiffe_refresh_hint;
        for (index, key) in doc.keys.into_iter().enumerate() {
            if key.contains_key("d") || key.contains_key("p") || key.contains_key("k") {
                return Err(BundleError::PrivateKeyMaterial { index });
            }
            let use_ = match key.get("use") {
                None => return Err(BundleError::MissingUse { index }),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(wrong_type(index, "use", "a string")),
            };
            match use_.as_str() {
                USE_X509_SVID => {
                    let (authority, anchor) = parse_x509_key(index, key)?;
                    bundle.keys.push(BundleKey::X509(authority));
                    bundle.anchors.push(anchor);
                }
                USE_JWT_SVID => {
                    let authority = parse_jwt_key(index, key)?;
                    if bundle.jwt_authority(&authority.kid).is_some() {
                        return Err(BundleError::DuplicateKid { kid: authority.kid });
                    }
                    bundle.keys.push(BundleKey::Jwt(authority));
                }
                _ => return Err(BundleError::UnknownUse { index, value: use_ }),
            }
        }
        Ok(bundle)
    }

    fn to_raw(&self) -> Map<String, Value> {
        let keys = self
            .keys
            .iter()
            .map(|k| match k {
                BundleKey::X509(a) => Value::Object(a.raw.clone()),
                BundleKey::Jwt(a) => Value::Object(a.raw.clone()),
            })
            .collect();
        let mut doc = Map::new();
        doc.insert("keys".into(), Value::Array(keys));
        doc.insert("spiffe_sequence".into(), self.sequence.into());
        if let Some(hint) = self.refresh_hint {
            doc.insert("spiffe_refresh_hint".into(), hint.into());
        }
        doc
    }
}

/// The document as it arrives; known members are type-checked by serde.
#[derive(Deserialize)]
struct RawDocument {
    keys: Vec<Map<String, Value>>,
    #[serde(default)]
    spiffe_sequence: Option<u64>,
    #[serde(default)]
    spiffe_refresh_hint: Option<u64>,
}

fn wrong_type(index: usize, field: &'static str, expected: &'static str) -> BundleError {
    BundleError::WrongFieldType {
        index,
        field,
        expected,
    }
}

fn string_field<'a>(
    key: &'a Map<String, Value>,
    index: usize,
    field: &'static str,
) -> Result<Option<&'a str>, BundleError> {
    match key.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(index, field, "a string")),
    }
}

fn parse_x509_key(
    index: usize,
    raw: Map<String, Value>,
) -> Result<(X509Authority, TrustAnchor<'static>), BundleError> {
    if string_field(&raw, index, "kty")?.is_none() {
        return Err(BundleError::MissingKty { index });
    }
    if raw.contains_key("kid") {
        return Err(BundleError::X509KidPresent { index });
    }
    let certs = match raw.get("x5c") {
        None => return Err(BundleError::X509CertCount { index, count: 0 }),
        Some(Value::Array(certs)) => certs,
        Some(_) => return Err(wrong_type(index, "x5c", "an array of strings")),
    };
    if certs.len() != 1 {
        return Err(BundleError::X509CertCount {
            index,
            count: certs.len(),
        });
    }
    let Some(Value::String(b64)) = certs.first() else {
        return Err(wrong_type(index, "x5c", "an array of strings"));
    };
    let der = STANDARD
        .decode(b64)
        .map_err(|source| BundleError::X509Base64 { index, source })?;
    let cert = CertificateDer::from(der);
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
        BundleError::X509Malformed {
            index,
            reason: e.to_string(),
        }
    })?;
    if !parsed.is_ca() {
        return Err(BundleError::X509NotCa { index });
    }
    let anchor = webpki::anchor_from_trusted_cert(&cert)
        .map_err(|e| BundleError::X509Malformed {
            index,
            reason: e.to_string(),
        })?
        .to_owned();
    Ok((X509Authority { cert, raw }, anchor))
}

fn parse_jwt_key(index: usize, raw: Map<String, Value>) -> Result<JwtAuthority, BundleError> {
    let kid = match string_field(&raw, index, "kid")? {
        Some(kid) if !kid.is_empty() => kid.to_owned(),
        _ => return Err(BundleError::JwtMissingKid { index }),
    };
    let kty = string_field(&raw, index, "kty")?.ok_or(BundleError::MissingKty { index })?;
    let crv = string_field(&raw, index, "crv")?.unwrap_or_default();
    if kty != "EC" || crv != "P-256" {
        return Err(BundleError::JwtUnsupportedKey {
            index,
            kty: kty.to_owned(),
            crv: crv.to_owned(),
        });
    }
    let mut point = vec![0x04_u8];
    for field in ["x", "y"] {
        let coord =
            string_field(&raw, index, field)?.ok_or(BundleError::JwtBadKey { index, field })?;
        let bytes = URL_SAFE_NO_PAD
            .decode(coord)
            .map_err(|_| BundleError::JwtBadKey { index, field })?;
        if bytes.len() != 32 {
            return Err(BundleError::JwtBadKey { index, field });
        }
        point.extend_from_slice(&bytes);
    }
    if p256::PublicKey::from_sec1_bytes(&point).is_err() {
        return Err(BundleError::JwtBadKey {
            index,
            field: "x/y (point not on curve)",
        });
    }
    let coord = |f: &str| {
        raw.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Ok(JwtAuthority {
        kid,
        x: coord("x"),
        y: coord("y"),
        raw,
    })
}

/// `kty` for a certificate's public key (`EC`, `RSA` or `OKP`).
fn key_type_of(cert: &CertificateDer<'_>) -> &'static str {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return "EC";
    };
    let oid = parsed.public_key().algorithm.algorithm.to_id_string();
    match oid.as_str() {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.3.101.112" | "1.3.101.113" => "OKP",
        _ => "EC",
    }
}

impl Serialize for Bundle {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_raw().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Bundle {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let doc = RawDocument::deserialize(deserializer)?;
        Self::from_raw(doc).map_err(serde::de::Error::custom)
    }
}

pub(crate) type BundleMap = BTreeMap<TrustDomain, Arc<Bundle>>;
