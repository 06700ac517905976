//! An HTTP client for callers in a cluster: requests go to the cluster's
//! egress listener, addressed as `<svc>.<ns>.svc.clusterset.local`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::echo::SERVED_BY;

/// What a caller saw.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The cluster that served the request (`x-served-by`), if a backend did.
    pub served_by: Option<String>,
    /// The gateway's machine-readable denial (`x-causeway-deny-reason`).
    pub deny_reason: Option<String>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A pooled HTTP/1.1 client with a per-request timeout.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

impl HttpClient {
    /// A client whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Self { inner, timeout }
    }

    /// `GET http://<addr><path>` with `Host: <host>` and extra headers.
    pub async fn get(
        &self,
        addr: SocketAddr,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Reply> {
        let mut b = Request::get(format!("http://{addr}{path}")).header(http::header::HOST, host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::new()))?;
        let resp = tokio::time::timeout(self.timeout, self.inner.request(req))
            .await
            .map_err(|_| anyhow::anyhow!("request to {host} via {addr} timed out"))??;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let served_by = header(SERVED_BY);
        let deny_reason = header("x-causeway-deny-reason");
        let body = tokio::time::timeout(self.timeout, resp.into_body().collect())
            .await
            .map_err(|_| anyhow::anyhow!("body from {host} via {addr} timed out"))??
            .to_bytes();
        Ok(Reply {
            status,
            served_by,
            deny_reason,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
