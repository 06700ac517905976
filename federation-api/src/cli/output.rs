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

/// Prints rows under a header as aligned columns (kubectl style: no
/// borders, three spaces between columns). Widths are display widths, so
/// non-ASCII text stays aligned.
pub(super) fn columns<R: AsRef<[String]>>(
    out: &mut dyn Write,
    header: &[&str],
    rows: &[R],
) -> Result<(), CliError> {
    let mut t = comfy_table::Table::new();
    t.load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for r in rows {
        t.add_row(r.as_ref().to_vec());
    }
    let last = header.len().saturating_sub(1);
    for (i, c) in t.column_iter_mut().enumerate() {
        c.set_padding((0, if i == last { 0 } else { 3 }));
    }
    for line in t.lines() {
        writeln!(out, "{}", line.trim_end()).map_err(io)?;
    }
    Ok(())
}

/// Prints resources as a table.
pub(super) fn table(out: &mut dyn Write, items: &[Value]) -> Result<(), CliError> {
    let rows: Vec<[String; 5]> = items.iter().map(row).collect();
    columns(
        out,
        &["KIND", "NAME", "CLUSTER", "REVISION", "DETAIL"],
        &rows,
    )
}

/// The `kind: List` document of a list (what `apply -f` and `delete -f`
/// read back).
pub(super) fn list_document(items: &[Value]) -> Value {
    serde_json::json!({
        "apiVersion": causeway_api::model::API_VERSION,
        "kind": "List",
        "items": items,
    })
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
            serde_json::to_string_pretty(&list_document(items)).unwrap_or_default()
        )
        .map_err(io),
        Output::Yaml => write!(out, "{}", to_yaml(&list_document(items))?).map_err(io),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn render(rows: &[[String; 3]]) -> Vec<String> {
        let mut out = Vec::new();
        columns(&mut out, &["A", "B", "C"], rows).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn columns_align_by_display_width_not_bytes() {
        let r = |a: &str, b: &str| [a.to_owned(), b.to_owned(), "end".to_owned()];
        // "zürich" is 7 bytes, 6 columns; "東京" is 6 bytes, 4 columns.
        let lines = render(&[r("zürich", "x"), r("東京", "y"), r("ascii1", "z")]);
        let col = |l: &str, needle: &str| {
            let byte = l.find(needle).unwrap();
            unicode_width::UnicodeWidthStr::width(&l[..byte])
        };
        let c = col(&lines[0], "C");
        for l in &lines[1..] {
            assert_eq!(col(l, "end"), c, "{lines:#?}");
        }
        assert_eq!(
            lines[0],
            format!("A{}B{}C", " ".repeat(8), "   "),
            "{lines:#?}"
        );
    }

    #[test]
    fn lists_print_as_a_list_document() {
        let mut out = Vec::new();
        print_items(
            &mut out,
            &[serde_json::json!({"kind": "Cluster"})],
            Output::Yaml,
        )
        .unwrap();
        let v: Value = serde_norway::from_slice(&out).unwrap();
        assert_eq!(v["kind"], "List");
        assert_eq!(v["apiVersion"], "causeway.dev/v1");
        assert_eq!(v["items"][0]["kind"], "Cluster");
    }
}
