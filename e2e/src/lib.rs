//! End-to-end harness for Causeway: boots etcd, federation API replicas and
//! gateways as separate processes on one machine, each gateway a "cluster"
//! with its own trust domain, locality and address (its own network
//! namespace when run as root, see [`netns`]; a loopback address otherwise),
//! plus echo backends that say which cluster served them and count requests.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use causeway_e2e::{Federation, ClusterDef, Store};
//! let fed = Federation::builder()
//!     .store(Store::Etcd { members: 1 })
//!     .cluster(ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"))
//!     .cluster(ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"]))
//!     .start()
//!     .await?;
//! let reply = fed.call("us-east-1", "cart.shop.svc.clusterset.local", &[]).await?;
//! assert_eq!(reply.served_by.as_deref(), Some("eu-west-1"));
//! # Ok(()) }
//! ```
//!
//! Each gateway runs its own cluster agent with a cluster-scoped token: it
//! registers the cluster, publishes its trust bundle and the exports of its
//! static discovery file ([`site`]), follows the catalog over the gRPC watch
//! and persists it. The agents reach the API replicas through [`balancer`].

pub mod api;
pub mod balancer;
pub mod binaries;
pub mod client;
pub mod echo;
pub mod federation;
pub mod gateway;
pub mod grpc;
pub mod local;
pub mod metrics;
pub mod mtls;
pub mod net;
pub mod netns;
pub mod oidc;
pub mod process;
pub mod site;
pub mod traffic;
pub mod wait;

pub use client::Reply;
pub use echo::EchoServer;
pub use federation::{ClusterDef, Federation, FederationBuilder, Store};
