//! File persistence of the memory store: a snapshot file plus an
//! append-only JSON-lines log of mutations. Opening replays the log onto the
//! snapshot, writes a fresh snapshot atomically (temp file + rename) and
//! starts a new log. Survives a process restart; the log is not fsynced per
//! write, so the last writes may be lost on power failure.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::state::{Mutation, State};
use crate::store::{LeaseId, Revision, StoreError};

/// After this many log records the snapshot is rewritten.
const LOG_COMPACT_RECORDS: usize = 10_000;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    revision: Revision,
    next_lease: i64,
    kvs: Vec<SnapKv>,
    leases: BTreeMap<i64, u64>,
}

#[derive(Serialize, Deserialize)]
struct SnapKv {
    key: String,
    value: String,
    create_revision: Revision,
    mod_revision: Revision,
    version: u64,
    lease: Option<i64>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Record {
    Put {
        rev: Revision,
        key: String,
        value: String,
        lease: Option<i64>,
    },
    Del {
        rev: Revision,
        keys: Vec<String>,
    },
    Grant {
        id: i64,
        ttl_ms: u64,
    },
    Revoke {
        id: i64,
    },
}

/// An open persistence file pair.
#[derive(Debug)]
pub(super) struct Persist {
    path: PathBuf,
    log: File,
    records: usize,
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::internal(format!("{what} {}: {e}", path.display()))
}

fn log_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".log");
    PathBuf::from(p)
}

impl Persist {
    /// Loads `path` (and its log) into `state`, then rewrites the snapshot
    /// and opens a fresh log.
    pub(super) fn open(path: &Path, state: &mut State, now: Instant) -> Result<Self, StoreError> {
        if path.exists() {
            let f = File::open(path).map_err(|e| io_err("opening", path, e))?;
            let snap: Snapshot = serde_json::from_reader(BufReader::new(f))
                .map_err(|e| io_err("reading snapshot", path, e))?;
            state.next_lease = snap.next_lease;
            for (id, ttl_ms) in snap.leases {
                state.apply_grant(LeaseId(id), Duration::from_millis(ttl_ms), now);
            }
            for kv in snap.kvs {
                let value = B64
                    .decode(&kv.value)
                    .map_err(|e| io_err("decoding snapshot value in", path, e))?;
                state.apply_put(
                    kv.mod_revision,
                    &kv.key,
                    Bytes::from(value),
                    kv.lease.map(LeaseId),
                );
                if let Some(stored) = state.kvs.get_mut(&kv.key) {
                    stored.create_revision = kv.create_revision;
                    stored.version = kv.version;
                }
            }
            state.rev = snap.revision;
        }
        let log = log_path(path);
        if log.exists() {
            let f = File::open(&log).map_err(|e| io_err("opening", &log, e))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| io_err("reading", &log, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                // A torn last line (crash mid-write) ends the replay.
                let Ok(rec) = serde_json::from_str::<Record>(&line) else {
                    tracing::warn!(path = %log.display(), "ignoring torn persistence log tail");
                    break;
                };
                match rec {
                    Record::Put {
                        rev,
                        key,
                        value,
                        lease,
                    } => {
                        let value = B64
                            .decode(&value)
                            .map_err(|e| io_err("decoding log value in", &log, e))?;
                        state.apply_put(rev, &key, Bytes::from(value), lease.map(LeaseId));
                        state.rev = state.rev.max(rev);
                    }
                    Record::Del { rev, keys } => {
                        state.apply_delete(rev, &keys);
                        state.rev = state.rev.max(rev);
                    }
                    Record::Grant { id, ttl_ms } => {
                        state.apply_grant(LeaseId(id), Duration::from_millis(ttl_ms), now);
                    }
                    Record::Revoke { id } => {
                        state.leases.remove(&id);
                    }
                }
            }
        }
        state.pending.clear();
        let rev = state.rev;
        state.restore_revision(rev);
        write_snapshot(path, state)?;
        let log_file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&log)
            .map_err(|e| io_err("creating", &log, e))?;
        Ok(Self {
            path: path.to_owned(),
            log: log_file,
            records: 0,
        })
    }

    /// Appends the state's pending mutations to the log, rewriting the
    /// snapshot when the log grew large.
    pub(super) fn flush(&mut self, state: &mut State) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut state.pending);
        if pending.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for m in pending {
            let rec = match m {
                Mutation::Put {
                    rev,
                    key,
                    value,
                    lease,
                } => Record::Put {
                    rev,
                    key,
                    value: B64.encode(&value),
                    lease: lease.map(|l| l.0),
                },
                Mutation::Delete { rev, keys } => Record::Del { rev, keys },
                Mutation::Grant { id, ttl } => Record::Grant {
                    id: id.0,
                    ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                },
                Mutation::Revoke { id } => Record::Revoke { id: id.0 },
            };
            serde_json::to_writer(&mut buf, &rec)
                .map_err(|e| io_err("encoding log of", &self.path, e))?;
            buf.push(b'\n');
            self.records += 1;
        }
        self.log
            .write_all(&buf)
            .map_err(|e| io_err("appending to log of", &self.path, e))?;
        if self.records >= LOG_COMPACT_RECORDS {
            write_snapshot(&self.path, state)?;
            self.log
                .set_len(0)
                .map_err(|e| io_err("truncating log of", &self.path, e))?;
            self.records = 0;
        }
        Ok(())
    }
}

/// Writes the snapshot atomically: temp file in the same directory, fsync,
/// rename.
fn write_snapshot(path: &Path, state: &State) -> Result<(), StoreError> {
    let snap = Snapshot {
        revision: state.rev,
        next_lease: state.next_lease,
        kvs: state
            .kvs
            .values()
            .map(|kv| SnapKv {
                key: kv.key.clone(),
                value: B64.encode(&kv.value),
                create_revision: kv.create_revision,
                mod_revision: kv.mod_revision,
                version: kv.version,
                lease: kv.lease.map(|l| l.0),
            })
            .collect(),
        leases: state
            .leases
            .iter()
            .map(|(id, l)| (*id, u64::try_from(l.ttl.as_millis()).unwrap_or(u64::MAX)))
            .collect(),
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(|e| io_err("creating", &tmp, e))?;
    serde_json::to_writer(&mut f, &snap).map_err(|e| io_err("writing", &tmp, e))?;
    f.sync_all().map_err(|e| io_err("syncing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("renaming snapshot to", path, e))?;
    Ok(())
}
