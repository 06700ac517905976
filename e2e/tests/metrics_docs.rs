//! docs/metrics.md lists exactly the metric families each binary serves:
//! the real `causeway-gateway` (with its agent) and `causeway-federation`
//! processes are scraped and compared with the doc's tables, names and
//! types, in both directions.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use causeway_e2e::api::{ApiSettings, FederationApi};
use causeway_e2e::binaries::workspace_root;
use causeway_e2e::client::HttpClient;
use causeway_e2e::metrics::families;
use causeway_e2e::{ClusterDef, Federation, Store};

/// The families documented for `binary` (its `## \`binary\`` section), by
/// name, with the type column.
fn documented(binary: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(workspace_root().join("docs/metrics.md"))?;
    let mut section = String::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim().trim_matches('`').to_owned();
            continue;
        }
        if section != binary {
            continue;
        }
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let (name, rest) = row.split_once('`').context("unclosed metric name")?;
        let ty = rest
            .trim_start_matches(" |")
            .split('|')
            .next()
            .unwrap_or_default()
            .trim();
        if out.insert(name.to_owned(), ty.to_owned()).is_some() {
            anyhow::bail!("{name} is documented twice for {binary}");
        }
    }
    anyhow::ensure!(
        !out.is_empty(),
        "no `## `{binary}`` section in docs/metrics.md"
    );
    Ok(out)
}

fn compare(binary: &str, scraped: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let documented = documented(binary)?;
    let undocumented: Vec<_> = scraped
        .iter()
        .filter(|(n, _)| !documented.contains_key(*n))
        .collect();
    let unregistered: Vec<_> = documented
        .iter()
        .filter(|(n, _)| !scraped.contains_key(*n))
        .collect();
    let mistyped: Vec<_> = documented
        .iter()
        .filter_map(|(n, t)| scraped.get(n).filter(|s| *s != t).map(|s| (n, t, s)))
        .collect();
    anyhow::ensure!(
        undocumented.is_empty() && unregistered.is_empty() && mistyped.is_empty(),
        "{binary}: registered but not in docs/metrics.md: {undocumented:?}; \
         documented but not registered: {unregistered:?}; \
         (name, documented type, served type): {mistyped:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_metrics_are_the_documented_ones() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(ClusterDef::new("eu-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/cart"))
        .start()
        .await?;
    // Traffic first, so that labelled families have samples too.
    let reply = fed
        .call("eu-1", "cart.shop.svc.clusterset.local", &[])
        .await?;
    anyhow::ensure!(reply.status == 200, "{reply:?}");
    let text = fed.cluster("eu-1")?.gateway.metrics().await?;
    let scraped = families(&text);
    anyhow::ensure!(
        text.contains("causeway_build_info{version=\"")
            && text.contains("causeway_gateway_requests_total{"),
        "{text}"
    );
    compare("causeway-gateway", &scraped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_metrics_are_the_documented_ones() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let api = FederationApi::start(
        dir.path(),
        1,
        ApiSettings {
            etcd: Vec::new(),
            heartbeat_ttl: Duration::from_secs(10),
            log_level: "warn".into(),
            ip: [127, 0, 0, 1].into(),
            console_refresh: Duration::from_secs(5),
        },
    )
    .await?;
    let addr = api.replicas()[0].addr;
    let http = HttpClient::default();
    let reply = http.get(addr, "api", "/v1/version", &[]).await?;
    let version: serde_json::Value = serde_json::from_str(&reply.body)?;
    let text = http.get(addr, "api", "/metrics", &[]).await?.body;
    anyhow::ensure!(
        text.contains(&format!(
            "causeway_build_info{{version=\"{}\"",
            version["version"].as_str().unwrap_or("?")
        )),
        "{text}"
    );
    compare("causeway-federation", &families(&text))
}
