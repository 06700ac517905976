//! One JSON access-log line per request, written to stdout by a background
//! task. When the log is disabled nothing is formatted; when the writer falls
//! behind, lines are dropped (never blocking the request path).

use std::io::Write as _;

use serde::Serialize;
use tokio::sync::mpsc;

use super::Common;

/// One access-log record.
#[derive(Debug, Serialize)]
pub struct AccessRecord<'a> {
    /// RFC 3339 time the request ended.
    pub time: String,
    /// `egress` or `ingress`.
    pub listener: &'static str,
    /// W3C trace id.
    pub trace_id: Option<String>,
    /// Verified source identity (SPIFFE ID), if any.
    pub source_identity: Option<&'a str>,
    /// Verified calling workload (ingress, from the caller JWT-SVID).
    pub caller: Option<&'a str>,
    /// Source cluster.
    pub source_cluster: &'a str,
    /// Method.
    pub method: &'a str,
    /// Host / authority.
    pub host: Option<&'a str>,
    /// Path.
    pub path: &'a str,
    /// `namespace/name`.
    pub service: Option<&'a str>,
    /// Destination cluster.
    pub destination_cluster: Option<&'a str>,
    /// Locality tier.
    pub tier: Option<&'static str>,
    /// Route or denial reason.
    pub reason: Option<&'a str>,
    /// Residency policy that governed the decision.
    pub policy: Option<&'a str>,
    /// Status sent downstream.
    pub status: u16,
    /// Upstream tries.
    pub attempts: u32,
    /// Milliseconds to the upstream response header.
    pub upstream_ms: Option<f64>,
    /// Milliseconds in total.
    pub total_ms: f64,
    /// Request body bytes read.
    pub bytes_in: usize,
    /// Response body bytes sent.
    pub bytes_out: usize,
    /// Error, if the request failed.
    pub error: Option<String>,
}

/// The access-log sink.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<Vec<u8>>>,
}

impl AccessLog {
    /// A disabled log.
    pub fn disabled() -> Self {
        Self { tx: None }
    }

    /// An enabled log writing to stdout (spawns the writer task).
    pub fn stdout() -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(8192);
        tokio::task::spawn_blocking(move || {
            let stdout = std::io::stdout();
            while let Some(line) = rx.blocking_recv() {
                let mut out = stdout.lock();
                let _ = out.write_all(&line);
                while let Ok(more) = rx.try_recv() {
                    let _ = out.write_all(&more);
                }
                let _ = out.flush();
            }
        });
        Self { tx: Some(tx) }
    }

    /// Whether lines are written.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Writes one record.
    pub fn write(&self, record: &AccessRecord<'_>) {
        let Some(tx) = &self.tx else { return };
        let Ok(mut line) = serde_json::to_vec(record) else {
            return;
        };
        line.push(b'\n');
        let _ = tx.try_send(line);
    }
}

/// What one proxy adds to the common record.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Extra<'a> {
    /// Verified source identity (ingress: the peer gateway).
    pub(crate) source_identity: Option<&'a str>,
    /// Verified calling workload (ingress).
    pub(crate) caller: Option<&'a str>,
    /// Locality tier (egress).
    pub(crate) tier: Option<&'static str>,
}

/// Builds and writes the record of a finished request.
pub(crate) fn log_request(
    log: &AccessLog,
    listener: &'static str,
    session: &pingora::proxy::Session,
    common: &Common,
    extra: Extra<'_>,
    error: Option<&pingora::Error>,
) {
    if !log.enabled() {
        return;
    }
    let req = session.req_header();
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let record = AccessRecord {
        time,
        listener,
        trace_id: common.trace.map(|t| t.trace_id_hex()),
        source_identity: extra.source_identity,
        caller: extra.caller,
        source_cluster: &common.source_cluster.0,
        method: req.method.as_str(),
        host: super::request_host(session),
        path: req.uri.path(),
        service: common.service.as_ref().map(|s| &*s.label.0),
        destination_cluster: common.destination.as_deref(),
        tier: extra.tier,
        reason: common.reason.as_deref(),
        policy: common.policy.as_deref(),
        status: common.status,
        attempts: common.attempts,
        upstream_ms: common.upstream_duration.map(|d| d.as_secs_f64() * 1000.0),
        total_ms: common.start.elapsed().as_secs_f64() * 1000.0,
        bytes_in: session.body_bytes_read(),
        bytes_out: session.body_bytes_sent(),
        error: error.map(|e| e.to_string()),
    };
    log.write(&record);
}
