//! Terraform checks that need no provider download: `terraform fmt`, and
//! structural checks over the HCL parsed with `hcl-rs` — module layout,
//! documented and typed variables, module calls that match the callee's
//! variables, chart values that exist in the chart's schema, and the same core
//! variables in the three cloud modules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hcl::{Block, Body, Expression, ObjectKey};
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_owned()
}

fn tf_root() -> PathBuf {
    repo_root().join("terraform")
}

/// The modules of `terraform/` (not examples).
const MODULES: [&str; 5] = [
    "aws",
    "gcp",
    "azure",
    "federation",
    "modules/causeway-release",
];
const CLOUD_MODULES: [&str; 3] = ["aws", "gcp", "azure"];

/// Every `.tf` file under `dir`, recursively.
fn tf_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') {
                    stack.push(path);
                }
            } else if name.ends_with(".tf") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn parse(path: &Path) -> Body {
    let text = std::fs::read_to_string(path).unwrap();
    hcl::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.tf` files directly in one module directory (a Terraform module).
fn module_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    files
}

fn module_blocks(dir: &Path) -> Vec<Block> {
    module_files(dir)
        .iter()
        .flat_map(|f| parse(f).into_blocks())
        .collect()
}

fn label(block: &Block, i: usize) -> &str {
    block.labels()[i].as_str()
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// Every directory holding `.tf` files (modules and examples).
fn tf_dirs() -> BTreeSet<PathBuf> {
    tf_files(&tf_root())
        .iter()
        .map(|f| f.parent().unwrap().to_owned())
        .collect()
}

/// Variables of a module: name -> block.
fn variables(dir: &Path) -> BTreeMap<String, Block> {
    module_blocks(dir)
        .into_iter()
        .filter(|b| b.identifier() == "variable")
        .map(|b| (label(&b, 0).to_owned(), b))
        .collect()
}

fn outputs(dir: &Path) -> BTreeSet<String> {
    module_blocks(dir)
        .iter()
        .filter(|b| b.identifier() == "output")
        .map(|b| label(b, 0).to_owned())
        .collect()
}

fn non_empty_string(e: Option<&Expression>) -> bool {
    match e {
        Some(Expression::String(s)) => !s.trim().is_empty(),
        Some(Expression::TemplateExpr(t)) => !t.to_string().trim().is_empty(),
        _ => false,
    }
}

// ------------------------------------------------------------------ tests --

#[test]
fn terraform_fmt_is_clean() {
    let Ok(out) = Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(tf_root())
        .output()
    else {
        eprintln!("terraform is not on PATH: fmt check not run (the structural checks still run)");
        return;
    };
    assert!(
        out.status.success(),
        "terraform fmt -check -recursive terraform/ failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_file_parses_and_modules_have_the_standard_layout() {
    for f in tf_files(&tf_root()) {
        parse(&f);
    }
    for m in MODULES {
        let dir = tf_root().join(m);
        for file in [
            "main.tf",
            "variables.tf",
            "outputs.tf",
            "versions.tf",
            "README.md",
        ] {
            assert!(dir.join(file).is_file(), "{m}/{file} is missing");
        }
        let examples = dir.join("examples");
        assert!(
            !tf_files(&examples).is_empty(),
            "{m}/examples has no example"
        );
        // versions.tf pins Terraform and every provider the module uses.
        let versions = parse(&dir.join("versions.tf"));
        let tf = versions
            .blocks()
            .find(|b| b.identifier() == "terraform")
            .unwrap_or_else(|| panic!("{m}/versions.tf has no terraform block"));
        assert!(attr(tf.body(), "required_version").is_some(), "{m}");
        let providers = tf
            .body()
            .blocks()
            .find(|b| b.identifier() == "required_providers")
            .unwrap_or_else(|| panic!("{m}: no required_providers"));
        for p in providers.body().attributes() {
            let Expression::Object(o) = p.expr() else {
                panic!("{m}: provider {} is not an object", p.key())
            };
            let keys: BTreeSet<String> = o.keys().map(object_key).collect();
            assert!(
                keys.contains("source") && keys.contains("version"),
                "{m}: provider {} needs source and version",
                p.key()
            );
        }
        // Module READMEs list every input and output.
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        for v in variables(&dir).keys() {
            assert!(
                readme.contains(&format!("`{v}`")),
                "{m}/README.md lacks input `{v}`"
            );
        }
        for o in outputs(&dir) {
            assert!(
                readme.contains(&format!("`{o}`")),
                "{m}/README.md lacks output `{o}`"
            );
        }
    }
    let two_cloud = tf_root().join("examples/eks-gke-federation");
    assert!(two_cloud.join("main.tf").is_file());
}

#[test]
fn every_variable_and_output_is_documented_and_typed() {
    let mut problems = Vec::new();
    for dir in tf_dirs() {
        for (name, block) in variables(&dir) {
            let body = block.body();
            if !non_empty_string(attr(body, "description")) {
                problems.push(format!(
                    "{}: variable {name} has no description",
                    dir.display()
                ));
            }
            if attr(body, "type").is_none() {
                problems.push(format!("{}: variable {name} has no type", dir.display()));
            }
            for v in body.blocks().filter(|b| b.identifier() == "validation") {
                if !non_empty_string(attr(v.body(), "error_message")) {
                    problems.push(format!(
                        "{}: variable {name} validation without message",
                        dir.display()
                    ));
                }
            }
        }
        for block in module_blocks(&dir)
            .iter()
            .filter(|b| b.identifier() == "output")
        {
            if !non_empty_string(attr(block.body(), "description")) {
                problems.push(format!(
                    "{}: output {} has no description",
                    dir.display(),
                    label(block, 0)
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Provider blocks only in examples (terraform-aws-eks style).
#[test]
fn provider_blocks_only_in_examples() {
    for m in MODULES {
        for f in module_files(&tf_root().join(m)) {
            for b in parse(&f).blocks() {
                assert_ne!(
                    b.identifier(),
                    "provider",
                    "{} configures a provider",
                    f.display()
                );
            }
        }
    }
    // And helm_release lives in the shared module only.
    for f in tf_files(&tf_root()) {
        let in_shared = f.starts_with(tf_root().join("modules/causeway-release"));
        for b in parse(&f).blocks() {
            if b.identifier() == "resource" && label(b, 0) == "helm_release" {
                assert!(in_shared, "{} has its own helm_release", f.display());
            }
        }
    }
}

/// Every `var.x` a directory refers to is declared there, and every declared
/// variable is used.
#[test]
fn variable_references_resolve() {
    for dir in tf_dirs() {
        let declared: BTreeSet<String> = variables(&dir).into_keys().collect();
        let mut used = BTreeSet::new();
        for f in module_files(&dir) {
            let text = std::fs::read_to_string(&f).unwrap();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("var.") {
                let before = rest[..i].chars().last();
                rest = &rest[i + 4..];
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                used.insert(name);
            }
        }
        let undeclared: Vec<_> = used.difference(&declared).collect();
        let unused: Vec<_> = declared.difference(&used).collect();
        assert!(
            undeclared.is_empty(),
            "{}: undeclared {undeclared:?}",
            dir.display()
        );
        assert!(
            unused.is_empty(),
            "{}: unused variables {unused:?}",
            dir.display()
        );
    }
}

const META_ARGS: [&str; 6] = [
    "source",
    "providers",
    "depends_on",
    "count",
    "for_each",
    "version",
];

/// Every local module call passes only variables the callee declares and every
/// variable the callee requires (what `terraform validate` would say).
#[test]
fn module_calls_match_the_callee() {
    let mut calls = 0;
    for dir in tf_dirs() {
        for block in module_blocks(&dir)
            .iter()
            .filter(|b| b.identifier() == "module")
        {
            let Some(Expression::String(source)) = attr(block.body(), "source") else {
                panic!(
                    "{}: module {} has no literal source",
                    dir.display(),
                    label(block, 0)
                );
            };
            assert!(
                source.starts_with("../") || source.starts_with("./"),
                "{source}"
            );
            let callee_dir = dir.join(source);
            let callee = variables(&callee_dir);
            assert!(
                !callee.is_empty(),
                "{}: {source} has no variables",
                dir.display()
            );
            let given: BTreeSet<&str> = block
                .body()
                .attributes()
                .map(|a| a.key())
                .filter(|k| !META_ARGS.contains(k))
                .collect();
            for g in &given {
                assert!(
                    callee.contains_key(*g),
                    "{}: module {} passes `{g}`, which {source} does not declare",
                    dir.display(),
                    label(block, 0)
                );
            }
            for (name, v) in &callee {
                if attr(v.body(), "default").is_none() {
                    assert!(
                        given.contains(name.as_str()),
                        "{}: module {} misses required `{name}` of {source}",
                        dir.display(),
                        label(block, 0)
                    );
                }
            }
            calls += 1;
        }
    }
    assert!(calls >= 10, "only {calls} module calls checked");
}

/// The three cloud modules expose the same core inputs (same names, types and
/// defaults) and the same core outputs.
#[test]
fn cloud_modules_share_core_variables_and_outputs() {
    const CORE: [&str; 17] = [
        "cluster_id",
        "trust_domain",
        "jurisdictions",
        "zone",
        "federation_endpoint",
        "peer_gateway_cidrs",
        "gateway_identity_secret_name",
        "gateway_replicas",
        "east_west_service_annotations",
        "service_account_annotations",
        "release_name",
        "namespace",
        "chart_path",
        "chart_repository",
        "chart_version",
        "image_repository",
        "image_tag",
    ];
    let shape = |b: &Block| -> String {
        let body = b.body();
        format!(
            "type={} default={} validations={}",
            attr(body, "type")
                .map(ToString::to_string)
                .unwrap_or_default(),
            attr(body, "default")
                .map(ToString::to_string)
                .unwrap_or_default(),
            body.blocks()
                .filter(|v| v.identifier() == "validation")
                .count()
        )
    };
    let reference = variables(&tf_root().join(CLOUD_MODULES[0]));
    for m in CLOUD_MODULES {
        let vars = variables(&tf_root().join(m));
        for name in CORE.iter().chain(["extra_values"].iter()) {
            let v = vars
                .get(*name)
                .unwrap_or_else(|| panic!("{m} lacks core variable {name}"));
            assert_eq!(shape(v), shape(&reference[*name]), "{m}: variable {name}");
        }
        let outs = outputs(&tf_root().join(m));
        for o in [
            "gateway_address",
            "gateway_endpoint",
            "cluster_id",
            "trust_domain",
            "region",
            "zone",
        ] {
            assert!(outs.contains(o), "{m} lacks output {o}");
        }
    }
}

// ------------------------------------------------------- chart values check --

fn object_key(k: &ObjectKey) -> String {
    match k {
        ObjectKey::Identifier(i) => i.as_str().to_owned(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        ObjectKey::Expression(e) => e.to_string(),
        other => other.to_string(),
    }
}

/// The schema of `key` inside the object schema `schema`, if the key is allowed.
fn child_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(s) = schema["properties"].get(key) {
        return Some(s);
    }
    match &schema["additionalProperties"] {
        Value::Object(_) => Some(&schema["additionalProperties"]),
        Value::Bool(true) => Some(&Value::Null),
        _ => None,
    }
}

fn type_allows(schema: &Value, t: &str) -> bool {
    match &schema["type"] {
        Value::String(s) => {
            s == t || (t == "integer" && s == "number") || (t == "number" && s == "integer")
        }
        Value::Array(a) => a.iter().any(|s| s == t),
        _ => true,
    }
}

/// Walks an HCL value passed to the chart, checking each key path against the
/// chart schema and each literal leaf against its type.
fn check_values(expr: &Expression, schema: &Value, path: &str, problems: &mut Vec<String>) {
    match expr {
        Expression::Object(o) => {
            if !type_allows(schema, "object") {
                problems.push(format!(
                    "{path}: an object where the schema wants {}",
                    schema["type"]
                ));
            }
            for (k, v) in o {
                let key = object_key(k);
                let p = format!("{path}.{key}");
                match child_schema(schema, &key) {
                    Some(s) => check_values(v, s, &p, problems),
                    None => problems.push(format!("{p}: not in values.schema.json")),
                }
            }
        }
        Expression::Conditional(c) => {
            check_values(&c.true_expr, schema, path, problems);
            check_values(&c.false_expr, schema, path, problems);
        }
        Expression::Parenthesis(e) => check_values(e, schema, path, problems),
        Expression::String(_) | Expression::TemplateExpr(_) if !type_allows(schema, "string") => {
            problems.push(format!(
                "{path}: a string where the schema wants {}",
                schema["type"]
            ));
        }
        Expression::Bool(_) if !type_allows(schema, "boolean") => {
            problems.push(format!(
                "{path}: a bool where the schema wants {}",
                schema["type"]
            ));
        }
        Expression::Number(_) if !type_allows(schema, "number") => {
            problems.push(format!(
                "{path}: a number where the schema wants {}",
                schema["type"]
            ));
        }
        Expression::Array(items) => {
            if !type_allows(schema, "array") {
                problems.push(format!(
                    "{path}: a list where the schema wants {}",
                    schema["type"]
                ));
            }
            for item in items {
                check_values(item, &schema["items"], &format!("{path}[]"), problems);
            }
        }
        // Variables, traversals and function results: typed by the variables.
        _ => {}
    }
}

/// Object literals given to the chart: the shared module's `chart_values`
/// local, and every `yamlencode({...})` passed as `extra_values`.
fn chart_value_literals(body: &Body, out: &mut Vec<(String, Expression)>) {
    for a in body.attributes() {
        match (a.key(), a.expr()) {
            ("chart_values", e) => out.push(("chart_values".into(), e.clone())),
            ("extra_values", Expression::Array(items)) => {
                for item in items {
                    if let Expression::FuncCall(f) = item
                        && f.name.name.as_str() == "yamlencode"
                    {
                        out.push(("extra_values".into(), f.args[0].clone()));
                    }
                }
            }
            _ => {}
        }
    }
    for b in body.blocks() {
        chart_value_literals(b.body(), out);
    }
}

#[test]
fn values_passed_to_the_chart_exist_in_its_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("charts/causeway/values.schema.json")).unwrap(),
    )
    .unwrap();
    let mut literals = Vec::new();
    for f in tf_files(&tf_root()) {
        let mut found = Vec::new();
        chart_value_literals(&parse(&f), &mut found);
        literals.extend(
            found
                .into_iter()
                .map(|(k, e)| (format!("{} {k}", f.display()), e)),
        );
    }
    assert!(
        literals.iter().any(|(w, _)| w.ends_with("chart_values")),
        "the shared module's chart_values local was not found"
    );
    let mut problems = Vec::new();
    for (whence, expr) in &literals {
        let mut p = Vec::new();
        check_values(expr, &schema, "", &mut p);
        problems.extend(p.into_iter().map(|e| format!("{whence}: {e}")));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // The check itself rejects an unknown key and a wrong type.
    let bad = hcl::parse("chart_values = { gateway = { bogus = 1, replicas = \"two\" } }").unwrap();
    let mut found = Vec::new();
    chart_value_literals(&bad, &mut found);
    let mut p = Vec::new();
    check_values(&found[0].1, &schema, "", &mut p);
    assert_eq!(p.len(), 2, "{p:?}");
}

/// The chart path the shared module defaults to is the real chart.
#[test]
fn shared_module_points_at_the_chart() {
    let dir = tf_root().join("modules/causeway-release");
    let main = std::fs::read_to_string(dir.join("main.tf")).unwrap();
    let rel = "/../../../charts/causeway";
    assert!(
        main.contains(&format!("\"${{path.module}}{rel}\"")),
        "default chart path changed"
    );
    assert!(dir.join(format!(".{rel}/Chart.yaml")).is_file());
    assert!(
        dir.join(format!(".{rel}/../causeway-crds/Chart.yaml"))
            .is_file()
    );
}
