//! Continuous background traffic from one caller, with a tally of outcomes.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::client::HttpClient;

/// Outcomes so far.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Requests sent.
    pub total: u64,
    /// Replies by `"<status> <served-by or deny reason>"`, transport errors as `"error"`.
    pub by_outcome: BTreeMap<String, u64>,
    /// The first few failures (non-2xx or transport errors), for messages.
    pub failures: Vec<String>,
    /// Number of failures.
    pub failed: u64,
}

impl Tally {
    /// Requests served by `cluster` with a 2xx.
    pub fn served_by(&self, cluster: &str) -> u64 {
        self.by_outcome
            .iter()
            .filter(|(k, _)| k.starts_with('2') && k.ends_with(&format!(" {cluster}")))
            .map(|(_, v)| *v)
            .sum()
    }
}

/// Sequential requests from `egress` to `host` every `pause` until stopped.
#[derive(Debug)]
pub struct Traffic {
    tally: Arc<Mutex<Tally>>,
    task: Option<JoinHandle<()>>,
}

impl Drop for Traffic {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl Traffic {
    /// Starts sending.
    pub fn start(
        egress: SocketAddr,
        host: &str,
        headers: &[(&str, &str)],
        pause: Duration,
    ) -> Self {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let t = tally.clone();
        let host = host.to_owned();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let task = tokio::spawn(async move {
            let http = HttpClient::new(Duration::from_secs(5));
            loop {
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let r = http.get(egress, &host, "/", &h).await;
                {
                    let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                    t.total += 1;
                    let (key, failed) = match &r {
                        Ok(r) => {
                            let who = r
                                .served_by
                                .clone()
                                .or_else(|| r.deny_reason.clone())
                                .unwrap_or_else(|| "-".into());
                            (
                                format!("{} {who}", r.status),
                                !(200..300).contains(&r.status),
                            )
                        }
                        Err(e) => (format!("error {e}"), true),
                    };
                    if failed {
                        t.failed += 1;
                        if t.failures.len() < 10 {
                            t.failures.push(key.clone());
                        }
                    }
                    *t.by_outcome.entry(key).or_default() += 1;
                }
                tokio::time::sleep(pause).await;
            }
        });
        Self {
            tally,
            task: Some(task),
        }
    }

    /// The outcomes so far.
    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until at least `n` more requests were sent.
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> anyhow::Result<()> {
        let target = self.tally().total + n;
        crate::wait::until("traffic", timeout, Duration::from_millis(10), || async {
            (self.tally().total >= target).then_some(())
        })
        .await
    }

    /// Stops sending and returns the final outcomes.
    pub async fn stop(mut self) -> Tally {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
        self.tally()
    }
}
