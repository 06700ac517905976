//! The watch engine: one task per stream keeps a [`CatalogSnapshot`] to
//! derive imports and cluster connectivity, and sends [`WatchLine`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::{WatchLine, relative_key};
use crate::model::{
    CatalogEvent, CatalogSnapshot, ClusterId, ClusterStatus, ObjectRef, ParsedKey, Resource,
    ServiceRef,
};
use crate::server::catalog::{Catalog, decode_stored, store_error};
use crate::server::error::ApiError;
use crate::store::{KeyValue, Page, StoreError, WatchEvent, WatchEventKind, WatchStream};

/// How long to wait for the store to report a compacted start revision
/// before the response starts.
const COMPACTION_PROBE: Duration = Duration::from_millis(300);
/// Idle time after which a bookmark is sent.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

struct Engine {
    cat: Catalog,
    snap: CatalogSnapshot,
    connected: BTreeSet<ClusterId>,
    last_seen: BTreeMap<ClusterId, OffsetDateTime>,
    /// Events up to this revision are already in `snap` (resume mode).
    base: u64,
    last_seen_prefix: String,
}

enum Decoded {
    Object(Box<Resource>),
    Heartbeat(ClusterId),
    LastSeen(ClusterId, OffsetDateTime),
    Other,
}

impl Engine {
    fn decode(&self, kv: &KeyValue) -> Decoded {
        if let Some(id) = kv.key.strip_prefix(&self.last_seen_prefix) {
            return match (
                ClusterId::new(id),
                serde_json::from_slice::<serde_json::Value>(&kv.value),
            ) {
                (Ok(id), Ok(v)) => v
                    .get("lastHeartbeat")
                    .and_then(|t| t.as_str())
                    .and_then(|t| {
                        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .map_or(Decoded::Other, |t| Decoded::LastSeen(id, t)),
                _ => Decoded::Other,
            };
        }
        match self.cat.keys().parse(&kv.key) {
            Some(ParsedKey::Heartbeat(id)) => Decoded::Heartbeat(id),
            Some(ParsedKey::Object(_)) => match decode_stored(kv) {
                Ok(s) => Decoded::Object(Box::new(s.resource)),
                Err(_) => Decoded::Other,
            },
            None => Decoded::Other,
        }
    }

    fn status(&self, id: &ClusterId) -> ClusterStatus {
        ClusterStatus {
            connected: self.connected.contains(id),
            last_heartbeat: self.last_seen.get(id).copied(),
        }
    }

    fn with_status(&self, mut r: Resource) -> Resource {
        if let Resource::Cluster(c) = &mut r {
            c.status = Some(self.status(c.id()));
        }
        r
    }

    fn snapshot_line(&self) -> WatchLine {
        let s = &self.snap;
        let mut resources: Vec<Resource> = Vec::new();
        resources.extend(s.clusters.values().cloned().map(Resource::Cluster));
        resources.extend(s.exports.values().cloned().map(Resource::ServiceExport));
        resources.extend(s.imports.values().cloned().map(Resource::ServiceImport));
        resources.extend(s.bundles.values().cloned().map(Resource::TrustBundle));
        resources.extend(
            s.policies
                .residency
                .values()
                .cloned()
                .map(Resource::ResidencyPolicy),
        );
        resources.extend(
            s.policies
                .traffic
                .values()
                .cloned()
                .map(Resource::TrafficPolicy),
        );
        resources.extend(
            s.policies
                .access
                .values()
                .cloned()
                .map(Resource::AccessPolicy),
        );
        resources.extend(
            s.policies
                .export
                .values()
                .cloned()
                .map(Resource::ExportPolicy),
        );
        WatchLine::Snapshot {
            revision: s.revision,
            resources,
        }
    }

    /// Services whose import may change with this object.
    fn affected(&self, obj: &ObjectRef) -> Vec<ServiceRef> {
        match obj {
            ObjectRef::ServiceExport { key } => vec![key.service.clone()],
            ObjectRef::Cluster { name } => {
                let set: BTreeSet<ServiceRef> = self
                    .snap
                    .exports
                    .keys()
                    .filter(|k| &k.cluster == name)
                    .map(|k| k.service.clone())
                    .collect();
                set.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Applies one object change (unless already included) and returns the
    /// lines to send: the change itself, then import changes.
    fn change(&mut self, revision: u64, event: CatalogEvent, out: &mut Vec<WatchLine>) {
        let obj = match &event {
            CatalogEvent::Put { resource, .. } => resource.object_ref(),
            CatalogEvent::Delete { object, .. } => object.clone(),
        };
        let affected = self.affected(&obj);
        let before: Vec<_> = affected
            .iter()
            .map(|s| self.snap.imports.get(s).cloned())
            .collect();
        let replay = revision <= self.base;
        if !replay {
            self.snap.apply(&event);
        }
        match event {
            CatalogEvent::Put { resource, .. } => out.push(WatchLine::Put {
                revision,
                kind: resource.kind(),
                key: relative_key(&obj),
                resource,
            }),
            CatalogEvent::Delete { object, .. } => out.push(WatchLine::Delete {
                revision,
                kind: object.kind(),
                key: relative_key(&object),
                object,
            }),
        }
        let affected = if replay {
            // Already applied: report the current import of the service.
            match &obj {
                ObjectRef::ServiceExport { key } => vec![key.service.clone()],
                _ => affected,
            }
        } else {
            affected
        };
        for (i, svc) in affected.iter().enumerate() {
            let after = self.snap.imports.get(svc).cloned();
            let was = if replay {
                None
            } else {
                before.get(i).cloned().flatten()
            };
            let object = ObjectRef::ServiceImport {
                service: svc.clone(),
            };
            match after {
                Some(imp) if was.as_ref() != Some(&imp) => out.push(WatchLine::Put {
                    revision,
                    kind: object.kind(),
                    key: relative_key(&object),
                    resource: Box::new(Resource::ServiceImport(imp)),
                }),
                None if was.is_some() || replay => out.push(WatchLine::Delete {
                    revision,
                    kind: object.kind(),
                    key: relative_key(&object),
                    object,
                }),
                _ => {}
            }
        }
    }

    fn connectivity(
        &mut self,
        revision: u64,
        id: ClusterId,
        connected: bool,
        out: &mut Vec<WatchLine>,
    ) {
        let changed = if connected {
            self.connected.insert(id.clone())
        } else {
            self.connected.remove(&id)
        };
        if !changed {
            return;
        }
        if let Some(c) = self.snap.clusters.get(&id).cloned() {
            let r = self.with_status(Resource::Cluster(c));
            // Connectivity is always applied: it is not part of the resource.
            let base = self.base;
            self.base = 0;
            self.change(
                revision,
                CatalogEvent::Put {
                    revision,
                    resource: Box::new(r),
                },
                out,
            );
            self.base = base;
        }
    }

    fn on_event(&mut self, ev: WatchEvent) -> Vec<WatchLine> {
        let mut out = Vec::new();
        let rev = ev.revision;
        match (ev.kind, self.decode_event_key(&ev)) {
            (WatchEventKind::Put, Decoded::Object(r)) => {
                let r = self.with_status(*r);
                self.change(
                    rev,
                    CatalogEvent::Put {
                        revision: rev,
                        resource: Box::new(r),
                    },
                    &mut out,
                );
            }
            (WatchEventKind::Delete, Decoded::Object(_))
            | (WatchEventKind::Delete, Decoded::Other) => {
                if let Some(ParsedKey::Object(obj)) = self.cat.keys().parse(&ev.kv.key) {
                    self.change(
                        rev,
                        CatalogEvent::Delete {
                            revision: rev,
                            object: obj,
                        },
                        &mut out,
                    );
                }
            }
            (kind, Decoded::Heartbeat(id)) => {
                self.connectivity(rev, id, kind == WatchEventKind::Put, &mut out);
            }
            (WatchEventKind::Put, Decoded::LastSeen(id, t)) => {
                self.last_seen.insert(id, t);
            }
            _ => {}
        }
        if rev > self.snap.revision {
            self.snap.revision = rev;
        }
        out
    }

    fn decode_event_key(&self, ev: &WatchEvent) -> Decoded {
        match ev.kind {
            WatchEventKind::Put => self.decode(&ev.kv),
            WatchEventKind::Delete => match self.cat.keys().parse(&ev.kv.key) {
                Some(ParsedKey::Heartbeat(id)) => Decoded::Heartbeat(id),
                _ => Decoded::Other,
            },
        }
    }
}

fn stream_error(e: &StoreError) -> WatchLine {
    match e {
        StoreError::Compacted {
            requested,
            compact_revision,
        } => WatchLine::Error {
            status: 410,
            detail: format!(
                "revision {requested} has been compacted (oldest available is {compact_revision}); relist"
            ),
        },
        other => {
            tracing::warn!(error = %other, "watch stream broken");
            WatchLine::Error {
                status: 503,
                detail: "store watch broken; resume from the last revision".into(),
            }
        }
    }
}

/// Opens a watch: `since = None` starts with a snapshot. Fails with 410 when
/// `since` is compacted.
pub(crate) async fn open(
    cat: &Catalog,
    since: Option<u64>,
) -> Result<ReceiverStream<WatchLine>, ApiError> {
    let root = cat.keys().root();
    let range = cat.range_raw(&root, Page::all()).await?;
    let mut engine = Engine {
        cat: cat.clone(),
        snap: CatalogSnapshot::default(),
        connected: BTreeSet::new(),
        last_seen: BTreeMap::new(),
        base: 0,
        last_seen_prefix: cat.last_seen_prefix(),
    };
    let mut resources = Vec::new();
    for kv in &range.kvs {
        match engine.decode(kv) {
            Decoded::Object(r) => resources.push(*r),
            Decoded::Heartbeat(id) => {
                engine.connected.insert(id);
            }
            Decoded::LastSeen(id, t) => {
                engine.last_seen.insert(id, t);
            }
            Decoded::Other => {}
        }
    }
    let resources: Vec<Resource> = resources
        .into_iter()
        .map(|r| engine.with_status(r))
        .collect();
    engine.snap = CatalogSnapshot::from_resources(range.revision, resources);
    let start = match since {
        None => range.revision + 1,
        Some(s) => {
            engine.base = range.revision;
            s + 1
        }
    };
    let mut events: WatchStream = cat
        .timed("watch", cat.store().watch(&root, start))
        .await
        .map_err(store_error)?;
    // Surface a compacted start revision as 410 before the response starts.
    let mut first = None;
    if since.is_some() {
        match tokio::time::timeout(COMPACTION_PROBE, events.next()).await {
            Ok(Some(Err(e))) => return Err(store_error(e)),
            Ok(Some(Ok(ev))) => first = Some(ev),
            Ok(None) => return Err(ApiError::unavailable(&"watch ended immediately")),
            Err(_) => {}
        }
    }
    let (tx, rx) = mpsc::channel::<WatchLine>(256);
    if since.is_none() && tx.send(engine.snapshot_line()).await.is_err() {
        return Ok(ReceiverStream::new(rx));
    }
    let stop = cat.shutdown_token().cancelled();
    tokio::spawn(async move {
        tokio::pin!(stop);
        let mut pending = first;
        loop {
            let ev = if let Some(ev) = pending.take() {
                Some(Ok(ev))
            } else {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = tx.closed() => break,
                    r = tokio::time::timeout(BOOKMARK_EVERY, events.next()) => match r {
                        Err(_) => {
                            let line = WatchLine::Bookmark { revision: engine.snap.revision };
                            if tx.send(line).await.is_err() { break; }
                            continue;
                        }
                        Ok(r) => r,
                    },
                }
            };
            match ev {
                None => break,
                Some(Err(e)) => {
                    let _ = tx.send(stream_error(&e)).await;
                    break;
                }
                Some(Ok(ev)) => {
                    for line in engine.on_event(ev) {
                        if tx.send(line).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
