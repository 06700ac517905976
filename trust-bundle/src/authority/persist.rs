//! On-disk state of an [`Authority`](super::Authority).
//!
//! Layout of the directory:
//!
//! ```text
//! authority.json           trust domain, sequence, slots (certificates, kids, roles)
//! slot-<n>-ca.key.pem      CA private key of slot n (mode 0600)
//! slot-<n>-jwt.key.pem     JWT signing key of slot n (mode 0600)
//! ```

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use rcgen::{Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AuthorityError, Slot, State};
use crate::bundle::Bundle;
use crate::id::TrustDomain;

const STATE_FILE: &str = "authority.json";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    version: u32,
    trust_domain: TrustDomain,
    sequence: u64,
    next_slot_id: u64,
    slots: Vec<SavedSlot>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Role {
    Active,
    Prepared,
    Retiring,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedSlot {
    id: u64,
    role: Role,
    ca_cert_pem: String,
    jwt_kid: String,
    #[serde(with = "time::serde::rfc3339")]
    not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    published_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    deactivated_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    last_svid_expiry: Option<OffsetDateTime>,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AuthorityError {
    let path = path.to_path_buf();
    move |source| AuthorityError::Io {
        action,
        path,
        source,
    }
}

pub(super) fn exists(dir: &Path) -> bool {
    dir.join(STATE_FILE).is_file()
}

fn key_path(dir: &Path, id: u64, kind: &str) -> PathBuf {
    dir.join(format!("slot-{id}-{kind}.key.pem"))
}

/// Writes `contents` to `path` through a temporary file and a rename, with
/// `mode` set at creation (so a secret is never readable by others).
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AuthorityError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    file.write_all(contents).map_err(io("write", &tmp))?;
    file.sync_all().map_err(io("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename", path))
}

pub(super) fn save(
    dir: &Path,
    trust_domain: &TrustDomain,
    state: &State,
) -> Result<(), AuthorityError> {
    if !dir.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create directory", dir))?;
    }
    let mut slots = Vec::new();
    let roles = state
        .retiring
        .iter()
        .map(|s| (s, Role::Retiring))
        .chain(std::iter::once((&state.active, Role::Active)))
        .chain(state.prepared.iter().map(|s| (s, Role::Prepared)));
    let mut keep = vec![dir.join(STATE_FILE)];
    for (slot, role) in roles {
        let ca_key = key_path(dir, slot.id, "ca");
        let jwt_key = key_path(dir, slot.id, "jwt");
        write_atomic(&ca_key, slot.issuer.key().serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&jwt_key, slot.jwt_key.serialize_pem().as_bytes(), 0o600)?;
        keep.extend([ca_key, jwt_key]);
        slots.push(SavedSlot {
            id: slot.id,
            role,
            ca_cert_pem: super::svid::pem_encode("CERTIFICATE", slot.ca_cert.as_ref()),
            jwt_kid: slot.jwt_kid.clone(),
            not_before: slot.not_before,
            not_after: slot.not_after,
            published_at: slot.published_at,
            deactivated_at: slot.deactivated_at,
            last_svid_expiry: slot.last_svid_expiry,
        });
    }
    let saved = Saved {
        version: 1,
        trust_domain: trust_domain.clone(),
        sequence: state.sequence,
        next_slot_id: state.next_slot_id,
        slots,
    };
    let json = serde_json::to_vec_pretty(&saved)
        .map_err(|e| AuthorityError::CorruptState(e.to_string()))?;
    write_atomic(&dir.join(STATE_FILE), &json, 0o644)?;
    // Remove key files of retired slots (best effort: a leftover file is
    // harmless, the state file no longer refers to it).
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_key = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("slot-") && n.ends_with(".key.pem"));
            if is_key && !keep.contains(&path) {
                let _ = fs::remove_file(&path);
            }
        }
    }
    Ok(())
}

pub(super) fn load(dir: &Path) -> Result<(TrustDomain, State), AuthorityError> {
    let state_path = dir.join(STATE_FILE);
    let json = fs::read(&state_path).map_err(io("read", &state_path))?;
    let saved: Saved =
        serde_json::from_slice(&json).map_err(|e| AuthorityError::CorruptState(e.to_string()))?;
    if saved.version != 1 {
        return Err(AuthorityError::CorruptState(format!(
            "unsupported version {}",
            saved.version
        )));
    }
    let mut active = None;
    let mut prepared = None;
    let mut retiring = Vec::new();
    for s in saved.slots {
        let read_key = |kind: &str| -> Result<KeyPair, AuthorityError> {
            let path = key_path(dir, s.id, kind);
            let pem = fs::read_to_string(&path).map_err(io("read", &path))?;
            KeyPair::from_pem(&pem)
                .map_err(|e| AuthorityError::CorruptState(format!("{}: {e}", path.display())))
        };
        let ca_cert = CertificateDer::from_pem_slice(s.ca_cert_pem.as_bytes())
            .map_err(|e| AuthorityError::CorruptState(format!("slot {} ca cert: {e}", s.id)))?;
        let issuer = Issuer::from_ca_cert_der(&ca_cert, read_key("ca")?)?;
        let slot = Slot {
            id: s.id,
            issuer,
            ca_cert,
            not_before: s.not_before,
            not_after: s.not_after,
            jwt_key: read_key("jwt")?,
            jwt_kid: s.jwt_kid,
            published_at: s.published_at,
            deactivated_at: s.deactivated_at,
            last_svid_expiry: s.last_svid_expiry,
        };
        match s.role {
            Role::Active if active.is_none() => active = Some(slot),
            Role::Prepared if prepared.is_none() => prepared = Some(slot),
            Role::Retiring => retiring.push(slot),
            _ => {
                return Err(AuthorityError::CorruptState(format!(
                    "more than one slot with the role of slot {}",
                    s.id
                )));
            }
        }
    }
    let active = active.ok_or_else(|| AuthorityError::CorruptState("no active slot".into()))?;
    Ok((
        saved.trust_domain,
        State {
            sequence: saved.sequence,
            next_slot_id: saved.next_slot_id,
            active,
            prepared,
            retiring,
            bundle: Bundle::new(saved.sequence),
        },
    ))
}
