//! End-to-end harness for Causeway: boots etcd, federation API replicas and
//! gateways as separate processes on one machine.
