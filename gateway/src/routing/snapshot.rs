//! The routing snapshot: built once per catalog revision, read by every
//! request. All per-service work (candidates, locality tiers, weights,
//! residency verdicts) is done here so that `decide` only walks arrays.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use causeway_api::model::{
    CatalogSnapshot, Cluster, ResidencyPolicy, ServiceExport, ServiceRef, TrafficPolicy,
};
use serde::Serialize;

use super::decision::{Target, Tier};
use super::request::RouteRequest;
use super::residency::{ResidencyRule, ResidencyVerdict};

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
    pub(crate) services: Vec<Arc<ServiceRoutes>>,
    pub(crate) index: HashMap<Arc<str>, HashMap<Arc<str>, u32>>,
    pub(crate) rules: Vec<ResidencyRule>,
    /// The OIDC issuers the rules trust, derived once per snapshot.
    pub(crate) oidc_issuers: Vec<causeway_api::model::OidcIssuer>,
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

/// What every service's routes are computed from: the clusters and the
/// policies of one catalog revision, as seen from the local cluster.
struct Context<'a> {
    local: LocalCluster,
    clusters: Vec<ClusterEntry>,
    cluster_idx: HashMap<&'a str, u32>,
    labels_of: Vec<&'a BTreeMap<String, String>>,
    local_idx: u32,
    rules: Vec<ResidencyRule>,
    /// Sorted by name: the lowest name wins per service.
    traffic: Vec<&'a TrafficPolicy>,
}

impl<'a> Context<'a> {
    fn new(
        clusters: &[&'a Cluster],
        residency: &[&'a ResidencyPolicy],
        traffic: &[&'a TrafficPolicy],
        local: LocalCluster,
    ) -> Self {
        let mut entries: Vec<ClusterEntry> = Vec::with_capacity(clusters.len() + 1);
        let mut cluster_idx: HashMap<&str, u32> = HashMap::new();
        let mut labels_of: Vec<&BTreeMap<String, String>> = Vec::new();
        let mut sorted: Vec<&Cluster> = clusters.to_vec();
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
            cluster_idx.insert(c.id().as_str(), entries.len() as u32);
            entries.push(ClusterEntry {
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
            labels_of.push(&c.spec.labels);
        }
        // Never consulted for the local cluster (always the first tier).
        static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
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
                entries.push(ClusterEntry {
                    region: Arc::from(local.region.as_str()),
                    zone: Arc::from(local.zone.as_str()),
                    jurisdictions: local.jurisdictions.clone().into(),
                    target_remote: t.clone(),
                    target_local: t,
                    id,
                });
                labels_of.push(&NO_LABELS);
                (entries.len() - 1) as u32
            }
        };

        // Residency rules, in name order.
        let mut res: Vec<&ResidencyPolicy> = residency.to_vec();
        res.sort_by(|a, b| a.name().cmp(b.name()));
        let rules: Vec<ResidencyRule> = res
            .iter()
            .map(|p| ResidencyRule::compile(p, &entries))
            .collect();

        let mut traffic: Vec<&TrafficPolicy> = traffic.to_vec();
        traffic.sort_by(|a, b| a.name().cmp(b.name()));
        Self {
            local,
            clusters: entries,
            cluster_idx,
            labels_of,
            local_idx,
            rules,
            traffic,
        }
    }

    fn cluster_of(&self, id: &str) -> Option<u32> {
        if id == self.local.id {
            Some(self.local_idx)
        } else {
            self.cluster_idx.get(id).copied()
        }
    }

    /// The routes of one service from its exports (all of `ns/name`, at
    /// least one).
    fn service(&self, ns: &str, name: &str, exports: &[&ServiceExport]) -> Option<ServiceRoutes> {
        let first = exports.first()?;
        let (clusters, rules) = (&self.clusters, &self.rules);
        let svc_ref = first.service();
        let policy = self.traffic.iter().find(|t| t.spec.service == svc_ref);
        let priority = policy
            .map(|p| p.spec.failover_priority.clone())
            .unwrap_or_else(default_priority);
        let weights = policy.map(|p| &p.spec.weights).filter(|w| !w.is_empty());
        // Residency rules of this service: applying to every request, or
        // only to the requests they match.
        let mut static_policies: Vec<u32> = Vec::new();
        let mut request_policies: Vec<u32> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.services.matches(&svc_ref) {
                match r.matcher {
                    None => static_policies.push(i as u32),
                    Some(_) => request_policies.push(i as u32),
                }
            }
        }

        let mut cands: Vec<(u16, Tier, Candidate)> = Vec::with_capacity(exports.len());
        let mut ports: Vec<u16> = Vec::new();
        let mut seen: Vec<u32> = Vec::new();
        for e in exports {
            let Some(ci) = self.cluster_of(e.metadata.cluster.as_str()) else {
                continue;
            };
            if seen.contains(&ci) {
                continue;
            }
            seen.push(ci);
            let entry = &clusters[ci as usize];
            let is_local = ci == self.local_idx;
            let (rank, tier) = tier_of(&self.local, entry, self.labels_of[ci as usize], &priority);
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
        Some(ServiceRoutes {
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
        })
    }

    fn finish(self, revision: u64, services: Vec<Arc<ServiceRoutes>>) -> RoutingSnapshot {
        let mut index: HashMap<Arc<str>, HashMap<Arc<str>, u32>> = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            index
                .entry(Arc::clone(&s.namespace))
                .or_default()
                .insert(Arc::clone(&s.name), i as u32);
        }
        let mut oidc_issuers: Vec<causeway_api::model::OidcIssuer> = Vec::new();
        for o in self.rules.iter().filter_map(|r| r.oidc.as_ref()) {
            if !oidc_issuers.contains(o) {
                oidc_issuers.push(o.clone());
            }
        }
        RoutingSnapshot {
            revision,
            local: self.local,
            clusters: self.clusters,
            services,
            index,
            rules: self.rules,
            oidc_issuers,
        }
    }
}

impl RoutingSnapshot {
    /// Builds the snapshot of `catalog` as seen from `local`. Exports of
    /// clusters without a `Cluster` record (other than the local one) are
    /// left out: there is no gateway to send to.
    pub fn build(catalog: CatalogView<'_>, local: LocalCluster) -> Self {
        let ctx = Context::new(
            &catalog.clusters,
            &catalog.residency,
            &catalog.traffic,
            local,
        );
        // Exports grouped by service.
        let mut by_service: BTreeMap<(&str, &str), Vec<&ServiceExport>> = BTreeMap::new();
        for e in &catalog.exports {
            by_service
                .entry((e.metadata.namespace.as_str(), e.metadata.name.as_str()))
                .or_default()
                .push(e);
        }
        let services = by_service
            .into_iter()
            .filter_map(|((ns, name), exports)| ctx.service(ns, name, &exports))
            .map(Arc::new)
            .collect();
        ctx.finish(catalog.revision, services)
    }

    /// The snapshot of `catalog`, which differs from the one `self` was
    /// built from only in the exports of the `changed` services: their
    /// routes are rebuilt, every other service's are shared with `self`.
    /// (Clusters and policies shape every service: when they change, use
    /// [`RoutingSnapshot::from_catalog`].)
    pub fn with_changed_services(
        &self,
        catalog: &CatalogSnapshot,
        changed: &BTreeSet<ServiceRef>,
    ) -> Self {
        let clusters: Vec<&Cluster> = catalog.clusters.values().collect();
        let residency: Vec<&ResidencyPolicy> = catalog.policies.residency.values().collect();
        let traffic: Vec<&TrafficPolicy> = catalog.policies.traffic.values().collect();
        let ctx = Context::new(&clusters, &residency, &traffic, self.local.clone());
        // Both lists are sorted by (namespace, name): merge them.
        let mut rebuilt = changed
            .iter()
            .filter_map(|svc| {
                let exports = catalog.exports_of(svc);
                ctx.service(svc.namespace.as_str(), svc.name.as_str(), &exports)
            })
            .map(Arc::new)
            .peekable();
        let changed_names: HashSet<(&str, &str)> = changed
            .iter()
            .map(|c| (c.namespace.as_str(), c.name.as_str()))
            .collect();
        let is_changed = |s: &ServiceRoutes| changed_names.contains(&(&*s.namespace, &*s.name));
        let mut services = Vec::with_capacity(self.services.len() + changed.len());
        for old in self.services.iter().filter(|s| !is_changed(s)) {
            while let Some(new) =
                rebuilt.next_if(|n| (&*n.namespace, &*n.name) < (&*old.namespace, &*old.name))
            {
                services.push(new);
            }
            services.push(Arc::clone(old));
        }
        services.extend(rebuilt);
        ctx.finish(catalog.revision, services)
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

    /// The first residency policy that forbids the local cluster from
    /// serving `req` (a request for `namespace/name`), if any: the
    /// destination's own check of what the source should have decided.
    /// Service-level policies always apply; request-classified ones when the
    /// request matches them.
    pub fn residency_forbids_local(
        &self,
        namespace: &str,
        name: &str,
        req: &RouteRequest<'_>,
    ) -> Option<Arc<str>> {
        let svc = self.service(namespace, name)?;
        let local = &self.local;
        let forbids = |r: &u32| {
            self.rules
                .get(*r as usize)
                .filter(|rule| !rule.allows_locality(&local.jurisdictions, &local.region))
        };
        if let Some(rule) = svc.static_policies.iter().find_map(forbids) {
            return Some(rule.name.clone());
        }
        svc.request_policies
            .iter()
            .filter_map(forbids)
            .find(|rule| rule.matcher.as_ref().is_some_and(|m| m.matches(req)))
            .map(|rule| rule.name.clone())
    }

    /// The first request-classified policy of `namespace/name` that
    /// refuses `req` because the token it reads did not verify and the
    /// policy says `onUnverified: deny`.
    pub fn unverified_refusal(
        &self,
        namespace: &str,
        name: &str,
        req: &RouteRequest<'_>,
    ) -> Option<Arc<str>> {
        let svc = self.service(namespace, name)?;
        svc.request_policies
            .iter()
            .filter_map(|r| self.rules.get(*r as usize))
            .find(|rule| {
                rule.matcher
                    .as_ref()
                    .is_some_and(|m| m.refuses_unverified(req))
            })
            .map(|rule| rule.name.clone())
    }

    /// Every residency policy governing `req` (a request for
    /// `namespace/name`), with what it allows: the verdict the source
    /// carries to the destination.
    pub fn residency_verdict(
        &self,
        namespace: &str,
        name: &str,
        req: &RouteRequest<'_>,
    ) -> Vec<ResidencyVerdict> {
        let Some(svc) = self.service(namespace, name) else {
            return Vec::new();
        };
        let applies = |r: &&ResidencyRule| r.matcher.as_ref().is_none_or(|m| m.matches(req));
        svc.static_policies
            .iter()
            .chain(&svc.request_policies)
            .filter_map(|r| self.rules.get(*r as usize))
            .filter(applies)
            .map(|r| ResidencyVerdict {
                policy: r.name.to_string(),
                jurisdictions: r.allowed_jurisdictions.clone(),
                regions: r.allowed_regions.clone(),
            })
            .collect()
    }

    /// The OIDC issuers residency policies trust (deduplicated by issuer,
    /// audience and JWKS URL).
    pub fn oidc_issuers(&self) -> &[causeway_api::model::OidcIssuer] {
        &self.oidc_issuers
    }

    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&ServiceRoutes> {
        let idx = self.index.get(namespace)?.get(name)?;
        self.services.get(*idx as usize).map(|s| &**s)
    }
}
