//! The residency audit log: one JSON line per residency denial and per
//! request served under a residency policy, at both ends.
//!
//! Unlike the access log it is never sampled, buffered or dropped under
//! backpressure: each line is written with one `write` call on the file
//! (no user-space buffer, so it is in the kernel when the call returns)
//! under a lock, and the file is rotated by size (`audit.log` →
//! `audit.log.1` → ... → `audit.log.<keep>`). A line that cannot be written
//! is counted (`causeway_gateway_audit_write_errors_total`) and logged with
//! its content at error level.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// `observability.auditLog`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditConfig {
    /// The file (created with its directory if missing).
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`.1` newest).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_max_bytes() -> u64 {
    64 * 1024 * 1024
}

fn default_keep() -> u32 {
    5
}

/// One audit record.
#[derive(Debug, Serialize)]
pub struct AuditRecord<'a> {
    /// RFC 3339 UTC time.
    pub time: String,
    /// `denied` or `served`.
    pub event: &'static str,
    /// `egress` or `ingress`.
    pub listener: &'static str,
    /// This cluster.
    pub cluster: &'a str,
    /// `namespace/name`.
    pub service: &'a str,
    /// The residency policies that governed the request.
    pub policies: Vec<&'a str>,
    /// The cluster that served it (`served`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<&'a str>,
    /// The calling workload, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller: Option<&'a str>,
    /// The response status.
    pub status: u16,
    /// The denial reason (`denied`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    /// The trace id, to join with traces and the access log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<&'a str>,
}

struct Open {
    file: File,
    size: u64,
}

/// The audit log writer.
pub struct AuditLog {
    config: AuditConfig,
    file: Mutex<Option<Open>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.config.path)
            .finish_non_exhaustive()
    }
}

fn open(path: &Path) -> std::io::Result<Open> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok(Open { file, size })
}

impl AuditLog {
    /// Opens (creates) the log; fails at startup when it cannot be written.
    pub fn open(config: AuditConfig) -> std::io::Result<Self> {
        let f = open(&config.path)?;
        Ok(Self {
            config,
            file: Mutex::new(Some(f)),
        })
    }

    /// Writes one record; `Err` when it could not be written.
    pub fn record(&self, rec: &AuditRecord<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(rec).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut guard = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("audit log lock poisoned"))?;
        let needs_rotation = guard
            .as_ref()
            .is_none_or(|o| o.size > 0 && o.size + line.len() as u64 > self.config.max_bytes);
        if needs_rotation {
            *guard = None;
            if self.config.path.exists() {
                self.rotate()?;
            }
            *guard = Some(open(&self.config.path)?);
        }
        let Some(o) = guard.as_mut() else {
            return Err(std::io::Error::other("audit log not open"));
        };
        o.file.write_all(&line)?;
        o.file.flush()?;
        o.size += line.len() as u64;
        Ok(())
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.config.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&self) -> std::io::Result<()> {
        if self.config.keep == 0 {
            return std::fs::remove_file(&self.config.path);
        }
        let _ = std::fs::remove_file(self.rotated(self.config.keep));
        for n in (1..self.config.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.config.path, self.rotated(1))
    }
}

/// The current time in RFC 3339.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(service: &str) -> AuditRecord<'_> {
        AuditRecord {
            time: now_rfc3339(),
            event: "denied",
            listener: "egress",
            cluster: "eu-1",
            service,
            policies: vec!["eu-only"],
            destination: None,
            caller: Some("spiffe://eu.test/ns/a/sa/b"),
            status: 503,
            reason: Some("residency_no_healthy_allowed_cluster"),
            trace_id: None,
        }
    }

    /// Every line is on disk as soon as `record` returns, and rotation by
    /// size keeps `keep` older files without losing a line.
    #[test]
    fn lines_are_written_at_once_and_rotated_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.log");
        let log = AuditLog::open(AuditConfig {
            path: path.clone(),
            max_bytes: 600,
            keep: 2,
        })
        .unwrap();
        let mut written = 0;
        for i in 0..12 {
            let svc = format!("shop/svc-{i}");
            log.record(&rec(&svc)).unwrap();
            written += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let last: serde_json::Value =
                serde_json::from_str(text.lines().last().unwrap()).unwrap();
            assert_eq!(last["service"], svc.as_str(), "line {i} visible at once");
            assert!(text.len() <= 600, "rotated by size: {}", text.len());
        }
        let count = |p: &Path| std::fs::read_to_string(p).map_or(0, |t| t.lines().count());
        let kept = count(&path) + count(&log.rotated(1)) + count(&log.rotated(2));
        assert!(log.rotated(2).exists());
        assert!(!log.rotated(3).exists(), "keep: 2");
        assert!(kept < written, "older files beyond keep are removed");
        assert!(count(&path) >= 1);
    }
}
