//! The MCS CRDs in `charts/causeway-crds/templates/` are exactly what the
//! agent's Rust types generate, and match the upstream MCS shape.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use causeway_agent::kubernetes::crd::crds;

fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/causeway-crds/templates")
}

#[test]
fn chart_copy_matches_the_generated_crds() {
    for (name, text) in crds().unwrap() {
        let path = chart_dir().join(&name);
        let on_disk =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            on_disk == text,
            "{} drifted from the Rust types; run `cargo run -p causeway-agent --bin causeway-crdgen`",
            path.display()
        );
    }
}

/// The generated YAML with the Helm include lines removed, parsed.
fn parsed(name: &str) -> serde_json::Value {
    let (_, text) = crds()
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap();
    let plain: String = text
        .lines()
        .filter(|l| !l.contains("{{"))
        .map(|l| format!("{l}\n"))
        .collect();
    serde_norway::from_str(&plain).unwrap()
}

#[test]
fn crds_follow_the_upstream_mcs_schema() {
    for (file, kind, plural) in [
        (
            "serviceexports.multicluster.x-k8s.io.yaml",
            "ServiceExport",
            "serviceexports",
        ),
        (
            "serviceimports.multicluster.x-k8s.io.yaml",
            "ServiceImport",
            "serviceimports",
        ),
    ] {
        let crd = parsed(file);
        let spec = &crd["spec"];
        assert_eq!(spec["group"], "multicluster.x-k8s.io");
        assert_eq!(spec["scope"], "Namespaced");
        assert_eq!(spec["names"]["kind"], kind);
        assert_eq!(spec["names"]["plural"], plural);
        let v = &spec["versions"][0];
        assert_eq!(v["name"], "v1alpha1");
        assert_eq!(v["served"], true);
        assert_eq!(v["storage"], true);
        assert!(
            v["subresources"]["status"].is_object(),
            "{kind} needs the status subresource"
        );
        assert!(v["schema"]["openAPIV3Schema"]["properties"]["status"].is_object());
    }
    let si = parsed("serviceimports.multicluster.x-k8s.io.yaml");
    let props = &si["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"];
    let types: Vec<&str> = props["spec"]["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["ClusterSetIP", "Headless"]);
    assert!(props["spec"]["properties"]["ports"]["items"]["properties"]["port"].is_object());
    assert!(
        props["status"]["properties"]["clusters"]["items"]["properties"]["cluster"].is_object()
    );
    let se = parsed("serviceexports.multicluster.x-k8s.io.yaml");
    let cond = &se["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["conditions"]["items"];
    let required: Vec<&str> = cond["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["type", "status", "lastTransitionTime", "reason", "message"] {
        assert!(
            required.contains(&f),
            "condition field {f} must be required"
        );
    }
    // Field for field with upstream mcs-api v1alpha1 where it matters on
    // the wire: core/v1's `clientIP` (not `clientIp`), list types that make
    // server-side apply merge conditions and clusters by key, `ports` and
    // `type` required, at most two clusterset IPs (dual stack), ipFamilies
    // and ServiceImport conditions.
    let spec = &props["spec"]["properties"];
    assert!(
        spec["sessionAffinityConfig"]["properties"]["clientIP"]["properties"]["timeoutSeconds"]
            .is_object(),
        "{}",
        spec["sessionAffinityConfig"]
    );
    assert!(spec["sessionAffinityConfig"]["properties"]["clientIp"].is_null());
    assert_eq!(spec["ports"]["x-kubernetes-list-type"], "atomic");
    assert_eq!(spec["ips"]["maxItems"], 2);
    assert_eq!(spec["ipFamilies"]["type"], "array");
    let required: Vec<&str> = props["spec"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, vec!["ports", "type"]);
    let status = &props["status"]["properties"];
    for (list, key) in [("clusters", "cluster"), ("conditions", "type")] {
        assert_eq!(status[list]["x-kubernetes-list-type"], "map", "{list}");
        assert_eq!(
            status[list]["x-kubernetes-list-map-keys"],
            serde_json::json!([key])
        );
    }
    let export_conditions = &se["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        ["properties"]["conditions"];
    assert_eq!(export_conditions["x-kubernetes-list-type"], "map");
    assert_eq!(
        export_conditions["x-kubernetes-list-map-keys"],
        serde_json::json!(["type"])
    );
    let names = |crd: &serde_json::Value| -> Vec<String> {
        crd["spec"]["names"]["shortNames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&si), ["svcim", "svcimport"]);
    assert_eq!(names(&se), ["svcexport", "svcex"]);
    let cp = parsed("clusterproperties.about.k8s.io.yaml");
    assert_eq!(cp["spec"]["group"], "about.k8s.io");
    assert_eq!(cp["spec"]["scope"], "Cluster");
}
