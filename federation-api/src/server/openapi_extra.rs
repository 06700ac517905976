//! What the edge layer ([`super::edge`]) adds to every route, written into
//! the generated OpenAPI document once instead of on every handler: the
//! `X-Request-Id` header, and the conditional `GET` (`If-None-Match` → 304)
//! of every resource that has an `ETag`.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{Header, ObjectBuilder, OpenApi, PathItem, RefOr, Required, Response, Type};

use causeway_api::wire::REQUEST_ID_HEADER;

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn header_param(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(string()))
        .build()
}

fn header(description: &str) -> Header {
    let mut h = Header::new(string());
    h.description = Some(description.to_owned());
    h
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Adds the request id to every operation and `If-None-Match`/304 to every
/// `GET` of a resource that can be written (those answer an `ETag`).
pub(crate) fn describe_edge(doc: &mut OpenApi) {
    let id_header = "X-Request-Id";
    for item in doc.paths.paths.values_mut() {
        let has_etag = item.put.is_some();
        if has_etag && let Some(get) = item.get.as_mut() {
            get.parameters.get_or_insert_with(Vec::new).push(header_param(
                "If-None-Match",
                "ETags (`\"<resourceVersion>\"`) the caller holds: 304 without a body when one is current",
            ));
            if let Some(RefOr::T(ok)) = get.responses.responses.get_mut("200") {
                ok.headers.insert(
                    "ETag".into(),
                    header("`\"<resourceVersion>\"` of the stored resource (use it in If-Match and If-None-Match)"),
                );
            }
            let mut not_modified = Response::new(
                "Not modified: the resourceVersion is the one named in If-None-Match. \
                 The ETag covers the stored resource, not the status computed on read \
                 (cluster connectivity, export conditions): follow those with the watch",
            );
            not_modified
                .headers
                .insert("ETag".into(), header("The current ETag"));
            get.responses
                .responses
                .insert("304".into(), RefOr::T(not_modified));
        }
        for op in operations(item) {
            op.parameters.get_or_insert_with(Vec::new).push(header_param(
                id_header,
                "Request id to log and echo (1-128 characters of `A-Za-z0-9-_.:/+=@`); generated when absent or invalid",
            ));
            for r in op.responses.responses.values_mut() {
                if let RefOr::T(r) = r {
                    r.headers.insert(
                        REQUEST_ID_HEADER.into(),
                        header("The request id (also `requestId` of problem documents)"),
                    );
                }
            }
        }
    }
}
