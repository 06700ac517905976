//! A three-member etcd cluster for HA tests.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use super::process::{HEALTH_TIMEOUT, HarnessError, MemberSpec, free_port, healthy, log_tail};

#[derive(Debug)]
struct Member {
    spec: MemberSpec,
    child: Option<Child>,
    log: PathBuf,
}

impl Member {
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Three etcd members on loopback, each killed (by pid) when dropped.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// The number of members.
    pub const SIZE: usize = 3;

    /// Starts three members and waits until every one is healthy (a leader
    /// is elected).
    pub async fn start() -> Result<Self, HarnessError> {
        let mut last = None;
        // A reserved port may be taken by someone else before etcd binds it.
        for _ in 0..3 {
            match Self::try_start().await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(HarnessError::NotRunning))
    }

    async fn try_start() -> Result<Self, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix("causeway-etcd-cluster-")
            .tempdir()?;
        let mut ports = Vec::with_capacity(Self::SIZE);
        for _ in 0..Self::SIZE {
            ports.push((free_port()?, free_port()?));
        }
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = Vec::with_capacity(Self::SIZE);
        for (i, (client_port, peer_port)) in ports.into_iter().enumerate() {
            let spec = MemberSpec {
                name: format!("m{i}"),
                client_port,
                metrics_port: free_port()?,
                tls: None,
                peer_port,
                initial_cluster: initial_cluster.clone(),
                data_dir: dir.path().join(format!("m{i}")),
                heartbeat_ms: 50,
                election_ms: 500,
            };
            let log = dir.path().join(format!("m{i}.log"));
            members.push(Member {
                child: None,
                spec,
                log,
            });
        }
        let mut cluster = Self { members, _dir: dir };
        for m in &mut cluster.members {
            m.child = Some(m.spec.spawn(&m.log)?);
        }
        for i in 0..Self::SIZE {
            cluster.wait_healthy(i).await?;
        }
        Ok(cluster)
    }

    async fn wait_healthy(&mut self, i: usize) -> Result<(), HarnessError> {
        let deadline = Instant::now() + HEALTH_TIMEOUT;
        loop {
            let m = &mut self.members[i];
            if healthy(m.spec.metrics_port).await {
                return Ok(());
            }
            let exited = match m.child.as_mut() {
                Some(c) => c.try_wait()?.is_some(),
                None => true,
            };
            if exited || Instant::now() > deadline {
                return Err(HarnessError::Unhealthy {
                    timeout: HEALTH_TIMEOUT,
                    log: log_tail(&m.log),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Client URLs of every member (running or not).
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.spec.client_url()).collect()
    }

    /// Client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.members[i].spec.client_url()
    }

    /// Process id of member `i`, while running.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// The index of the current leader, asked from the running members;
    /// `None` while there is none (or the reported one was killed).
    pub async fn leader(&self) -> Option<usize> {
        for m in &self.members {
            if m.child.is_none() {
                continue;
            }
            let Ok(Ok(mut client)) = tokio::time::timeout(
                Duration::from_secs(2),
                etcd_client::Client::connect([m.spec.client_url()], None),
            )
            .await
            else {
                continue;
            };
            let Ok(Ok(status)) =
                tokio::time::timeout(Duration::from_secs(2), client.status()).await
            else {
                continue;
            };
            let leader_id = status.leader();
            if leader_id == 0 {
                continue;
            }
            // Find which member has that id.
            let Ok(Ok(list)) =
                tokio::time::timeout(Duration::from_secs(2), client.member_list()).await
            else {
                continue;
            };
            let name = list
                .members()
                .iter()
                .find(|mm| mm.id() == leader_id)
                .map(|mm| mm.name().to_owned())?;
            // Followers keep naming a killed leader until their election
            // timeout fires: a member that is not running is not the leader.
            return self
                .members
                .iter()
                .position(|mm| mm.spec.name == name && mm.child.is_some());
        }
        None
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Restarts member `i` with its data dir and waits until it is healthy.
    pub async fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        self.members[i].kill();
        let m = &mut self.members[i];
        m.child = Some(m.spec.spawn(&m.log)?);
        self.wait_healthy(i).await
    }

    /// Waits until some running member reports a leader; returns its index.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(l) = self.leader().await {
                return Some(l);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
    }
}
