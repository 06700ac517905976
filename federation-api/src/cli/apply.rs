//! `apply -f`, `diff -f` and `delete -f`: resources read from YAML/JSON
//! files, compared with the live ones.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;

use super::args::{ApplyArgs, DeleteArgs, DiffArgs};
use super::kinds::{Kind, get_resource, item_path};
use super::output::to_yaml;
use super::{CliError, io};
use causeway_api::client::{Client, ClientError, Precondition, Versioned};
use causeway_api::model;

/// One document read from a file.
#[derive(Debug)]
struct Doc {
    source: String,
    value: Value,
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn files_of(path: &Path) -> Result<Vec<PathBuf>, CliError> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| usage(format!("{}: {e}", path.display())))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            })
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![path.to_owned()])
    }
}

/// Appends `value` to `out`, replacing a `kind: List` by its `items`
/// (kubectl's List, what `get -o yaml|json` prints for a list).
fn push_expanded(out: &mut Vec<Doc>, source: String, value: Value) -> Result<(), CliError> {
    if value.get("kind").and_then(Value::as_str) != Some("List") {
        out.push(Doc { source, value });
        return Ok(());
    }
    let items = match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => return Err(usage(format!("{source}: `items` of a List must be a list"))),
    };
    for (i, item) in items.into_iter().enumerate() {
        push_expanded(out, format!("{source}.items[{i}]"), item)?;
    }
    Ok(())
}

/// Parses YAML (multi-document) or JSON (an object or an array of objects);
/// Lists are expanded.
fn parse_documents(source: &str, text: &str) -> Result<Vec<Doc>, CliError> {
    let trimmed = text.trim_start();
    let mut out = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| usage(format!("{source}: invalid JSON: {e}")))?;
        match v {
            Value::Array(items) => {
                for (i, value) in items.into_iter().enumerate() {
                    push_expanded(&mut out, format!("{source}[{i}]"), value)?;
                }
            }
            value => push_expanded(&mut out, source.to_owned(), value)?,
        }
    } else {
        for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(de)
                .map_err(|e| usage(format!("{source}: invalid YAML: {e}")))?;
            if value.is_null() {
                continue;
            }
            push_expanded(&mut out, format!("{source}#{}", i + 1), value)?;
        }
    }
    Ok(out)
}

fn read_all(files: &[PathBuf]) -> Result<Vec<Doc>, CliError> {
    let mut docs = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| usage(format!("stdin: {e}")))?;
            docs.extend(parse_documents("stdin", &text)?);
            continue;
        }
        for file in files_of(f)? {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| usage(format!("{}: {e}", file.display())))?;
            docs.extend(parse_documents(&file.display().to_string(), &text)?);
        }
    }
    if docs.is_empty() {
        return Err(usage("no documents found"));
    }
    Ok(docs)
}

/// Round-trips through the typed model so that defaults are filled in as the
/// server would, and local errors are caught before any write.
fn normalize_as<T: DeserializeOwned + Serialize>(
    source: &str,
    v: &Value,
) -> Result<Value, CliError> {
    let typed: T = serde_path_to_error::deserialize(v)
        .map_err(|e| usage(format!("{source}: field {}: {}", e.path(), e.inner())))?;
    serde_json::to_value(typed).map_err(|e| usage(format!("{source}: {e}")))
}

fn normalize(kind: Kind, source: &str, v: &Value) -> Result<Value, CliError> {
    match kind {
        Kind::Cluster => normalize_as::<model::Cluster>(source, v),
        Kind::Export => normalize_as::<model::ServiceExport>(source, v),
        Kind::Bundle => normalize_as::<model::TrustBundle>(source, v),
        Kind::Policy("residency") => normalize_as::<model::ResidencyPolicy>(source, v),
        Kind::Policy("traffic") => normalize_as::<model::TrafficPolicy>(source, v),
        Kind::Policy("access") => normalize_as::<model::AccessPolicy>(source, v),
        Kind::Policy(_) => normalize_as::<model::ExportPolicy>(source, v),
        Kind::Import | Kind::TrustDomain => Err(usage(format!(
            "{source}: ServiceImports are derived from exports and cannot be applied"
        ))),
    }
}

/// The part of a resource that `apply` manages: everything but server-set
/// metadata and status.
fn desired_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("createdAt");
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// One resource of the files, checked and located.
#[derive(Debug)]
struct Planned {
    /// Where it lives.
    at: Location,
    /// Normalized, without server-set fields: compared with the live one.
    desired: Value,
    /// What is written: the document without server-set fields.
    body: Value,
}

/// Where a document's resource lives: its kind, label, REST path, the name
/// `get` takes (`namespace/name` for exports) and its cluster (exports).
#[derive(Debug)]
struct Location {
    kind: Kind,
    label: String,
    path: String,
    name: String,
    cluster: Option<String>,
}

fn locate(d: &Doc) -> Result<Location, CliError> {
    let kind_str = str_at(&d.value, "/kind");
    let kind = Kind::from_document_kind(kind_str).ok_or_else(|| {
        usage(format!(
            "{}: unknown or missing kind {kind_str:?}",
            d.source
        ))
    })?;
    let name = str_at(&d.value, "/metadata/name").to_owned();
    if name.is_empty() {
        return Err(usage(format!("{}: metadata.name is missing", d.source)));
    }
    let (name, cluster) = match kind {
        Kind::Export => (
            format!("{}/{name}", str_at(&d.value, "/metadata/namespace")),
            Some(str_at(&d.value, "/metadata/cluster").to_owned()),
        ),
        _ => (name, None),
    };
    let path = item_path(kind, &name, cluster.as_deref())
        .map_err(|e| usage(format!("{}: {e}", d.source)))?;
    let label = format!("{kind_str} {}", path.trim_start_matches("/v1/"));
    Ok(Location {
        kind,
        label,
        path,
        name,
        cluster,
    })
}

/// Checks every document before anything is written, in apply order
/// (clusters first, bundles last; stable within a kind).
fn plan(docs: &[Doc]) -> Result<Vec<Planned>, CliError> {
    let mut plan = Vec::new();
    for d in docs {
        let at = locate(d)?;
        let normalized = normalize(at.kind, &d.source, &d.value)?;
        plan.push(Planned {
            at,
            desired: desired_part(&normalized),
            body: desired_part(&d.value),
        });
    }
    plan.sort_by_key(|p| p.at.kind.apply_rank());
    Ok(plan)
}

/// How a planned resource differs from the live one.
struct Compared {
    live: Option<Versioned<Value>>,
    live_part: Value,
}

impl Compared {
    fn unchanged(&self, p: &Planned) -> bool {
        self.live_part == p.desired
    }

    fn verb(&self, done: bool) -> &'static str {
        match (self.live.is_some(), done) {
            (true, true) => "configured",
            (false, true) => "created",
            (true, false) => "would be configured",
            (false, false) => "would be created",
        }
    }

    /// The write precondition: the live revision we compared with, or
    /// create-only.
    fn precondition(&self) -> Precondition {
        match &self.live {
            Some(l) => l
                .revision
                .map_or(Precondition::None, Precondition::Revision),
            None => Precondition::MustNotExist,
        }
    }
}

async fn compare(c: &Client, p: &Planned) -> Result<Compared, CliError> {
    let live = get_resource(c, p.at.kind, &p.at.name, p.at.cluster.as_deref()).await?;
    let live_part = live
        .as_ref()
        .map_or(Value::Null, |l| desired_part(&l.value));
    Ok(Compared { live, live_part })
}

fn unified_diff(label: &str, old: &Value, new: &Value) -> Result<String, CliError> {
    let a = if old.is_null() {
        String::new()
    } else {
        to_yaml(old)?
    };
    let b = to_yaml(new)?;
    Ok(similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{label}"), &format!("desired/{label}"))
        .to_string())
}

pub(super) async fn apply(c: &Client, a: &ApplyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let plan = plan(&read_all(&a.files.files)?)?;
    for p in &plan {
        let cmp = compare(c, p).await?;
        if cmp.unchanged(p) {
            writeln!(out, "{} unchanged", p.at.label).map_err(io)?;
            continue;
        }
        if a.dry_run {
            writeln!(out, "{} {}", p.at.label, cmp.verb(false)).map_err(io)?;
            write!(
                out,
                "{}",
                unified_diff(&p.at.label, &cmp.live_part, &p.desired)?
            )
            .map_err(io)?;
            continue;
        }
        let _: Versioned<Value> = c.put(&p.at.path, &p.body, cmp.precondition()).await?;
        writeln!(out, "{} {}", p.at.label, cmp.verb(true)).map_err(io)?;
    }
    Ok(())
}

/// `diff -f`: prints a unified diff per resource that `apply` would change;
/// `Ok(true)` when there is any.
pub(super) async fn diff(c: &Client, a: &DiffArgs, out: &mut dyn Write) -> Result<bool, CliError> {
    let plan = plan(&read_all(&a.files.files)?)?;
    let mut differs = false;
    for p in &plan {
        let cmp = compare(c, p).await?;
        if !cmp.unchanged(p) {
            differs = true;
            write!(
                out,
                "{}",
                unified_diff(&p.at.label, &cmp.live_part, &p.desired)?
            )
            .map_err(io)?;
        }
    }
    Ok(differs)
}

/// `delete -f`: deletes the resources the files name, in reverse apply
/// order (exports before their clusters). Every document is checked first;
/// a failed deletion is reported and the others still run.
pub(super) async fn delete_files(
    c: &Client,
    a: &DeleteArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let docs = read_all(&a.files)?;
    let mut targets = Vec::new();
    for d in &docs {
        let Location {
            kind, label, path, ..
        } = locate(d)?;
        if !kind.deletable() {
            return Err(usage(format!(
                "{}: {} cannot be deleted through the API; remove it from the input",
                d.source,
                str_at(&d.value, "/kind")
            )));
        }
        targets.push((kind, label, path));
    }
    targets.sort_by_key(|(k, _, _)| std::cmp::Reverse(k.apply_rank()));
    let mut failed: Vec<(String, ClientError)> = Vec::new();
    for (_, label, path) in targets {
        match super::kinds::delete_one(c, &path, Precondition::None, a.ignore_not_found).await {
            Ok(true) => writeln!(out, "{label} deleted").map_err(io)?,
            Ok(false) => writeln!(out, "{label} not found (ignored)").map_err(io)?,
            Err(CliError::Client(e @ ClientError::Api(_))) => {
                eprintln!("error: {label}: {e}");
                failed.push((label, e));
            }
            Err(e) => return Err(e),
        }
    }
    match failed.len() {
        0 => Ok(()),
        1 => Err(CliError::Client(failed.remove(0).1)),
        n => Err(CliError::Failed(format!("{n} deletions failed"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn yaml_multi_document_and_json_array_parse() {
        let y = "kind: A\n---\nkind: B\n---\n";
        let d = parse_documents("f", y).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].value["kind"], "B");
        let j = r#"[{"kind":"A"},{"kind":"B"}]"#;
        assert_eq!(parse_documents("f", j).unwrap().len(), 2);
    }

    #[test]
    fn lists_are_expanded_in_yaml_and_json() {
        let y =
            "apiVersion: causeway.dev/v1\nkind: List\nitems:\n- kind: A\n- kind: B\n---\nkind: C\n";
        let d = parse_documents("f", y).unwrap();
        let kinds: Vec<_> = d.iter().map(|d| d.value["kind"].clone()).collect();
        assert_eq!(kinds, ["A", "B", "C"]);
        assert_eq!(d[1].source, "f#1.items[1]");
        let j = r#"{"kind":"List","items":[{"kind":"List","items":[{"kind":"A"}]}]}"#;
        assert_eq!(parse_documents("f", j).unwrap()[0].value["kind"], "A");
        assert!(parse_documents("f", r#"{"kind":"List","items":{}}"#).is_err());
        assert!(
            parse_documents("f", "kind: List\nitems: []\n")
                .unwrap()
                .is_empty()
        );
    }
}
