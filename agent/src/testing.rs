//! Test support shared by the agent's tests and the end-to-end scenarios
//! (feature `testing`): a wire-true fake of the Kubernetes API server.

mod fake_kube;

pub use fake_kube::{FakeKube, Request, chart_agent_rbac, merge_patch};
