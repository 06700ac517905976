//! Helpers shared by the scenario tests.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::time::Duration;

use causeway_e2e::{Federation, Reply};

/// `n` sequential calls of `host` from `from`.
pub async fn calls(
    fed: &Federation,
    from: &str,
    host: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> anyhow::Result<Vec<Reply>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(fed.call(from, host, headers).await?);
    }
    Ok(out)
}

/// Counts replies by `"<status> <served-by>"`.
pub fn tally(replies: &[Reply]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in replies {
        let who = r
            .served_by
            .clone()
            .or_else(|| r.deny_reason.clone())
            .unwrap_or_else(|| "-".into());
        *m.entry(format!("{} {who}", r.status)).or_default() += 1;
    }
    m
}

/// Waits until the access log of `cluster` has at least `n` lines.
pub async fn log_lines(
    fed: &Federation,
    cluster: &str,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let g = &fed.cluster(cluster)?.gateway;
    causeway_e2e::wait::until(
        "access log lines",
        timeout,
        Duration::from_millis(50),
        || async {
            let l = g.access_log();
            (l.len() >= n).then_some(l)
        },
    )
    .await
}

/// Waits until `traffic` gets a reply served by `cluster` (new requests only).
pub async fn until_served_by(
    traffic: &causeway_e2e::traffic::Traffic,
    cluster: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let base = traffic.tally().served_by(cluster);
    causeway_e2e::wait::until(
        &format!("traffic served by {cluster}"),
        timeout,
        Duration::from_millis(10),
        || async { (traffic.tally().served_by(cluster) > base).then_some(()) },
    )
    .await
}

/// `n` calls of `host` from `from`, `concurrency` at a time.
pub async fn calls_concurrent(
    fed: &Federation,
    from: &str,
    host: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<Reply>> {
    let egress = fed.cluster(from)?.egress();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let host = host.to_owned();
        let share = n / concurrency + usize::from(w < n % concurrency);
        set.spawn(async move {
            let http = causeway_e2e::client::HttpClient::default();
            let mut out = Vec::with_capacity(share);
            for _ in 0..share {
                out.push(http.get(egress, &host, "/", &[]).await?);
            }
            anyhow::Ok(out)
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    Ok(all)
}
