//! A fake OIDC issuer for scenarios: an EC P-256 key, its JWKS served over
//! plain HTTP on a free port (reachable from every cluster's network), and
//! tokens signed with that key or with a forger's key under the same `kid`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A signing key with its key id.
pub struct SigningKey {
    kid: String,
    pair: rcgen::KeyPair,
}

impl SigningKey {
    /// A fresh P-256 key named `kid`.
    pub fn new(kid: &str) -> anyhow::Result<Self> {
        Ok(Self {
            kid: kid.to_owned(),
            pair: rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        })
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        let raw = self.pair.public_key_raw();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
               "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..])})
    }

    /// `claims` signed ES256 with this key.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        h.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(
            &h,
            claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pair.serialize_der()),
        )?)
    }
}

/// The issuer: its key, a forger's key with the same `kid`, and the JWKS
/// endpoint (stopped on drop).
pub struct FakeIssuer {
    /// The `iss` of its tokens.
    pub issuer: String,
    /// The audience its tokens name.
    pub audience: String,
    /// Where its JWKS is served.
    pub jwks_url: String,
    key: SigningKey,
    forger: SigningKey,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeIssuer {
    /// Serves the JWKS on `ip` (a free port).
    pub async fn start(ip: IpAddr) -> anyhow::Result<Self> {
        let key = SigningKey::new("k1")?;
        let forger = SigningKey::new("k1")?;
        let body = json!({"keys": [key.jwk()]}).to_string();
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = listener.local_addr()?;
        let fetches = Arc::new(AtomicUsize::new(0));
        let f = fetches.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut c, _)) = listener.accept().await {
                let body = body.clone();
                let f = f.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = c.read(&mut buf).await;
                    f.fetch_add(1, Ordering::SeqCst);
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = c.write_all(resp.as_bytes()).await;
                });
            }
        });
        Ok(Self {
            issuer: "https://idp.causeway.test".into(),
            audience: "causeway-e2e".into(),
            jwks_url: format!("http://{addr}/.well-known/jwks.json"),
            key,
            forger,
            fetches,
            task,
        })
    }

    /// How often the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The standard claims plus `extra`, valid for 5 minutes.
    pub fn claims(&self, extra: Value) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut c = json!({"iss": self.issuer, "aud": self.audience, "sub": "user-1",
                           "iat": now, "exp": now + 300});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                c.insert(k.clone(), v.clone());
            }
        }
        c
    }

    /// A valid token with `extra` claims.
    pub fn token(&self, extra: Value) -> anyhow::Result<String> {
        self.key.sign(&self.claims(extra))
    }

    /// A token that expired an hour ago.
    pub fn expired_token(&self, extra: Value) -> anyhow::Result<String> {
        let mut c = self.claims(extra);
        let now = c["iat"].as_i64().unwrap_or_default();
        c["exp"] = json!(now - 3600);
        self.key.sign(&c)
    }

    /// The same claims signed by a forger's key under the issuer's `kid`.
    pub fn forged_token(&self, extra: Value) -> anyhow::Result<String> {
        self.forger.sign(&self.claims(extra))
    }
}
