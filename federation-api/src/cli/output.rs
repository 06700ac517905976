//! Rendering resources as tables, JSON or YAML, and the `watch` command.

use std::io::Write;

use serde_json::Value;

use super::CliError;
use super::args::{Output, WatchArgs};
use causeway_api::client::Client;
use causeway_api::wire::WatchLine;

fn io(e: std::io::Error) -> CliError {
    CliError::Io(e.to_string())
}

/// Renders a value as YAML.
pub(super) fn to_yaml(v: &Value) -> Result<String, CliError> {
    serde_norway::to_string(v).map_err(|e| CliError::Io(e.to_string()))
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn name_of(v: &Value) -> String {
    let ns = s(v, "/metadata/namespace");
    let name = s(v, "/metadata/name");
    if ns.is_empty() {
        name.to_owned()
    } else {
        format!("{ns}/{name}")
    }
}

fn detail_of(v: &Value) -> String {
    match s(v, "/kind") {
        "Cluster" => {
            let connected = v
                .pointer("/status/connected")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            format!(
                "{}/{}/{} td={} connected={connected}",
                s(v, "/spec/cloud"),
                s(v, "/spec/region"),
                s(v, "/spec/zone"),
                s(v, "/spec/trustDomain")
            )
        }
        "ServiceExport" => {
            let conds = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| format!("{}={}", s(c, "/type"), s(c, "/status")))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let stale = v
                .pointer("/status/stale")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            format!(
                "type={} {conds}{}",
                s(v, "/spec/type"),
                if stale { " stale" } else { "" }
            )
        }
        "ServiceImport" => {
            let clusters = v
                .pointer("/spec/clusters")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| s(c, "/cluster").to_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            format!("type={} clusters={clusters}", s(v, "/spec/type"))
        }
        "TrustBundle" => format!(
            "owner={} sequence={}",
            s(v, "/spec/ownerCluster"),
            v.pointer("/spec/bundle/spiffe_sequence")
                .map(Value::to_string)
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}

fn row(v: &Value) -> [String; 5] {
    [
        s(v, "/kind").to_owned(),
        name_of(v),
        s(v, "/metadata/cluster").to_owned(),
        s(v, "/metadata/resourceVersion").to_owned(),
        detail_of(v),
    ]
}

/// Prints a table with aligned columns.
pub(super) fn table(out: &mut dyn Write, items: &[Value]) -> Result<(), CliError> {
    let header = ["KIND", "NAME", "CLUSTER", "REVISION", "DETAIL"].map(str::to_owned);
    let rows: Vec<[String; 5]> = std::iter::once(header)
        .chain(items.iter().map(row))
        .collect();
    let mut widths = [0usize; 5];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in &rows {
        let line = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        writeln!(out, "{}", line.trim_end()).map_err(io)?;
    }
    Ok(())
}

pub(super) fn print_one(out: &mut dyn Write, v: &Value, o: Output) -> Result<(), CliError> {
    match o {
        Output::Table if v.get("kind").is_some() => table(out, std::slice::from_ref(v)),
        Output::Json | Output::Table => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(v).unwrap_or_default()
        )
        .map_err(io),
        Output::Yaml => write!(out, "{}", to_yaml(v)?).map_err(io),
    }
}

pub(super) fn print_items(out: &mut dyn Write, items: &[Value], o: Output) -> Result<(), CliError> {
    match o {
        Output::Table => {
            if items.is_empty() {
                writeln!(out, "no resources found").map_err(io)
            } else {
                table(out, items)
            }
        }
        Output::Json => writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(items).unwrap_or_default()
        )
        .map_err(io),
        Output::Yaml => write!(out, "{}", to_yaml(&Value::Array(items.to_vec()))?).map_err(io),
    }
}

pub(super) async fn watch(c: &Client, a: &WatchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let mut w = c.watch(a.since).await?;
    let mut n = 0usize;
    while let Some(line) = w.next().await {
        let line = line?;
        match a.output {
            Output::Json => writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default()),
            Output::Yaml => write!(
                out,
                "---\n{}",
                to_yaml(&serde_json::to_value(&line).unwrap_or_default())?
            ),
            Output::Table => match &line {
                WatchLine::Snapshot {
                    revision,
                    resources,
                } => {
                    writeln!(out, "SNAPSHOT rev={revision} resources={}", resources.len())
                }
                WatchLine::Put {
                    revision,
                    kind,
                    key,
                    ..
                } => writeln!(out, "PUT    rev={revision} {kind} {key}"),
                WatchLine::Delete {
                    revision,
                    kind,
                    key,
                    ..
                } => writeln!(out, "DELETE rev={revision} {kind} {key}"),
                WatchLine::Bookmark { .. } => Ok(()),
                WatchLine::Error { status, detail } => writeln!(out, "ERROR  {status} {detail}"),
            },
        }
        .map_err(io)?;
        out.flush().map_err(io)?;
        n += 1;
        if a.max_events.is_some_and(|m| n >= m) {
            break;
        }
    }
    Ok(())
}
