//! Sites (a cluster with its own trust domain and authority), catalogs and
//! gateways (in-process or the built binary as a child process).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use causeway_api::model::{
    AccessPolicy, AccessPolicySpec, AccessRule, CatalogSnapshot, Cluster, ClusterSpec, GatewaySpec,
    ResidencyPolicy, ResidencyPolicySpec, ServiceExport, ServiceExportSpec, ServicePort,
    ServiceSelector, TrafficPolicy, TrafficPolicySpec, ZoneEndpoints,
};
use causeway_gateway::Gateway;
use causeway_gateway::config::{ClusterConfig, GatewayConfig, IdentityConfig, IdentitySource};
use causeway_trust::{Authority, AuthorityConfig, SystemClock, TrustDomain};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One simulated cluster.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: String,
    pub region: String,
    pub zone: String,
    pub jurisdictions: Vec<String>,
    pub trust_domain: String,
    pub authority_dir: PathBuf,
    pub bundle_file: PathBuf,
    pub egress: SocketAddr,
    pub ingress: SocketAddr,
    pub admin: SocketAddr,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Site {
    /// Creates the site's authority under `root/<id>` and publishes its bundle.
    pub fn new(root: &Path, id: &str, region: &str, zone: &str, jurisdictions: &[&str]) -> Self {
        let td = format!("{id}.causeway.test");
        let authority_dir = root.join(id).join("ca");
        let authority = Authority::load_or_create(
            &authority_dir,
            TrustDomain::new(&td).unwrap(),
            AuthorityConfig::default(),
            Arc::new(SystemClock),
        )
        .unwrap();
        let bundle_file = root.join(id).join("published-bundle.json");
        std::fs::write(&bundle_file, authority.bundle().to_json_pretty()).unwrap();
        Self {
            id: id.to_owned(),
            region: region.to_owned(),
            zone: zone.to_owned(),
            jurisdictions: jurisdictions.iter().map(|s| s.to_string()).collect(),
            trust_domain: td,
            authority_dir,
            bundle_file,
            egress: loopback(free_port()),
            ingress: loopback(free_port()),
            admin: loopback(free_port()),
        }
    }

    /// The cluster resource of this site.
    pub fn cluster(&self) -> Cluster {
        Cluster::new(
            self.id.parse().unwrap(),
            ClusterSpec {
                cloud: "test".into(),
                region: self.region.clone(),
                zone: self.zone.clone(),
                jurisdictions: self.jurisdictions.clone(),
                labels: BTreeMap::new(),
                gateway: GatewaySpec {
                    endpoints: vec![self.ingress.to_string().parse().unwrap()],
                },
                trust_domain: self.trust_domain.parse().unwrap(),
            },
        )
    }

    /// The gateway configuration of this site, federated with `peers`.
    pub fn config(
        &self,
        peers: &[&Site],
        catalog_file: &Path,
        local_services: &[(&str, SocketAddr)],
    ) -> GatewayConfig {
        let cluster = ClusterConfig {
            id: self.id.parse().unwrap(),
            region: self.region.clone(),
            zone: self.zone.clone(),
            jurisdictions: self.jurisdictions.clone(),
            trust_domain: TrustDomain::new(&self.trust_domain).unwrap(),
        };
        let identity = IdentityConfig::new(IdentitySource::Authority {
            dir: self.authority_dir.clone(),
        });
        let mut c = GatewayConfig::new(cluster, identity);
        c.listeners.egress = self.egress;
        c.listeners.ingress = self.ingress;
        c.listeners.admin = self.admin;
        for p in peers {
            c.federation.bundles.insert(
                TrustDomain::new(&p.trust_domain).unwrap(),
                p.bundle_file.clone(),
            );
        }
        c.federation.catalog_file = Some(catalog_file.to_owned());
        c.federation.reload_interval = Duration::from_millis(200);
        for (svc, addr) in local_services {
            match c.local_services.entry(svc.parse().unwrap()) {
                std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().push(*addr),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert((*addr).into());
                }
            }
        }
        c.upstream.connect_timeout = Duration::from_millis(500);
        c.upstream.probe_interval = Duration::from_millis(300);
        c
    }
}

/// An export of `svc` (`ns/name`) by `cluster` with `ready` endpoints on port 8080.
pub fn export(svc: &str, cluster: &str, ready: u32) -> ServiceExport {
    export_port(svc, cluster, ready, 8080)
}

/// An export of `svc` by `cluster` with `ready` endpoints on `port`.
pub fn export_port(svc: &str, cluster: &str, ready: u32, port: u16) -> ServiceExport {
    export_app(svc, cluster, ready, port, None)
}

/// An export of `svc` by `cluster` with `ready` endpoints on the raw TCP
/// port `port` (`appProtocol: tcp`: peers may tunnel to it).
pub fn export_tcp(svc: &str, cluster: &str, ready: u32, port: u16) -> ServiceExport {
    export_app(svc, cluster, ready, port, Some("tcp"))
}

fn export_app(
    svc: &str,
    cluster: &str,
    ready: u32,
    port: u16,
    app_protocol: Option<&str>,
) -> ServiceExport {
    let (ns, name) = svc.split_once('/').unwrap();
    ServiceExport::new(
        ns.parse().unwrap(),
        name.parse().unwrap(),
        cluster.parse().unwrap(),
        ServiceExportSpec {
            ports: vec![ServicePort {
                name: Some(app_protocol.unwrap_or("http").into()),
                protocol: Default::default(),
                app_protocol: app_protocol.map(Into::into),
                port,
            }],
            endpoints: vec![ZoneEndpoints {
                zone: "z".into(),
                ready,
            }],
            ..ServiceExportSpec::default()
        },
    )
}

/// A residency policy restricting `services` to `jurisdictions`.
pub fn residency(name: &str, services: &[&str], jurisdictions: &[&str]) -> ResidencyPolicy {
    ResidencyPolicy::new(
        name.parse().unwrap(),
        ResidencyPolicySpec {
            services: ServiceSelector(services.iter().map(|s| s.parse().unwrap()).collect()),
            match_: None,
            allowed_jurisdictions: jurisdictions.iter().map(|s| s.to_string()).collect(),
            allowed_regions: vec![],
        },
    )
}

/// A traffic policy for `svc` with a request timeout.
pub fn traffic_timeout(name: &str, svc: &str, request: Duration) -> TrafficPolicy {
    let mut spec = TrafficPolicySpec::new(svc.parse().unwrap());
    spec.timeouts.request = request;
    TrafficPolicy::new(name.parse().unwrap(), spec)
}

/// An access policy on `services` allowing exactly `spiffe_ids`.
pub fn access_ids(name: &str, services: &[&str], spiffe_ids: &[&str]) -> AccessPolicy {
    AccessPolicy::new(
        name.parse().unwrap(),
        AccessPolicySpec {
            services: ServiceSelector(services.iter().map(|s| s.parse().unwrap()).collect()),
            allow: vec![AccessRule {
                spiffe_ids: spiffe_ids.iter().map(|s| s.to_string()).collect(),
                ..AccessRule::default()
            }],
        },
    )
}

/// A catalog of `sites` with `exports` and `residency` policies.
pub fn catalog(
    revision: u64,
    sites: &[&Site],
    exports: Vec<ServiceExport>,
    residency: Vec<ResidencyPolicy>,
) -> CatalogSnapshot {
    let mut c = CatalogSnapshot {
        revision,
        ..CatalogSnapshot::default()
    };
    for s in sites {
        let cl = s.cluster();
        c.clusters.insert(cl.id().clone(), cl);
    }
    for e in exports {
        c.exports.insert(e.key(), e);
    }
    for p in residency {
        c.policies.residency.insert(p.name().clone(), p);
    }
    c
}

/// Writes a catalog file.
pub fn write_catalog(path: &Path, c: &CatalogSnapshot) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(c).unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// Starts a gateway in this process.
pub async fn start_inproc(config: GatewayConfig) -> Gateway {
    Gateway::start(config).await.unwrap()
}

/// The gateway binary running as a child process, killed by pid on drop.
pub struct GatewayProc {
    pub child: Child,
    pub admin: SocketAddr,
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `config` to `path` and starts the binary; waits for `/readyz`.
pub async fn start_binary(config: &GatewayConfig, path: &Path) -> GatewayProc {
    start_binary_opts(config, path, false).await
}

/// Like [`start_binary`]; with `capture_stdout` the access log can be read
/// from `child.stdout`.
pub async fn start_binary_opts(
    config: &GatewayConfig,
    path: &Path,
    capture_stdout: bool,
) -> GatewayProc {
    std::fs::write(path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_causeway-gateway"))
        .arg("--config")
        .arg(path)
        .env("CAUSEWAY_GATEWAY_LOG_LEVEL", "warn")
        .stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let proc = GatewayProc {
        child,
        admin: config.listeners.admin,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = super::client::get(proc.admin, "admin", "/readyz").await
            && r.status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "gateway did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proc
}
