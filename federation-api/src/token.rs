//! API tokens: keys, algorithms, scopes, verification, minting and key
//! generation. The server verifies with it; `causewayctl token` and
//! `causeway-federation token` mint with it (one [`MintArgs`], one [`mint`]).
//!
//! The algorithm comes from the configured key (ES256 key pair or HS256
//! secret), never from the token. `exp` and `aud` are required, `iss` when
//! configured, `nbf` is checked when present.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Errors loading keys or minting tokens.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key could not be parsed.
    #[error("invalid {what}: {source}")]
    InvalidKey {
        /// What was being parsed.
        what: &'static str,
        /// The parser's error.
        source: jsonwebtoken::errors::Error,
    },
    /// Minting needs the private key or secret, which is not configured.
    #[error("no signing key configured (ES256 needs the private key, HS256 the secret)")]
    NoSigningKey,
    /// A scope string is not `admin`, `read` or `cluster:<id>`.
    #[error("invalid scope {0:?}: expected admin, read or cluster:<id>")]
    InvalidScope(String),
    /// The token could not be signed.
    #[error("cannot sign token: {0}")]
    Sign(jsonwebtoken::errors::Error),
}

/// A permission carried by a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Read everything except secrets.
    Read,
    /// Write one cluster's record, heartbeat, exports and trust-domain bundle;
    /// read everything `Read` can.
    Cluster(String),
}

impl std::str::FromStr for Scope {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self, AuthError> {
        match s {
            "admin" => Ok(Self::Admin),
            "read" => Ok(Self::Read),
            _ => match s.strip_prefix("cluster:") {
                Some(id) if causeway_api::model::is_dns_label(id) => {
                    Ok(Self::Cluster(id.to_owned()))
                }
                _ => Err(AuthError::InvalidScope(s.to_owned())),
            },
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Admin => f.write_str("admin"),
            Self::Read => f.write_str("read"),
            Self::Cluster(id) => write!(f, "cluster:{id}"),
        }
    }
}

/// The claims of a Causeway API token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject (who the token was minted for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience.
    pub aud: String,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `admin`, `read`, `cluster:<id>`.
    pub scopes: Vec<String>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject, for logs.
    pub subject: Option<String>,
    /// The valid scopes of the token (unknown scopes are ignored).
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// A principal with every right (auth disabled).
    pub fn anonymous_admin() -> Self {
        Self {
            subject: Some("anonymous".into()),
            scopes: vec![Scope::Admin],
        }
    }

    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }

    /// Whether the caller may read the catalog.
    pub fn can_read(&self) -> bool {
        !self.scopes.is_empty()
    }

    /// Whether the caller may write the records of `cluster`.
    pub fn can_write_cluster(&self, cluster: &str) -> bool {
        self.is_admin()
            || self
                .scopes
                .iter()
                .any(|s| matches!(s, Scope::Cluster(c) if c == cluster))
    }

    /// The clusters this caller acts for.
    pub fn clusters(&self) -> impl Iterator<Item = &str> {
        self.scopes.iter().filter_map(|s| match s {
            Scope::Cluster(c) => Some(c.as_str()),
            _ => None,
        })
    }
}

/// Which kind of key signs the tokens (`ES256`/`HS256` in config files,
/// `es256`/`hs256` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
pub enum JwtAlgorithm {
    /// ECDSA P-256 with SHA-256: verify with the public key, mint with the private key.
    #[default]
    #[value(name = "es256")]
    ES256,
    /// HMAC SHA-256 with a shared secret.
    #[value(name = "hs256")]
    HS256,
}

/// JWT configuration (the `jwt` section of the server config).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtConfig {
    /// The signing algorithm, which fixes the key type.
    pub algorithm: JwtAlgorithm,
    /// ES256: PEM file of the public key (SPKI) used to verify.
    pub public_key_file: Option<PathBuf>,
    /// ES256: PEM file of the PKCS#8 private key, needed only to mint tokens.
    pub private_key_file: Option<PathBuf>,
    /// HS256: file holding the shared secret (raw bytes, trailing newline trimmed).
    pub secret_file: Option<PathBuf>,
    /// The required `aud` claim. Default `causeway`.
    pub audience: Option<String>,
    /// The required `iss` claim, if any.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds. Default 30.
    pub leeway_secs: Option<u64>,
}

/// The default audience of Causeway tokens.
pub const DEFAULT_AUDIENCE: &str = "causeway";

/// Key material loaded from a [`JwtConfig`].
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    decoding: Option<DecodingKey>,
    encoding: Option<EncodingKey>,
    audience: String,
    issuer: Option<String>,
    leeway: u64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, AuthError> {
    std::fs::read(path).map_err(|source| AuthError::ReadKey {
        path: path.clone(),
        source,
    })
}

impl JwtKeys {
    /// Loads the keys named by `config`.
    pub fn load(config: &JwtConfig) -> Result<Self, AuthError> {
        let audience = config
            .audience
            .clone()
            .unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned());
        let leeway = config.leeway_secs.unwrap_or(30);
        match config.algorithm {
            JwtAlgorithm::ES256 => {
                let decoding = match &config.public_key_file {
                    Some(p) => Some(DecodingKey::from_ec_pem(&read(p)?).map_err(|source| {
                        AuthError::InvalidKey {
                            what: "ES256 public key",
                            source,
                        }
                    })?),
                    None => None,
                };
                let encoding = match &config.private_key_file {
                    Some(p) => Some(EncodingKey::from_ec_pem(&read(p)?).map_err(|source| {
                        AuthError::InvalidKey {
                            what: "ES256 private key",
                            source,
                        }
                    })?),
                    None => None,
                };
                Ok(Self {
                    algorithm: Algorithm::ES256,
                    decoding,
                    encoding,
                    audience,
                    issuer: config.issuer.clone(),
                    leeway,
                })
            }
            JwtAlgorithm::HS256 => {
                let secret = match &config.secret_file {
                    Some(p) => {
                        let mut s = read(p)?;
                        while s.last().is_some_and(|b| b.is_ascii_whitespace()) {
                            s.pop();
                        }
                        Some(s)
                    }
                    None => None,
                };
                Ok(Self::hs256_opt(
                    secret.as_deref(),
                    audience,
                    config.issuer.clone(),
                    leeway,
                ))
            }
        }
    }

    fn hs256_opt(
        secret: Option<&[u8]>,
        audience: String,
        issuer: Option<String>,
        leeway: u64,
    ) -> Self {
        Self {
            algorithm: Algorithm::HS256,
            decoding: secret.map(DecodingKey::from_secret),
            encoding: secret.map(EncodingKey::from_secret),
            audience,
            issuer,
            leeway,
        }
    }

    /// HS256 keys from a shared secret.
    pub fn hs256(secret: &[u8], audience: &str, issuer: Option<&str>) -> Self {
        Self::hs256_opt(
            Some(secret),
            audience.to_owned(),
            issuer.map(str::to_owned),
            30,
        )
    }

    /// ES256 keys from PEM text (the private key is optional).
    pub fn es256(
        public_pem: &[u8],
        private_pem: Option<&[u8]>,
        audience: &str,
        issuer: Option<&str>,
    ) -> Result<Self, AuthError> {
        let decoding =
            DecodingKey::from_ec_pem(public_pem).map_err(|source| AuthError::InvalidKey {
                what: "ES256 public key",
                source,
            })?;
        let encoding = private_pem
            .map(EncodingKey::from_ec_pem)
            .transpose()
            .map_err(|source| AuthError::InvalidKey {
                what: "ES256 private key",
                source,
            })?;
        Ok(Self {
            algorithm: Algorithm::ES256,
            decoding: Some(decoding),
            encoding,
            audience: audience.to_owned(),
            issuer: issuer.map(str::to_owned),
            leeway: 30,
        })
    }

    /// Whether these keys can verify tokens.
    pub fn can_verify(&self) -> bool {
        self.decoding.is_some()
    }

    /// Verifies a bearer token and returns its principal. The error text is
    /// safe to show to the client.
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let Some(key) = &self.decoding else {
            return Err("token verification is not configured".into());
        };
        let mut v = Validation::new(self.algorithm);
        v.algorithms = vec![self.algorithm];
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        v.set_audience(&[&self.audience]);
        let mut required = vec!["exp", "aud"];
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => "token expired".to_owned(),
                K::ImmatureSignature => "token not yet valid".to_owned(),
                K::InvalidAudience => "token audience not accepted".to_owned(),
                K::InvalidIssuer => "token issuer not accepted".to_owned(),
                K::InvalidAlgorithm => "token algorithm not accepted".to_owned(),
                K::MissingRequiredClaim(c) => format!("token lacks the {c} claim"),
                K::InvalidSignature => "token signature invalid".to_owned(),
                _ => "token malformed".to_owned(),
            }
        })?;
        let scopes: Vec<Scope> = data
            .claims
            .scopes
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        if scopes.is_empty() {
            return Err("token carries no valid scope".into());
        }
        Ok(Principal {
            subject: data.claims.sub,
            scopes,
        })
    }

    /// Mints a token with `scopes`, valid for `ttl` from now.
    pub fn mint(
        &self,
        scopes: &[Scope],
        ttl: Duration,
        subject: Option<&str>,
    ) -> Result<String, AuthError> {
        let key = self.encoding.as_ref().ok_or(AuthError::NoSigningKey)?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject.map(str::to_owned),
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
            exp: now + ttl.as_secs().max(1),
            iat: Some(now),
            nbf: None,
            scopes: scopes.iter().map(ToString::to_string).collect(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key).map_err(AuthError::Sign)
    }
}

/// What to mint: the flags of `causewayctl token mint` and of
/// `causeway-federation token`.
#[derive(Debug, Clone, clap::Args)]
pub struct MintArgs {
    /// ES256 PKCS#8 private key PEM, or the HS256 secret file.
    #[arg(long, env = "CAUSEWAY_JWT_KEY_FILE")]
    pub key_file: PathBuf,
    /// Algorithm of the key.
    #[arg(long, value_enum, default_value = "es256")]
    pub algorithm: JwtAlgorithm,
    /// Scopes: `admin`, `read`, `cluster:<id>` (repeatable).
    #[arg(long = "scope", required = true)]
    pub scopes: Vec<String>,
    /// Lifetime, e.g. `1h`, `30m`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// Audience.
    #[arg(long, default_value = DEFAULT_AUDIENCE)]
    pub audience: String,
    /// Issuer.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Subject.
    #[arg(long)]
    pub subject: Option<String>,
}

/// Mints a token as `args` say: loads the key, checks the scopes, signs.
pub fn mint(args: &MintArgs) -> Result<String, AuthError> {
    let scopes = args
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>())
        .collect::<Result<Vec<_>, _>>()?;
    let key_file = Some(args.key_file.clone());
    let (private_key_file, secret_file) = match args.algorithm {
        JwtAlgorithm::ES256 => (key_file, None),
        JwtAlgorithm::HS256 => (None, key_file),
    };
    let config = JwtConfig {
        algorithm: args.algorithm,
        private_key_file,
        secret_file,
        audience: Some(args.audience.clone()),
        issuer: args.issuer.clone(),
        ..JwtConfig::default()
    };
    JwtKeys::load(&config)?.mint(&scopes, args.ttl, args.subject.as_deref())
}

/// Generates an ES256 key pair as (PKCS#8 private PEM, SPKI public PEM).
pub fn generate_es256_pem() -> Result<(String, String), rcgen::Error> {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    Ok((kp.serialize_pem(), kp.public_key_pem()))
}

#[cfg(test)]
mod tests;
