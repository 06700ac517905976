//! Test harnesses (feature `testing`): real etcd processes on loopback.
//!
//! - [`EtcdProcess`]: one etcd member on free loopback ports with its own
//!   temporary data dir; `kill()` / `restart()`; killed by pid on drop.
//! - [`EtcdProcess::shared`]: one etcd shared by the concurrently running
//!   tests of a binary, stopped when the last user drops it.
//! - [`EtcdCluster`]: three members, for HA tests (kill the leader).
//!
//! The binary is `$CAUSEWAY_ETCD_BIN`, else `etcd` on `PATH`, else
//! `/usr/bin/etcd`.

mod cluster;
mod process;

pub use cluster::EtcdCluster;
pub use process::{EtcdProcess, EtcdServerTls, HarnessError};
