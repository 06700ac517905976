//! Store errors and their classification.

use super::types::{LeaseId, Revision};

/// How a caller should react to an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// A precondition failed: reread and decide (HTTP 412 / 409).
    Conflict,
    /// The key or lease does not exist (HTTP 404).
    NotFound,
    /// The requested history is gone: relist, then watch from the list's
    /// revision (HTTP 410 / gRPC `OUT_OF_RANGE`).
    Compacted,
    /// The store is unreachable or overloaded: retry with back-off (HTTP 503).
    Unavailable,
    /// The request itself is wrong: do not retry (HTTP 400).
    Invalid,
    /// A bug or corrupted state (HTTP 500).
    Internal,
}

/// A store error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The write's precondition did not hold. `current` is the key's current
    /// `mod_revision` (`None` when the key does not exist).
    #[error("conflict on key {key:?}: current revision {current:?}")]
    Conflict {
        /// The key.
        key: String,
        /// Its current mod revision, `None` when it does not exist.
        current: Option<Revision>,
    },
    /// The key does not exist.
    #[error("key {key:?} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// The lease does not exist (expired, revoked or never granted).
    #[error("lease {lease} not found")]
    LeaseNotFound {
        /// The lease.
        lease: LeaseId,
    },
    /// The requested revision was compacted; the oldest available revision
    /// is `compact_revision`.
    #[error("revision {requested} is compacted (compact revision {compact_revision})")]
    Compacted {
        /// The revision that was asked for.
        requested: Revision,
        /// The store's compaction point.
        compact_revision: Revision,
    },
    /// The store could not be reached, timed out or is shutting down;
    /// retryable.
    #[error("store unavailable: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// A write reached etcd (or may have) but no answer came back (a
    /// timeout, a leader election): it may or may not have been committed.
    /// Retryable only idempotently (re-read, or compare-and-swap).
    #[error("store write outcome unknown: {message}")]
    OutcomeUnknown {
        /// What happened.
        message: String,
    },
    /// The request is invalid (e.g. compacting a future revision).
    #[error("invalid store request: {message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
    /// An unexpected failure (corrupted persistence file, etcd protocol
    /// violation).
    #[error("store internal error: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

impl StoreError {
    /// The class of the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::Conflict { .. } => ErrorClass::Conflict,
            StoreError::NotFound { .. } | StoreError::LeaseNotFound { .. } => ErrorClass::NotFound,
            StoreError::Compacted { .. } => ErrorClass::Compacted,
            StoreError::Unavailable { .. } | StoreError::OutcomeUnknown { .. } => {
                ErrorClass::Unavailable
            }
            StoreError::InvalidArgument { .. } => ErrorClass::Invalid,
            StoreError::Internal { .. } => ErrorClass::Internal,
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }

    pub(crate) fn unavailable(message: impl std::fmt::Display) -> Self {
        StoreError::Unavailable {
            message: message.to_string(),
        }
    }

    pub(crate) fn internal(message: impl std::fmt::Display) -> Self {
        StoreError::Internal {
            message: message.to_string(),
        }
    }
}
