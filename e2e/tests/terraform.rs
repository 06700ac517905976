//! Terraform checks that need no provider download.
//!
//! - The real `terraform` (required: these tests fail, never skip, without
//!   it): `fmt -check`; `init -backend=false` + `validate` of every
//!   directory's variable declarations; `plan` of single variables to prove
//!   their validation rules accept and refuse what they should; `console`
//!   evaluation of the shared release module's chart values, rendered with
//!   the real chart by helm.
//! - Structural checks over the HCL parsed with `hcl-rs`: module layout,
//!   documented and typed variables, README tables generated from the
//!   declarations, module calls that match the callee's variables, chart
//!   values that exist in the chart's schema, the same core variables in the
//!   three cloud modules, and data flow traced through locals, module outputs
//!   and module arguments: egress CIDRs, allowlists, client IP preservation,
//!   workload identity.
//!
//! What needs the providers (resource arguments and attributes against the
//! providers' schemas) is `terraform init && terraform validate` in each
//! example; see docs/deploy.md.
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

/// A `terraform` command run in `dir`, isolated from the user's CLI
/// configuration and from the network (no checkpoint calls).
fn terraform(dir: &Path) -> Command {
    let mut cmd = Command::new("terraform");
    cmd.current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", "/dev/null")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0");
    cmd
}

fn terraform_missing(e: &std::io::Error) -> String {
    format!(
        "terraform could not be run ({e}); the Terraform tests need it and do not skip. \
         Run scripts/setup.sh, which says how to install it"
    )
}

/// Runs terraform in `dir`; returns (success, stdout + stderr).
fn run_terraform(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = terraform(dir)
        .args(args)
        .arg("-no-color")
        .output()
        .unwrap_or_else(|e| panic!("{}", terraform_missing(&e)));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A scratch root module holding `blocks`, initialised (it has no provider,
/// so `init` needs no network).
fn scratch_module(blocks: Vec<Block>) -> tempfile::TempDir {
    let (dir, (ok, out)) = try_scratch_module(blocks);
    assert!(
        ok,
        "terraform init of a provider-free module failed:\n{out}"
    );
    dir
}

fn try_scratch_module(blocks: Vec<Block>) -> (tempfile::TempDir, (bool, String)) {
    let dir = tempfile::tempdir().unwrap();
    let body = Body::builder().add_blocks(blocks).build();
    std::fs::write(dir.path().join("main.tf"), hcl::to_string(&body).unwrap()).unwrap();
    let init = run_terraform(dir.path(), &["init", "-backend=false", "-input=false"]);
    (dir, init)
}

// ------------------------------------------------------------------ tests --

#[test]
fn terraform_fmt_is_clean() {
    let out = terraform(&tf_root())
        .args(["fmt", "-check", "-recursive", "-diff"])
        .arg(tf_root())
        .output()
        .unwrap_or_else(|e| panic!("{}", terraform_missing(&e)));
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
    const CORE: [&str; 19] = [
        "cluster_id",
        "trust_domain",
        "jurisdictions",
        "zone",
        "federation_endpoint",
        "peer_gateway_cidrs",
        "egress_cidrs",
        "copy_federation_token",
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
            "gateway_dns_name",
            "egress_cidrs",
            "gateway_service_account",
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

// ------------------------------------------------------------- data flow --
//
// Where does a value come from? `trace` follows an expression's references
// through locals, into the output of a called module, and from a called
// module's variable back to the argument its caller passes, until it reaches
// what Terraform cannot look through here: a variable of the root, a data
// source, a resource. The result over-approximates ("may come from"): every
// branch of a conditional counts.

/// One reference: its root (`var`, `local`, `module`, `data`, a resource
/// type) and the attribute names after it (indexes and splats skipped).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ref {
    root: String,
    attrs: Vec<String>,
}

/// Roots that name no configuration object.
const NOT_REFERENCES: [&str; 5] = ["count", "each", "path", "self", "terraform"];

/// Every reference in `expr`; `bound` are iteration variables in scope.
fn refs(expr: &Expression, bound: &[String], out: &mut Vec<Ref>) {
    collect_refs(expr, bound, false, out);
}

/// The references `expr`'s value may be made of: as [`refs`], without
/// those that only select (conditions, indexes, `for` filters).
fn value_refs(expr: &Expression, out: &mut Vec<Ref>) {
    collect_refs(expr, &[], true, out);
}

/// Records a reference unless its root is an iteration variable or names no
/// configuration object.
fn push_ref(root: &str, attrs: Vec<String>, bound: &[String], out: &mut Vec<Ref>) {
    if !bound.iter().any(|b| b == root) && !NOT_REFERENCES.contains(&root) {
        out.push(Ref {
            root: root.to_owned(),
            attrs,
        });
    }
}

fn collect_refs(expr: &Expression, bound: &[String], values_only: bool, out: &mut Vec<Ref>) {
    let recurse = |e: &Expression, out: &mut Vec<Ref>| collect_refs(e, bound, values_only, out);
    match expr {
        Expression::Variable(v) => push_ref(v.as_str(), Vec::new(), bound, out),
        Expression::Traversal(t) => {
            let mut attrs = Vec::new();
            for op in &t.operators {
                match op {
                    hcl::TraversalOperator::GetAttr(id) => attrs.push(id.as_str().to_owned()),
                    hcl::TraversalOperator::Index(e) if !values_only => recurse(e, out),
                    _ => {}
                }
            }
            match &t.expr {
                Expression::Variable(v) => push_ref(v.as_str(), attrs, bound, out),
                other => recurse(other, out),
            }
        }
        Expression::Array(items) => items.iter().for_each(|e| recurse(e, out)),
        Expression::Object(o) => {
            for (k, v) in o {
                if let ObjectKey::Expression(e) = k {
                    recurse(e, out);
                }
                recurse(v, out);
            }
        }
        Expression::TemplateExpr(t) => {
            let template = hcl::Template::from_expr(t).unwrap();
            template_refs(&template, bound, values_only, out);
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|e| recurse(e, out)),
        Expression::Parenthesis(e) => recurse(e, out),
        Expression::Conditional(c) => {
            if !values_only {
                recurse(&c.cond_expr, out);
            }
            recurse(&c.true_expr, out);
            recurse(&c.false_expr, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            hcl::Operation::Unary(u) => recurse(&u.expr, out),
            hcl::Operation::Binary(b) => {
                recurse(&b.lhs_expr, out);
                recurse(&b.rhs_expr, out);
            }
        },
        Expression::ForExpr(f) => {
            recurse(&f.collection_expr, out);
            let mut inner = bound.to_vec();
            inner.push(f.value_var.as_str().to_owned());
            if let Some(k) = &f.key_var {
                inner.push(k.as_str().to_owned());
            }
            let cond = if values_only {
                None
            } else {
                f.cond_expr.as_ref()
            };
            for e in [f.key_expr.as_ref(), Some(&f.value_expr), cond]
                .into_iter()
                .flatten()
            {
                collect_refs(e, &inner, values_only, out);
            }
        }
        _ => {}
    }
}

fn template_refs(
    template: &hcl::Template,
    bound: &[String],
    values_only: bool,
    out: &mut Vec<Ref>,
) {
    for element in template.elements() {
        match element {
            hcl::template::Element::Interpolation(i) => {
                collect_refs(&i.expr, bound, values_only, out)
            }
            hcl::template::Element::Directive(d) => match d.as_ref() {
                hcl::template::Directive::If(i) => {
                    if !values_only {
                        collect_refs(&i.cond_expr, bound, values_only, out);
                    }
                    template_refs(&i.true_template, bound, values_only, out);
                    if let Some(f) = &i.false_template {
                        template_refs(f, bound, values_only, out);
                    }
                }
                hcl::template::Directive::For(f) => {
                    collect_refs(&f.collection_expr, bound, values_only, out);
                    let mut inner = bound.to_vec();
                    inner.push(f.value_var.as_str().to_owned());
                    if let Some(k) = &f.key_var {
                        inner.push(k.as_str().to_owned());
                    }
                    template_refs(&f.template, &inner, values_only, out);
                }
            },
            hcl::template::Element::Literal(_) => {}
        }
    }
}

/// Every expression of a body, nested blocks included.
fn body_exprs(body: &Body) -> Vec<&Expression> {
    let mut out: Vec<&Expression> = body.attributes().map(|a| a.expr()).collect();
    for b in body.blocks() {
        out.extend(body_exprs(b.body()));
    }
    out
}

/// One Terraform module (a directory) as parsed HCL.
#[derive(Clone)]
struct Module {
    /// Directory relative to `terraform/`, e.g. `aws`.
    name: String,
    dir: PathBuf,
    blocks: Vec<Block>,
}

impl Module {
    fn load(rel: &str) -> Module {
        Module::at(&tf_root().join(rel))
    }

    fn at(dir: &Path) -> Module {
        let dir = dir.canonicalize().unwrap();
        let name = dir
            .strip_prefix(tf_root().canonicalize().unwrap())
            .unwrap()
            .display()
            .to_string();
        let blocks = module_blocks(&dir);
        assert!(!blocks.is_empty(), "{name}: no .tf files");
        Module { name, dir, blocks }
    }

    fn blocks(&self, kind: &str) -> impl Iterator<Item = &Block> + '_ {
        let kind = kind.to_owned();
        self.blocks.iter().filter(move |b| b.identifier() == kind)
    }

    fn local(&self, name: &str) -> &Expression {
        self.blocks("locals")
            .find_map(|b| attr(b.body(), name))
            .unwrap_or_else(|| panic!("{}: local.{name} is not defined", self.name))
    }

    fn output(&self, name: &str) -> &Expression {
        self.blocks("output")
            .find(|b| label(b, 0) == name)
            .and_then(|b| attr(b.body(), "value"))
            .unwrap_or_else(|| panic!("{}: output {name} is not defined", self.name))
    }

    fn has_output(&self, name: &str) -> bool {
        self.blocks("output").any(|b| label(b, 0) == name)
    }

    /// A `module` block by name.
    fn call(&self, name: &str) -> &Block {
        self.blocks("module")
            .find(|b| label(b, 0) == name)
            .unwrap_or_else(|| panic!("{}: module {name} is not called", self.name))
    }

    fn callee(&self, call: &Block) -> Module {
        let Some(Expression::String(source)) = attr(call.body(), "source") else {
            panic!(
                "{}: module {} has no literal source",
                self.name,
                label(call, 0)
            )
        };
        Module::at(&self.dir.join(source))
    }

    /// A `resource` or `data` block by type and name.
    fn block(&self, kind: &str, ty: &str, name: &str) -> &Block {
        self.blocks(kind)
            .find(|b| label(b, 0) == ty && label(b, 1) == name)
            .unwrap_or_else(|| panic!("{}: {kind} {ty}.{name} is not defined", self.name))
    }

    /// The argument `arg` of block `kind ty.name` (a resource, data source or
    /// module call: `module` with ty = the call's name and no name).
    fn argument(&self, kind: &str, ty: &str, name: &str, arg: &str) -> &Expression {
        let block = if kind == "module" {
            self.call(ty)
        } else {
            self.block(kind, ty, name)
        };
        attr(block.body(), arg)
            .unwrap_or_else(|| panic!("{}: {kind} {ty} {name} has no {arg}", self.name))
    }
}

/// Where a value may come from: a module and the address read there,
/// e.g. (`aws`, `data.aws_nat_gateway.egress.public_ip`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Origin {
    module: String,
    path: String,
}

impl Origin {
    /// The object read, without the attribute: `data.t.n`, `t.n`, `var.x`.
    fn object(&self) -> String {
        let parts: Vec<&str> = self.path.split('.').collect();
        let n = match parts[0] {
            "data" => 3,
            _ => 2,
        };
        parts[..n.min(parts.len())].join(".")
    }

    fn is(&self, module: &str, object: &str) -> bool {
        self.module == module && self.object() == object
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.module, self.path)
    }
}

/// The origins of `expr` evaluated in `module`; `callers` is the chain of
/// (caller, call name) that led into `module`.
fn trace(module: &Module, expr: &Expression, callers: &[(Module, String)]) -> BTreeSet<Origin> {
    let mut out = BTreeSet::new();
    trace_into(module, expr, callers, &mut out, 0);
    out
}

fn trace_into(
    module: &Module,
    expr: &Expression,
    callers: &[(Module, String)],
    out: &mut BTreeSet<Origin>,
    depth: usize,
) {
    assert!(depth < 64, "{}: reference cycle", module.name);
    let mut found = Vec::new();
    value_refs(expr, &mut found);
    for r in found {
        let first = r.attrs.first().cloned().unwrap_or_default();
        match r.root.as_str() {
            "local" => trace_into(module, module.local(&first), callers, out, depth + 1),
            "var" if !callers.is_empty() => {
                let (caller, call) = callers.last().unwrap();
                let rest = &callers[..callers.len() - 1];
                match attr(caller.call(call).body(), &first) {
                    Some(arg) => trace_into(caller, arg, rest, out, depth + 1),
                    // Not passed: the callee's default.
                    None => {
                        out.insert(Origin {
                            module: module.name.clone(),
                            path: format!("var.{first}"),
                        });
                    }
                }
            }
            "module" => {
                let callee = module.callee(module.call(&first));
                let output = r.attrs.get(1).expect("module.<name>.<output>");
                let mut chain = callers.to_vec();
                chain.push((module.clone(), first.clone()));
                trace_into(&callee, callee.output(output), &chain, out, depth + 1);
            }
            root => {
                let path = std::iter::once(root.to_owned())
                    .chain(r.attrs.iter().cloned())
                    .collect::<Vec<_>>()
                    .join(".");
                out.insert(Origin {
                    module: module.name.clone(),
                    path,
                });
            }
        }
    }
}

fn expr(text: &str) -> Expression {
    let body = hcl::parse(&format!("x = {text}")).unwrap();
    attr(&body, "x").unwrap().clone()
}

fn show(origins: &BTreeSet<Origin>) -> String {
    origins
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value at `path` inside nested object literals (through locals).
fn object_at<'a>(module: &'a Module, mut e: &'a Expression, path: &[&str]) -> &'a Expression {
    for key in path {
        while let Expression::Traversal(_) = e {
            let mut r = Vec::new();
            refs(e, &[], &mut r);
            assert_eq!(
                r[0].root, "local",
                "{}: {key} is not an object literal",
                module.name
            );
            e = module.local(&r[0].attrs[0]);
        }
        let Expression::Object(o) = e else {
            panic!("{}: no object literal at {key}", module.name)
        };
        e = o
            .iter()
            .find(|(k, _)| object_key(k) == *key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("{}: no key {key}", module.name));
    }
    e
}

/// Every (key, value) of the object literals `e` may be built from
/// (through locals, `merge()` and conditionals).
fn object_entries(module: &Module, e: &Expression, out: &mut Vec<(String, Expression)>) {
    match e {
        Expression::Object(o) => {
            out.extend(o.iter().map(|(k, v)| (object_key(k), v.clone())));
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|a| object_entries(module, a, out)),
        Expression::Conditional(c) => {
            object_entries(module, &c.true_expr, out);
            object_entries(module, &c.false_expr, out);
        }
        Expression::Parenthesis(p) => object_entries(module, p, out),
        Expression::Traversal(_) => {
            let mut r = Vec::new();
            refs(e, &[], &mut r);
            if r.len() == 1 && r[0].root == "local" {
                object_entries(module, module.local(&r[0].attrs[0]), out);
            }
        }
        _ => {}
    }
}

/// Origins of the chart value at `path` that `cloud`'s call of the shared
/// release module produces.
fn chart_value_origins(cloud: &Module, path: &[&str]) -> BTreeSet<Origin> {
    let release = cloud.callee(cloud.call("release"));
    let values = release.local("chart_values");
    trace(
        &release,
        object_at(&release, values, path),
        &[(cloud.clone(), "release".to_owned())],
    )
}

/// Per cloud module: where its egress addresses are looked up, and the
/// cloud firewall that holds the peers' addresses.
struct Cloud {
    dir: &'static str,
    egress_lookups: &'static [&'static str],
    /// (kind, type, name, argument) of the cloud firewall rule.
    firewall: (&'static str, &'static str, &'static str, &'static str),
    /// The identity the gateway's ServiceAccount is bound to.
    identity: &'static str,
}

const CLOUDS: [Cloud; 3] = [
    Cloud {
        dir: "aws",
        egress_lookups: &["data.aws_nat_gateway.egress"],
        firewall: (
            "resource",
            "aws_vpc_security_group_ingress_rule",
            "peer_gateways",
            "for_each",
        ),
        identity: "aws_iam_role.gateway",
    },
    Cloud {
        dir: "gcp",
        egress_lookups: &["data.google_compute_address.nat"],
        firewall: (
            "resource",
            "google_compute_firewall",
            "east_west",
            "source_ranges",
        ),
        identity: "google_service_account.gateway",
    },
    Cloud {
        dir: "azure",
        egress_lookups: &[
            "data.azurerm_public_ip.egress",
            "data.azurerm_public_ip_prefix.egress",
        ],
        firewall: (
            "resource",
            "azurerm_network_security_rule",
            "east_west",
            "source_address_prefixes",
        ),
        identity: "azurerm_user_assigned_identity.gateway",
    },
];

/// Outputs and arguments that carry where peers connect *to*.
const INGRESS_OUTPUTS: [&str; 4] = [
    "gateway_address",
    "gateway_ips",
    "gateway_endpoint",
    "gateway_dns_name",
];

/// Where a cloud module's load balancer address may come from, as seen
/// from the module itself.
fn ingress_origins(m: &Module, callers: &[(Module, String)]) -> BTreeSet<Origin> {
    INGRESS_OUTPUTS
        .iter()
        .filter(|o| m.has_output(o))
        .flat_map(|o| trace(m, m.output(o), callers))
        .collect()
}

#[test]
fn every_cloud_module_outputs_its_egress_cidrs() {
    for cloud in CLOUDS {
        let m = Module::load(cloud.dir);
        let egress = trace(&m, m.output("egress_cidrs"), &[]);
        assert!(
            egress.iter().any(|o| o.is(cloud.dir, "var.egress_cidrs")),
            "{}: egress_cidrs output ignores the egress_cidrs input: {}",
            cloud.dir,
            show(&egress)
        );
        for lookup in cloud.egress_lookups {
            assert!(
                egress.iter().any(|o| o.is(cloud.dir, lookup)),
                "{}: egress_cidrs output does not come from {lookup}: {}",
                cloud.dir,
                show(&egress)
            );
        }
        let ingress = ingress_origins(&m, &[]);
        assert!(!ingress.is_empty(), "{}: no ingress outputs", cloud.dir);
        let both: Vec<_> = egress.intersection(&ingress).collect();
        assert!(
            both.is_empty(),
            "{}: egress_cidrs includes the load balancer's address: {both:?}",
            cloud.dir
        );
        // Declared like the other core inputs: a list of CIDRs, validated.
        let vars = variables(&m.dir);
        let v = &vars["egress_cidrs"];
        assert_eq!(attr(v.body(), "type").unwrap().to_string(), "list(string)");
        assert_eq!(v.body().blocks().count(), 1, "{}: validation", cloud.dir);
    }
}

/// A cloud module's peer_gateway_cidrs reach the cloud firewall, the load
/// balancer's source ranges and the gateway NetworkPolicy.
#[test]
fn peer_allowlists_reach_firewall_load_balancer_and_network_policy() {
    for cloud in CLOUDS {
        let m = Module::load(cloud.dir);
        let peers = Origin {
            module: cloud.dir.to_owned(),
            path: "var.peer_gateway_cidrs".into(),
        };
        let (kind, ty, name, arg) = cloud.firewall;
        let fw = trace(&m, m.argument(kind, ty, name, arg), &[]);
        assert!(
            fw.contains(&peers),
            "{}: {ty}.{name}: {}",
            cloud.dir,
            show(&fw)
        );
        for path in [
            &["gateway", "eastWestService", "loadBalancerSourceRanges"][..],
            &["gateway", "networkPolicy", "eastWestFrom"][..],
        ] {
            let o = chart_value_origins(&m, path);
            assert!(
                o.contains(&peers),
                "{}: chart value {} does not carry peer_gateway_cidrs: {}",
                cloud.dir,
                path.join("."),
                show(&o)
            );
        }
    }
}

#[test]
fn federation_example_allows_each_sides_egress_on_the_other() {
    let ex = Module::load("examples/eks-gke-federation");
    let clouds: Vec<(String, String)> = ex
        .blocks("module")
        .filter_map(|b| {
            let callee = ex.callee(b);
            CLOUDS
                .iter()
                .any(|c| c.dir == callee.name)
                .then(|| (label(b, 0).to_owned(), callee.name))
        })
        .collect();
    assert!(clouds.len() >= 2, "only {clouds:?} cloud modules");
    for (a, _) in &clouds {
        let allowed = trace(&ex, ex.argument("module", a, "", "peer_gateway_cidrs"), &[]);
        let mut expected = BTreeSet::new();
        for (b, b_dir) in clouds.iter().filter(|(b, _)| b != a) {
            let egress = trace(&ex, &expr(&format!("module.{b}.egress_cidrs")), &[]);
            let cloud = CLOUDS.iter().find(|c| c.dir == b_dir).unwrap();
            for lookup in cloud.egress_lookups {
                // The lookup is configured here (e.g. Cloud NAT address names)
                // or at least present in the module's egress.
                assert!(
                    egress.iter().any(|o| o.is(b_dir, lookup)),
                    "module.{b}.egress_cidrs lacks {lookup}: {}",
                    show(&egress)
                );
            }
            let callee = ex.callee(ex.call(b));
            let mut ingress = ingress_origins(&callee, &[(ex.clone(), b.clone())]);
            if let Some(eips) = attr(ex.call(b).body(), "eip_allocation_ids") {
                ingress.extend(trace(&ex, eips, &[]));
            }
            let objects = |s: &BTreeSet<Origin>| -> BTreeSet<(String, String)> {
                s.iter().map(|o| (o.module.clone(), o.object())).collect()
            };
            let wrong: Vec<_> = objects(&allowed)
                .intersection(&objects(&ingress))
                .cloned()
                .collect();
            assert!(
                wrong.is_empty(),
                "module.{a} admits module.{b}'s load balancer address, not its egress: {wrong:?}"
            );
            expected.extend(egress);
        }
        assert_eq!(
            show(&allowed),
            show(&expected),
            "module.{a}.peer_gateway_cidrs must be exactly the other sides' egress_cidrs"
        );
    }
}

#[test]
fn aws_nlb_preserves_client_ip_and_admits_its_health_checks() {
    let m = Module::load("aws");
    let mut entries = Vec::new();
    object_entries(
        &m,
        m.argument("module", "release", "", "east_west_service_annotations"),
        &mut entries,
    );
    let value = |key: &str| -> String {
        let (_, v) = entries
            .iter()
            .find(|(k, _)| k == key)
            .unwrap_or_else(|| panic!("no annotation {key}"));
        let Expression::String(s) = v else {
            panic!("{key} is not a literal: {v}")
        };
        s.clone()
    };
    assert_eq!(
        value("service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"),
        "ip"
    );
    let attrs = value("service.beta.kubernetes.io/aws-load-balancer-target-group-attributes");
    assert!(
        attrs
            .split(',')
            .any(|a| a.trim() == "preserve_client_ip.enabled=true"),
        "IP targets without client IP preservation: {attrs}"
    );
    // Health checks come from the NLB's subnets: the NetworkPolicy admits
    // them beside the peers.
    let from = chart_value_origins(&m, &["gateway", "networkPolicy", "eastWestFrom"]);
    for object in ["data.aws_subnet.load_balancer", "data.aws_vpc.this"] {
        assert!(
            from.iter().any(|o| o.is("aws", object)),
            "NetworkPolicy eastWestFrom lacks {object}: {}",
            show(&from)
        );
    }
    // ... but the load balancer's source ranges stay the peers only.
    let ranges = chart_value_origins(
        &m,
        &["gateway", "eastWestService", "loadBalancerSourceRanges"],
    );
    assert_eq!(show(&ranges), "aws: var.peer_gateway_cidrs");
}

/// Per cloud: the DNS record resource and where its target is written
/// (a nested block's argument is given as `block.argument`).
const DNS_RECORDS: [(&str, &str, &[&str]); 3] = [
    ("aws", "aws_route53_record", &["alias.name"]),
    ("gcp", "google_dns_record_set", &["rrdatas"]),
    (
        "azure",
        "azurerm_dns_a_record",
        &["target_resource_id", "records"],
    ),
];

/// Each cloud module can publish its gateway under a name of your zone
/// (Route 53, Cloud DNS, Azure DNS): optional (no record without
/// `dns_record`), pointing at the east-west load balancer and never at the
/// egress addresses, and the name is what the gateway advertises to its
/// peers and what `gateway_endpoint` reports.
#[test]
fn every_cloud_module_offers_an_optional_dns_record_for_its_gateway() {
    for (dir, ty, targets) in DNS_RECORDS {
        let m = Module::load(dir);
        let from_dns_var = |o: &BTreeSet<Origin>| o.iter().any(|o| o.is(dir, "var.dns_record"));
        let vars = variables(&m.dir);
        let v = vars
            .get("dns_record")
            .unwrap_or_else(|| panic!("{dir}: no dns_record input"));
        assert_eq!(
            attr(v.body(), "default")
                .map(ToString::to_string)
                .as_deref(),
            Some("null"),
            "{dir}: the DNS record must stay optional"
        );
        let records: Vec<&Block> = m.blocks("resource").filter(|b| label(b, 0) == ty).collect();
        assert_eq!(records.len(), 1, "{dir}: one {ty}");
        let name = label(records[0], 1).to_owned();
        // Its count is decided by dns_record alone.
        let mut count = Vec::new();
        refs(m.argument("resource", ty, &name, "count"), &[], &mut count);
        let count: BTreeSet<String> = count
            .iter()
            .map(|r| format!("{}.{}", r.root, r.attrs.join(".")))
            .collect();
        assert_eq!(
            count,
            BTreeSet::from(["var.dns_record".to_owned()]),
            "{dir}: {ty} count"
        );
        let record_name = trace(
            &m,
            attr(records[0].body(), "name").expect("record name"),
            &[],
        );
        assert!(
            from_dns_var(&record_name),
            "{dir}: {ty} name: {}",
            show(&record_name)
        );

        // The record points at the load balancer's address only.
        let mut target = BTreeSet::new();
        for t in targets {
            let e = match t.split_once('.') {
                Some((block, arg)) => records[0]
                    .body()
                    .blocks()
                    .find(|b| b.identifier() == block)
                    .and_then(|b| attr(b.body(), arg))
                    .unwrap_or_else(|| panic!("{dir}: {ty} has no {t}")),
                None => m.argument("resource", ty, &name, t),
            };
            target.extend(trace(&m, e, &[]));
        }
        target.retain(|o| !o.path.starts_with("var.reserve_"));
        assert!(!target.is_empty(), "{dir}: {ty} points nowhere");
        let lb = ingress_origins(&m, &[]);
        let lb_objects: BTreeSet<String> = lb
            .iter()
            .map(|o| format!("{}: {}", o.module, o.object()))
            .collect();
        for o in &target {
            assert!(
                lb_objects.contains(&format!("{}: {}", o.module, o.object())),
                "{dir}: {ty} points at {o}, not at the east-west load balancer ({})",
                show(&lb)
            );
        }
        let egress = trace(&m, m.output("egress_cidrs"), &[]);
        assert!(
            target.is_disjoint(&egress),
            "{dir}: {ty} points at an egress address"
        );

        // Peers dial the name: it is advertised and reported.
        let advertised = chart_value_origins(&m, &["gateway", "advertisedEndpoints"]);
        assert!(
            from_dns_var(&advertised),
            "{dir}: advertisedEndpoints: {}",
            show(&advertised)
        );
        let endpoint = trace(&m, m.output("gateway_endpoint"), &[]);
        assert!(
            from_dns_var(&endpoint),
            "{dir}: gateway_endpoint: {}",
            show(&endpoint)
        );
    }
}

/// `data.aws_region.*.name` is deprecated in AWS provider v6, which the
/// version constraint admits; the module takes the region from the cluster.
#[test]
fn no_deprecated_aws_region_name_and_azure_ip_outside_node_resource_group() {
    for f in tf_files(&tf_root()) {
        let body = parse(&f);
        for e in body
            .blocks()
            .flat_map(|b| body_exprs(b.body()))
            .chain(body_exprs(&body))
        {
            let mut r = Vec::new();
            refs(e, &[], &mut r);
            for r in r {
                assert!(
                    !(r.root == "data"
                        && r.attrs.first().is_some_and(|t| t == "aws_region")
                        && r.attrs.get(2).is_some_and(|a| a == "name")),
                    "{}: data.aws_region.*.name is deprecated in AWS provider v6",
                    f.display()
                );
            }
        }
    }
    let m = Module::load("aws");
    assert_eq!(
        show(&trace(&m, &expr("local.region"), &[])),
        "aws: data.aws_eks_cluster.this.arn"
    );
    let az = Module::load("azure");
    let rg = trace(
        &az,
        az.argument(
            "resource",
            "azurerm_public_ip",
            "east_west",
            "resource_group_name",
        ),
        &[],
    );
    assert!(
        !rg.iter().any(|o| o.path.ends_with("node_resource_group")),
        "the east-west public IP is created in the AKS node resource group: {}",
        show(&rg)
    );
    let lb_rg = trace(
        &az,
        &expr(
            "local.lb_annotations[\"service.beta.kubernetes.io/azure-load-balancer-resource-group\"]",
        ),
        &[],
    );
    assert!(
        !lb_rg
            .iter()
            .any(|o| o.path.ends_with("node_resource_group"))
    );
}

/// The workload identity binds exactly the ServiceAccount the chart creates
/// and the ServiceAccount carries the identity's annotation.
#[test]
fn workload_identity_binds_the_gateway_service_account() {
    for cloud in CLOUDS {
        let m = Module::load(cloud.dir);
        let vars = variables(&m.dir);
        let wi = vars
            .get("workload_identity")
            .unwrap_or_else(|| panic!("{}: no workload_identity input", cloud.dir));
        assert_eq!(
            attr(wi.body(), "default")
                .map(ToString::to_string)
                .as_deref(),
            Some("null"),
            "{}: workload identity must stay optional",
            cloud.dir
        );
        let annotations = trace(
            &m,
            m.argument("module", "release", "", "service_account_annotations"),
            &[],
        );
        assert!(
            annotations
                .iter()
                .any(|o| o.module == cloud.dir && o.object() == cloud.identity),
            "{}: ServiceAccount annotations do not name {}: {}",
            cloud.dir,
            cloud.identity,
            show(&annotations)
        );
        // Every resource that names a Kubernetes subject takes it from the
        // release module's ServiceAccount (namespace and release name).
        let subjects: BTreeSet<Origin> = m
            .blocks("resource")
            .flat_map(|b| body_exprs(b.body()))
            .filter(|e| {
                let mut r = Vec::new();
                refs(e, &[], &mut r);
                r.iter().any(|r| r.root == "local" && r.attrs[0] == "sa")
            })
            .flat_map(|e| trace(&m, e, &[]))
            .collect();
        for input in ["var.namespace", "var.release_name"] {
            assert!(
                subjects.iter().any(|o| o.is(cloud.dir, input)),
                "{}: identity bindings do not follow {input}: {}",
                cloud.dir,
                show(&subjects)
            );
        }
    }
}

// ------------------------------------------------- terraform, offline --

/// `terraform validate` of every directory's variable declarations (types,
/// defaults against types, validation rules), in a provider-free copy.
#[test]
fn variable_declarations_pass_terraform_validate() {
    let mut checked = 0;
    for dir in tf_dirs() {
        let vars: Vec<Block> = variables(&dir).into_values().collect();
        if vars.is_empty() {
            continue;
        }
        let scratch = scratch_module(vars);
        let (ok, out) = run_terraform(scratch.path(), &["validate"]);
        assert!(ok, "{}: terraform validate:\n{out}", dir.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} directories validated");
    // The check can fail: a default that does not match its type.
    let bad = hcl::parse(
        "variable \"x\" {\n description = \"d\"\n type = list(string)\n default = {a = {b = 1}}\n}\n",
    )
    .unwrap();
    let (_scratch, (ok, out)) = try_scratch_module(bad.into_blocks().collect());
    assert!(!ok && out.contains("Invalid default value"), "{out}");
}

/// Validation rules accept good values and refuse bad ones with their own
/// message, evaluated by terraform (`plan` of the single variable).
#[test]
fn variable_validations_accept_and_refuse() {
    // (module, variable, good value, bad value)
    let cases: [(&str, &str, &str, &str); 12] = [
        (
            "aws",
            "egress_cidrs",
            r#"["203.0.113.7/32"]"#,
            r#"["203.0.113.7"]"#,
        ),
        (
            "gcp",
            "egress_cidrs",
            r#"["198.51.100.0/28"]"#,
            r#"["nat"]"#,
        ),
        ("azure", "egress_cidrs", "[]", r#"["10.0.0.0/33"]"#),
        ("aws", "peer_gateway_cidrs", r#"["203.0.113.7/32"]"#, "[]"),
        (
            "aws",
            "dns_record",
            r#"{ zone_id = "Z1", name = "gw.example.com" }"#,
            r#"{ zone_id = "Z1", name = "Not A Name" }"#,
        ),
        (
            "aws",
            "workload_identity",
            r#"{ mode = "pod_identity" }"#,
            r#"{ mode = "static-keys" }"#,
        ),
        (
            "aws",
            "workload_identity",
            r#"{ extra_secret_arns = ["arn:aws:secretsmanager:eu-west-1:1:secret:svid"] }"#,
            r#"{ extra_secret_arns = ["svid"] }"#,
        ),
        (
            "gcp",
            "workload_identity",
            r#"{ google_service_account_id = "causeway-gw" }"#,
            r#"{ google_service_account_id = "Causeway_GW" }"#,
        ),
        (
            "gcp",
            "dns_record",
            r#"{ managed_zone = "gw", name = "gke.gw.example.com." }"#,
            r#"{ managed_zone = "gw", name = "gke" }"#,
        ),
        (
            "azure",
            "dns_record",
            r#"{ zone_name = "gw.example.com", resource_group_name = "dns", name = "aks.gw.example.com" }"#,
            r#"{ zone_name = "gw.example.com", resource_group_name = "dns", name = "aks.other.example.com" }"#,
        ),
        (
            "azure",
            "egress_public_ip_ids",
            r#"["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/out-1"]"#,
            r#"["out-1"]"#,
        ),
        (
            "azure",
            "workload_identity",
            r#"{ key_vault_authorization = "access_policy" }"#,
            r#"{ key_vault_authorization = "sas" }"#,
        ),
    ];
    for (module, name, good, bad) in cases {
        let var = variables(&tf_root().join(module)).remove(name).unwrap();
        let messages: Vec<String> = var
            .body()
            .blocks()
            .filter_map(|v| match attr(v.body(), "error_message") {
                Some(Expression::String(s)) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let scratch = scratch_module(vec![var]);
        let plan = |value: &str| {
            run_terraform(
                scratch.path(),
                &["plan", "-input=false", "-var", &format!("{name}={value}")],
            )
        };
        let (ok, out) = plan(good);
        assert!(ok, "{module}: {name} = {good} refused:\n{out}");
        let (ok, out) = plan(bad);
        let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            !ok && messages
                .iter()
                .any(|m| flat.contains(&m.split_whitespace().collect::<Vec<_>>().join(" "))),
            "{module}: {name} = {bad} not refused by its validation:\n{out}"
        );
    }
}

// ---------------------------------------------------------------- READMEs --

const DOCS_BEGIN: &str = "<!-- BEGIN_TF_DOCS (generated from variables.tf and outputs.tf) -->";
const DOCS_END: &str = "<!-- END_TF_DOCS -->";

/// A type constraint or default on one line: `object({ a = string, b = optional(number, 1) })`.
fn one_line(e: &Expression) -> String {
    match e {
        Expression::FuncCall(f) => format!(
            "{}({})",
            f.name.name.as_str(),
            f.args.iter().map(one_line).collect::<Vec<_>>().join(", ")
        ),
        Expression::Object(o) if !o.is_empty() => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("{} = {}", object_key(k), one_line(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expression::Array(items) => format!(
            "[{}]",
            items.iter().map(one_line).collect::<Vec<_>>().join(", ")
        ),
        other => other
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn description(block: &Block) -> String {
    match attr(block.body(), "description") {
        Some(Expression::String(s)) => cell(s),
        Some(other) => cell(&other.to_string()),
        None => String::new(),
    }
}

/// The Inputs and Outputs tables of a module, in declaration order.
fn docs_table(dir: &Path) -> String {
    let blocks = module_blocks(dir);
    let mut out = String::from(
        "## Inputs\n\n| Name | Description | Type | Default | Required |\n|---|---|---|---|:---:|\n",
    );
    for v in blocks.iter().filter(|b| b.identifier() == "variable") {
        let body = v.body();
        let default = attr(body, "default");
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} | {} |\n",
            label(v, 0),
            description(v),
            attr(body, "type").map(one_line).unwrap_or_default(),
            default.map_or("n/a".to_owned(), |d| format!("`{}`", one_line(d))),
            if default.is_some() { "no" } else { "yes" },
        ));
    }
    out.push_str("\n## Outputs\n\n| Name | Description |\n|---|---|\n");
    for o in blocks.iter().filter(|b| b.identifier() == "output") {
        out.push_str(&format!("| `{}` | {} |\n", label(o, 0), description(o)));
    }
    out
}

/// Each module README's tables are generated from its declarations; run
/// with `CAUSEWAY_BLESS=1` to rewrite them after changing a variable or output.
#[test]
fn module_readmes_list_inputs_and_outputs_as_declared() {
    let bless = std::env::var_os("CAUSEWAY_BLESS").is_some();
    let mut stale = Vec::new();
    for m in MODULES {
        let dir = tf_root().join(m);
        let path = dir.join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (Some(begin), Some(end)) = (readme.find(DOCS_BEGIN), readme.find(DOCS_END)) else {
            panic!("{m}/README.md lacks the {DOCS_BEGIN} ... {DOCS_END} section")
        };
        let current = &readme[begin + DOCS_BEGIN.len()..end];
        let wanted = format!("\n{}", docs_table(&dir));
        if current != wanted {
            if bless {
                let updated = format!(
                    "{}{wanted}{}",
                    &readme[..begin + DOCS_BEGIN.len()],
                    &readme[end..]
                );
                std::fs::write(&path, updated).unwrap();
            } else {
                stale.push(m);
            }
        }
    }
    assert!(
        stale.is_empty(),
        "README tables out of date in {stale:?}: run CAUSEWAY_BLESS=1 cargo test -p causeway-e2e --test terraform"
    );
}

// ------------------------------------------ release module values, rendered --

/// The helm binary from scripts/helm.sh (found or installed once).
fn helm() -> &'static Path {
    static HELM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    HELM.get_or_init(|| {
        let script = repo_root().join("scripts/helm.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "scripts/helm.sh could not provide helm v4 (this test needs it, it does not skip):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// The shared release module reduced to its variables and locals: all it
/// computes for the chart needs no provider, so terraform evaluates it here.
struct ReleaseValues {
    scratch: tempfile::TempDir,
}

impl ReleaseValues {
    fn new() -> Self {
        let release = Module::load("modules/causeway-release");
        // Locals blocks that read only variables and locals (not the ones
        // reading back the Services' load balancer status).
        let provider_free = |b: &Block| {
            body_exprs(b.body()).iter().all(|e| {
                let mut r = Vec::new();
                refs(e, &[], &mut r);
                r.iter().all(|r| r.root == "var" || r.root == "local")
            })
        };
        let blocks: Vec<Block> = release
            .blocks
            .iter()
            .filter(|b| {
                b.identifier() == "variable" || (b.identifier() == "locals" && provider_free(b))
            })
            .cloned()
            .collect();
        assert!(
            blocks
                .iter()
                .any(|b| attr(b.body(), "chart_values").is_some()),
            "the chart_values local reads more than variables"
        );
        ReleaseValues {
            scratch: scratch_module(blocks),
        }
    }

    /// `expr` evaluated by `terraform console` with `vars`, as JSON.
    fn eval(&self, expr: &str, vars: &[(&str, &str)]) -> Value {
        use std::io::Write;
        let mut cmd = terraform(self.scratch.path());
        cmd.args(["console", "-no-color"]);
        for (k, v) in vars {
            cmd.arg("-var").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}", terraform_missing(&e)));
        writeln!(child.stdin.take().unwrap(), "jsonencode({expr})").unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "terraform console {expr}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The console prints the JSON text as a quoted string.
        let text: String = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "console printed {stdout}{}: {e}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        serde_json::from_str(&text).unwrap()
    }

    /// The chart rendered by helm with the values terraform computed.
    fn render(&self, release: &str, vars: &[(&str, &str)]) -> Vec<Value> {
        let values = self.eval("local.chart_values", vars);
        let file = self.scratch.path().join("values.json");
        std::fs::write(&file, values.to_string()).unwrap();
        let chart = repo_root().join("charts/causeway");
        let out = Command::new(helm())
            .args(["template", release])
            .arg(&chart)
            .args(["--namespace", "causeway", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm template with the module's values failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut docs = Vec::new();
        for de in serde_norway::Deserializer::from_str(&text) {
            let v = <Value as serde::Deserialize>::deserialize(de).unwrap();
            if !v.is_null() {
                docs.push(v);
            }
        }
        docs
    }
}

fn manifest<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// CIDRs the gateway NetworkPolicy admits on the east-west port; None: any.
fn east_west_from(policy: &Value) -> Option<Vec<String>> {
    let rule = &policy["spec"]["ingress"][0];
    assert_eq!(rule["ports"][0]["port"], 15443, "{rule}");
    rule.get("from").map(|from| {
        from.as_array()
            .unwrap()
            .iter()
            .map(|f| f["ipBlock"]["cidr"].as_str().unwrap().to_owned())
            .collect()
    })
}

#[test]
fn release_module_values_render_with_the_chart() {
    let values = ReleaseValues::new();
    let cluster = r#"{ id = "eks-eu-west-1", cloud = "aws", region = "eu-west-1", zone = "eu-west-1a", jurisdictions = ["eu", "ie"], trust_domain = "eks-eu-west-1.causeway.example.com" }"#;
    let base = [
        ("release_name", "edge"),
        ("namespace", "causeway"),
        ("cluster", cluster),
        ("federation_endpoint", "https://federation.example.com"),
        ("gateway_identity_secret_name", "causeway-gateway-svid"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        base.iter().chain(extra).copied().collect()
    };
    // Peers (their egress) plus the NLB's subnets for its health checks.
    let vars = with(&[
        (
            "east_west_source_ranges",
            r#"["198.51.100.7/32", "203.0.113.0/28"]"#,
        ),
        (
            "east_west_health_check_cidrs",
            r#"["10.0.0.0/24", "198.51.100.7/32"]"#,
        ),
    ]);
    let docs = values.render("edge", &vars);
    let sa: Value = values.eval("local.gateway_service_account_name", &vars);
    let service: Value = values.eval("local.gateway_service_name", &vars);
    let gateway = sa.as_str().unwrap();
    assert_eq!(gateway, "edge-causeway-gateway");
    // The names the module computes (for identity bindings and the read-back
    // of the load balancer address) are the names the chart renders.
    manifest(&docs, "ServiceAccount", gateway);
    let svc = manifest(&docs, "Service", service.as_str().unwrap());
    assert_eq!(
        svc["spec"]["loadBalancerSourceRanges"],
        serde_json::json!(["198.51.100.7/32", "203.0.113.0/28"]),
        "the load balancer admits the peers only"
    );
    let policy = manifest(&docs, "NetworkPolicy", gateway);
    assert_eq!(
        east_west_from(policy),
        Some(vec![
            "198.51.100.7/32".to_owned(),
            "203.0.113.0/28".to_owned(),
            "10.0.0.0/24".to_owned()
        ]),
        "the NetworkPolicy admits the peers and the health checks"
    );
    // No source ranges: open to any source, health-check CIDRs or not.
    let open = values.render(
        "edge",
        &with(&[("east_west_health_check_cidrs", r#"["10.0.0.0/24"]"#)]),
    );
    assert_eq!(
        east_west_from(manifest(&open, "NetworkPolicy", gateway)),
        None
    );
    // A release name holding "causeway" is the full name, as in the chart.
    let short: Value = values.eval(
        "local.gateway_service_account_name",
        &[("release_name", "causeway")],
    );
    assert_eq!(short, "causeway-gateway");
}
