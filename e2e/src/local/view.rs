//! The live view: gathered from the API, each gateway's admin endpoints and
//! the traffic driver, rendered as compact text.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::{Flow, FlowStats};
use crate::Federation;

/// One cluster's line.
#[derive(Debug, Clone)]
pub struct ClusterRow {
    /// Id.
    pub id: String,
    /// `region/zone`.
    pub locality: String,
    /// Jurisdictions.
    pub jurisdictions: Vec<String>,
    /// Whether the API reports it connected (heartbeats).
    pub connected: Option<bool>,
    /// The catalog revision its gateway serves.
    pub revision: Option<u64>,
    /// Residency denials counted by its gateway.
    pub residency_denials: f64,
}

/// One flow's line.
#[derive(Debug, Clone)]
pub struct FlowRow {
    /// The flow.
    pub flow: Flow,
    /// The decision of the caller's gateway, summarized (`/debug/route`).
    pub decision: String,
    /// Outcomes in the last period.
    pub stats: FlowStats,
}

/// Everything one refresh shows.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// API URL.
    pub api: String,
    /// Store description.
    pub store: String,
    /// Clusters.
    pub clusters: Vec<ClusterRow>,
    /// Flows.
    pub flows: Vec<FlowRow>,
    /// Length of the period the stats cover.
    pub period: Duration,
}

/// Summarizes a `/debug/route` answer: target and why, or the denial.
pub fn summarize(route: &serde_json::Value) -> String {
    let d = &route["decision"];
    match d["outcome"].as_str() {
        Some("route") => {
            let target = d["target"]["cluster"].as_str().unwrap_or("?");
            let local = d["target"]["local"].as_bool().unwrap_or(false);
            let tier = d["tier"]["kind"].as_str().unwrap_or("?");
            let r = &d["reason"];
            let mut why = vec![if local {
                "local".to_owned()
            } else {
                format!("tier {tier}")
            }];
            if r["failover"].as_bool() == Some(true) {
                why.push("failover".into());
            }
            if let Some(p) = r["residency_policy"].as_str() {
                why.push(format!("residency {p}"));
            }
            if let (Some(w), Some(tw)) = (r["weight"].as_u64(), r["tier_weight"].as_u64())
                && w != tw
            {
                why.push(format!("weight {w}/{tw}"));
            }
            format!("{target} ({})", why.join(", "))
        }
        Some("deny") => format!(
            "DENY {} {}{}",
            d["status"].as_u64().unwrap_or(0),
            d["reason"].as_str().unwrap_or("?"),
            d["policy"]
                .as_str()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default()
        ),
        _ => route.to_string(),
    }
}

impl Snapshot {
    /// Gathers a snapshot.
    pub async fn gather(
        fed: &Federation,
        store: &str,
        flows: BTreeMap<Flow, FlowStats>,
        all_flows: &[Flow],
        period: Duration,
    ) -> Self {
        let connected: BTreeMap<String, bool> = match fed.api().admin_client() {
            Ok(c) => c
                .list::<serde_json::Value>("/v1/clusters")
                .await
                .unwrap_or_default()
                .into_iter()
                .filter_map(|c| {
                    Some((
                        c["metadata"]["name"].as_str()?.to_owned(),
                        c["status"]["connected"].as_bool().unwrap_or(false),
                    ))
                })
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        let mut clusters = Vec::new();
        for c in fed.clusters() {
            let metrics = c.gateway.metrics().await.unwrap_or_default();
            clusters.push(ClusterRow {
                id: c.def.id.clone(),
                locality: format!("{}/{}", c.def.region, c.def.zone),
                jurisdictions: c.def.jurisdictions.clone(),
                connected: connected.get(&c.def.id).copied(),
                revision: c.gateway.revision().await.ok(),
                residency_denials: crate::metrics::sum(
                    &metrics,
                    "causeway_gateway_residency_denials_total",
                    &[],
                ),
            });
        }
        let mut rows = Vec::new();
        for f in all_flows {
            let headers: Vec<(&str, &str)> = f
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let decision = match fed.cluster(&f.from) {
                Ok(c) => match c.gateway.debug_route(&f.host(), &headers).await {
                    Ok(r) => summarize(&r),
                    Err(e) => format!("({e})"),
                },
                Err(e) => format!("({e})"),
            };
            rows.push(FlowRow {
                flow: f.clone(),
                decision,
                stats: flows.get(f).cloned().unwrap_or_default(),
            });
        }
        Self {
            api: fed.api().url(),
            store: store.to_owned(),
            clusters,
            flows: rows,
            period,
        }
    }
}

/// Renders a snapshot as text.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "causeway local federation - API {} ({})", s.api, s.store);
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<14} {:<26} {:<10} {:<10} {:>5} {:>10}",
        "CLUSTER", "REGION/ZONE", "JURIS", "STATUS", "REV", "RES.DENY"
    );
    for c in &s.clusters {
        let status = match c.connected {
            Some(true) => "connected",
            Some(false) => "silent",
            None => "?",
        };
        let _ = writeln!(
            o,
            "{:<14} {:<26} {:<10} {:<10} {:>5} {:>10}",
            c.id,
            c.locality,
            c.jurisdictions.join(","),
            status,
            c.revision.map_or("-".into(), |r| r.to_string()),
            c.residency_denials
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "{:<48} {:<66} {:>5}  OUTCOMES (last {:.0?})",
        "CALLER -> SERVICE", "ROUTE (from /debug/route)", "REQ/S", s.period
    );
    let secs = s.period.as_secs_f64().max(0.001);
    for f in &s.flows {
        let outcomes: Vec<String> = f
            .stats
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k} x{v}"))
            .collect();
        let _ = writeln!(
            o,
            "{:<48} {:<66} {:>5.1}  {}",
            f.flow.label(),
            f.decision,
            f.stats.requests as f64 / secs,
            outcomes.join(", ")
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::summarize;

    #[test]
    fn summarizes_routes_and_denials() {
        let route = serde_json::json!({"decision": {"outcome": "route",
            "target": {"cluster": "eu-west-1", "local": false},
            "tier": {"kind": "region"},
            "reason": {"failover": true, "residency_policy": "eu-only", "weight": 90, "tier_weight": 100}}});
        assert_eq!(
            summarize(&route),
            "eu-west-1 (tier region, failover, residency eu-only, weight 90/100)"
        );
        let deny = serde_json::json!({"decision": {"outcome": "deny", "status": 503,
            "reason": "residency_no_allowed_cluster", "policy": "eu-only"}});
        assert_eq!(
            summarize(&deny),
            "DENY 503 residency_no_allowed_cluster (eu-only)"
        );
    }
}
