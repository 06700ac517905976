//! A cluster's local services as its gateway's agent discovers them: the
//! harness writes the static discovery file (`agent.staticFile`) with one
//! echo backend per service, and edits it to announce a drain or a recovery,
//! as an operator or a VM site's tooling would.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::json;

/// One service of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteService {
    /// `namespace/name`.
    pub service: String,
    /// The echo backend.
    pub addr: SocketAddr,
    /// Whether the backend is announced ready.
    pub ready: bool,
    /// The export's relative weight.
    pub weight: u32,
    /// The exported port's `appProtocol`.
    pub app_protocol: &'static str,
}

/// The static discovery file of one cluster.
#[derive(Debug)]
pub struct SiteFile {
    path: PathBuf,
    services: Mutex<BTreeMap<String, SiteService>>,
}

/// The port every echo service is exported on.
pub const SERVICE_PORT: u16 = 8080;

impl SiteFile {
    /// Writes the file at `path` with `services`, every backend ready.
    pub fn create(path: &Path, services: Vec<SiteService>) -> anyhow::Result<Self> {
        let site = Self {
            path: path.to_owned(),
            services: Mutex::new(
                services
                    .into_iter()
                    .map(|s| (s.service.clone(), s))
                    .collect(),
            ),
        };
        site.write()?;
        Ok(site)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The services listed.
    pub fn services(&self) -> Vec<SiteService> {
        self.lock().values().cloned().collect()
    }

    /// Adds (or replaces) a service and rewrites the file.
    pub fn add(&self, service: SiteService) -> anyhow::Result<()> {
        self.lock().insert(service.service.clone(), service);
        self.write()
    }

    /// Marks the backend of `service` ready or not and rewrites the file.
    pub fn set_ready(&self, service: &str, ready: bool) -> anyhow::Result<()> {
        {
            let mut services = self.lock();
            let s = services
                .get_mut(service)
                .ok_or_else(|| anyhow::anyhow!("{service} is not listed in {:?}", self.path))?;
            s.ready = ready;
        }
        self.write()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SiteService>> {
        self.services.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the file atomically (temp file + rename), so the agent never
    /// reads half of it. JSON is valid YAML.
    fn write(&self) -> anyhow::Result<()> {
        let services: Vec<serde_json::Value> = self
            .lock()
            .values()
            .map(|s| {
                let (ns, name) = s.service.split_once('/').unwrap_or(("default", &s.service));
                json!({
                    "namespace": ns,
                    "name": name,
                    "ports": [{"name": s.app_protocol, "port": SERVICE_PORT, "appProtocol": s.app_protocol}],
                    "weight": s.weight,
                    "endpoints": [{"address": s.addr.to_string(), "ready": s.ready}],
                })
            })
            .collect();
        let tmp = self.path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(&json!({ "services": services }))?,
        )?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}
