//! Child processes that are always stopped: each runs in its own process
//! group and the whole group is killed (SIGKILL) by pid on drop, even when a
//! test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// A child process in its own process group, killed with its group on drop.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ChildGuard {
    /// Spawns `cmd` in a new process group, stdout and stderr appended to `log`.
    pub fn spawn(name: &str, cmd: Command, log: &Path) -> anyhow::Result<Self> {
        Self::spawn_split(name, cmd, log, log)
    }

    /// Spawns `cmd` in a new process group, stdout appended to `stdout` and
    /// stderr to `log`.
    pub fn spawn_split(
        name: &str,
        mut cmd: Command,
        stdout: &Path,
        log: &Path,
    ) -> anyhow::Result<Self> {
        use std::os::unix::process::CommandExt;
        let open = |p: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening log {}", p.display()))
        };
        let out = open(stdout)?;
        let err = open(log)?;
        // The servers stop by themselves if this process dies without
        // killing them (SIGKILL of a test or of causeway-local).
        cmd.env("CAUSEWAY_EXIT_WITH_PARENT", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_owned(),
        })
    }

    /// The process id while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills the process group (SIGKILL) and reaps the child.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(c.id(), "KILL");
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM to the process group without waiting.
    pub fn sigterm(&self) {
        if let Some(c) = self.child.as_ref() {
            kill_group(c.id(), "TERM");
        }
    }

    /// The exit status once the process has exited (reaped), else `None`.
    pub fn try_exit(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Asks the process to stop (SIGTERM), waits up to `grace`, then kills it.
    pub fn terminate(&mut self, grace: std::time::Duration) {
        let Some(c) = self.child.as_mut() else {
            return;
        };
        kill_group(c.id(), "TERM");
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if matches!(c.try_wait(), Ok(Some(_))) {
                self.child = None;
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.kill();
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Sends `signal` to the process group `pgid` (= the leader's pid).
fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
