//! Resource kinds as the CLI names them, and their REST paths.

use std::io::Write;

use serde_json::Value;

use super::CliError;
use super::args::{DeleteArgs, GetArgs};
use super::output::{print_items, print_one};
use causeway_api::client::{Client, Precondition};

/// A kind as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Cluster,
    Export,
    Import,
    TrustDomain,
    Bundle,
    Policy(&'static str),
}

impl Kind {
    pub(super) fn parse(s: &str) -> Result<Self, CliError> {
        let s = s.to_ascii_lowercase();
        let s = s.trim_end_matches('s');
        Ok(match s {
            "cluster" => Self::Cluster,
            "export" | "serviceexport" => Self::Export,
            "import" | "serviceimport" => Self::Import,
            "trust-domain" | "trustdomain" | "td" => Self::TrustDomain,
            "bundle" | "trustbundle" => Self::Bundle,
            "residency" | "residencypolicy" | "residencypolicie" => Self::Policy("residency"),
            "traffic" | "trafficpolicy" | "trafficpolicie" => Self::Policy("traffic"),
            "access" | "accesspolicy" | "accesspolicie" => Self::Policy("access"),
            "exportpolicy" | "exportpolicie" => Self::Policy("export"),
            _ => {
                return Err(CliError::Usage(format!(
                    "unknown kind {s:?}; expected clusters, exports, imports, trust-domains, bundle, \
                     residencypolicies, trafficpolicies, accesspolicies or exportpolicies"
                )));
            }
        })
    }

    /// The resource `kind` of a document.
    pub(super) fn from_document_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "Cluster" => Self::Cluster,
            "ServiceExport" => Self::Export,
            "TrustBundle" => Self::Bundle,
            "ResidencyPolicy" => Self::Policy("residency"),
            "TrafficPolicy" => Self::Policy("traffic"),
            "AccessPolicy" => Self::Policy("access"),
            "ExportPolicy" => Self::Policy("export"),
            _ => return None,
        })
    }
}

fn need_cluster(cluster: Option<&str>) -> Result<&str, CliError> {
    cluster.ok_or_else(|| CliError::Usage("exports need --cluster <id>".into()))
}

fn ns_name(name: &str) -> Result<(&str, &str), CliError> {
    name.split_once('/')
        .filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'))
        .ok_or_else(|| CliError::Usage(format!("expected namespace/name, got {name:?}")))
}

/// The REST path of one resource.
pub(super) fn item_path(kind: Kind, name: &str, cluster: Option<&str>) -> Result<String, CliError> {
    Ok(match kind {
        Kind::Cluster => format!("/v1/clusters/{name}"),
        Kind::Export => {
            let (ns, n) = ns_name(name)?;
            format!("/v1/clusters/{}/exports/{ns}/{n}", need_cluster(cluster)?)
        }
        Kind::Import => {
            let (ns, n) = ns_name(name)?;
            format!("/v1/imports/{ns}/{n}")
        }
        Kind::TrustDomain | Kind::Bundle => format!("/v1/trust-domains/{name}/bundle"),
        Kind::Policy(k) => format!("/v1/policies/{k}/{name}"),
    })
}

fn list_path(kind: Kind, cluster: Option<&str>) -> Result<String, CliError> {
    Ok(match kind {
        Kind::Cluster => "/v1/clusters".into(),
        Kind::Export => format!("/v1/clusters/{}/exports", need_cluster(cluster)?),
        Kind::Import => "/v1/imports".into(),
        Kind::TrustDomain | Kind::Bundle => "/v1/trust-domains".into(),
        Kind::Policy(k) => format!("/v1/policies/{k}"),
    })
}

pub(super) async fn get(c: &Client, a: &GetArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let kind = Kind::parse(&a.kind)?;
    match &a.name {
        Some(name) => {
            let path = item_path(kind, name, a.cluster.as_deref())?;
            let v = c.get::<Value>(&path).await?;
            print_one(out, &v.value, a.output)
        }
        None if kind == Kind::Export && a.cluster.is_none() => {
            // All exports of all clusters.
            let clusters: Vec<Value> = c.list("/v1/clusters").await?;
            let mut all = Vec::new();
            for cl in clusters {
                if let Some(id) = cl.pointer("/metadata/name").and_then(Value::as_str) {
                    all.extend(
                        c.list::<Value>(&format!("/v1/clusters/{id}/exports"))
                            .await?,
                    );
                }
            }
            print_items(out, &all, a.output)
        }
        None => {
            let items: Vec<Value> = c.list(&list_path(kind, a.cluster.as_deref())?).await?;
            print_items(out, &items, a.output)
        }
    }
}

pub(super) async fn delete(
    c: &Client,
    a: &DeleteArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let kind = Kind::parse(&a.kind)?;
    if matches!(kind, Kind::Import | Kind::TrustDomain | Kind::Bundle) {
        return Err(CliError::Usage(format!(
            "{} cannot be deleted through the API",
            a.kind
        )));
    }
    let path = item_path(kind, &a.name, a.cluster.as_deref())?;
    c.delete(&path, Precondition::None).await?;
    writeln!(out, "{} {} deleted", a.kind, a.name).map_err(|e| CliError::Io(e.to_string()))
}
