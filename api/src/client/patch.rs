//! Merge patches (RFC 7396) and the server's version.

use ::http::{Method, header};
use serde::de::DeserializeOwned;

use super::{Client, ClientError, Precondition, Versioned, etag_revision};
use crate::wire::{MERGE_PATCH_JSON, VersionInfo};

impl Client {
    /// PATCHes the resource at `path` with an RFC 7396 merge patch (members
    /// set to `null` are removed) and returns the stored result. With
    /// [`Precondition::Revision`] the server refuses (412) when the resource
    /// changed since that revision; without, it applies the patch to the
    /// latest revision.
    pub async fn merge_patch<T: DeserializeOwned>(
        &self,
        path: &str,
        patch: &serde_json::Value,
        precondition: Precondition,
    ) -> Result<Versioned<T>, ClientError> {
        let bytes = serde_json::to_vec(patch).map_err(|e| ClientError::Decode(e.to_string()))?;
        let mut headers = precondition.headers();
        headers.push((header::CONTENT_TYPE, MERGE_PATCH_JSON.to_owned()));
        // A merge patch is idempotent: after `outcome-unknown` it is sent
        // again, unless it is conditional (a landed first attempt would make
        // the repeat a 412, so the caller decides).
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            match self
                .checked(Method::PATCH, path, Some(bytes.clone()), &headers)
                .await
            {
                Err(e)
                    if e.is_outcome_unknown()
                        && precondition == Precondition::None
                        && attempt < super::OUTCOME_ATTEMPTS =>
                {
                    tokio::time::sleep(super::outcome_backoff(attempt)).await;
                }
                r => break r?,
            }
        };
        let value =
            serde_json::from_slice(&r.body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Versioned {
            value,
            revision: etag_revision(&r.headers),
        })
    }

    /// The server's build (`GET /v1/version`, no authentication needed).
    pub async fn version(&self) -> Result<VersionInfo, ClientError> {
        Ok(self.get::<VersionInfo>("/v1/version").await?.value)
    }
}
