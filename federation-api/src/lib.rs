//! The Causeway federation API server: the catalog of clusters, service
//! exports, derived service imports, trust bundles and policies, stored in
//! etcd (or the embedded store) and served over REST and a gRPC watch; the
//! `causewayctl` CLI; API tokens.
//!
//! The model, the wire types, the protobuf messages and the client are in
//! `causeway-api`, which this crate builds on; consumers that only read the
//! catalog depend on that crate and compile no server.

pub mod store;
// --- server engineer: REST/gRPC server, CLI, tokens ---
pub mod cli;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;
