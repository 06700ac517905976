//! Typed helpers over the REST paths, for cluster agents and tools.

use super::{Client, ClientError, Precondition, Versioned};
use crate::model::{
    Cluster, ClusterId, PolicyKind, Resource, ServiceExport, ServiceImport, ServiceRef,
    TrustBundle, TrustDomainName,
};

impl Client {
    /// Reads a cluster (with its status).
    pub async fn get_cluster(&self, id: &ClusterId) -> Result<Versioned<Cluster>, ClientError> {
        self.get(&format!("/v1/clusters/{id}")).await
    }

    /// Creates or replaces a cluster record.
    pub async fn put_cluster(
        &self,
        c: &Cluster,
        pre: Precondition,
    ) -> Result<Versioned<Cluster>, ClientError> {
        self.put(&format!("/v1/clusters/{}", c.id()), c, pre).await
    }

    /// Every cluster.
    pub async fn list_clusters(&self) -> Result<Vec<Cluster>, ClientError> {
        self.list("/v1/clusters").await
    }

    /// Creates or replaces an export.
    pub async fn put_export(
        &self,
        e: &ServiceExport,
        pre: Precondition,
    ) -> Result<Versioned<ServiceExport>, ClientError> {
        let m = &e.metadata;
        self.put(
            &format!(
                "/v1/clusters/{}/exports/{}/{}",
                m.cluster, m.namespace, m.name
            ),
            e,
            pre,
        )
        .await
    }

    /// Deletes an export.
    pub async fn delete_export(
        &self,
        cluster: &ClusterId,
        service: &ServiceRef,
    ) -> Result<(), ClientError> {
        self.delete(
            &format!(
                "/v1/clusters/{cluster}/exports/{}/{}",
                service.namespace, service.name
            ),
            Precondition::None,
        )
        .await
    }

    /// The exports of a cluster (with status).
    pub async fn list_exports(
        &self,
        cluster: &ClusterId,
    ) -> Result<Vec<ServiceExport>, ClientError> {
        self.list(&format!("/v1/clusters/{cluster}/exports")).await
    }

    /// Every derived import.
    pub async fn list_imports(&self) -> Result<Vec<ServiceImport>, ClientError> {
        self.list("/v1/imports").await
    }

    /// The import of one service.
    pub async fn get_import(&self, service: &ServiceRef) -> Result<ServiceImport, ClientError> {
        Ok(self
            .get(&format!(
                "/v1/imports/{}/{}",
                service.namespace, service.name
            ))
            .await?
            .value)
    }

    /// Publishes the bundle of a trust domain.
    pub async fn put_bundle(&self, b: &TrustBundle) -> Result<Versioned<TrustBundle>, ClientError> {
        self.put(
            &format!("/v1/trust-domains/{}/bundle", b.trust_domain()),
            b,
            Precondition::None,
        )
        .await
    }

    /// Fetches the bare SPIFFE bundle of a trust domain (no auth needed).
    pub async fn get_bundle(
        &self,
        td: &TrustDomainName,
    ) -> Result<causeway_trust::Bundle, ClientError> {
        let r = self
            .raw(
                http::Method::GET,
                &format!("/v1/trust-domains/{td}/bundle"),
                None,
                &[],
            )
            .await?;
        if !r.status.is_success() {
            return Err(super::http::api_error(r.status, &r.body));
        }
        causeway_trust::Bundle::parse(&r.body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Every TrustBundle resource.
    pub async fn list_bundles(&self) -> Result<Vec<TrustBundle>, ClientError> {
        self.list("/v1/trust-domains").await
    }

    /// Every policy of a kind.
    pub async fn list_policies(&self, kind: PolicyKind) -> Result<Vec<Resource>, ClientError> {
        self.list(&format!("/v1/policies/{kind}")).await
    }
}
