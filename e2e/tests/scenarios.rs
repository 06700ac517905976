//! End-to-end scenarios: several gateways as separate processes, each a
//! cluster with its own trust domain, locality and loopback address, over a
//! real federation API (and a real etcd where the scenario needs one).
//! Each test asserts what a user would check: which cluster served the
//! request, how many requests reached a backend, what status the caller saw.

#![allow(clippy::unwrap_used)]

#[path = "scenarios/support.rs"]
mod support;

#[path = "scenarios/s01_export.rs"]
mod s01_export;
#[path = "scenarios/s02_locality.rs"]
mod s02_locality;
#[path = "scenarios/s03_residency.rs"]
mod s03_residency;
#[path = "scenarios/s04_split.rs"]
mod s04_split;
#[path = "scenarios/s05_rotation.rs"]
mod s05_rotation;
#[path = "scenarios/s06_control_plane_down.rs"]
mod s06_control_plane_down;
#[path = "scenarios/s07_partition.rs"]
mod s07_partition;
#[path = "scenarios/s08_ownership.rs"]
mod s08_ownership;
#[path = "scenarios/s09_foreign_trust_domain.rs"]
mod s09_foreign_trust_domain;
#[path = "scenarios/s10_protocols.rs"]
mod s10_protocols;
#[path = "scenarios/s11_api_ha.rs"]
mod s11_api_ha;
#[path = "scenarios/s12_kubernetes_export.rs"]
mod s12_kubernetes_export;
#[path = "scenarios/s13_rolling_restart.rs"]
mod s13_rolling_restart;
#[path = "scenarios/s14_caller_identity.rs"]
mod s14_caller_identity;
#[path = "scenarios/s15_residency_by_claim.rs"]
mod s15_residency_by_claim;
#[path = "scenarios/s17_grpc_failover.rs"]
mod s17_grpc_failover;
