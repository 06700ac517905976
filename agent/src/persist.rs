//! The last applied catalog on disk, so that a gateway restarted while the
//! federation API is unreachable serves the last known catalog.
//!
//! File format: one ASCII header line, then the JSON of the
//! [`CatalogSnapshot`]:
//!
//! ```text
//! causeway-catalog v1 revision=<rev> saved=<unix ms> length=<body bytes> sha256=<hex>\n
//! {"revision": ..., "clusters": {...}, ...}
//! ```
//!
//! Writes go to a temporary file in the same directory, are fsynced and
//! renamed over the old file, so a reader sees the old or the new snapshot,
//! never a mix. A truncated, corrupted or foreign file fails [`load`] with a
//! [`PersistError`] naming what is wrong, and is never half-applied.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use causeway_api::model::CatalogSnapshot;
use sha2::{Digest, Sha256};

const MAGIC: &str = "causeway-catalog v1";

/// Why a persisted snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file does not exist (first start).
    #[error("no persisted catalog at {0}")]
    Missing(PathBuf),
    /// The file could not be read or written.
    #[error("persisted catalog {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The header line is missing or malformed.
    #[error("persisted catalog {path}: bad header: {reason}")]
    Header {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The body is shorter or longer than the header says (partial write).
    #[error("persisted catalog {path}: length {actual} bytes, header says {expected}")]
    Length {
        /// The file.
        path: PathBuf,
        /// Length in the header.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// The body's SHA-256 does not match the header (corruption).
    #[error("persisted catalog {path}: sha256 mismatch")]
    Checksum {
        /// The file.
        path: PathBuf,
    },
    /// The body is not a valid catalog snapshot.
    #[error("persisted catalog {path}: invalid snapshot: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        reason: String,
    },
    /// The snapshot could not be encoded.
    #[error("cannot encode catalog snapshot: {0}")]
    Encode(String),
}

/// A snapshot read back from disk.
#[derive(Debug, Clone)]
pub struct Persisted {
    /// The catalog.
    pub snapshot: CatalogSnapshot,
    /// When it was written.
    pub saved_at: SystemTime,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Encodes `snapshot` in the file format (header + body).
pub fn encode(snapshot: &CatalogSnapshot, saved_at: SystemTime) -> Result<Vec<u8>, PersistError> {
    let body = serde_json::to_vec(snapshot).map_err(|e| PersistError::Encode(e.to_string()))?;
    let ms = saved_at
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let header = format!(
        "{MAGIC} revision={} saved={ms} length={} sha256={}\n",
        snapshot.revision,
        body.len(),
        hex(&Sha256::digest(&body))
    );
    let mut out = header.into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes the file format; `path` only names the file in errors.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Persisted, PersistError> {
    let header_err = |reason: &str| PersistError::Header {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let nl = bytes
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| header_err("no header line"))?;
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| header_err("not utf-8"))?;
    let rest = header
        .strip_prefix(MAGIC)
        .ok_or_else(|| header_err("not a causeway catalog file"))?;
    let mut length = None;
    let mut sha = None;
    let mut saved = None;
    for field in rest.split_ascii_whitespace() {
        match field.split_once('=') {
            Some(("length", v)) => length = v.parse::<usize>().ok(),
            Some(("sha256", v)) => sha = Some(v.to_owned()),
            Some(("saved", v)) => saved = v.parse::<u64>().ok(),
            _ => {}
        }
    }
    let expected = length.ok_or_else(|| header_err("missing length"))?;
    let sha = sha.ok_or_else(|| header_err("missing sha256"))?;
    let body = &bytes[nl + 1..];
    if body.len() != expected {
        return Err(PersistError::Length {
            path: path.to_owned(),
            expected,
            actual: body.len(),
        });
    }
    if hex(&Sha256::digest(body)) != sha {
        return Err(PersistError::Checksum {
            path: path.to_owned(),
        });
    }
    let snapshot: CatalogSnapshot =
        serde_json::from_slice(body).map_err(|e| PersistError::Decode {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Persisted {
        snapshot,
        saved_at: UNIX_EPOCH + Duration::from_millis(saved.unwrap_or(0)),
    })
}

/// Reads and verifies the snapshot at `path`.
pub fn load(path: &Path) -> Result<Persisted, PersistError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PersistError::Missing(path.to_owned()));
        }
        Err(source) => {
            return Err(PersistError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    decode(path, &bytes)
}

/// Writes `snapshot` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn save(
    path: &Path,
    snapshot: &CatalogSnapshot,
    saved_at: SystemTime,
) -> Result<(), PersistError> {
    let io = |source| PersistError::Io {
        path: path.to_owned(),
        source,
    };
    let bytes = encode(snapshot, saved_at)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "catalog".to_owned());
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use causeway_api::model::{Cluster, ClusterSpec};

    fn sample() -> CatalogSnapshot {
        let mut s = CatalogSnapshot {
            revision: 42,
            ..CatalogSnapshot::default()
        };
        let spec: ClusterSpec = serde_json::from_value(serde_json::json!({
            "region": "eu-west-1", "zone": "eu-west-1a", "jurisdictions": ["eu"],
            "gateway": {"endpoints": ["gw.eu.example:15443"]}, "trustDomain": "eu.example"
        }))
        .unwrap();
        let id = "eu-west-1".parse().unwrap();
        s.clusters
            .insert("eu-west-1".parse().unwrap(), Cluster::new(id, spec));
        s
    }

    #[test]
    fn round_trip_keeps_the_snapshot_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/catalog.snapshot");
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        save(&path, &sample(), t).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.snapshot, sample());
        assert_eq!(back.saved_at, t);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn missing_file_is_reported_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            load(&dir.path().join("nope")),
            Err(PersistError::Missing(_))
        ));
    }

    #[test]
    fn truncated_file_is_rejected_by_length() {
        let bytes = encode(&sample(), SystemTime::now()).unwrap();
        for cut in [bytes.len() - 1, bytes.len() / 2] {
            let err = decode(Path::new("f"), &bytes[..cut]).unwrap_err();
            assert!(matches!(err, PersistError::Length { .. }), "{err}");
        }
        // Cut inside the header.
        let err = decode(Path::new("f"), &bytes[..10]).unwrap_err();
        assert!(matches!(err, PersistError::Header { .. }), "{err}");
    }

    #[test]
    fn flipped_byte_is_rejected_by_checksum() {
        let mut bytes = encode(&sample(), SystemTime::now()).unwrap();
        let i = bytes.len() - 5;
        bytes[i] ^= 0x01;
        let err = decode(Path::new("f"), &bytes).unwrap_err();
        assert!(matches!(err, PersistError::Checksum { .. }), "{err}");
    }

    #[test]
    fn foreign_file_is_rejected_by_header() {
        let err = decode(Path::new("f"), b"{\"revision\": 1}\n").unwrap_err();
        assert!(matches!(err, PersistError::Header { .. }), "{err}");
    }

    #[test]
    fn valid_checksum_over_invalid_json_is_a_decode_error() {
        let body = b"{\"revision\": \"x\"}";
        let mut bytes = format!(
            "{MAGIC} revision=1 saved=0 length={} sha256={}\n",
            body.len(),
            hex(&Sha256::digest(body))
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        let err = decode(Path::new("f"), &bytes).unwrap_err();
        assert!(matches!(err, PersistError::Decode { .. }), "{err}");
    }
}
