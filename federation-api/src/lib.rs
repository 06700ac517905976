//! The Causeway federation API: the catalog of clusters, service exports,
//! derived service imports, trust bundles and policies, stored in etcd and
//! served over REST and a gRPC watch.

pub mod import;
pub mod model;
pub mod store;
// --- server engineer: REST/gRPC server, client library, CLI ---
pub mod cli;
pub mod client;
pub mod proto;
pub mod server;
pub mod token;
#[cfg(feature = "testing")]
pub mod testing;
