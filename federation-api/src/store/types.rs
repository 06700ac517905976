//! Plain data of the store API.

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// A store revision (etcd's `mod_revision` space).
pub type Revision = u64;

/// A lease identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeaseId(pub i64);

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// One key with its value and revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Bytes,
    /// The revision at which the key was (last) created.
    pub create_revision: Revision,
    /// The revision of the last write of the key.
    pub mod_revision: Revision,
    /// The number of writes since creation (1 after create).
    pub version: u64,
    /// The lease the key is attached to.
    pub lease: Option<LeaseId>,
}

/// A condition checked atomically with a write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Precondition {
    /// Unconditional.
    #[default]
    None,
    /// The key must not exist (create).
    MustNotExist,
    /// The key must exist with exactly this `mod_revision` (update with
    /// `If-Match`).
    ModRevision(Revision),
}

/// A page of a range read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Maximum number of keys (0 = unlimited).
    pub limit: usize,
    /// Return keys strictly after this one.
    pub start_after: Option<String>,
}

impl Page {
    /// Every key.
    pub fn all() -> Self {
        Self::default()
    }

    /// At most `limit` keys after `start_after`.
    pub fn new(limit: usize, start_after: Option<String>) -> Self {
        Self { limit, start_after }
    }
}

/// The result of a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResponse {
    /// The keys, in key order.
    pub kvs: Vec<KeyValue>,
    /// The store revision the read was served at.
    pub revision: Revision,
    /// Whether more keys follow (continue with `start_after` = last key).
    pub more: bool,
}

/// What a watch event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchEventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted (explicitly or by lease expiry).
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: WatchEventKind,
    /// For a put, the new key/value; for a delete, the key with an empty
    /// value and `mod_revision` = the delete's revision.
    pub kv: KeyValue,
    /// The previous key/value, when known.
    pub prev: Option<KeyValue>,
    /// The revision of the change (several events may share one revision,
    /// e.g. every key of a revoked lease).
    pub revision: Revision,
}

/// A stream of watch events.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent, StoreError>> + Send>>;
