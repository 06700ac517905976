//! A server started by a harness that dies without stopping it (SIGKILL of
//! a test or of `causeway-local`) stops by itself: the harness sets
//! `CAUSEWAY_EXIT_WITH_PARENT`.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn servers_exit_when_their_parent_dies() {
    let dir = tempfile::tempdir().unwrap();
    let api = causeway_e2e::binaries::binary("causeway-federation").unwrap();
    // The shell starts the server in the background, prints its pid and
    // exits a second later without stopping it.
    let script = format!(
        "{} --listen 127.0.0.1:0 --danger-disable-auth --data-dir {} >/dev/null 2>&1 & echo $!; sleep 1",
        api.display(),
        dir.path().join("data").display()
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("CAUSEWAY_EXIT_WITH_PARENT", "1")
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let proc_dir = format!("/proc/{pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Gone, or a zombie waiting for its new parent to reap it.
    let alive = || {
        std::fs::read_to_string(format!("{proc_dir}/stat"))
            .is_ok_and(|s| !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
    };
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let still = alive();
    if still {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    assert!(!still, "causeway-federation {pid} outlived its parent");
}
