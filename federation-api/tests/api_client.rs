//! The typed client and the snapshot follower, as a cluster agent and a
//! gateway would use them.
#![allow(clippy::unwrap_used)]

#[path = "support/api.rs"]
mod support;

use std::time::Duration;

use causeway_api::client::{Follow, Precondition, apply_line};
use causeway_api::model::{
    CatalogSnapshot, Cluster, ClusterId, ServiceExport, ServiceRef, TrustBundle, TrustDomainName,
};
use support::*;

#[tokio::test]
async fn typed_client_and_follower_agree_with_rest() {
    let s = TestServer::start().await;
    let agent = s.client(&["cluster:eu-1"]);
    let admin = s.admin();
    let c: Cluster =
        serde_json::from_value(cluster("eu-1", "eu-1.example.org", "eu-west-1")).unwrap();
    let stored = agent
        .put_cluster(&c, Precondition::MustNotExist)
        .await
        .unwrap();
    assert!(stored.revision.is_some());
    agent.heartbeat("eu-1").await.unwrap();
    let mut w = s.client(&["read"]).watch(None).await.unwrap();
    let mut snap = CatalogSnapshot::default();
    let first = w.next().await.unwrap().unwrap();
    assert!(matches!(
        apply_line(&mut snap, first),
        Follow::Changed { .. }
    ));
    assert_eq!(snap.clusters.len(), 1);
    let e: ServiceExport =
        serde_json::from_value(export("eu-1", "shop", "cart", 8080, "TCP", "ClusterSetIP"))
            .unwrap();
    agent.put_export(&e, Precondition::None).await.unwrap();
    let td: TrustDomainName = "eu-1.example.org".parse().unwrap();
    let id: ClusterId = "eu-1".parse().unwrap();
    agent
        .put_bundle(&TrustBundle::new(
            td.clone(),
            id.clone(),
            causeway_trust::Bundle::new(7),
        ))
        .await
        .unwrap();
    // Follow until the import and the bundle are in the snapshot.
    let svc: ServiceRef = "shop/cart".parse().unwrap();
    while !(snap.imports.contains_key(&svc) && snap.bundles.contains_key(&td)) {
        let line = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        apply_line(&mut snap, line);
    }
    // The followed snapshot and REST agree.
    let rest = admin.get_import(&svc).await.unwrap();
    assert_eq!(snap.imports[&svc].spec, rest.spec);
    assert_eq!(admin.list_imports().await.unwrap().len(), 1);
    assert_eq!(
        admin.list_exports(&id).await.unwrap()[0]
            .metadata
            .name
            .as_str(),
        "cart"
    );
    assert_eq!(admin.get_bundle(&td).await.unwrap().sequence(), 7);
    assert_eq!(s.anonymous().get_bundle(&td).await.unwrap().sequence(), 7);
    assert_eq!(admin.list_bundles().await.unwrap().len(), 1);
    assert!(
        admin
            .get_cluster(&id)
            .await
            .unwrap()
            .value
            .status
            .unwrap()
            .connected
    );
    agent.delete_export(&id, &svc).await.unwrap();
    while snap.imports.contains_key(&svc) {
        let line = tokio::time::timeout(Duration::from_secs(5), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        apply_line(&mut snap, line);
    }
    assert!(admin.list_imports().await.unwrap().is_empty());
}
