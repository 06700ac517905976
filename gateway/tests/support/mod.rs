//! Shared helpers of the gateway integration tests: real backends on
//! loopback, per-cluster authorities, catalogs, gateways (in-process or the
//! built binary) and small HTTP clients.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

pub mod backend;
pub mod client;
pub mod fixture;
