//! The routing snapshot: built once per catalog revision, read by every
//! request. All per-service work (candidates, locality tiers, weights,
//! residency verdicts) is done here so that `decide` only walks arrays.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use causeway_federation::model::{
    CatalogSnapshot, Cluster, ResidencyPolicy, ServiceExport, TrafficPolicy,
};
use serde::Serialize;

use super::decision::{Target, Tier};
use super::residency::ResidencyRule;

/// The identity and locality of the cluster this gateway runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LocalCluster {
    /// The cluster id.
    pub id: String,
    /// The region.
    pub region: String,
    /// The zone.
    pub zone: String,
    /// Residency labels.
    pub jurisdictions: Vec<String>,
    /// Locality labels (failover priorities).
    pub labels: BTreeMap<String, String>,
}

impl LocalCluster {
    /// The locality of a cluster resource.
    pub fn from_cluster(c: &Cluster) -> Self {
        Self {
            id: c.id().to_string(),
            region: c.spec.region.clone(),
            zone: c.spec.zone.clone(),
            jurisdictions: c.spec.jurisdictions.clone(),
            labels: c.spec.labels.clone(),
        }
    }
}

/// The catalog content a snapshot is built from (borrowed).
#[derive(Debug, Clone, Default)]
pub struct CatalogView<'a> {
    /// The catalog revision.
    pub revision: u64,
    /// Every cluster.
    pub clusters: Vec<&'a Cluster>,
    /// Every service export.
    pub exports: Vec<&'a ServiceExport>,
    /// Every residency policy.
    pub residency: Vec<&'a ResidencyPolicy>,
    /// Every traffic policy.
    pub traffic: Vec<&'a TrafficPolicy>,
}

impl<'a> CatalogView<'a> {
    /// A view of a whole catalog snapshot.
    pub fn of(catalog: &'a CatalogSnapshot) -> Self {
        Self {
            revision: catalog.revision,
            clusters: catalog.clusters.values().collect(),
            exports: catalog.exports.values().collect(),
            residency: catalog.policies.residency.values().collect(),
            traffic: catalog.policies.traffic.values().collect(),
        }
    }
}

/// A cluster as the snapshot knows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ClusterEntry {
    pub(crate) id: Arc<str>,
    pub(crate) region: Arc<str>,
    pub(crate) zone: Arc<str>,
    pub(crate) jurisdictions: Arc<[String]>,
    #[serde(skip)]
    pub(crate) target_remote: Target,
    #[serde(skip)]
    pub(crate) target_local: Target,
}

/// One cluster that exports a service.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) cluster: u32,
    pub(crate) target: Target,
    pub(crate) ready: u32,
    pub(crate) weight: u32,
    pub(crate) ports: Box<[u16]>,
    pub(crate) stale: bool,
    /// The first service-level residency rule that forbids this candidate.
    pub(crate) static_block: Option<u32>,
    /// Bit `i`: `request_policies[i]` forbids this candidate (i < 64).
    pub(crate) request_block: u64,
    /// Positions >= 64 in `request_policies` that forbid this candidate.
    pub(crate) request_block_overflow: Box<[u32]>,
}

/// A run of candidates of one tier.
#[derive(Debug, Clone)]
pub(crate) struct TierSpan {
    pub(crate) tier: Tier,
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// Everything about one service.
#[derive(Debug, Clone)]
pub(crate) struct ServiceRoutes {
    pub(crate) namespace: Arc<str>,
    pub(crate) name: Arc<str>,
    /// Sorted by tier, then cluster id.
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) tiers: Vec<TierSpan>,
    /// Residency rules applying to every request of the service.
    pub(crate) static_policies: Vec<u32>,
    /// Residency rules applying when the request matches.
    pub(crate) request_policies: Vec<u32>,
    pub(crate) traffic_policy: Option<Arc<str>>,
    pub(crate) failover_priority: Vec<String>,
    pub(crate) weights_from_policy: bool,
    /// Union of exported ports, sorted.
    pub(crate) ports: Vec<u16>,
}

/// An immutable routing view of one catalog revision for one local cluster.
/// Build it off the request path, share it behind an `Arc` and swap it
/// atomically.
#[derive(Debug, Clone)]
pub struct RoutingSnapshot {
    pub(crate) revision: u64,
    pub(crate) local: LocalCluster,
    pub(crate) clusters: Vec<ClusterEntry>,
    pub(crate) services: Vec<ServiceRoutes>,
    pub(crate) index: HashMap<Box<str>, HashMap<Box<str>, u32>>,
    pub(crate) rules: Vec<ResidencyRule>,
}

fn default_priority() -> Vec<String> {
    vec!["region".to_owned(), "jurisdiction".to_owned()]
}

fn tier_of(
    local: &LocalCluster,
    c: &ClusterEntry,
    labels: &BTreeMap<String, String>,
    priority: &[String],
) -> (u16, Tier) {
    let same_region = !c.region.is_empty() && *c.region == *local.region;
    let same_zone = !c.zone.is_empty() && *c.zone == *local.zone;
    if *c.id == *local.id || (same_region && same_zone) {
        return (0, Tier::Zone);
    }
    if same_region {
        return (1, Tier::Region);
    }
    for (i, label) in priority.iter().enumerate() {
        let hit = match label.as_str() {
            "region" => same_region,
            "zone" => same_zone,
            "jurisdiction" => c
                .jurisdictions
                .iter()
                .any(|j| local.jurisdictions.contains(j)),
            other => matches!(
                (labels.get(other), local.labels.get(other)),
                (Some(a), Some(b)) if a == b
            ),
        };
        if hit {
            let rank = u16::try_from(i + 2).unwrap_or(u16::MAX - 1);
            return (rank, Tier::Priority(Arc::from(label.as_str())));
        }
    }
    (u16::MAX, Tier::Rest)
}

impl RoutingSnapshot {
    /// Builds the snapshot of `catalog` as seen from `local`. Exports of
    /// clusters without a `Cluster` record (other than the local one) are
    /// left out: there is no gateway to send to.
    pub fn build(catalog: CatalogView<'_>, local: LocalCluster) -> Self {
        // Clusters.
        let mut clusters: Vec<ClusterEntry> = Vec::with_capacity(catalog.clusters.len() + 1);
        let mut cluster_idx: HashMap<&str, u32> = HashMap::new();
        let mut labels_of: Vec<BTreeMap<String, String>> = Vec::new();
        let mut sorted: Vec<&Cluster> = catalog.clusters.clone();
        sorted.sort_by(|a, b| a.id().cmp(b.id()));
        sorted.dedup_by(|a, b| a.id() == b.id());
        for c in sorted {
            let id: Arc<str> = Arc::from(c.id().as_str());
            let trust: Arc<str> = Arc::from(c.spec.trust_domain.as_str());
            let endpoints: Arc<[String]> = c
                .spec
                .gateway
                .endpoints
                .iter()
                .map(|e| e.to_string())
                .collect();
            cluster_idx.insert(c.id().as_str(), clusters.len() as u32);
            clusters.push(ClusterEntry {
                region: Arc::from(c.spec.region.as_str()),
                zone: Arc::from(c.spec.zone.as_str()),
                jurisdictions: c.spec.jurisdictions.clone().into(),
                target_remote: Target {
                    cluster: Arc::clone(&id),
                    local: false,
                    gateway_endpoints: endpoints,
                    trust_domain: Arc::clone(&trust),
                },
                target_local: Target {
                    cluster: Arc::clone(&id),
                    local: true,
                    gateway_endpoints: Arc::from(Vec::<String>::new()),
                    trust_domain: trust,
                },
                id,
            });
            labels_of.push(c.spec.labels.clone());
        }
        let local_idx = match cluster_idx.get(local.id.as_str()) {
            Some(i) => *i,
            None => {
                // The local cluster may not be registered yet: route to it
                // with the locality the gateway was configured with.
                let id: Arc<str> = Arc::from(local.id.as_str());
                let t = Target {
                    cluster: Arc::clone(&id),
                    local: true,
                    gateway_endpoints: Arc::from(Vec::<String>::new()),
                    trust_domain: Arc::from(""),
                };
                clusters.push(ClusterEntry {
                    region: Arc::from(local.region.as_str()),
                    zone: Arc::from(local.zone.as_str()),
                    jurisdictions: local.jurisdictions.clone().into(),
                    target_remote: t.clone(),
                    target_local: t,
                    id,
                });
                labels_of.push(local.labels.clone());
                (clusters.len() - 1) as u32
            }
        };
        let cluster_of = |id: &str| -> Option<u32> {
            if id == local.id {
                Some(local_idx)
            } else {
                cluster_idx.get(id).copied()
            }
        };

        // Residency rules, in name order.
        let mut res: Vec<&ResidencyPolicy> = catalog.residency.clone();
        res.sort_by(|a, b| a.name().cmp(b.name()));
        let rules: Vec<ResidencyRule> = res
            .iter()
            .map(|p| ResidencyRule::compile(p, &clusters))
            .collect();

        // Traffic policies: lowest name wins per service.
        let mut traffic: Vec<&TrafficPolicy> = catalog.traffic.clone();
        traffic.sort_by(|a, b| a.name().cmp(b.name()));

        // Exports grouped by service.
        let mut by_service: BTreeMap<(&str, &str), Vec<&ServiceExport>> = BTreeMap::new();
        for e in &catalog.exports {
            by_service
                .entry((e.metadata.namespace.as_str(), e.metadata.name.as_str()))
                .or_default()
                .push(e);
        }

        let mut services = Vec::with_capacity(by_service.len());
        let mut index: HashMap<Box<str>, HashMap<Box<str>, u32>> = HashMap::new();
        for ((ns, name), exports) in by_service {
            let Some(first) = exports.first() else {
                continue;
            };
            let svc_ref = first.service();
            let policy = traffic.iter().find(|t| t.spec.service == svc_ref);
            let priority = policy
                .map(|p| p.spec.failover_priority.clone())
                .unwrap_or_else(default_priority);
            let weights = policy.map(|p| &p.spec.weights).filter(|w| !w.is_empty());
            let static_policies: Vec<u32> = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.matcher.is_none() && r.services.matches(&svc_ref))
                .map(|(i, _)| i as u32)
                .collect();
            let request_policies: Vec<u32> = rules
                .iter()
                .enumerate()
                .filter(|(_, r)| r.matcher.is_some() && r.services.matches(&svc_ref))
                .map(|(i, _)| i as u32)
                .collect();

            let mut cands: Vec<(u16, Tier, Candidate)> = Vec::new();
            let mut ports: Vec<u16> = Vec::new();
            let mut seen: Vec<u32> = Vec::new();
            for e in &exports {
                let Some(ci) = cluster_of(e.metadata.cluster.as_str()) else {
                    continue;
                };
                if seen.contains(&ci) {
                    continue;
                }
                seen.push(ci);
                let entry = &clusters[ci as usize];
                let is_local = ci == local_idx;
                let (rank, tier) = tier_of(&local, entry, &labels_of[ci as usize], &priority);
                let weight = match weights {
                    Some(w) => w.get(e.metadata.cluster.as_str()).copied().unwrap_or(0),
                    None => e.spec.weight,
                };
                let mut cports: Vec<u16> = e.spec.ports.iter().map(|p| p.port).collect();
                cports.sort_unstable();
                cports.dedup();
                ports.extend(&cports);
                let static_block = static_policies
                    .iter()
                    .copied()
                    .find(|r| !rules[*r as usize].allows(ci));
                let mut request_block = 0u64;
                let mut overflow = Vec::new();
                for (pos, r) in request_policies.iter().enumerate() {
                    if !rules[*r as usize].allows(ci) {
                        if pos < 64 {
                            request_block |= 1 << pos;
                        } else {
                            overflow.push(pos as u32);
                        }
                    }
                }
                cands.push((
                    rank,
                    tier,
                    Candidate {
                        cluster: ci,
                        target: if is_local {
                            entry.target_local.clone()
                        } else {
                            entry.target_remote.clone()
                        },
                        ready: e.spec.ready(),
                        weight,
                        ports: cports.into(),
                        stale: e.status.as_ref().is_some_and(|s| s.stale),
                        static_block,
                        request_block,
                        request_block_overflow: overflow.into(),
                    },
                ));
            }
            cands.sort_by(|a, b| {
                a.0.cmp(&b.0).then_with(|| {
                    clusters[a.2.cluster as usize]
                        .id
                        .cmp(&clusters[b.2.cluster as usize].id)
                })
            });
            let mut tiers: Vec<TierSpan> = Vec::new();
            let mut last_rank = None;
            let mut candidates = Vec::with_capacity(cands.len());
            for (i, (rank, tier, c)) in cands.into_iter().enumerate() {
                if last_rank != Some(rank) {
                    tiers.push(TierSpan {
                        tier,
                        start: i as u32,
                        end: i as u32,
                    });
                    last_rank = Some(rank);
                }
                if let Some(t) = tiers.last_mut() {
                    t.end = i as u32 + 1;
                }
                candidates.push(c);
            }
            ports.sort_unstable();
            ports.dedup();
            let idx = services.len() as u32;
            index
                .entry(Box::from(ns))
                .or_default()
                .insert(Box::from(name), idx);
            services.push(ServiceRoutes {
                namespace: Arc::from(ns),
                name: Arc::from(name),
                candidates,
                tiers,
                static_policies,
                request_policies,
                traffic_policy: policy.map(|p| Arc::from(p.name().as_str())),
                failover_priority: priority,
                weights_from_policy: weights.is_some(),
                ports,
            });
        }
        Self {
            revision: catalog.revision,
            local,
            clusters,
            services,
            index,
            rules,
        }
    }

    /// Builds the snapshot of a whole catalog as seen from `local`.
    pub fn from_catalog(catalog: &CatalogSnapshot, local: LocalCluster) -> Self {
        Self::build(CatalogView::of(catalog), local)
    }

    /// The catalog revision this snapshot was built from.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The local cluster.
    pub fn local(&self) -> &LocalCluster {
        &self.local
    }

    /// How many services are routable.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Every routable service as `(namespace, name)`, sorted.
    pub fn services(&self) -> impl Iterator<Item = (&str, &str)> {
        self.services.iter().map(|s| (&*s.namespace, &*s.name))
    }

    /// The clusters a service may be routed to, in tier order (for health
    /// registries: outlier detection needs the target set).
    pub fn service_clusters(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<impl Iterator<Item = &str>> {
        let svc = self.service(namespace, name)?;
        Some(svc.candidates.iter().map(|c| &*c.target.cluster))
    }

    /// The traffic policy in force for a service, if any.
    pub fn traffic_policy(&self, namespace: &str, name: &str) -> Option<&str> {
        self.service(namespace, name)?.traffic_policy.as_deref()
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&ServiceRoutes> {
        let idx = self.index.get(namespace)?.get(name)?;
        self.services.get(*idx as usize)
    }
}
