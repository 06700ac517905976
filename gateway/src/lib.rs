//! The Causeway east-west gateway: egress and mTLS ingress listeners on
//! Pingora, the routing engine and the cluster agent.

pub mod resilience;
pub mod routing;

// --- proxy (owned by the proxy engineer) ---
pub mod admin;
pub mod audit;
pub mod authz;
pub mod callers;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod denial;
pub mod gateway;
pub mod headers;
pub mod health;
pub mod identity;
mod listener;
pub mod metrics;
pub mod proxy;
pub mod state;
pub mod tcp;
pub mod tokens;
pub mod trace;
pub mod upstream;

pub use gateway::{Drained, Gateway, StartError};
// --- end proxy ---
