//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/debug/config`
//! and `/debug/route?host=..&header=name:value`.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::metrics::CertLabels;
use crate::routing::{RouteRequest, explain};
use crate::state::Shared;

/// The admin application.
pub struct Admin {
    shared: Arc<Shared>,
}

impl Admin {
    /// An admin app over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    fn metrics(&self) -> Response<Vec<u8>> {
        let state = self.shared.catalog();
        self.shared
            .metrics
            .catalog_age
            .set(state.loaded_at.elapsed().as_secs_f64());
        self.shared
            .metrics
            .cert_expiry
            .get_or_create(&CertLabels { kind: "x509-svid" })
            .set(self.shared.identity.svid().not_after().unix_timestamp());
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.shared.registry).is_err() {
            return text(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed");
        }
        let mut r = Response::new(out.into_bytes());
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        );
        r
    }

    fn debug_config(&self) -> Response<Vec<u8>> {
        let state = self.shared.catalog();
        let body = serde_json::json!({
            "cluster": self.shared.config.cluster,
            "identity": self.shared.identity.spiffe_id.to_string(),
            "revision": state.revision(),
            "ageSeconds": state.loaded_at.elapsed().as_secs_f64(),
            "catalog": &*state.catalog,
        });
        json(StatusCode::OK, &body)
    }

    fn debug_route(&self, query: &str) -> Response<Vec<u8>> {
        let mut host = None;
        let mut headers: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "host" => host = Some(v),
                "header" => {
                    if let Some((n, val)) = v.split_once(':') {
                        headers.push((n.trim().to_owned(), val.trim().to_owned()));
                    }
                }
                _ => {}
            }
        }
        let Some(host) = host else {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"error": "query parameter `host` is required"}),
            );
        };
        let state = self.shared.catalog();
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = RouteRequest::host(&host).with_headers(pairs.as_slice());
        let ex = explain(&state.routing, &self.shared.health, &req);
        json(StatusCode::OK, &ex)
    }
}

fn text(status: StatusCode, body: &str) -> Response<Vec<u8>> {
    let mut r = Response::new(body.as_bytes().to_vec());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Vec<u8>> {
    let mut r = Response::new(serde_json::to_vec_pretty(body).unwrap_or_default());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path().to_owned();
        let query = req.uri.query().unwrap_or("").to_owned();
        match path.as_str() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.shared.readiness() {
                Ok(()) => text(StatusCode::OK, "ready\n"),
                Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{why}\n")),
            },
            "/metrics" => self.metrics(),
            "/debug/config" => self.debug_config(),
            "/debug/route" => self.debug_route(&query),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_percent_and_plus() {
        assert_eq!(percent_decode("x-region%3A%20eu+1"), "x-region: eu 1");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
