//! Finding the workspace's binaries (`causeway-federation`,
//! `causeway-gateway`, `causewayctl`, `causeway-echo`).
//!
//! `cargo test --workspace` builds every binary target before the tests run;
//! they are found next to the running executable (`target/debug` or
//! `target/debug/deps`), in `$CARGO_TARGET_DIR/debug` or in the workspace's
//! `target/debug`. `CAUSEWAY_BIN_DIR` overrides the search. When a binary
//! is missing (e.g. `cargo test -p causeway-e2e` on a clean checkout), `cargo
//! build -p causeway-gateway -p causeway-federation --bins` runs once, into
//! `target/e2e-bins` so that it cannot wait on the build lock of the `cargo
//! test` that runs us.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;

static BUILD: Mutex<bool> = Mutex::new(false);

fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("CAUSEWAY_BIN_DIR") {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_owned());
        if dir.ends_with("deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_owned());
        }
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(t).join("debug"));
    }
    dirs.push(workspace_root().join("target").join("debug"));
    dirs.push(fallback_target().join("debug"));
    dirs
}

/// The workspace root (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_owned()
}

fn fallback_target() -> PathBuf {
    workspace_root().join("target").join("e2e-bins")
}

fn find(name: &str) -> Option<PathBuf> {
    candidates()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The path of the workspace binary `name`, building the gateway and the
/// federation binaries once if it cannot be found.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = find(name) {
        return Ok(p);
    }
    let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = std::process::Command::new(cargo)
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", fallback_target())
            .args([
                "build",
                "-p",
                "causeway-gateway",
                "-p",
                "causeway-federation",
                "--bins",
            ])
            .status()
            .context("running cargo build for the workspace binaries")?;
        anyhow::ensure!(status.success(), "cargo build of the binaries failed");
        *built = true;
    }
    find(name).with_context(|| format!("binary {name} not found after cargo build"))
}
