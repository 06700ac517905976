//! The catalog change stream shared by `GET /v1/watch` (NDJSON) and the gRPC
//! `Catalog/Watch`: a snapshot at revision R, then ordered events, resumable
//! by revision. Derived ServiceImports are part of the stream: whenever the
//! exports of a service (or a cluster's connectivity) change, a
//! `ServiceImport` put or delete follows with the same revision. The lines
//! are [`causeway_api::wire::WatchLine`]s.

mod engine;

pub(crate) use self::engine::{HubSlot, Item, ndjson_line, open};
