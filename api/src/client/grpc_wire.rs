//! Decoding of the gRPC watch events into [`WatchLine`]s (the same lines as
//! the NDJSON stream), so one pure follower applies both.

use crate::model::parse_relative_key;
use crate::model::{Kind, Resource};
use crate::proto::{EventType, WatchEvent};
use crate::wire::WatchLine;

/// A gRPC event that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("undecodable watch event at revision {revision}: {reason}")]
pub struct WireError {
    /// The event's revision.
    pub revision: i64,
    /// What is wrong.
    pub reason: String,
}

fn revision(ev: &WatchEvent) -> Result<u64, WireError> {
    u64::try_from(ev.revision).map_err(|_| WireError {
        revision: ev.revision,
        reason: "negative revision".into(),
    })
}

fn resource(rev: i64, json: &[u8]) -> Result<Resource, WireError> {
    serde_json::from_slice(json).map_err(|e| WireError {
        revision: rev,
        reason: e.to_string(),
    })
}

/// Decodes one gRPC event.
pub fn to_line(ev: WatchEvent) -> Result<WatchLine, WireError> {
    let rev = revision(&ev)?;
    let err = |reason: &str| WireError {
        revision: ev.revision,
        reason: reason.to_owned(),
    };
    match EventType::try_from(ev.r#type).unwrap_or(EventType::Unspecified) {
        EventType::Snapshot => {
            let resources = ev
                .resources
                .iter()
                .map(|r| resource(ev.revision, &r.json))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(WatchLine::Snapshot {
                revision: rev,
                resources,
            })
        }
        EventType::Put => {
            let r = ev
                .resource
                .as_ref()
                .ok_or_else(|| err("put without resource"))?;
            let res = resource(ev.revision, &r.json)?;
            Ok(WatchLine::Put {
                revision: rev,
                kind: res.kind(),
                key: r.key.clone(),
                resource: Box::new(res),
            })
        }
        EventType::Delete => {
            let r = ev
                .resource
                .as_ref()
                .ok_or_else(|| err("delete without resource"))?;
            let object = parse_relative_key(&r.key).ok_or_else(|| err("unknown key"))?;
            let kind: Kind = object.kind();
            Ok(WatchLine::Delete {
                revision: rev,
                kind,
                key: r.key.clone(),
                object,
            })
        }
        EventType::Unspecified => Err(err("unspecified event type")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn delete_event_decodes_with_its_object() {
        let ev = WatchEvent {
            r#type: EventType::Delete as i32,
            revision: 9,
            resource: Some(crate::proto::Resource {
                kind: "ServiceExport".into(),
                key: "exports/shop/cart/eu-1".into(),
                json: Vec::new(),
            }),
            resources: Vec::new(),
        };
        match to_line(ev).unwrap() {
            WatchLine::Delete { revision, kind, .. } => {
                assert_eq!(revision, 9);
                assert_eq!(kind, Kind::ServiceExport);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_events_are_errors_not_panics() {
        let ev = WatchEvent {
            r#type: EventType::Put as i32,
            revision: 3,
            resource: Some(crate::proto::Resource {
                kind: "Cluster".into(),
                key: "clusters/x".into(),
                json: b"{not json".to_vec(),
            }),
            resources: Vec::new(),
        };
        assert_eq!(to_line(ev).unwrap_err().revision, 3);
        let ev = WatchEvent {
            r#type: 0,
            revision: -1,
            resource: None,
            resources: Vec::new(),
        };
        assert!(to_line(ev).is_err());
    }
}
