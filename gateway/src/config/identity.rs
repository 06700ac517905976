//! The `identity:` section: where this gateway's X.509-SVID comes from, and
//! the lifetimes of what it issues.

use std::path::PathBuf;
use std::time::Duration;

use causeway_trust::SpiffeId;
use serde::{Deserialize, Serialize};

/// Where the gateway's SVID, key and own trust bundle come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// Development: an in-process CA in this directory (created if empty)
    /// issues the gateway's SVID and rotates itself.
    Authority {
        /// `identity.authorityDir`.
        dir: PathBuf,
    },
    /// Files an external CA keeps current (re-read on change).
    Files {
        /// PEM chain, leaf first (`identity.svidFile`).
        svid: PathBuf,
        /// PEM private key of the leaf (`identity.keyFile`).
        key: PathBuf,
        /// The own trust domain's bundle (`identity.bundleFile`): a SPIFFE
        /// bundle (JSON) or PEM CA certificates (cert-manager's `ca.crt`).
        bundle: PathBuf,
    },
    /// The SPIFFE Workload API on a Unix socket (a SPIRE agent): the
    /// X.509-SVID, the own bundle and federated bundles arrive on its
    /// stream, rotations included; JWT authorities on its JWT bundle
    /// stream.
    WorkloadApi {
        /// The socket (`identity.workloadApiSocket`: `unix:///path` or a path).
        socket: PathBuf,
    },
}

/// The gateway's identity settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "IdentityFields", into = "IdentityFields")]
pub struct IdentityConfig {
    /// Where the SVID comes from.
    pub source: IdentitySource,
    /// PEM file with a JWT-SVID signing key (PKCS#8 EC P-256) when not
    /// using an authority.
    pub jwt_key_file: Option<PathBuf>,
    /// SPIFFE ID stated as the calling workload in the caller JWT-SVID;
    /// defaults to the gateway's own SPIFFE ID.
    pub workload_id: Option<SpiffeId>,
    /// Lifetime of the caller JWT-SVIDs this gateway mints (at least 1 s).
    pub caller_jwt_ttl: Duration,
    /// Lifetime of the X.509-SVID issued by the authority.
    pub svid_ttl: Duration,
    /// Lifetime of each CA certificate of the authority.
    pub ca_ttl: Duration,
    /// How long a new CA is published before it signs (less than half of
    /// `ca_ttl`); `None` = the authority's default.
    pub ca_prepare_ahead: Option<Duration>,
}

impl IdentityConfig {
    /// An identity from `source` with default lifetimes.
    pub fn new(source: IdentitySource) -> Self {
        let f = IdentityFields::default();
        Self {
            source,
            jwt_key_file: None,
            workload_id: None,
            caller_jwt_ttl: f.caller_jwt_ttl,
            svid_ttl: f.svid_ttl,
            ca_ttl: f.ca_ttl,
            ca_prepare_ahead: None,
        }
    }

    /// The authority's directory, in development mode.
    pub fn authority_dir(&self) -> Option<&PathBuf> {
        match &self.source {
            IdentitySource::Authority { dir } => Some(dir),
            IdentitySource::Files { .. } | IdentitySource::WorkloadApi { .. } => None,
        }
    }
}

/// The section as written: every field optional, combined and checked by
/// `TryFrom`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
struct IdentityFields {
    authority_dir: Option<PathBuf>,
    svid_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    bundle_file: Option<PathBuf>,
    workload_api_socket: Option<String>,
    jwt_key_file: Option<PathBuf>,
    workload_id: Option<SpiffeId>,
    #[serde(with = "humantime_serde")]
    caller_jwt_ttl: Duration,
    #[serde(with = "humantime_serde")]
    svid_ttl: Duration,
    #[serde(with = "humantime_serde")]
    ca_ttl: Duration,
    #[serde(with = "humantime_serde")]
    ca_prepare_ahead: Option<Duration>,
}

impl Default for IdentityFields {
    fn default() -> Self {
        Self {
            authority_dir: None,
            svid_file: None,
            key_file: None,
            bundle_file: None,
            workload_api_socket: None,
            jwt_key_file: None,
            workload_id: None,
            caller_jwt_ttl: Duration::from_secs(300),
            svid_ttl: Duration::from_secs(24 * 3600),
            ca_ttl: Duration::from_secs(24 * 3600),
            ca_prepare_ahead: None,
        }
    }
}

impl TryFrom<IdentityFields> for IdentityConfig {
    type Error = String;
    fn try_from(f: IdentityFields) -> Result<Self, Self::Error> {
        if let Some(address) = &f.workload_api_socket {
            if f.authority_dir.is_some()
                || f.svid_file.is_some()
                || f.key_file.is_some()
                || f.bundle_file.is_some()
            {
                return Err(
                    "identity: set workloadApiSocket alone, without authorityDir or svidFile/keyFile/bundleFile"
                        .into(),
                );
            }
            let socket = causeway_api::workload_api::socket_path(address)
                .map_err(|e| format!("identity.workloadApiSocket: {e}"))?;
            return Self::checked(IdentitySource::WorkloadApi { socket }, f);
        }
        let source = match (
            f.authority_dir.clone(),
            f.svid_file.clone(),
            f.key_file.clone(),
            f.bundle_file.clone(),
        ) {
            (Some(dir), None, None, None) => IdentitySource::Authority { dir },
            (None, Some(svid), Some(key), Some(bundle)) => {
                IdentitySource::Files { svid, key, bundle }
            }
            (Some(_), ..) => {
                return Err(
                    "identity: set either authorityDir or svidFile+keyFile+bundleFile, not both"
                        .into(),
                );
            }
            (None, ..) => {
                return Err(
                    "identity: set workloadApiSocket, or svidFile, keyFile and bundleFile (or authorityDir for development)"
                        .into(),
                );
            }
        };
        Self::checked(source, f)
    }
}

impl IdentityConfig {
    fn checked(source: IdentitySource, f: IdentityFields) -> Result<Self, String> {
        if f.caller_jwt_ttl < Duration::from_secs(1) {
            return Err("identity.callerJwtTtl: must be at least 1s".into());
        }
        let prepare_ahead = f
            .ca_prepare_ahead
            .unwrap_or(causeway_trust::AuthorityConfig::default().prepare_ahead());
        if f.ca_ttl.is_zero() || prepare_ahead * 2 >= f.ca_ttl {
            return Err(format!(
                "identity.caTtl: must be more than twice identity.caPrepareAhead ({}s)",
                prepare_ahead.as_secs()
            ));
        }
        Ok(Self {
            source,
            jwt_key_file: f.jwt_key_file,
            workload_id: f.workload_id,
            caller_jwt_ttl: f.caller_jwt_ttl,
            svid_ttl: f.svid_ttl,
            ca_ttl: f.ca_ttl,
            ca_prepare_ahead: f.ca_prepare_ahead,
        })
    }
}

impl From<IdentityConfig> for IdentityFields {
    fn from(c: IdentityConfig) -> Self {
        let mut workload_api_socket = None;
        let (authority_dir, svid_file, key_file, bundle_file) = match c.source {
            IdentitySource::Authority { dir } => (Some(dir), None, None, None),
            IdentitySource::Files { svid, key, bundle } => {
                (None, Some(svid), Some(key), Some(bundle))
            }
            IdentitySource::WorkloadApi { socket } => {
                workload_api_socket = Some(socket.display().to_string());
                (None, None, None, None)
            }
        };
        Self {
            authority_dir,
            svid_file,
            key_file,
            bundle_file,
            workload_api_socket,
            jwt_key_file: c.jwt_key_file,
            workload_id: c.workload_id,
            caller_jwt_ttl: c.caller_jwt_ttl,
            svid_ttl: c.svid_ttl,
            ca_ttl: c.ca_ttl,
            ca_prepare_ahead: c.ca_prepare_ahead,
        }
    }
}
