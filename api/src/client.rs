//! A typed client of the federation REST API and its watch streams (NDJSON
//! and gRPC). Used by `causewayctl` and by gateways' cluster agents.
//!
//! `http://` and `https://` servers; an https server is verified against the
//! system's CAs plus those of [`TlsOptions`].

mod follow;
pub mod grpc_wire;
mod http;
mod patch;
mod tls;
mod typed;
mod watch;

use ::http::{Method, StatusCode, header};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::follow::{Follow, apply_line};
pub use self::http::RawResponse;
use self::http::{Transport, api_error};
pub use self::tls::{ClientCert, TlsOptions};
pub use self::watch::{NdjsonWatch, grpc_watch, grpc_watch_tls, status_error};
use crate::wire::{HeartbeatAck, Page, Problem, WatchLine};

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server URL is unusable.
    #[error("invalid server address: {0}")]
    InvalidServer(String),
    /// The server could not be reached (connection refused, reset, timeout).
    #[error("{0}")]
    Connect(String),
    /// The server answered with an RFC 9457 problem.
    #[error("{}", format_problem(.0))]
    Api(Box<Problem>),
    /// The server's answer could not be decoded.
    #[error("unexpected response: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(p) => Some(p.status),
            _ => None,
        }
    }

    /// Whether the watch revision was compacted (relist needed).
    pub fn is_compacted(&self) -> bool {
        self.status() == Some(410)
    }

    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the server could not tell if a write was applied (503
    /// `outcome-unknown`, e.g. during an etcd leader election).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::Api(p) if p.status == 503
            && p.type_uri.strip_prefix(crate::wire::PROBLEM_TYPE_BASE) == Some("outcome-unknown"))
    }
}

/// Attempts of a write whose outcome stays unknown (each after a re-read).
const OUTCOME_ATTEMPTS: u32 = 6;

/// The pause before attempt `n` (1-based) of a write whose outcome was
/// unknown: an etcd election takes about a second.
fn outcome_backoff(n: u32) -> std::time::Duration {
    std::time::Duration::from_millis(200u64 << n.min(4))
}

/// The part of a resource a write sets: server-set fields (`status`,
/// `metadata.resourceVersion`, `metadata.createdAt`) dropped, and
/// normalized through the typed model when it decodes (defaults filled in).
fn written_part(v: &serde_json::Value) -> serde_json::Value {
    let mut v = crate::model::decode_resource(v.clone())
        .ok()
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_else(|| v.clone());
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
        if let Some(meta) = m.get_mut("metadata").and_then(|x| x.as_object_mut()) {
            meta.remove("resourceVersion");
            meta.remove("createdAt");
        }
    }
    v
}

fn format_problem(p: &Problem) -> String {
    let mut s = format!("{} {}", p.status, p.title);
    if let Some(d) = &p.detail {
        s.push_str(": ");
        s.push_str(d);
    }
    for e in &p.errors {
        if p.detail.as_deref() != Some(e.message.as_str()) || p.errors.len() > 1 {
            s.push_str(&format!("\n  field {}: {}", e.field, e.message));
        } else {
            s.push_str(&format!(" (field {})", e.field));
        }
    }
    s
}

/// A resource with the revision the server reported in its `ETag`.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    /// The resource.
    pub value: T,
    /// The revision from the `ETag`, when present.
    pub revision: Option<u64>,
}

/// The write precondition of a PUT or DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precondition {
    /// Unconditional.
    #[default]
    None,
    /// `If-None-Match: *` (create only).
    MustNotExist,
    /// `If-Match: "<rev>"`.
    Revision(u64),
}

impl Precondition {
    fn headers(self) -> Vec<(header::HeaderName, String)> {
        match self {
            Self::None => Vec::new(),
            Self::MustNotExist => vec![(header::IF_NONE_MATCH, "*".into())],
            Self::Revision(r) => vec![(header::IF_MATCH, format!("\"{r}\""))],
        }
    }
}

/// The federation API client.
#[derive(Clone, Debug)]
pub struct Client {
    transport: Transport,
}

fn etag_revision(headers: &::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::ETAG)?
        .to_str()
        .ok()?
        .trim_matches('"')
        .parse()
        .ok()
}

impl Client {
    /// A client of `server` (`http://` or `https://host:port`, the latter
    /// verified against the system's CAs) with an optional bearer token.
    pub fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_tls(server, token, &TlsOptions::default())
    }

    /// A client for `server` (`http://` or `https://`) that verifies an
    /// https server against the system's CAs and those of `tls`.
    pub fn with_tls(
        server: &str,
        token: Option<String>,
        tls: &TlsOptions,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            transport: Transport::new(server, token, tls)?,
        })
    }

    /// The server base URL.
    pub fn server(&self) -> &str {
        self.transport.base()
    }

    /// Sends any request and returns the raw response (no status check).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(header::HeaderName, String)],
    ) -> Result<RawResponse, ClientError> {
        self.transport.send(method, path, body, headers).await
    }

    async fn checked(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(header::HeaderName, String)],
    ) -> Result<RawResponse, ClientError> {
        let r = self.transport.send(method, path, body, headers).await?;
        if r.status.is_success() {
            Ok(r)
        } else {
            Err(api_error(r.status, &r.body))
        }
    }

    /// GETs a JSON resource at `path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Versioned<T>, ClientError> {
        let r = self.checked(Method::GET, path, None, &[]).await?;
        let value =
            serde_json::from_slice(&r.body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Versioned {
            value,
            revision: etag_revision(&r.headers),
        })
    }

    /// GETs a JSON resource, `None` on 404.
    pub async fn get_opt<T: DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<Option<Versioned<T>>, ClientError> {
        match self.get(path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUTs `body` at `path` and returns the stored resource.
    ///
    /// When the server answers `outcome-unknown` (the store did not confirm
    /// the write), the resource is re-read: if it already holds `body`, the
    /// write landed and that is the answer; otherwise the same PUT, with the
    /// same precondition, is sent again. Either way the write is applied at
    /// most once in effect: an unconditional PUT of the same body is
    /// idempotent, and a conditional one is a compare-and-swap.
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        precondition: Precondition,
    ) -> Result<Versioned<T>, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            match self
                .checked(
                    Method::PUT,
                    path,
                    Some(bytes.clone()),
                    &precondition.headers(),
                )
                .await
            {
                Err(e) if e.is_outcome_unknown() && attempt < OUTCOME_ATTEMPTS => {
                    tokio::time::sleep(outcome_backoff(attempt)).await;
                    let sent: serde_json::Value = serde_json::from_slice(&bytes)
                        .map_err(|e| ClientError::Decode(e.to_string()))?;
                    match self.get_opt::<serde_json::Value>(path).await {
                        Ok(Some(stored)) if written_part(&stored.value) == written_part(&sent) => {
                            let value = serde_json::from_value(stored.value)
                                .map_err(|e| ClientError::Decode(e.to_string()))?;
                            return Ok(Versioned {
                                value,
                                revision: stored.revision,
                            });
                        }
                        // Not applied (yet), or the read failed too: send again.
                        _ => continue,
                    }
                }
                r => break r?,
            }
        };
        let value =
            serde_json::from_slice(&r.body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Versioned {
            value,
            revision: etag_revision(&r.headers),
        })
    }

    /// DELETEs the resource at `path`. After an `outcome-unknown` answer the
    /// resource is re-read: gone means deleted, otherwise the DELETE (same
    /// precondition) is sent again.
    pub async fn delete(&self, path: &str, precondition: Precondition) -> Result<(), ClientError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .checked(Method::DELETE, path, None, &precondition.headers())
                .await
            {
                Err(e) if e.is_outcome_unknown() && attempt < OUTCOME_ATTEMPTS => {
                    tokio::time::sleep(outcome_backoff(attempt)).await;
                    if let Ok(None) = self.get_opt::<serde_json::Value>(path).await {
                        return Ok(());
                    }
                }
                r => return r.map(|_| ()),
            }
        }
    }

    /// POSTs an empty body to `path` and decodes the answer.
    pub async fn post<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let r = self.checked(Method::POST, path, None, &[]).await?;
        serde_json::from_slice(&r.body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Lists every item at `path`, following `continue` tokens.
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &token {
                Some(t) => format!("{path}{sep}continue={t}"),
                None => path.to_owned(),
            };
            let page: Versioned<Page<T>> = self.get(&url).await?;
            out.extend(page.value.items);
            match page.value.continue_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(out),
            }
        }
    }

    /// Opens the NDJSON watch (`since`: resume after that revision).
    pub async fn watch(&self, since: Option<u64>) -> Result<NdjsonWatch, ClientError> {
        let path = match since {
            Some(r) => format!("/v1/watch?since={r}"),
            None => "/v1/watch".to_owned(),
        };
        Ok(NdjsonWatch::new(self.transport.stream(&path).await?))
    }

    /// Sends a heartbeat for `cluster`.
    pub async fn heartbeat(&self, cluster: &str) -> Result<HeartbeatAck, ClientError> {
        self.post(&format!("/v1/clusters/{cluster}/heartbeat"))
            .await
    }

    /// Whether the server answers `/readyz` with 200.
    pub async fn ready(&self) -> Result<bool, ClientError> {
        Ok(self.raw(Method::GET, "/readyz", None, &[]).await?.status == StatusCode::OK)
    }
}

/// A line of the watch stream, re-exported for clients.
pub type WatchEvent = WatchLine;
