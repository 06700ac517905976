//! Sample traffic: each flow calls its service through its caller's egress
//! a few times a second; outcomes are counted per refresh period.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::client::HttpClient;
use crate::federation::host;

/// One caller calling one service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    /// Calling cluster.
    pub from: String,
    /// `namespace/name`.
    pub service: String,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
}

impl Flow {
    /// A flow.
    pub fn new(from: &str, service: &str, headers: &[(&str, &str)]) -> Self {
        Self {
            from: from.to_owned(),
            service: service.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// `svc.ns.svc.clusterset.local`.
    pub fn host(&self) -> String {
        host(&self.service)
    }

    /// A short label, e.g. `us-east-1 -> payments/ledger [x-data-region: eu]`.
    pub fn label(&self) -> String {
        let mut s = format!("{} -> {}", self.from, self.service);
        for (k, v) in &self.headers {
            s.push_str(&format!(" [{k}: {v}]"));
        }
        s
    }
}

/// Outcomes of one flow since the last [`TrafficDriver::take`].
#[derive(Debug, Clone, Default)]
pub struct FlowStats {
    /// Requests.
    pub requests: u64,
    /// `"200 eu-west-1"`, `"503 residency"`, `"error"` ... -> count.
    pub outcomes: BTreeMap<String, u64>,
}

/// Runs every flow in the background.
#[derive(Debug)]
pub struct TrafficDriver {
    stats: Arc<Mutex<BTreeMap<Flow, FlowStats>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TrafficDriver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl TrafficDriver {
    /// Starts `flows`, each sending one request every `every` to its egress.
    pub fn start(flows: Vec<(Flow, SocketAddr)>, every: Duration) -> Self {
        let stats = Arc::new(Mutex::new(BTreeMap::new()));
        let mut tasks = Vec::new();
        for (flow, egress) in flows {
            let stats = stats.clone();
            tasks.push(tokio::spawn(async move {
                let http = HttpClient::new(Duration::from_secs(3));
                let host = flow.host();
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    let headers: Vec<(&str, &str)> = flow
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let outcome = match http.get(egress, &host, "/", &headers).await {
                        Ok(r) => format!(
                            "{} {}",
                            r.status,
                            r.served_by.or(r.deny_reason).unwrap_or_else(|| "-".into())
                        ),
                        Err(_) => "error".to_owned(),
                    };
                    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
                    let e: &mut FlowStats = s.entry(flow.clone()).or_default();
                    e.requests += 1;
                    *e.outcomes.entry(outcome).or_default() += 1;
                }
            }));
        }
        Self { stats, tasks }
    }

    /// The outcomes since the last call (and resets them).
    pub fn take(&self) -> BTreeMap<Flow, FlowStats> {
        let mut s = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *s)
    }
}
