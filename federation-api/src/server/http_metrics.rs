//! Request metrics by route template and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use super::metrics::{RequestLabels, RouteLabels};

/// Records the rate and latency of one request.
pub(crate) async fn record(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| {
            // gRPC routes are nested tonic services; their paths are bounded.
            let p = req.uri().path();
            if p.starts_with("/causeway.") {
                p.to_owned()
            } else {
                "unmatched".to_owned()
            }
        });
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &s.0.metrics;
    m.request_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
            method: method.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
