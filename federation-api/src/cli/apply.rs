//! `apply -f FILE|DIR`: idempotent create-or-update of YAML/JSON documents.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;

use super::CliError;
use super::args::ApplyArgs;
use super::kinds::{Kind, item_path};
use super::output::to_yaml;
use causeway_api::client::{Client, Precondition};
use causeway_api::model;

/// One document to apply.
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

/// Parses YAML (multi-document) or JSON (an object or an array of objects).
fn parse_documents(source: &str, text: &str) -> Result<Vec<Doc>, CliError> {
    let trimmed = text.trim_start();
    let mut out = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| usage(format!("{source}: invalid JSON: {e}")))?;
        match v {
            Value::Array(items) => {
                for (i, value) in items.into_iter().enumerate() {
                    out.push(Doc {
                        source: format!("{source}[{i}]"),
                        value,
                    });
                }
            }
            value => out.push(Doc {
                source: source.to_owned(),
                value,
            }),
        }
    } else {
        for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(de)
                .map_err(|e| usage(format!("{source}: invalid YAML: {e}")))?;
            if value.is_null() {
                continue;
            }
            out.push(Doc {
                source: format!("{source}#{}", i + 1),
                value,
            });
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
        Kind::Import | Kind::TrustDomain => {
            Err(usage(format!("{source}: this kind cannot be applied")))
        }
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

fn path_of(kind: Kind, v: &Value) -> Result<String, CliError> {
    let name = str_at(v, "/metadata/name");
    match kind {
        Kind::Export => {
            let full = format!("{}/{name}", str_at(v, "/metadata/namespace"));
            item_path(kind, &full, Some(str_at(v, "/metadata/cluster")))
        }
        _ => item_path(kind, name, None),
    }
}

fn diff(old: &Value, new: &Value) -> Result<String, CliError> {
    let a = if old.is_null() {
        String::new()
    } else {
        to_yaml(old)?
    };
    let b = to_yaml(new)?;
    Ok(similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("live", "desired")
        .to_string())
}

pub(super) async fn apply(c: &Client, a: &ApplyArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let docs = read_all(&a.files)?;
    if docs.is_empty() {
        return Err(usage("no documents found"));
    }
    // Validate everything before the first write.
    let mut plan = Vec::new();
    for d in &docs {
        let kind_str = str_at(&d.value, "/kind");
        let kind = Kind::from_document_kind(kind_str).ok_or_else(|| {
            usage(format!(
                "{}: unknown or missing kind {kind_str:?}",
                d.source
            ))
        })?;
        let value = normalize(kind, &d.source, &d.value)?;
        let path = path_of(kind, &value)?;
        plan.push((kind_str.to_owned(), path, desired_part(&value), d));
    }
    let w = |out: &mut dyn Write, s: String| {
        writeln!(out, "{s}").map_err(|e| CliError::Io(e.to_string()))
    };
    for (kind, path, desired, doc) in plan {
        let label = format!("{kind} {}", path.trim_start_matches("/v1/"));
        let live = c.get_opt::<Value>(&path).await?;
        let (live_part, precondition) = match &live {
            Some(l) => (
                desired_part(&l.value),
                l.revision
                    .map_or(Precondition::None, Precondition::Revision),
            ),
            None => (Value::Null, Precondition::MustNotExist),
        };
        if live_part == desired {
            w(out, format!("{label} unchanged"))?;
            continue;
        }
        if a.dry_run {
            w(
                out,
                format!(
                    "{label} would be {}",
                    if live.is_some() {
                        "configured"
                    } else {
                        "created"
                    }
                ),
            )?;
            write!(out, "{}", diff(&live_part, &desired)?)
                .map_err(|e| CliError::Io(e.to_string()))?;
            continue;
        }
        let _: causeway_api::client::Versioned<Value> =
            c.put(&path, &doc.value, precondition).await?;
        w(
            out,
            format!(
                "{label} {}",
                if live.is_some() {
                    "configured"
                } else {
                    "created"
                }
            ),
        )?;
    }
    Ok(())
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
}
