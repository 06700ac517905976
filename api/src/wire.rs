//! The wire contract of the federation API: what the server sends and every
//! client parses. The server (`causeway-federation`) produces these types;
//! the [`crate::client`] and the gateways' agents read them.
//!
//! # REST
//! Paths are those of DESIGN.md §3 (`/v1/openapi.json` on a server describes
//! them all). `PUT` creates (201) or replaces (200); responses carry
//! `ETag: "<resourceVersion>"`; `If-Match: "<rev>"` (or `*`) and
//! `If-None-Match: *` are preconditions (412 when they fail);
//! `metadata.resourceVersion` in a body is compared too (409). The server
//! sets `resourceVersion` and `createdAt` (kept on update) and computes
//! `status` on read: `Cluster.status.{connected,lastHeartbeat}` from the
//! heartbeat lease, `ServiceExport.status.{conditions,stale}` across every
//! export of the service. ServiceImports are derived on read. Lists take
//! `limit` (default 100, max 1000) and `continue`, and answer a [`Page`]
//! (`{items, continue?, revision}`). `POST /v1/clusters/{c}/heartbeat`
//! answers a [`HeartbeatAck`]. Every rejection is an RFC 9457
//! `application/problem+json` [`Problem`] with `errors: [{field, message}]`,
//! `instance` (the request path) and `requestId` (also the
//! [`REQUEST_ID_HEADER`] of every response). `GET` of one resource answers
//! `304 Not Modified` when `If-None-Match` names its `ETag`. `PATCH` takes
//! an RFC 7396 merge patch (`application/merge-patch+json`) of clusters,
//! exports and policies. `GET /v1/version` answers a [`VersionInfo`].
//!
//! # Watch
//! `GET /v1/watch[?since=REV]` (NDJSON, one [`WatchLine`] per line) and gRPC
//! `causeway.federation.v1.Catalog/Watch` (see `proto/` and
//! [`crate::proto`]; [`crate::client::grpc_wire`] turns its events into the
//! same lines): a snapshot at R, then ordered events; derived ServiceImport
//! events follow the export (or cluster connectivity) events they result
//! from, with the same revision; idle NDJSON streams get `bookmark` lines
//! every 30 s. A compacted `since` is 410 / `OUT_OF_RANGE`: relist. Events
//! name their resource by a key relative to the store prefix
//! ([`crate::model::relative_key`], parsed back by
//! [`crate::model::parse_relative_key`]).

mod problem;
mod rest;
mod watch;

pub use self::problem::{FieldError, PROBLEM_JSON, PROBLEM_TYPE_BASE, Problem, REQUEST_ID_HEADER};
pub use self::rest::{HeartbeatAck, MERGE_PATCH_JSON, Page, VersionInfo};
pub use self::watch::WatchLine;
