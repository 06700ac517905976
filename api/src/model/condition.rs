//! MCS status conditions (`Valid`, `Ready`, `Conflict`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::meta::Timestamp;

/// The condition types used by MCS (KEP-1645) on service exports and imports.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum ConditionType {
    /// Whether the export refers to a valid, exportable service.
    Valid,
    /// Whether the export is in use by the cluster set.
    Ready,
    /// Whether this export conflicts with other exports of the same service.
    Conflict,
}

/// The status of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// It is not known whether the condition holds.
    Unknown,
}

/// Reasons used with the MCS condition types.
pub mod reason {
    /// `Valid=True`: the export is valid.
    pub const VALID: &str = "Valid";
    /// `Valid=False`: the exported service does not exist.
    pub const NO_SERVICE: &str = "NoService";
    /// `Valid=False`: the service type cannot be exported (e.g. ExternalName).
    pub const INVALID_SERVICE_TYPE: &str = "InvalidServiceType";
    /// `Valid=False`: `exportedLabels` or `exportedAnnotations` break the
    /// Kubernetes label or annotation rules.
    pub const INVALID_EXPORTED_METADATA: &str = "InvalidExportedMetadata";
    /// `Valid=False`: an ExportPolicy (possibly written after the export)
    /// does not allow the cluster to export in the namespace; the export is
    /// withdrawn from the import.
    pub const EXPORT_POLICY_DENIED: &str = "ExportPolicyDenied";
    /// `Ready=True`: the export is part of the service import.
    pub const EXPORTED: &str = "Exported";
    /// `Ready=False/Unknown`: the export has not been processed yet.
    pub const PENDING: &str = "Pending";
    /// `Ready=False`: the export could not be processed.
    pub const FAILED: &str = "Failed";
    /// `Conflict=True`: a port is exported with different protocols.
    pub const PORT_CONFLICT: &str = "PortConflict";
    /// `Conflict=True`: the service type differs from the oldest export's.
    pub const TYPE_CONFLICT: &str = "TypeConflict";
    /// `Conflict=True`: session affinity differs from the oldest export's.
    pub const SESSION_AFFINITY_CONFLICT: &str = "SessionAffinityConflict";
    /// `Conflict=False`: no conflicts.
    pub const NO_CONFLICTS: &str = "NoConflicts";
}

/// One status condition, shaped like Kubernetes `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    /// The condition type.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// Whether the condition holds.
    pub status: ConditionStatus,
    /// A CamelCase machine-readable reason (see [`reason`]).
    pub reason: String,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the status last changed.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_transition_time: Option<Timestamp>,
}

impl Condition {
    /// Builds a condition with no transition time.
    pub fn new(
        type_: ConditionType,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            type_,
            status,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_time: None,
        }
    }
}

/// Finds a condition by type.
pub fn find_condition(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Inserts or replaces the condition of the same type. The transition time is
/// kept when the status did not change, and set to `now` otherwise.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: Option<Timestamp>) {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            new.last_transition_time = if old.status == new.status {
                old.last_transition_time.or(new.last_transition_time)
            } else {
                now.or(new.last_transition_time)
            };
            *old = new;
        }
        None => {
            new.last_transition_time = now.or(new.last_transition_time);
            conditions.push(new);
        }
    }
}
