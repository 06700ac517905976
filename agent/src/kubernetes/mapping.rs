//! Pure mapping between Kubernetes objects and the federation model:
//! `Service` + `EndpointSlice`s -> export spec, API status -> MCS
//! conditions, federation `ServiceImport` -> MCS `ServiceImport` and the
//! EndpointSlices that point at this gateway's egress.

use std::collections::BTreeMap;
use std::net::IpAddr;

use causeway_api::model::{
    self, ConditionStatus, ConditionType, Protocol, ServiceExportSpec, ServiceType,
};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use sha2::{Digest, Sha256};

use super::mcs;

/// Label on EndpointSlices naming the service they belong to.
pub const LABEL_SERVICE_NAME: &str = "multicluster.kubernetes.io/service-name";
/// Label on EndpointSlices naming the cluster their endpoints come from.
pub const LABEL_SOURCE_CLUSTER: &str = "multicluster.kubernetes.io/source-cluster";
/// Standard label of the controller managing an EndpointSlice.
pub const LABEL_SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Value of [`LABEL_SLICE_MANAGED_BY`] on slices the agent writes.
pub const SLICE_MANAGER: &str = "agent.causeway.dev";
/// Label on every object the agent creates.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Value of [`LABEL_MANAGED_BY`].
pub const MANAGER: &str = "causeway-agent";
/// Label selector of the agent's objects.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=causeway-agent";
/// Label linking an EndpointSlice to its `Service` (core controllers).
pub const LABEL_K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";

/// Whether a `ServiceExport` can be exported, and what.
#[derive(Debug, Clone, PartialEq)]
pub enum Validity {
    /// The service exists and is exportable.
    Valid(ServiceExportSpec),
    /// No `Service` of that name.
    NoService,
    /// An `ExternalName` service (cannot be exported).
    InvalidServiceType(String),
    /// `exportedLabels` or `exportedAnnotations` that Kubernetes would
    /// refuse on the importing clusters' `ServiceImport`: the field and why.
    InvalidExportedMetadata(String),
}

fn protocol(p: Option<&str>) -> Protocol {
    match p {
        Some("UDP") => Protocol::Udp,
        Some("SCTP") => Protocol::Sctp,
        _ => Protocol::Tcp,
    }
}

/// The export of `service` (with its slices), or why it cannot be exported.
pub fn export_spec(
    export: &mcs::ServiceExport,
    service: Option<&Service>,
    slices: &[&EndpointSlice],
    default_zone: &str,
) -> Validity {
    let Some(service) = service else {
        return Validity::NoService;
    };
    let spec = service.spec.clone().unwrap_or_default();
    let type_name = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
    if type_name == "ExternalName" {
        return Validity::InvalidServiceType(type_name);
    }
    let type_ = if spec.cluster_ip.as_deref() == Some("None") {
        ServiceType::Headless
    } else {
        ServiceType::ClusterSetIP
    };
    let ports = spec
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| {
            Some(model::ServicePort {
                name: p.name,
                protocol: protocol(p.protocol.as_deref()),
                app_protocol: p.app_protocol,
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    let zones = super::endpoints::service_endpoints(service, slices, default_zone).zones;
    let session_affinity = match spec.session_affinity.as_deref() {
        Some("ClientIP") => model::SessionAffinity::ClientIp,
        _ => model::SessionAffinity::None,
    };
    let session_affinity_timeout_seconds = (session_affinity == model::SessionAffinity::ClientIp)
        .then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
        })
        .flatten();
    let spec = ServiceExportSpec {
        ports,
        type_,
        endpoints: zones,
        weight: 100,
        exported_labels: export.spec.exported_labels.clone(),
        exported_annotations: export.spec.exported_annotations.clone(),
        session_affinity,
        session_affinity_timeout_seconds,
    };
    if let Err((field, message)) = spec.check_exported_metadata() {
        return Validity::InvalidExportedMetadata(format!("spec.{field}: {message}"));
    }
    Validity::Valid(spec)
}

fn status_str(s: ConditionStatus) -> &'static str {
    match s {
        ConditionStatus::True => "True",
        ConditionStatus::False => "False",
        ConditionStatus::Unknown => "Unknown",
    }
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    previous: &[Condition],
    now: &Time,
) -> Condition {
    let since = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: since,
        observed_generation: None,
    }
}

/// The MCS conditions of a `ServiceExport`: `Valid` from the local check,
/// `Ready` and `Conflict` as the federation API computed them (`api`), or
/// `Ready=Unknown/Pending` until it has. Transition times are kept from
/// `previous` when a status did not change.
pub fn export_conditions(
    validity: &Validity,
    api: Option<&model::ServiceExportStatus>,
    previous: &[Condition],
    now: &Time,
) -> Vec<Condition> {
    use model::reason;
    let mut out = Vec::new();
    let invalid = |reason: &str, message: &str| {
        vec![
            condition("Valid", "False", reason, message, previous, now),
            condition(
                "Ready",
                "False",
                reason::PENDING,
                "ServiceExport is not valid",
                previous,
                now,
            ),
        ]
    };
    match validity {
        Validity::Valid(_) => {
            out.push(condition(
                "Valid",
                "True",
                reason::VALID,
                "Service is valid for export",
                previous,
                now,
            ));
        }
        Validity::NoService => return invalid(reason::NO_SERVICE, "Service doesn't exist"),
        Validity::InvalidServiceType(t) => {
            let msg = format!("Service type {t} is not supported for export");
            return invalid(reason::INVALID_SERVICE_TYPE, &msg);
        }
        Validity::InvalidExportedMetadata(why) => {
            return invalid(reason::INVALID_EXPORTED_METADATA, why);
        }
    }
    let conditions = api.map(|s| s.conditions.as_slice()).unwrap_or_default();
    match model::find_condition(conditions, ConditionType::Ready) {
        Some(c) => out.push(condition(
            "Ready",
            status_str(c.status),
            &c.reason,
            &c.message,
            previous,
            now,
        )),
        None => out.push(condition(
            "Ready",
            "Unknown",
            reason::PENDING,
            "Waiting for the federation API",
            previous,
            now,
        )),
    }
    if let Some(c) = model::find_condition(conditions, ConditionType::Conflict) {
        out.push(condition(
            "Conflict",
            status_str(c.status),
            &c.reason,
            &c.message,
            previous,
            now,
        ));
    }
    out
}

/// Whether two condition lists say the same (ignoring transition times).
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.type_ == y.type_
                && x.status == y.status
                && x.reason == y.reason
                && x.message == y.message
        })
}

/// Where import EndpointSlices point: this gateway's egress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Egress {
    /// Egress pod IPs or service address.
    pub addresses: Vec<IpAddr>,
    /// Egress listener port.
    pub port: u16,
}

fn managed_labels(extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = extra.clone();
    l.insert(LABEL_MANAGED_BY.into(), MANAGER.into());
    l
}

/// The MCS `ServiceImport` for a federation import (`None` when no cluster
/// other than `local` exports it).
pub fn service_import(import: &model::ServiceImport, local: &str) -> Option<mcs::ServiceImport> {
    if !import
        .spec
        .clusters
        .iter()
        .any(|c| c.cluster.as_str() != local)
    {
        return None;
    }
    let spec = mcs::ServiceImportSpec {
        ports: import
            .spec
            .ports
            .iter()
            .map(|p| mcs::ServicePort {
                name: p.name.clone(),
                protocol: Some(p.protocol.to_string()),
                app_protocol: p.app_protocol.clone(),
                port: i32::from(p.port),
            })
            .collect(),
        ips: Vec::new(),
        type_: match import.spec.type_ {
            ServiceType::ClusterSetIP => mcs::ServiceImportType::ClusterSetIP,
            ServiceType::Headless => mcs::ServiceImportType::Headless,
        },
        session_affinity: Some(import.spec.session_affinity.to_string()),
        session_affinity_config: (import.spec.session_affinity == model::SessionAffinity::ClientIp)
            .then(|| mcs::SessionAffinityConfig {
                client_ip: Some(k8s_openapi::api::core::v1::ClientIPConfig {
                    timeout_seconds: import
                        .spec
                        .session_affinity_timeout_seconds
                        .and_then(|t| i32::try_from(t).ok()),
                }),
            }),
        ip_families: Vec::new(),
    };
    let mut si = mcs::ServiceImport::new(import.metadata.name.as_str(), spec);
    si.metadata.namespace = Some(import.metadata.namespace.as_str().to_owned());
    // The federation API validates exported labels and annotations; drop
    // whatever Kubernetes would refuse anyway (data stored before that), so
    // one bad export never keeps its ServiceImport from being created.
    let (labels, bad_labels) = model::kmeta::valid_labels(&import.spec.labels);
    let (annotations, bad_annotations) = model::kmeta::valid_annotations(&import.spec.annotations);
    if !bad_labels.is_empty() || !bad_annotations.is_empty() {
        tracing::warn!(
            service = %import.service(),
            labels = ?bad_labels,
            annotations = ?bad_annotations,
            "dropping labels and annotations that kubernetes refuses from the serviceimport"
        );
    }
    si.metadata.labels = Some(managed_labels(&labels));
    if !annotations.is_empty() {
        si.metadata.annotations = Some(annotations);
    }
    si.status = Some(mcs::ServiceImportStatus {
        clusters: import
            .spec
            .clusters
            .iter()
            .map(|c| mcs::ClusterStatus {
                cluster: c.cluster.as_str().to_owned(),
            })
            .collect(),
        conditions: Vec::new(),
    });
    Some(si)
}

/// A DNS-1123 object name for `<service>-<cluster>`, hashed when too long.
pub fn slice_name(service: &str, cluster: &str) -> String {
    let name = format!("{service}-{cluster}");
    if name.len() <= 63 {
        return name;
    }
    let digest = Sha256::digest(name.as_bytes());
    let suffix: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let keep = name[..54].trim_end_matches('-').to_owned();
    format!("{keep}-{suffix}")
}

/// Name of the selector-less Service derived from an import (Cilium's
/// convention): kube-proxy programs its clusterIP, the ServiceImport's
/// `spec.ips`, from the import EndpointSlices that name it.
pub fn derived_service_name(namespace: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}").as_bytes());
    let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("derived-{hash}")
}

/// The derived Service of an import (`None` for a headless import, which
/// gets no virtual IP): selector-less, the import's ports, managed labels.
pub fn derived_service(import: &model::ServiceImport, local: &str) -> Option<Service> {
    if import.spec.type_ != ServiceType::ClusterSetIP
        || !import
            .spec
            .clusters
            .iter()
            .any(|c| c.cluster.as_str() != local)
    {
        return None;
    }
    let ns = import.metadata.namespace.as_str();
    let name = import.metadata.name.as_str();
    let mut labels = BTreeMap::new();
    labels.insert(LABEL_SERVICE_NAME.to_owned(), name.to_owned());
    Some(Service {
        metadata: ObjectMeta {
            name: Some(derived_service_name(ns, name)),
            namespace: Some(ns.to_owned()),
            labels: Some(managed_labels(&labels)),
            ..ObjectMeta::default()
        },
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            type_: Some("ClusterIP".into()),
            ports: Some(
                import
                    .spec
                    .ports
                    .iter()
                    .map(|p| k8s_openapi::api::core::v1::ServicePort {
                        name: Some(p.name.clone().unwrap_or_default()),
                        protocol: Some(p.protocol.to_string()),
                        app_protocol: p.app_protocol.clone(),
                        port: i32::from(p.port),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    })
}

/// The EndpointSlices of an import: one per remote exporting cluster,
/// labelled with the service and source cluster, pointing at the egress.
pub fn endpoint_slices(
    import: &model::ServiceImport,
    local: &str,
    egress: &Egress,
) -> Vec<EndpointSlice> {
    let ns = import.metadata.namespace.as_str();
    let name = import.metadata.name.as_str();
    let v6 = egress.addresses.first().is_some_and(IpAddr::is_ipv6);
    let addresses: Vec<String> = egress
        .addresses
        .iter()
        .filter(|a| a.is_ipv6() == v6)
        .map(ToString::to_string)
        .collect();
    import
        .spec
        .clusters
        .iter()
        .filter(|c| c.cluster.as_str() != local)
        .map(|c| {
            let ready = c.ready > 0 && !c.stale;
            let mut labels = BTreeMap::new();
            labels.insert(LABEL_SERVICE_NAME.to_owned(), name.to_owned());
            labels.insert(
                LABEL_SOURCE_CLUSTER.to_owned(),
                c.cluster.as_str().to_owned(),
            );
            labels.insert(LABEL_SLICE_MANAGED_BY.to_owned(), SLICE_MANAGER.to_owned());
            if import.spec.type_ == ServiceType::ClusterSetIP {
                // kube-proxy programs the derived Service's clusterIP from
                // the slices that name it.
                labels.insert(
                    LABEL_K8S_SERVICE_NAME.to_owned(),
                    derived_service_name(ns, name),
                );
            }
            EndpointSlice {
                metadata: ObjectMeta {
                    name: Some(slice_name(name, c.cluster.as_str())),
                    namespace: Some(ns.to_owned()),
                    labels: Some(managed_labels(&labels)),
                    ..ObjectMeta::default()
                },
                address_type: if v6 { "IPv6" } else { "IPv4" }.to_owned(),
                endpoints: Some(
                    addresses
                        .iter()
                        .map(|a| Endpoint {
                            addresses: vec![a.clone()],
                            conditions: Some(EndpointConditions {
                                ready: Some(ready),
                                serving: Some(ready),
                                terminating: Some(false),
                            }),
                            zone: if c.zone.is_empty() {
                                None
                            } else {
                                Some(c.zone.clone())
                            },
                            ..Endpoint::default()
                        })
                        .collect(),
                ),
                ports: Some(
                    import
                        .spec
                        .ports
                        .iter()
                        .map(|p| EndpointPort {
                            // The API server defaults a missing name to "":
                            // write it so, or every comparison with what it
                            // stored differs and the slice is rewritten on
                            // every reconcile.
                            name: Some(p.name.clone().unwrap_or_default()),
                            protocol: Some(p.protocol.to_string()),
                            app_protocol: p.app_protocol.clone(),
                            port: Some(i32::from(egress.port)),
                        })
                        .collect(),
                ),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
