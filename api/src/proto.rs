//! Generated types and stubs of the `causeway.federation.v1` gRPC API
//! (`proto/causeway/federation/v1/catalog.proto`).
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("causeway.federation.v1");
