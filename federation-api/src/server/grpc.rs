//! The tonic `causeway.federation.v1.Catalog` service, served on the REST
//! port (requests with `content-type: application/grpc` reach it by path).

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::AppState;
use super::routes::authenticate;
use super::watch::Item;
use causeway_api::model::relative_key;
use causeway_api::proto::catalog_server::{Catalog, CatalogServer};
use causeway_api::proto::{self, EventType};
use causeway_api::wire::WatchLine;

/// The gRPC service.
#[derive(Debug, Clone)]
pub(crate) struct CatalogService {
    state: AppState,
}

fn status_of(e: &super::error::ApiError) -> Status {
    let p = e.problem();
    let msg = p.detail.unwrap_or(p.title);
    match p.status {
        401 => Status::unauthenticated(msg),
        403 => Status::permission_denied(msg),
        400 => Status::invalid_argument(msg),
        404 => Status::not_found(msg),
        410 => Status::out_of_range(msg),
        503 => Status::unavailable(msg),
        _ => Status::internal(msg),
    }
}

fn resource(kind: &str, key: String, json: Vec<u8>) -> proto::Resource {
    proto::Resource {
        kind: kind.to_owned(),
        key,
        json,
    }
}

/// Converts a watch line to a gRPC event (`None` for bookmarks).
pub(crate) fn to_event(line: WatchLine) -> Option<Result<proto::WatchEvent, Status>> {
    Some(Ok(match line {
        WatchLine::Snapshot {
            revision,
            resources,
        } => proto::WatchEvent {
            r#type: EventType::Snapshot as i32,
            revision: revision as i64,
            resource: None,
            resources: resources
                .iter()
                .map(|r| {
                    let key = relative_key(&r.object_ref());
                    resource(
                        r.kind().as_str(),
                        key,
                        serde_json::to_vec(r).unwrap_or_default(),
                    )
                })
                .collect(),
        },
        WatchLine::Put {
            revision,
            kind,
            key,
            resource: r,
        } => proto::WatchEvent {
            r#type: EventType::Put as i32,
            revision: revision as i64,
            resource: Some(resource(
                kind.as_str(),
                key,
                serde_json::to_vec(&r).unwrap_or_default(),
            )),
            resources: Vec::new(),
        },
        WatchLine::Delete {
            revision,
            kind,
            key,
            ..
        } => proto::WatchEvent {
            r#type: EventType::Delete as i32,
            revision: revision as i64,
            resource: Some(resource(kind.as_str(), key, Vec::new())),
            resources: Vec::new(),
        },
        WatchLine::Bookmark { .. } => return None,
        WatchLine::Error { status, detail } => {
            return Some(Err(if status == 410 {
                Status::out_of_range(detail)
            } else {
                Status::unavailable(detail)
            }));
        }
    }))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<proto::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Catalog for CatalogService {
    type WatchStream = EventStream;

    async fn watch(
        &self,
        req: Request<proto::WatchRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let headers = req.metadata().clone().into_headers();
        // A bearer token wins; without one, the connection's X.509-SVID.
        let principal = match req.extensions().get::<super::tls::PeerSvid>() {
            Some(super::tls::PeerSvid(id))
                if !headers.contains_key(axum::http::header::AUTHORIZATION)
                    && !matches!(self.state.0.authn, super::Authn::Disabled) =>
            {
                super::tls::svid_principal(&self.state, id).await
            }
            _ => authenticate(&headers, &self.state.0.authn),
        };
        principal
            .and_then(|p| {
                if p.can_read() {
                    Ok(())
                } else {
                    Err(super::error::ApiError::forbidden("token cannot read"))
                }
            })
            .map_err(|e| status_of(&e))?;
        let since = match req.into_inner().since {
            None => None,
            Some(s) if s >= 0 => Some(s as u64),
            Some(_) => {
                return Err(Status::invalid_argument(
                    "since must be a non-negative revision",
                ));
            }
        };
        let lines = super::watch::open(&self.state.0.catalog, since)
            .await
            .map_err(|e| status_of(&e))?;
        let guard = self.state.0.metrics.watch_guard("grpc");
        let stream = lines.filter_map(move |item| {
            let _held = &guard;
            match item {
                Item::Line(l) => to_event(l),
                Item::Shared(e) => Some(Ok(e.grpc.clone())),
            }
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Adds the gRPC services to `router` by their `/package.Service/*` paths.
pub(crate) fn add_to(router: axum::Router, state: AppState) -> axum::Router {
    use tonic::server::NamedService;
    use tower::ServiceExt;
    let svc = CatalogServer::new(CatalogService { state });
    router.route_service(
        &format!("/{}/{{*rest}}", CatalogServer::<CatalogService>::NAME),
        svc.map_request(|req: axum::http::Request<axum::body::Body>| {
            req.map(tonic::body::Body::new)
        }),
    )
}
