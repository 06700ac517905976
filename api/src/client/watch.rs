//! Watch streams on the client side: NDJSON over HTTP and the gRPC stream.

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;

use super::ClientError;
use super::TlsOptions;
use crate::proto;
use crate::wire::WatchLine;

/// An open NDJSON watch; call [`NdjsonWatch::next`] until it returns `None`.
#[derive(Debug)]
pub struct NdjsonWatch {
    body: hyper::body::Incoming,
    buf: BytesMut,
}

impl NdjsonWatch {
    pub(super) fn new(body: hyper::body::Incoming) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
        }
    }

    /// The next line, `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<WatchLine, ClientError>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(i + 1);
                let line = &line[..i];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(
                    serde_json::from_slice(line).map_err(|e| ClientError::Decode(e.to_string())),
                );
            }
            match self.body.frame().await {
                None => return None,
                Some(Err(e)) => {
                    return Some(Err(ClientError::Connect(format!(
                        "watch stream broken: {e}"
                    ))));
                }
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
            }
        }
    }
}

/// The largest watch event the client accepts (a snapshot of the whole catalog).
const MAX_WATCH_MESSAGE: usize = 256 * 1024 * 1024;

/// Opens the gRPC `Catalog/Watch` stream on `server` (`http://host:port`,
/// or `https://` verified against the system's CAs).
pub async fn grpc_watch(
    server: &str,
    token: Option<&str>,
    since: Option<u64>,
) -> Result<tonic::Streaming<proto::WatchEvent>, ClientError> {
    grpc_watch_tls(server, token, since, &TlsOptions::default()).await
}

/// [`grpc_watch`] with the trust settings of `tls` for an `https://` server.
pub async fn grpc_watch_tls(
    server: &str,
    token: Option<&str>,
    since: Option<u64>,
    tls: &TlsOptions,
) -> Result<tonic::Streaming<proto::WatchEvent>, ClientError> {
    let https = server.starts_with("https://");
    // tonic refuses an https:// endpoint without its own TLS features; it is
    // given the http:// form and a connector that does TLS with our roots.
    let target = match server.strip_prefix("https://") {
        Some(rest) => format!("http://{rest}"),
        None => server.to_owned(),
    };
    let endpoint = tonic::transport::Endpoint::from_shared(target)
        .map_err(|e| ClientError::InvalidServer(format!("{server}: {e}")))?;
    let unreachable = |e: tonic::transport::Error| super::http::connect_error(server, &e);
    let channel = if https {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.client_config()?)
            .https_only()
            .enable_http2()
            .wrap_connector(http);
        let connector = tower::ServiceExt::map_request(connector, as_https);
        endpoint
            .connect_with_connector(connector)
            .await
            .map_err(unreachable)?
    } else {
        endpoint.connect().await.map_err(unreachable)?
    };
    // The first event is the whole catalog: 10,000 exports are about 4 MiB,
    // tonic's default limit. Allow catalogs far beyond that.
    let mut client = proto::catalog_client::CatalogClient::new(channel)
        .max_decoding_message_size(MAX_WATCH_MESSAGE);
    let mut req = tonic::Request::new(proto::WatchRequest {
        since: since.map(|s| s as i64),
    });
    if let Some(t) = token {
        let v = format!("Bearer {t}")
            .parse()
            .map_err(|_| ClientError::InvalidServer("token is not valid header text".into()))?;
        req.metadata_mut().insert("authorization", v);
    }
    client
        .watch(req)
        .await
        .map(tonic::Response::into_inner)
        .map_err(status_error)
}

/// The `https://` form of a URI tonic was given as `http://`.
fn as_https(uri: http::Uri) -> http::Uri {
    let mut parts = uri.into_parts();
    parts.scheme = Some(http::uri::Scheme::HTTPS);
    http::Uri::from_parts(parts).unwrap_or_default()
}

/// Maps a gRPC status to a client error (OUT_OF_RANGE becomes a 410 problem).
pub fn status_error(s: tonic::Status) -> ClientError {
    use tonic::Code;
    let status = match s.code() {
        Code::Unavailable => return ClientError::Connect(s.message().to_owned()),
        Code::OutOfRange => 410,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::InvalidArgument => 400,
        Code::NotFound => 404,
        _ => 500,
    };
    ClientError::Api(Box::new(crate::wire::Problem::blank(
        status,
        format!("{:?}", s.code()),
        Some(s.message().to_owned()),
    )))
}
