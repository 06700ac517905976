//! Decoding of the gRPC watch events into [`WatchLine`]s (the same lines as
//! the NDJSON stream), so one pure follower applies both.

use causeway_federation::model::{ExportKey, Kind, ObjectRef, Resource, ServiceRef};
use causeway_federation::proto::{EventType, WatchEvent};
use causeway_federation::server::watch::WatchLine;

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

/// Parses a relative key (`clusters/<id>`, `exports/<ns>/<name>/<cluster>`,
/// `imports/<ns>/<name>`, `bundles/<td>`, `policies/<kind>/<name>`).
pub fn object_ref(key: &str) -> Option<ObjectRef> {
    let parts: Vec<&str> = key.split('/').collect();
    Some(match parts.as_slice() {
        ["clusters", c] => ObjectRef::Cluster {
            name: c.parse().ok()?,
        },
        ["exports", ns, name, c] => ObjectRef::ServiceExport {
            key: ExportKey {
                service: ServiceRef::new(ns.parse().ok()?, name.parse().ok()?),
                cluster: c.parse().ok()?,
            },
        },
        ["imports", ns, name] => ObjectRef::ServiceImport {
            service: ServiceRef::new(ns.parse().ok()?, name.parse().ok()?),
        },
        ["bundles", td] => ObjectRef::TrustBundle {
            name: td.parse().ok()?,
        },
        ["policies", kind, name] => ObjectRef::Policy {
            policy: kind.parse().ok()?,
            name: name.parse().ok()?,
        },
        _ => return None,
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
            let object = object_ref(&r.key).ok_or_else(|| err("unknown key"))?;
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
    use causeway_federation::model::PolicyKind;

    #[test]
    fn keys_parse_to_object_refs() {
        assert!(matches!(
            object_ref("clusters/eu-1"),
            Some(ObjectRef::Cluster { .. })
        ));
        match object_ref("exports/shop/cart/eu-1") {
            Some(ObjectRef::ServiceExport { key }) => {
                assert_eq!(key.to_string(), "shop/cart/eu-1");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            object_ref("imports/shop/cart"),
            Some(ObjectRef::ServiceImport { .. })
        ));
        assert!(matches!(
            object_ref("bundles/eu.example"),
            Some(ObjectRef::TrustBundle { .. })
        ));
        assert!(matches!(
            object_ref("policies/traffic/canary"),
            Some(ObjectRef::Policy {
                policy: PolicyKind::Traffic,
                ..
            })
        ));
        assert_eq!(object_ref("exports/shop/cart"), None);
        assert_eq!(object_ref("clusters/Not_Valid"), None);
        assert_eq!(object_ref("heartbeats/eu-1"), None);
    }

    #[test]
    fn delete_event_decodes_with_its_object() {
        let ev = WatchEvent {
            r#type: EventType::Delete as i32,
            revision: 9,
            resource: Some(causeway_federation::proto::Resource {
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
            resource: Some(causeway_federation::proto::Resource {
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
