//! The etcd key layout:
//!
//! ```text
//! <prefix>/clusters/<cluster>
//! <prefix>/exports/<namespace>/<name>/<cluster>
//! <prefix>/bundles/<trust-domain>
//! <prefix>/policies/<kind>/<name>
//! <prefix>/heartbeats/<cluster>          (attached to a lease)
//! ```
//!
//! The prefix is configurable and defaults to `/causeway/v1`. What follows
//! the prefix is an object's [`relative_key`], which also names resources in
//! watch events.

use super::export::ExportKey;
use super::names::{ClusterId, Namespace, PolicyName, ServiceName, ServiceRef, TrustDomainName};
use super::policy::PolicyKind;
use super::resource::ObjectRef;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/causeway/v1";

/// Builds and parses etcd keys under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: String,
}

impl Default for KeyLayout {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

/// What a key under the layout's prefix refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedKey {
    /// A stored object.
    Object(ObjectRef),
    /// A cluster's heartbeat (leased) key.
    Heartbeat(ClusterId),
}

impl KeyLayout {
    /// A layout under `prefix` (a trailing `/` is ignored).
    pub fn new(prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        while prefix.ends_with('/') {
            prefix.pop();
        }
        Self { prefix }
    }

    /// The prefix, without a trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>/`: every key of the layout.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// `<prefix>/clusters/`.
    pub fn clusters(&self) -> String {
        format!("{}/clusters/", self.prefix)
    }

    /// `<prefix>/clusters/<cluster>`.
    pub fn cluster(&self, id: &ClusterId) -> String {
        format!("{}/clusters/{id}", self.prefix)
    }

    /// `<prefix>/exports/`.
    pub fn exports(&self) -> String {
        format!("{}/exports/", self.prefix)
    }

    /// `<prefix>/exports/<namespace>/`.
    pub fn exports_in_namespace(&self, ns: &Namespace) -> String {
        format!("{}/exports/{ns}/", self.prefix)
    }

    /// `<prefix>/exports/<namespace>/<name>/`: every cluster's export of one
    /// service.
    pub fn exports_of_service(&self, service: &ServiceRef) -> String {
        format!(
            "{}/exports/{}/{}/",
            self.prefix, service.namespace, service.name
        )
    }

    /// `<prefix>/exports/<namespace>/<name>/<cluster>`.
    pub fn export(&self, ns: &Namespace, name: &ServiceName, cluster: &ClusterId) -> String {
        format!("{}/exports/{ns}/{name}/{cluster}", self.prefix)
    }

    /// The key of an export by its [`ExportKey`].
    pub fn export_key(&self, key: &ExportKey) -> String {
        self.export(&key.service.namespace, &key.service.name, &key.cluster)
    }

    /// `<prefix>/bundles/`.
    pub fn bundles(&self) -> String {
        format!("{}/bundles/", self.prefix)
    }

    /// `<prefix>/bundles/<trust-domain>`.
    pub fn bundle(&self, td: &TrustDomainName) -> String {
        format!("{}/bundles/{td}", self.prefix)
    }

    /// `<prefix>/policies/`.
    pub fn all_policies(&self) -> String {
        format!("{}/policies/", self.prefix)
    }

    /// `<prefix>/policies/<kind>/`.
    pub fn policies(&self, kind: PolicyKind) -> String {
        format!("{}/policies/{kind}/", self.prefix)
    }

    /// `<prefix>/policies/<kind>/<name>`.
    pub fn policy(&self, kind: PolicyKind, name: &PolicyName) -> String {
        format!("{}/policies/{kind}/{name}", self.prefix)
    }

    /// `<prefix>/heartbeats/`.
    pub fn heartbeats(&self) -> String {
        format!("{}/heartbeats/", self.prefix)
    }

    /// `<prefix>/heartbeats/<cluster>`.
    pub fn heartbeat(&self, id: &ClusterId) -> String {
        format!("{}/heartbeats/{id}", self.prefix)
    }

    /// The key of a stored object. Service imports are derived and not
    /// stored, so they have no key.
    pub fn key_of(&self, obj: &ObjectRef) -> Option<String> {
        Some(match obj {
            ObjectRef::Cluster { name } => self.cluster(name),
            ObjectRef::ServiceExport { key } => self.export_key(key),
            ObjectRef::ServiceImport { .. } => return None,
            ObjectRef::TrustBundle { name } => self.bundle(name),
            ObjectRef::Policy { policy, name } => self.policy(*policy, name),
        })
    }

    /// Parses a key of this layout; `None` for keys outside the layout or
    /// with invalid names.
    pub fn parse(&self, key: &str) -> Option<ParsedKey> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix('/')?;
        if let Some(cluster) = rest.strip_prefix("heartbeats/") {
            return Some(ParsedKey::Heartbeat(cluster.parse().ok()?));
        }
        match parse_relative_key(rest)? {
            // Imports are derived on read, never stored.
            ObjectRef::ServiceImport { .. } => None,
            obj => Some(ParsedKey::Object(obj)),
        }
    }
}

/// The key of an object relative to the prefix: `clusters/<id>`,
/// `exports/<ns>/<name>/<cluster>`, `imports/<ns>/<name>`, `bundles/<td>`,
/// `policies/<kind>/<name>`. Watch events name their resource by it
/// (imports have one although they are never stored).
pub fn relative_key(obj: &ObjectRef) -> String {
    match obj {
        ObjectRef::Cluster { name } => format!("clusters/{name}"),
        ObjectRef::ServiceExport { key } => {
            format!(
                "exports/{}/{}/{}",
                key.service.namespace, key.service.name, key.cluster
            )
        }
        ObjectRef::ServiceImport { service } => {
            format!("imports/{}/{}", service.namespace, service.name)
        }
        ObjectRef::TrustBundle { name } => format!("bundles/{name}"),
        ObjectRef::Policy { policy, name } => format!("policies/{policy}/{name}"),
    }
}

/// Parses a [`relative_key`] back to its object; `None` for other keys or
/// invalid names.
pub fn parse_relative_key(key: &str) -> Option<ObjectRef> {
    let parts: Vec<&str> = key.split('/').collect();
    Some(match parts.as_slice() {
        ["clusters", c] => ObjectRef::Cluster {
            name: c.parse().ok()?,
        },
        ["exports", ns, name, c] => ObjectRef::ServiceExport {
            key: ExportKey {
                service: ServiceRef::new(ns.parse().ok()?, name.parse().ok()?),
                cluster: c.parse().ok()?,
            },
        },
        ["imports", ns, name] => ObjectRef::ServiceImport {
            service: ServiceRef::new(ns.parse().ok()?, name.parse().ok()?),
        },
        ["bundles", td] => ObjectRef::TrustBundle {
            name: td.parse().ok()?,
        },
        ["policies", kind, name] => ObjectRef::Policy {
            policy: kind.parse().ok()?,
            name: name.parse().ok()?,
        },
        _ => return None,
    })
}
