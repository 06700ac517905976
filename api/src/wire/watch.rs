//! The catalog change stream shared by `GET /v1/watch` (NDJSON) and the gRPC
//! `Catalog/Watch`: a snapshot at revision R, then ordered events, resumable
//! by revision. Derived ServiceImports are part of the stream: whenever the
//! exports of a service (or a cluster's connectivity) change, a
//! `ServiceImport` put or delete follows with the same revision.

use serde::{Deserialize, Serialize};

use crate::model::{CatalogEvent, Kind, ObjectRef, Resource};

/// One line of the NDJSON watch (and the content of a gRPC event).
///
/// Keys are relative to the store prefix
/// ([`crate::model::keys::relative_key`]): `clusters/<id>`,
/// `exports/<ns>/<name>/<cluster>`, `imports/<ns>/<name>`, `bundles/<td>`,
/// `policies/<kind>/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum WatchLine {
    /// Every resource at `revision` (first line when `since` is absent).
    Snapshot {
        /// The snapshot revision R; events follow with revisions > R.
        revision: u64,
        /// Clusters (with status), exports, imports, bundles and policies.
        resources: Vec<Resource>,
    },
    /// A resource was created or replaced.
    Put {
        /// The revision of the change.
        revision: u64,
        /// The resource kind.
        kind: Kind,
        /// The resource key.
        key: String,
        /// The resource.
        resource: Box<Resource>,
    },
    /// A resource was deleted.
    Delete {
        /// The revision of the change.
        revision: u64,
        /// The resource kind.
        kind: Kind,
        /// The resource key.
        key: String,
        /// The identity of the deleted resource.
        object: ObjectRef,
    },
    /// Nothing changed up to `revision` (sent when idle; resume from it).
    Bookmark {
        /// The store revision.
        revision: u64,
    },
    /// The stream failed and ends; `status` 410 means relist.
    Error {
        /// The HTTP status equivalent (410 compacted, 503 store unavailable).
        status: u16,
        /// What happened.
        detail: String,
    },
}

impl WatchLine {
    /// The revision of the line, if any.
    pub fn revision(&self) -> Option<u64> {
        match self {
            Self::Snapshot { revision, .. }
            | Self::Put { revision, .. }
            | Self::Delete { revision, .. }
            | Self::Bookmark { revision } => Some(*revision),
            Self::Error { .. } => None,
        }
    }

    /// The event to apply to a [`crate::model::CatalogSnapshot`] (puts and deletes).
    pub fn to_catalog_event(&self) -> Option<CatalogEvent> {
        match self {
            Self::Put {
                revision, resource, ..
            } => Some(CatalogEvent::Put {
                revision: *revision,
                resource: resource.clone(),
            }),
            Self::Delete {
                revision, object, ..
            } => Some(CatalogEvent::Delete {
                revision: *revision,
                object: object.clone(),
            }),
            _ => None,
        }
    }
}
