//! Heartbeats: an etcd lease per cluster keeps `/heartbeats/<cluster>`
//! alive; `<prefix>/lastseen/<cluster>` (no lease) remembers the last
//! heartbeat after the lease expired.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Catalog, store_error};
use crate::server::error::ApiError;
use crate::store::{LeaseId, Precondition, StoreError};
use causeway_api::model::ClusterId;
use causeway_api::wire::HeartbeatAck;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LastSeen {
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) last_heartbeat: OffsetDateTime,
}

impl Catalog {
    pub(crate) fn last_seen_prefix(&self) -> String {
        format!("{}/lastseen/", self.keys.prefix())
    }

    /// Records a heartbeat of `cluster`: renews (or grants) its lease and
    /// the heartbeat key attached to it.
    pub async fn heartbeat(&self, cluster: &ClusterId) -> Result<HeartbeatAck, ApiError> {
        let key = self.keys.heartbeat(cluster);
        let now = self.now();
        let current = self.get_raw(&key).await?;
        let mut alive = false;
        if let Some(lease) = current.as_ref().and_then(|kv| kv.lease) {
            match self
                .retrying("lease", || self.store.keep_alive(lease))
                .await
            {
                Ok(_) => alive = true,
                Err(StoreError::LeaseNotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        if !alive {
            let lease: LeaseId = self
                .timed("lease", self.store.grant_lease(self.heartbeat_ttl))
                .await
                .map_err(store_error)?;
            let body = serde_json::to_vec(&LastSeen {
                last_heartbeat: now,
            })
            .map_err(|e| ApiError::internal(&e))?;
            self.timed(
                "put",
                self.store
                    .put(&key, Bytes::from(body), Precondition::None, Some(lease)),
            )
            .await
            .map_err(store_error)?;
            tracing::info!(cluster = %cluster, lease = %lease, "cluster connected");
        }
        let body = serde_json::to_vec(&LastSeen {
            last_heartbeat: now,
        })
        .map_err(|e| ApiError::internal(&e))?;
        let seen = format!("{}{cluster}", self.last_seen_prefix());
        self.timed(
            "put",
            self.store
                .put(&seen, Bytes::from(body), Precondition::None, None),
        )
        .await
        .map_err(store_error)?;
        Ok(HeartbeatAck {
            cluster: cluster.to_string(),
            connected: true,
            last_heartbeat: now,
            ttl_seconds: self.heartbeat_ttl.as_secs(),
        })
    }
}
