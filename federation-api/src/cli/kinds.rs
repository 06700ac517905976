//! Resource kinds as the CLI names them, their REST paths, and the
//! commands that take a kind and a name: `get`, `delete`, `patch`.

use std::io::{Read, Write};

use serde_json::Value;

use super::CliError;
use super::args::{DeleteArgs, GetArgs, Output, PatchArgs};
use super::output::{print_items, print_one};
use causeway_api::client::{Client, Precondition, Versioned};

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

/// Every kind `apply` accepts, in the order `apply` writes them: clusters
/// first (exports and bundles name them), export policies before exports,
/// trust bundles last (their owner cluster must be registered).
pub(super) const APPLY_ORDER: [Kind; 7] = [
    Kind::Cluster,
    Kind::Policy("export"),
    Kind::Policy("residency"),
    Kind::Policy("traffic"),
    Kind::Policy("access"),
    Kind::Export,
    Kind::Bundle,
];

/// Command-line names: singular, plural and short forms, as kubectl users
/// type them.
const ALIASES: &[(&str, Kind)] = &[
    ("cluster", Kind::Cluster),
    ("clusters", Kind::Cluster),
    ("cl", Kind::Cluster),
    ("export", Kind::Export),
    ("exports", Kind::Export),
    ("serviceexport", Kind::Export),
    ("serviceexports", Kind::Export),
    ("se", Kind::Export),
    ("import", Kind::Import),
    ("imports", Kind::Import),
    ("serviceimport", Kind::Import),
    ("serviceimports", Kind::Import),
    ("si", Kind::Import),
    ("trust-domain", Kind::TrustDomain),
    ("trust-domains", Kind::TrustDomain),
    ("trustdomain", Kind::TrustDomain),
    ("trustdomains", Kind::TrustDomain),
    ("td", Kind::TrustDomain),
    ("bundle", Kind::Bundle),
    ("bundles", Kind::Bundle),
    ("trustbundle", Kind::Bundle),
    ("trustbundles", Kind::Bundle),
    ("residency", Kind::Policy("residency")),
    ("residencypolicy", Kind::Policy("residency")),
    ("residencypolicies", Kind::Policy("residency")),
    ("rp", Kind::Policy("residency")),
    ("traffic", Kind::Policy("traffic")),
    ("trafficpolicy", Kind::Policy("traffic")),
    ("trafficpolicies", Kind::Policy("traffic")),
    ("tp", Kind::Policy("traffic")),
    ("access", Kind::Policy("access")),
    ("accesspolicy", Kind::Policy("access")),
    ("accesspolicies", Kind::Policy("access")),
    ("ap", Kind::Policy("access")),
    ("exportpolicy", Kind::Policy("export")),
    ("exportpolicies", Kind::Policy("export")),
    ("ep", Kind::Policy("export")),
];

impl Kind {
    pub(super) fn parse(s: &str) -> Result<Self, CliError> {
        let lower = s.to_ascii_lowercase();
        ALIASES
            .iter()
            .find(|(a, _)| *a == lower)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "unknown kind {s:?}; expected clusters, exports, imports, bundles \
                     (trust-domains), residencypolicies, trafficpolicies, accesspolicies, \
                     exportpolicies or all (see `causewayctl --help`)"
                ))
            })
    }

    /// The resource `kind` of a document.
    pub(super) fn from_document_kind(kind: &str) -> Option<Self> {
        Some(match kind {
            "Cluster" => Self::Cluster,
            "ServiceExport" => Self::Export,
            "ServiceImport" => Self::Import,
            "TrustBundle" => Self::Bundle,
            "ResidencyPolicy" => Self::Policy("residency"),
            "TrafficPolicy" => Self::Policy("traffic"),
            "AccessPolicy" => Self::Policy("access"),
            "ExportPolicy" => Self::Policy("export"),
            _ => return None,
        })
    }

    /// The position of this kind in [`APPLY_ORDER`] (derived kinds last).
    pub(super) fn apply_rank(self) -> usize {
        APPLY_ORDER
            .iter()
            .position(|k| *k == self || (self == Kind::TrustDomain && *k == Kind::Bundle))
            .unwrap_or(APPLY_ORDER.len())
    }

    /// Whether the API can delete resources of this kind.
    pub(super) fn deletable(self) -> bool {
        !matches!(self, Kind::Import | Kind::TrustDomain | Kind::Bundle)
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

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Every resource of a kind (exports: of `cluster`, else of every cluster).
pub(super) async fn list_kind(
    c: &Client,
    kind: Kind,
    cluster: Option<&str>,
) -> Result<Vec<Value>, CliError> {
    if kind == Kind::Export && cluster.is_none() {
        let mut all = Vec::new();
        for cl in c.list::<Value>("/v1/clusters").await? {
            let id = name_of(&cl);
            if !id.is_empty() {
                all.extend(
                    c.list::<Value>(&format!("/v1/clusters/{id}/exports"))
                        .await?,
                );
            }
        }
        return Ok(all);
    }
    Ok(c.list(&list_path(kind, cluster)?).await?)
}

/// The TrustBundle resource of a trust domain (`GET .../bundle` answers the
/// bare SPIFFE bundle, for SPIRE; the resource with its owner is listed).
pub(super) async fn trust_bundle(c: &Client, td: &str) -> Result<Option<Value>, CliError> {
    Ok(c.list::<Value>("/v1/trust-domains")
        .await?
        .into_iter()
        .find(|b| name_of(b) == td))
}

/// One resource, `None` when it does not exist.
pub(super) async fn get_resource(
    c: &Client,
    kind: Kind,
    name: &str,
    cluster: Option<&str>,
) -> Result<Option<Versioned<Value>>, CliError> {
    if matches!(kind, Kind::Bundle | Kind::TrustDomain) {
        return Ok(trust_bundle(c, name).await?.map(|value| Versioned {
            revision: value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|r| r.parse().ok()),
            value,
        }));
    }
    Ok(c.get_opt::<Value>(&item_path(kind, name, cluster)?).await?)
}

pub(super) async fn get(c: &Client, a: &GetArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if a.kind.eq_ignore_ascii_case("all") {
        if a.name.is_some() {
            return Err(CliError::Usage("`get all` takes no name".into()));
        }
        let mut items = Vec::new();
        for kind in APPLY_ORDER {
            items.extend(list_kind(c, kind, a.cluster.as_deref()).await?);
        }
        return print_items(out, &items, a.output);
    }
    let kind = Kind::parse(&a.kind)?;
    match &a.name {
        Some(name) if matches!(kind, Kind::Bundle | Kind::TrustDomain) => {
            let v = trust_bundle(c, name)
                .await?
                .ok_or_else(|| not_found(name))?;
            print_one(out, &v, a.output)
        }
        Some(name) => {
            let v = c
                .get::<Value>(&item_path(kind, name, a.cluster.as_deref())?)
                .await?;
            print_one(out, &v.value, a.output)
        }
        None => {
            let items = list_kind(c, kind, a.cluster.as_deref()).await?;
            print_items(out, &items, a.output)
        }
    }
}

/// The 404 of a trust bundle looked up in the list (the only lookup that
/// is not a GET of its own).
fn not_found(td: &str) -> CliError {
    CliError::Client(causeway_api::client::ClientError::Api(Box::new(
        causeway_api::wire::Problem::blank(
            404,
            "Not found",
            Some(format!("bundle of trust domain {td} not found")),
        ),
    )))
}

fn io(e: std::io::Error) -> CliError {
    CliError::Io(e.to_string())
}

/// Deletes one resource; `Ok(false)` when it did not exist and
/// `ignore_not_found` is set.
pub(super) async fn delete_one(
    c: &Client,
    path: &str,
    pre: Precondition,
    ignore_not_found: bool,
) -> Result<bool, CliError> {
    match c.delete(path, pre).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() && ignore_not_found => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn delete(
    c: &Client,
    a: &DeleteArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    if !a.files.is_empty() {
        return super::apply::delete_files(c, a, out).await;
    }
    let (Some(kind_s), Some(name)) = (&a.kind, &a.name) else {
        return Err(CliError::Usage("give KIND NAME or -f FILE".into()));
    };
    let kind = Kind::parse(kind_s)?;
    if !kind.deletable() {
        return Err(CliError::Usage(format!(
            "{kind_s} cannot be deleted through the API"
        )));
    }
    let path = item_path(kind, name, a.cluster.as_deref())?;
    let pre = a
        .if_match
        .map_or(Precondition::None, Precondition::Revision);
    let label = path.trim_start_matches("/v1/");
    if delete_one(c, &path, pre, a.ignore_not_found).await? {
        writeln!(out, "{label} deleted").map_err(io)
    } else {
        writeln!(out, "{label} not found (ignored)").map_err(io)
    }
}

fn read_patch(a: &PatchArgs) -> Result<Value, CliError> {
    let text = match (&a.patch, &a.patch_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) if f.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
            s
        }
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("{}: {e}", f.display())))?,
        (None, None) => return Err(CliError::Usage("give --patch or --patch-file".into())),
    };
    // YAML is a superset of JSON: one parser takes both.
    let v: Value = serde_norway::from_str(&text)
        .map_err(|e| CliError::Usage(format!("invalid patch: {e}")))?;
    if !v.is_object() {
        return Err(CliError::Usage(
            "a merge patch is a JSON object, e.g. '{\"spec\":{\"weight\":0}}'".into(),
        ));
    }
    Ok(v)
}

pub(super) async fn patch(c: &Client, a: &PatchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let kind = Kind::parse(&a.kind)?;
    if !matches!(kind, Kind::Cluster | Kind::Export | Kind::Policy(_)) {
        return Err(CliError::Usage(format!(
            "{} cannot be patched; clusters, exports and policies can",
            a.kind
        )));
    }
    let patch = read_patch(a)?;
    let path = item_path(kind, &a.name, a.cluster.as_deref())?;
    let before = c.get::<Value>(&path).await?;
    let pre = a
        .if_match
        .map_or(Precondition::None, Precondition::Revision);
    let after: Versioned<Value> = c.merge_patch(&path, &patch, pre).await?;
    if let Some(o) = a.output {
        let o = if o == Output::Table { Output::Yaml } else { o };
        return print_one(out, &after.value, o);
    }
    let label = path.trim_start_matches("/v1/");
    if after.revision.is_some() && after.revision == before.revision {
        writeln!(out, "{label} unchanged").map_err(io)
    } else {
        writeln!(out, "{label} patched").map_err(io)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_alias_parses_and_none_is_a_trimmed_plural() {
        for (a, k) in ALIASES {
            assert_eq!(Kind::parse(a).unwrap(), *k, "{a}");
            assert_eq!(Kind::parse(&a.to_ascii_uppercase()).unwrap(), *k, "{a}");
        }
        // Trimming a trailing `s` used to turn `access` into `acce`.
        assert_eq!(Kind::parse("access").unwrap(), Kind::Policy("access"));
        for bad in ["acce", "clusterss", "gizmos", "", "s"] {
            assert!(Kind::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn apply_order_writes_clusters_first_and_bundles_last() {
        assert_eq!(Kind::Cluster.apply_rank(), 0);
        assert!(Kind::Policy("export").apply_rank() < Kind::Export.apply_rank());
        assert!(Kind::Export.apply_rank() < Kind::Bundle.apply_rank());
        assert_eq!(Kind::Import.apply_rank(), APPLY_ORDER.len());
    }
}
