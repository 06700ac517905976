//! Static discovery for VMs and legacy sites: a YAML file of services (the
//! export fields plus local endpoint addresses for the proxy), watched for
//! edits (content hash polled every ~500 ms) and applied without restart. A
//! bad file is rejected with its line and field; the previous good state
//! stays in force.
//!
//! ```yaml
//! services:
//!   - namespace: shop
//!     name: cart
//!     ports: [{name: http, port: 8080, appProtocol: http}]
//!     type: ClusterSetIP          # or Headless
//!     weight: 100
//!     exportedLabels: {tier: web}
//!     endpoints:
//!       - address: 10.0.0.5:8080
//!         zone: eu-west-1a        # default: the cluster's zone
//!       - address: 10.0.0.6:8080
//!         ready: false            # draining: not counted, used only if none is ready
//! ```

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use causeway_api::model::{
    Namespace, ServiceExportSpec, ServiceName, ServicePort, ServiceRef, ServiceType, ZoneEndpoints,
    kmeta,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::exports::{DesiredExports, ExportSources};
use super::metrics::AgentMetrics;

/// The file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticFile {
    /// The services of this site.
    #[serde(default)]
    pub services: Vec<StaticService>,
}

/// One service of the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticService {
    /// Namespace (MCS namespace sameness applies).
    pub namespace: Namespace,
    /// Name.
    pub name: ServiceName,
    /// Exported ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// `ClusterSetIP` (default) or `Headless`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Relative weight of this site (default 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Labels copied to the import.
    #[serde(default)]
    pub exported_labels: BTreeMap<String, String>,
    /// Annotations copied to the import.
    #[serde(default)]
    pub exported_annotations: BTreeMap<String, String>,
    /// Local backends.
    #[serde(default)]
    pub endpoints: Vec<StaticEndpoint>,
}

fn default_weight() -> u32 {
    100
}

fn yes() -> bool {
    true
}

/// One local backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StaticEndpoint {
    /// `ip:port` the gateway forwards to.
    pub address: SocketAddr,
    /// Zone of the backend (default: the cluster's zone).
    #[serde(default)]
    pub zone: Option<String>,
    /// Whether it is ready (default true); a not-ready endpoint is draining.
    #[serde(default = "yes")]
    pub ready: bool,
}

/// A rejected file: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: field `{field}`: {message}", file, location.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
pub struct StaticFileError {
    /// The file.
    pub file: String,
    /// 1-based line and column, when the parser knows them.
    pub location: Option<(usize, usize)>,
    /// Path of the offending field, e.g. `services[1].ports[0].port`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What the file means for the agent and the proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StaticState {
    /// Exports to publish.
    pub exports: DesiredExports,
    /// Ready local endpoints by `namespace/name`.
    pub local: BTreeMap<String, Vec<SocketAddr>>,
    /// Listed but not ready endpoints (draining) by `namespace/name`: neither
    /// counted nor routed to by this cluster's callers, but used by the
    /// east-west ingress when no ready endpoint is left, so requests peers
    /// send before they learn of a drain still succeed (as Kubernetes does
    /// with serving, terminating endpoints).
    pub draining: BTreeMap<String, Vec<SocketAddr>>,
}

/// Parses and validates a static file; `file` names it in errors.
pub fn parse(file: &str, text: &str, default_zone: &str) -> Result<StaticState, StaticFileError> {
    let de = serde_norway::Deserializer::from_str(text);
    let parsed: StaticFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let location = inner.location().map(|l| (l.line(), l.column()));
        let message = strip_location(&inner.to_string(), &field);
        StaticFileError {
            file: file.to_owned(),
            location,
            field,
            message,
        }
    })?;
    let mut seen = HashSet::new();
    let mut state = StaticState::default();
    for (i, s) in parsed.services.into_iter().enumerate() {
        let svc = ServiceRef::new(s.namespace, s.name);
        let err = |field: String, message: String| StaticFileError {
            file: file.to_owned(),
            location: None,
            field,
            message,
        };
        if !seen.insert(svc.clone()) {
            return Err(err(
                format!("services[{i}]"),
                format!("duplicate service {svc}"),
            ));
        }
        let mut ports = HashSet::new();
        for (j, p) in s.ports.iter().enumerate() {
            if p.port == 0 {
                return Err(err(
                    format!("services[{i}].ports[{j}].port"),
                    "port must be 1..65535".into(),
                ));
            }
            if !ports.insert((p.port, p.protocol)) {
                return Err(err(
                    format!("services[{i}].ports[{j}]"),
                    format!("duplicate port {}", p.port),
                ));
            }
        }
        // Copied onto every importing cluster's ServiceImport: the
        // Kubernetes label and annotation rules apply.
        if let Err((_, message)) = kmeta::check_labels(&s.exported_labels) {
            return Err(err(format!("services[{i}].exportedLabels"), message));
        }
        if let Err((_, message)) = kmeta::check_annotations(&s.exported_annotations) {
            return Err(err(format!("services[{i}].exportedAnnotations"), message));
        }
        let mut zones: BTreeMap<String, u32> = BTreeMap::new();
        let (mut local, mut draining) = (Vec::new(), Vec::new());
        for e in &s.endpoints {
            if !e.ready {
                draining.push(e.address);
                continue;
            }
            let zone = e.zone.clone().unwrap_or_else(|| default_zone.to_owned());
            *zones.entry(zone).or_default() += 1;
            local.push(e.address);
        }
        state.local.insert(svc.to_string(), local);
        state.draining.insert(svc.to_string(), draining);
        state.exports.insert(
            svc,
            ServiceExportSpec {
                ports: s.ports,
                type_: s.type_,
                endpoints: zones
                    .into_iter()
                    .map(|(zone, ready)| ZoneEndpoints { zone, ready })
                    .collect(),
                weight: s.weight,
                exported_labels: s.exported_labels,
                exported_annotations: s.exported_annotations,
                ..ServiceExportSpec::default()
            },
        );
    }
    Ok(state)
}

/// serde_norway prefixes the path and appends " at line L column C" to
/// messages; both are reported separately.
fn strip_location(msg: &str, field: &str) -> String {
    let msg = match msg.find(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.strip_prefix(field)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(msg)
        .to_owned()
}

/// Watches a static file and publishes its state.
#[derive(Debug)]
pub struct StaticWatcher {
    /// The file.
    pub path: PathBuf,
    /// Zone of endpoints without one.
    pub default_zone: String,
    /// Poll interval.
    pub interval: std::time::Duration,
    /// Metrics.
    pub metrics: AgentMetrics,
    /// Where the local endpoints of the last good state go.
    pub local: crate::LocalSources,
}

impl StaticWatcher {
    /// Reads the file; `Ok(None)` when its content did not change.
    pub fn poll(
        &self,
        last: &mut Option<[u8; 32]>,
    ) -> Result<Option<StaticState>, StaticFileError> {
        let text = read(&self.path)?;
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if *last == Some(hash) {
            return Ok(None);
        }
        *last = Some(hash);
        parse(&self.path.display().to_string(), &text, &self.default_zone).map(Some)
    }

    /// Polls until shutdown, feeding good states to `sources` under `static`.
    pub async fn run(self, sources: ExportSources, mut shutdown: watch::Receiver<bool>) {
        let mut last = None;
        let mut tick = tokio::time::interval(self.interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            match self.poll(&mut last) {
                Ok(None) => {}
                Ok(Some(state)) => {
                    tracing::info!(path = %self.path.display(), services = state.exports.len(), "static discovery file applied");
                    sources.set("static", state.exports);
                    self.local.set(
                        "static",
                        crate::LocalEndpoints {
                            ready: state.local,
                            draining: state.draining,
                            ports: BTreeMap::new(),
                        },
                    );
                }
                Err(e) => {
                    self.metrics.static_file_errors.inc();
                    tracing::error!(error = %e, "static discovery file rejected, keeping the previous state");
                }
            }
        }
    }
}

fn read(path: &Path) -> Result<String, StaticFileError> {
    std::fs::read_to_string(path).map_err(|e| StaticFileError {
        file: path.display().to_string(),
        location: None,
        field: String::new(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = "\
services:
  - namespace: shop
    name: cart
    ports: [{name: http, port: 8080, appProtocol: http}]
    exportedLabels: {tier: web}
    endpoints:
      - address: 10.0.0.5:8080
        zone: z1
      - address: 10.0.0.6:8080
      - address: 10.0.0.7:8080
        ready: false
  - namespace: shop
    name: db
    type: Headless
    weight: 10
    ports: [{port: 5432}]
";

    #[test]
    fn good_file_becomes_exports_and_local_endpoints() {
        let s = parse("f.yaml", GOOD, "z0").unwrap();
        let cart = &s.exports[&"shop/cart".parse().unwrap()];
        assert_eq!(cart.ports[0].port, 8080);
        assert_eq!(cart.ready(), 2);
        assert_eq!(
            cart.endpoints,
            vec![
                ZoneEndpoints {
                    zone: "z0".into(),
                    ready: 1
                },
                ZoneEndpoints {
                    zone: "z1".into(),
                    ready: 1
                }
            ]
        );
        assert_eq!(cart.exported_labels["tier"], "web");
        let db = &s.exports[&"shop/db".parse().unwrap()];
        assert_eq!(db.type_, ServiceType::Headless);
        assert_eq!(db.weight, 10);
        assert_eq!(s.local["shop/cart"].len(), 2);
        assert_eq!(
            s.draining["shop/cart"],
            vec!["10.0.0.7:8080".parse::<SocketAddr>().unwrap()]
        );
        assert!(s.local["shop/db"].is_empty());
    }

    #[test]
    fn type_error_names_line_and_field() {
        let bad = GOOD.replace("port: 5432", "port: many");
        let e = parse("f.yaml", &bad, "z0").unwrap_err();
        assert_eq!(e.field, "services[1].ports[0].port");
        assert_eq!(e.location.map(|l| l.0), Some(16), "{e}");
        assert_eq!(
            e.to_string(),
            "f.yaml:16:20: field `services[1].ports[0].port`: invalid type: string \"many\", expected u16"
        );
    }

    #[test]
    fn unknown_field_and_bad_names_are_rejected() {
        let e = parse("f.yaml", &GOOD.replace("weight: 10", "wieght: 10"), "z0").unwrap_err();
        assert!(e.message.contains("wieght"), "{e}");
        assert_eq!(e.location.map(|l| l.0), Some(15), "{e}");
        let e = parse(
            "f.yaml",
            &GOOD.replace("name: db", "name: Not_A_Name"),
            "z0",
        )
        .unwrap_err();
        assert_eq!(e.field, "services[1].name");
        let e = parse("f.yaml", &GOOD.replace("10.0.0.6:8080", "10.0.0.6"), "z0").unwrap_err();
        assert_eq!(e.field, "services[0].endpoints[1].address");
        assert_eq!(e.location.map(|l| l.0), Some(9), "{e}");
    }

    #[test]
    fn exported_labels_and_annotations_follow_kubernetes_rules() {
        let e = parse(
            "f.yaml",
            &GOOD.replace("{tier: web}", "{\"bad key\": web}"),
            "z0",
        )
        .unwrap_err();
        assert_eq!(e.field, "services[0].exportedLabels");
        assert!(e.message.contains("invalid label key \"bad key\""), "{e}");
        let e = parse("f.yaml", &GOOD.replace("{tier: web}", "{tier: -web}"), "z0").unwrap_err();
        assert_eq!(e.field, "services[0].exportedLabels");
        assert!(e.message.contains("\"-web\""), "{e}");
        let with_ann = GOOD.replace(
            "    weight: 10\n",
            "    weight: 10\n    exportedAnnotations: {\"a/b/c\": x}\n",
        );
        let e = parse("f.yaml", &with_ann, "z0").unwrap_err();
        assert_eq!(e.field, "services[1].exportedAnnotations");
        // Annotation values are free text; keys are qualified names.
        let ok = GOOD.replace(
            "    weight: 10\n",
            "    weight: 10\n    exportedAnnotations: {\"example.com/Owner\": \"team db / on call\"}\n",
        );
        let s = parse("f.yaml", &ok, "z0").unwrap();
        assert_eq!(
            s.exports[&"shop/db".parse().unwrap()].exported_annotations["example.com/Owner"],
            "team db / on call"
        );
    }

    #[test]
    fn duplicates_are_rejected() {
        let dup = format!("{GOOD}  - namespace: shop\n    name: cart\n");
        let e = parse("f.yaml", &dup, "z0").unwrap_err();
        assert_eq!(e.field, "services[2]");
        assert!(e.message.contains("duplicate"));
    }

    #[test]
    fn empty_file_means_no_services() {
        assert_eq!(
            parse("f", "services: []", "z").unwrap(),
            StaticState::default()
        );
    }
}
