//! The watch engine: one shared task per server keeps a [`CatalogSnapshot`]
//! to derive imports and cluster connectivity, encodes each change once and
//! broadcasts it to every watch stream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::server::catalog::{Catalog, decode_stored, store_error};
use crate::server::error::ApiError;
use crate::store::{
    KeyValue, Page, RangeResponse, StoreError, WatchEvent, WatchEventKind, WatchStream,
};
use causeway_api::model::relative_key;
use causeway_api::model::{
    CatalogEvent, CatalogSnapshot, ClusterId, ClusterStatus, ObjectRef, ParsedKey, PolicyKind,
    Resource, ServiceRef,
};
use causeway_api::proto;
use causeway_api::wire::WatchLine;

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
        // Exports an ExportPolicy forbids: followers withhold them too, and
        // restore them when a policy change allows them again.
        resources.extend(s.withheld.values().cloned().map(Resource::ServiceExport));
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
            // An ExportPolicy change may withdraw or restore any export.
            ObjectRef::Policy {
                policy: PolicyKind::Export,
                ..
            } => {
                let set: BTreeSet<ServiceRef> = self
                    .snap
                    .exports
                    .keys()
                    .chain(self.snap.withheld.keys())
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

impl Engine {
    /// An engine holding the catalog of `range` (connectivity included).
    fn from_range(cat: &Catalog, range: &RangeResponse) -> Self {
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
        engine
    }
}

/// A put or delete line derived once by the shared engine and encoded once
/// for both transports; every stream sends the same bytes.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The NDJSON line, newline included.
    pub(crate) ndjson: Bytes,
    /// The gRPC event.
    pub(crate) grpc: proto::WatchEvent,
}

/// What a watch stream yields: a line of its own (snapshot, resumed
/// events, bookmark, error) or a line shared with every other stream.
#[derive(Debug)]
pub(crate) enum Item {
    /// Encoded by the transport.
    Line(WatchLine),
    /// Already encoded by the shared engine.
    Shared(Arc<Encoded>),
}

/// What the shared engine broadcasts.
#[derive(Debug)]
pub(crate) enum HubMsg {
    /// The lines of one store event (possibly none), all at `revision`.
    Batch {
        revision: u64,
        lines: Vec<Arc<Encoded>>,
    },
    /// The store watch failed: every stream sends this error and ends.
    Failed(WatchLine),
}

/// The shared engine of a server (started by the first watch).
pub(crate) type HubSlot = Arc<tokio::sync::Mutex<Option<broadcast::Sender<Arc<HubMsg>>>>>;

/// Broadcast capacity in store events; a stream further behind is ended.
const HUB_CAPACITY: usize = 4096;

/// Encodes a watch line as one NDJSON line.
pub(crate) fn ndjson_line(line: &WatchLine) -> Bytes {
    let mut v = serde_json::to_vec(line).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn encode(line: WatchLine) -> Option<Arc<Encoded>> {
    let ndjson = ndjson_line(&line);
    match crate::server::grpc::to_event(line) {
        Some(Ok(grpc)) => Some(Arc::new(Encoded { ndjson, grpc })),
        _ => None,
    }
}

/// Subscribes to the shared engine, starting it when needed. Its store
/// watch starts right after its own range read, so every store revision
/// after a range read that follows this call is broadcast to the receiver.
async fn subscribe(cat: &Catalog) -> Result<broadcast::Receiver<Arc<HubMsg>>, ApiError> {
    let slot = cat.watch_hub();
    let mut held = slot.lock().await;
    if let Some(tx) = held.as_ref() {
        return Ok(tx.subscribe());
    }
    let root = cat.keys().root();
    let range = cat.range_raw(&root, Page::all()).await?;
    let engine = Engine::from_range(cat, &range);
    let events: WatchStream = cat
        .timed("watch", cat.store().watch(&root, range.revision + 1))
        .await
        .map_err(store_error)?;
    let (tx, rx) = broadcast::channel(HUB_CAPACITY);
    *held = Some(tx.clone());
    drop(held);
    let stop = cat.shutdown_token().cancelled();
    tokio::spawn(run_hub(engine, events, tx, slot.clone(), stop));
    Ok(rx)
}

/// The shared engine: derives and encodes each store event once.
async fn run_hub(
    mut engine: Engine,
    mut events: WatchStream,
    tx: broadcast::Sender<Arc<HubMsg>>,
    slot: HubSlot,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let ev = tokio::select! {
            _ = &mut stop => break,
            ev = events.next() => ev,
        };
        match ev {
            None => break,
            Some(Err(e)) => {
                let _ = tx.send(Arc::new(HubMsg::Failed(stream_error(&e))));
                break;
            }
            Some(Ok(ev)) => {
                let revision = ev.revision;
                let lines = engine.on_event(ev).into_iter().filter_map(encode).collect();
                // No receiver is fine: streams come and go.
                let _ = tx.send(Arc::new(HubMsg::Batch { revision, lines }));
            }
        }
    }
    // The next watch starts a new engine; streams see the channel close.
    let mut held = slot.lock().await;
    if held.as_ref().is_some_and(|t| t.same_channel(&tx)) {
        *held = None;
    }
}

/// Opens a watch: `since = None` starts with a snapshot. Fails with 410 when
/// `since` is compacted.
///
/// The stream subscribes to the shared engine first, then reads the catalog
/// at revision R (the snapshot, or the state a resume replays up to), then
/// sends the shared lines after R: no gap, no duplicate. A resume from
/// before R replays the store's history up to R on its own first.
pub(crate) async fn open(
    cat: &Catalog,
    since: Option<u64>,
) -> Result<ReceiverStream<Item>, ApiError> {
    let mut hub = subscribe(cat).await?;
    let root = cat.keys().root();
    let range = cat.range_raw(&root, Page::all()).await?;
    let mut engine = Engine::from_range(cat, &range);
    let r = range.revision;
    let mut skip_through = r;
    let mut backfill: Option<WatchStream> = None;
    let mut first = None;
    match since {
        Some(s) if s < r => {
            engine.base = r;
            let mut events: WatchStream = cat
                .timed("watch", cat.store().watch(&root, s + 1))
                .await
                .map_err(store_error)?;
            // Surface a compacted start revision as 410 before the response starts.
            match tokio::time::timeout(COMPACTION_PROBE, events.next()).await {
                Ok(Some(Err(e))) => return Err(store_error(e)),
                Ok(Some(Ok(ev))) => first = Some(ev),
                Ok(None) => return Err(ApiError::unavailable(&"watch ended immediately")),
                Err(_) => {}
            }
            backfill = Some(events);
        }
        Some(s) => skip_through = s,
        None => {}
    }
    let (tx, rx) = mpsc::channel::<Item>(256);
    if since.is_none() && tx.send(Item::Line(engine.snapshot_line())).await.is_err() {
        return Ok(ReceiverStream::new(rx));
    }
    let stop = cat.shutdown_token().cancelled();
    tokio::spawn(async move {
        tokio::pin!(stop);
        // Resume from before R: replay the store's events up to R.
        if let Some(mut events) = backfill {
            let mut pending = first;
            loop {
                let ev = if let Some(ev) = pending.take() {
                    Some(Ok(ev))
                } else {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tx.closed() => return,
                        r = tokio::time::timeout(BOOKMARK_EVERY, events.next()) => match r {
                            Err(_) => {
                                let line = WatchLine::Bookmark { revision: engine.snap.revision };
                                if tx.send(Item::Line(line)).await.is_err() { return; }
                                continue;
                            }
                            Ok(r) => r,
                        },
                    }
                };
                match ev {
                    None => return,
                    Some(Err(e)) => {
                        let _ = tx.send(Item::Line(stream_error(&e))).await;
                        return;
                    }
                    // The shared engine has everything after R.
                    Some(Ok(ev)) if ev.revision > r => break,
                    Some(Ok(ev)) => {
                        for line in engine.on_event(ev) {
                            if tx.send(Item::Line(line)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
        drop(engine);
        let mut last = skip_through;
        loop {
            let msg = tokio::select! {
                _ = &mut stop => break,
                _ = tx.closed() => break,
                r = tokio::time::timeout(BOOKMARK_EVERY, hub.recv()) => match r {
                    Err(_) => {
                        let line = WatchLine::Bookmark { revision: last };
                        if tx.send(Item::Line(line)).await.is_err() { break; }
                        continue;
                    }
                    Ok(r) => r,
                },
            };
            match msg {
                Ok(msg) => match &*msg {
                    HubMsg::Batch { revision, lines } => {
                        if *revision <= skip_through {
                            continue;
                        }
                        last = last.max(*revision);
                        for line in lines {
                            if tx.send(Item::Shared(line.clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                    HubMsg::Failed(line) => {
                        let _ = tx.send(Item::Line(line.clone())).await;
                        break;
                    }
                },
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let line = WatchLine::Error {
                        status: 503,
                        detail: format!(
                            "watch stream fell behind by {n} events and was ended; resume with since={last}"
                        ),
                    };
                    let _ = tx.send(Item::Line(line)).await;
                    break;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}
