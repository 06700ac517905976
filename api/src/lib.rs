//! The Causeway API types and client: what a consumer of the federation API
//! compiles, without the server.
//!
//! - [`model`]: the catalog resources (API group `causeway.dev/v1`), names,
//!   policies, the store key layout and the in-memory [`model::CatalogSnapshot`].
//! - [`import`]: derivation of `ServiceImport`s from exports (pure).
//! - [`wire`]: the wire contract: problem documents, list pages, heartbeat
//!   answers and watch lines, as the server sends them.
//! - [`proto`]: the `causeway.federation.v1` gRPC messages and stubs.
//! - [`client`]: the REST and watch client (`http://` and `https://`), and the
//!   pure catalog follower.
//! - [`lifecycle`]: process helpers shared by the Causeway binaries.
//!
//! There is no HTTP server, no etcd client and no axum in this crate: the
//! server and the store are `causeway-federation`, which builds on it. The
//! gateway depends on this crate only.

pub mod client;
pub mod import;
pub mod lifecycle;
pub mod model;
pub mod proto;
pub mod wire;
pub mod workload_api;
