//! Conversions between etcd-client types and the store's.

use bytes::Bytes;
use etcd_client::{Certificate, Identity, TlsOptions};
use tonic::Code;

use super::EtcdTls;
use crate::store::{KeyValue, LeaseId, Revision, StoreError};

/// An etcd revision (never negative) as ours.
pub(super) fn rev(r: i64) -> Revision {
    u64::try_from(r).unwrap_or(0)
}

/// Converts a key/value, stripping the namespace from the key.
pub(super) fn key_value(kv: &etcd_client::KeyValue, namespace: &str) -> KeyValue {
    let key = String::from_utf8_lossy(kv.key());
    let key = key.strip_prefix(namespace).unwrap_or(&key).to_owned();
    KeyValue {
        key,
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: rev(kv.create_revision()),
        mod_revision: rev(kv.mod_revision()),
        version: rev(kv.version()),
        lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
    }
}

/// The end of the key range with `prefix` (etcd's `range_end` for a prefix).
pub(super) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Empty prefix or all 0xff: every key.
    vec![0]
}

/// Maps an etcd-client error to a store error; `lease` names the lease
/// involved in the request, if any.
pub(super) fn map_err(e: etcd_client::Error, lease: Option<LeaseId>) -> StoreError {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => {
            let msg = status.message();
            match status.code() {
                Code::NotFound if msg.contains("lease") => match lease {
                    Some(lease) => StoreError::LeaseNotFound { lease },
                    None => StoreError::LeaseNotFound { lease: LeaseId(0) },
                },
                Code::OutOfRange if msg.contains("compacted") => StoreError::Compacted {
                    requested: 0,
                    compact_revision: 0,
                },
                Code::OutOfRange | Code::InvalidArgument | Code::FailedPrecondition => {
                    StoreError::InvalidArgument {
                        message: format!("etcd: {msg}"),
                    }
                }
                Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::ResourceExhausted
                | Code::Cancelled
                | Code::Unknown => StoreError::unavailable(format!("etcd: {msg}")),
                code => StoreError::internal(format!("etcd: {code:?}: {msg}")),
            }
        }
        E::TransportError(e) => StoreError::unavailable(format!("etcd transport: {e}")),
        E::IoError(e) => StoreError::unavailable(format!("etcd io: {e}")),
        E::WatchError(e) => StoreError::unavailable(format!("etcd watch: {e}")),
        E::LeaseKeepAliveError(e) if e.contains("not found") => StoreError::LeaseNotFound {
            lease: lease.unwrap_or(LeaseId(0)),
        },
        E::LeaseKeepAliveError(e) => StoreError::unavailable(format!("etcd keep-alive: {e}")),
        E::InvalidArgs(e) => StoreError::InvalidArgument { message: e },
        E::InvalidUri(e) => StoreError::InvalidArgument {
            message: format!("invalid etcd endpoint: {e}"),
        },
        other => StoreError::internal(format!("etcd: {other}")),
    }
}

/// Builds the client TLS settings from PEM files.
pub(super) fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, StoreError> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StoreError::InvalidArgument {
            message: format!("reading {}: {e}", p.display()),
        })
    };
    let mut opts = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca_file)?));
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            opts = opts.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::InvalidArgument {
                message: "etcd tls: certFile and keyFile must be set together".to_owned(),
            });
        }
    }
    if let Some(domain) = &tls.domain {
        opts = opts.domain_name(domain.clone());
    }
    Ok(opts)
}
