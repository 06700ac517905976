//! `causeway-local`: a whole federation on this machine (three clusters in
//! two jurisdictions with sample services), a little traffic, and a live
//! view of who serves what and why.

mod driver;
mod view;

use std::path::PathBuf;
use std::time::Duration;

use causeway_api::model::{
    RequestClassification, ResidencyPolicy, ResidencyPolicySpec, ServiceSelector,
};

pub use self::driver::{Flow, FlowStats, TrafficDriver};
pub use self::view::{ClusterRow, FlowRow, Snapshot, render, summarize};
use crate::{ClusterDef, Federation, Store};

/// Options of `causeway-local`.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// etcd client URLs; empty = the API's embedded store.
    pub etcd: Vec<String>,
    /// Directory for state and logs (temporary when unset, removed at exit).
    pub dir: Option<PathBuf>,
    /// Drive sample traffic.
    pub traffic: bool,
    /// Refresh period of the live view.
    pub refresh: Duration,
    /// Stop after this long (`None`: until Ctrl-C).
    pub duration: Option<Duration>,
    /// Redraw in place (ANSI) instead of printing successive views.
    pub redraw: bool,
}

/// The sample topology: three clusters, two jurisdictions.
pub fn topology(store: Store) -> crate::FederationBuilder {
    Federation::builder()
        .store(store)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"])
                .service("shop/cart")
                .service("payments/ledger"),
        )
        .cluster(
            ClusterDef::new("eu-central-1", "eu-central", "eu-central-1a", &["eu", "de"])
                .service("payments/ledger")
                .service("shop/profile"),
        )
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"])
                .service("shop/cart")
                .service("payments/ledger")
                .service("shop/profile")
                .service("payments/audit"),
        )
}

fn residency(name: &str, service: &str, header: Option<&str>) -> anyhow::Result<ResidencyPolicy> {
    Ok(ResidencyPolicy::new(
        name.parse()?,
        ResidencyPolicySpec {
            services: ServiceSelector(vec![service.parse()?]),
            match_: header.map(|h| RequestClassification {
                header: Some(h.to_owned()),
                jwt_claim: None,
                values: vec!["eu".into()],
                ..Default::default()
            }),
            allowed_jurisdictions: vec!["eu".into()],
            allowed_regions: vec![],
        },
    ))
}

/// The policies of the sample: `payments/*` stays in the EU; `shop/profile`
/// requests classified `x-data-region: eu` too.
pub async fn apply_policies(fed: &Federation) -> anyhow::Result<()> {
    for svc in ["payments/ledger", "payments/audit"] {
        let name = format!("{}-eu-only", svc.replace('/', "-"));
        fed.put_policy("residency", &name, &residency(&name, svc, None)?)
            .await?;
    }
    fed.put_policy(
        "residency",
        "profile-eu-requests",
        &residency("profile-eu-requests", "shop/profile", Some("x-data-region"))?,
    )
    .await?;
    fed.converge().await?;
    Ok(())
}

/// The sample flows: who calls what, with which headers.
pub fn flows() -> Vec<Flow> {
    vec![
        Flow::new("us-east-1", "shop/cart", &[]),
        Flow::new("eu-central-1", "shop/cart", &[]),
        Flow::new("us-east-1", "payments/ledger", &[]),
        Flow::new("eu-west-1", "payments/ledger", &[]),
        Flow::new("us-east-1", "shop/profile", &[("x-data-region", "eu")]),
        Flow::new("us-east-1", "shop/profile", &[]),
        Flow::new("eu-west-1", "payments/audit", &[]),
    ]
}
