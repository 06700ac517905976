//! The HTTP transport of the client: HTTP/1.1 over hyper, in plain text or
//! over rustls.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{ClientError, TlsOptions};
use crate::wire::Problem;

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// One HTTP endpoint with an optional bearer token.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    base: String,
    token: Option<String>,
    hyper: Hyper<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Transport {
    pub(crate) fn new(
        server: &str,
        token: Option<String>,
        tls: &TlsOptions,
    ) -> Result<Self, ClientError> {
        let base = server.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| ClientError::InvalidServer(server.to_owned()))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(ClientError::InvalidServer(format!(
                    "{server}: expected http://host:port or https://host:port"
                )));
            }
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        connector.enforce_http(false);
        // Trust roots are loaded only for https servers.
        let config = if https {
            tls.client_config()?
        } else {
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::InvalidServer(format!("tls: {e}")))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let hyper = Hyper::builder(TokioExecutor::new()).build(connector);
        Ok(Self { base, token, hyper })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extra: &[(header::HeaderName, String)],
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let uri = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method).uri(&uri);
        if let Some(t) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if body.is_some() && !extra.iter().any(|(k, _)| k == header::CONTENT_TYPE) {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        for (k, v) in extra {
            let v =
                HeaderValue::from_str(v).map_err(|_| ClientError::InvalidServer(uri.clone()))?;
            req = req.header(k, v);
        }
        req.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::InvalidServer(format!("{uri}: {e}")))
    }

    /// Sends a request and returns the whole response, whatever its status.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        extra: &[(header::HeaderName, String)],
    ) -> Result<RawResponse, ClientError> {
        let req = self.request(method, path, body, extra)?;
        let resp = self
            .hyper
            .request(req)
            .await
            .map_err(|e| connect_error(&self.base, &e))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| ClientError::Connect(format!("{}: reading response: {e}", self.base)))?
            .to_bytes();
        Ok(RawResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// Sends a request and returns the streaming body on 2xx.
    pub(crate) async fn stream(&self, path: &str) -> Result<hyper::body::Incoming, ClientError> {
        let req = self.request(Method::GET, path, None, &[])?;
        let resp = self
            .hyper
            .request(req)
            .await
            .map_err(|e| connect_error(&self.base, &e))?;
        let (parts, body) = resp.into_parts();
        if parts.status.is_success() {
            return Ok(body);
        }
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Err(api_error(parts.status, &bytes))
    }
}

/// A connect error naming `base` and every cause (TLS and DNS errors are
/// several levels deep).
pub(crate) fn connect_error(base: &str, e: &dyn std::error::Error) -> ClientError {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    ClientError::Connect(format!("cannot reach {base}: {msg}"))
}

/// Turns a non-2xx response into an error carrying the problem document.
pub(crate) fn api_error(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) => ClientError::Api(Box::new(p)),
        Err(_) => ClientError::Api(Box::new(Problem::blank(
            status.as_u16(),
            status.canonical_reason().unwrap_or("error"),
            Some(String::from_utf8_lossy(body).chars().take(500).collect()),
        ))),
    }
}
