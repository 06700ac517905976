//! The gateway's SPIFFE identity: its X.509-SVID (from files or an
//! in-process development authority), the bundle store (own + federated trust
//! domains) read by the verifiers on every handshake, rustls configs for the
//! east-west listener and connector, and caller JWT-SVIDs.

mod jwt;
mod resolver;
pub mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use causeway_trust::{
    Authority, AuthorityConfig, Bundle, BundleSet, BundleStore, PeerPolicy, SpiffeClientVerifier,
    SpiffeId, SpiffeServerVerifier, SystemClock, TrustDomain, X509Svid,
};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;

use crate::config::{GatewayConfig, IdentityConfig, IdentitySource};

pub use jwt::{CallerClaims, CallerJwtCache, SVID_BOUND_KID};
pub(crate) use resolver::SvidResolver;

/// ALPN protocol ids.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN for HTTP/1.1 (upgrades such as WebSocket cross the link over HTTP/1.1).
pub const ALPN_H1: &[u8] = b"http/1.1";

/// Why the identity could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A configured trust domain or SPIFFE ID is invalid.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Config field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The authority failed.
    #[error("authority: {0}")]
    Authority(#[from] causeway_trust::AuthorityError),
    /// A bundle is invalid.
    #[error("bundle {path}: {message}")]
    Bundle {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The SVID or key is invalid.
    #[error("svid: {0}")]
    Svid(String),
    /// The Workload API gave no usable identity in time.
    #[error("{0}")]
    WorkloadApi(String),
}

/// The SPIFFE ID convention of Causeway gateways:
/// `spiffe://<trust-domain>/causeway/gateway/<cluster-id>`.
pub fn gateway_id(trust_domain: &TrustDomain, cluster: &str) -> Option<SpiffeId> {
    trust_domain
        .spiffe_id(&format!("/causeway/gateway/{cluster}"))
        .ok()
}

/// The cluster id in a gateway SPIFFE ID, if it follows the convention.
pub fn cluster_of_gateway(id: &SpiffeId) -> Option<&str> {
    id.path()
        .strip_prefix("/causeway/gateway/")
        .filter(|c| !c.is_empty() && !c.contains('/'))
}

/// The gateway's identity and trust state.
pub struct Identity {
    /// This gateway's SPIFFE ID.
    pub spiffe_id: SpiffeId,
    /// This cluster's trust domain.
    pub trust_domain: TrustDomain,
    /// The workload stated in caller JWT-SVIDs.
    pub workload_id: SpiffeId,
    /// Own and federated bundles; the verifiers read it on every handshake.
    pub bundles: BundleStore,
    resolver: Arc<SvidResolver>,
    svid: ArcSwap<X509Svid>,
    authority: Option<Arc<Authority>>,
    config: IdentityConfig,
    federated_files: BTreeMap<TrustDomain, PathBuf>,
    /// Caller JWT-SVIDs minted per destination trust domain.
    pub caller_jwts: CallerJwtCache,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("spiffe_id", &self.spiffe_id)
            .finish_non_exhaustive()
    }
}

/// The ring crypto provider (the only one this workspace uses).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<String, IdentityError> {
    std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certified_key(svid: &X509Svid) -> Result<Arc<CertifiedKey>, IdentityError> {
    let key = provider()
        .key_provider
        .load_private_key(svid.private_key_der())
        .map_err(|e| IdentityError::Svid(e.to_string()))?;
    Ok(Arc::new(CertifiedKey::new(
        svid.cert_chain_der().to_vec(),
        key,
    )))
}

impl Identity {
    /// Loads the identity described by `config`: with `authorityDir`, loads
    /// or creates the authority; with files, reads them; with the Workload
    /// API, connects to it and waits for the first X.509-SVID (the caller
    /// then keeps it current with [`workload::watch`]).
    pub async fn start(config: &GatewayConfig) -> Result<Self, IdentityError> {
        if let IdentitySource::WorkloadApi { socket } = &config.identity.source {
            let prefer = gateway_id(&config.cluster.trust_domain, config.cluster.id.as_str());
            let ctx = workload::first_context(socket, prefer.as_ref()).await?;
            return Self::from_workload_api(config, ctx);
        }
        Self::load(config)
    }

    /// Loads (or, with `authorityDir`, creates) the identity described by
    /// `config`; the Workload API source needs [`Identity::start`].
    pub fn load(config: &GatewayConfig) -> Result<Self, IdentityError> {
        let td = config.cluster.trust_domain.clone();
        let spiffe_id = Self::own_gateway_id(config)?;
        let idc = &config.identity;
        if matches!(idc.source, IdentitySource::WorkloadApi { .. }) {
            return Err(IdentityError::Invalid {
                field: "identity.workloadApiSocket",
                message: "the Workload API is read asynchronously (Identity::start)".into(),
            });
        }
        let (svid, own_bundle, authority) = if let IdentitySource::Authority { dir } = &idc.source {
            let authority_config = AuthorityConfig {
                x509_svid_ttl: idc.svid_ttl,
                jwt_svid_ttl: idc.caller_jwt_ttl,
                ca_ttl: idc.ca_ttl,
                prepare_ahead: idc.ca_prepare_ahead,
                ..AuthorityConfig::default()
            };
            let authority = Authority::load_or_create(
                dir,
                td.clone(),
                authority_config,
                Arc::new(SystemClock),
            )?;
            let svid = authority.issue_x509_svid(&spiffe_id)?;
            // Publish the bundle next to the CA so peers can federate with it.
            let bundle = authority.bundle();
            let bundle_path = dir.join("bundle.json");
            std::fs::write(&bundle_path, bundle.to_json_pretty()).map_err(|source| {
                IdentityError::Read {
                    path: bundle_path,
                    source,
                }
            })?;
            (svid, bundle, Some(Arc::new(authority)))
        } else {
            let IdentitySource::Files {
                svid: cert,
                key,
                bundle,
            } = &idc.source
            else {
                unreachable!("an identity source is an authority or files")
            };
            let svid = X509Svid::from_pem(&read(cert)?, &read(key)?)
                .map_err(|e| IdentityError::Svid(e.to_string()))?;
            if svid.spiffe_id().trust_domain() != &td {
                return Err(IdentityError::Svid(format!(
                    "svid {} is not in trust domain {td}",
                    svid.spiffe_id()
                )));
            }
            let bundle = load_bundle(bundle)?;
            (svid, bundle, None)
        };
        let spiffe_id = if authority.is_some() {
            spiffe_id
        } else {
            svid.spiffe_id().clone()
        };
        Self::from_parts(
            config,
            spiffe_id,
            svid,
            own_bundle,
            authority,
            BTreeMap::new(),
        )
    }

    fn own_gateway_id(config: &GatewayConfig) -> Result<SpiffeId, IdentityError> {
        gateway_id(&config.cluster.trust_domain, config.cluster.id.as_str()).ok_or(
            IdentityError::Invalid {
                field: "cluster.id",
                message: "cannot form a gateway SPIFFE ID".into(),
            },
        )
    }

    /// The identity from the first Workload API message: its SVID must be in
    /// this trust domain and verify against the bundle sent with it.
    fn from_workload_api(
        config: &GatewayConfig,
        ctx: causeway_api::workload_api::X509Context,
    ) -> Result<Self, IdentityError> {
        let td = &config.cluster.trust_domain;
        workload::check_context(td, &ctx).map_err(|(_, m)| IdentityError::WorkloadApi(m))?;
        let spiffe_id = ctx.svid.spiffe_id().clone();
        let federated = ctx
            .federated
            .into_iter()
            .filter(|(ftd, _)| ftd != td)
            .map(|(ftd, b)| (ftd, b.with_sequence(1)))
            .collect();
        Self::from_parts(
            config,
            spiffe_id,
            ctx.svid,
            ctx.bundle.with_sequence(1),
            None,
            federated,
        )
    }

    fn from_parts(
        config: &GatewayConfig,
        spiffe_id: SpiffeId,
        svid: X509Svid,
        own_bundle: Bundle,
        authority: Option<Arc<Authority>>,
        federated: BTreeMap<TrustDomain, Bundle>,
    ) -> Result<Self, IdentityError> {
        let td = config.cluster.trust_domain.clone();
        let idc = &config.identity;
        let workload_id = idc.workload_id.clone().unwrap_or_else(|| spiffe_id.clone());
        let mut set = BundleSet::new()
            .with_bundle(td.clone(), own_bundle)
            .map_err(|e| IdentityError::Bundle {
                path: PathBuf::from("<own>"),
                message: e.to_string(),
            })?;
        for (ftd, bundle) in federated {
            set = set
                .with_bundle(ftd, bundle)
                .map_err(|e| IdentityError::Bundle {
                    path: PathBuf::from("<workload api>"),
                    message: e.to_string(),
                })?;
        }
        for (ftd, path) in &config.federation.bundles {
            let ftd = ftd.clone();
            // A peer's bundle may be published after this gateway starts:
            // a missing file is picked up by the periodic refresh.
            let bundle = match load_bundle(path) {
                Ok(b) => b,
                Err(IdentityError::Read { path, source })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    tracing::warn!(trust_domain = %ftd, path = %path.display(), "federated bundle file missing, will retry");
                    continue;
                }
                Err(e) => return Err(e),
            };
            set = set
                .with_bundle(ftd, bundle)
                .map_err(|e| IdentityError::Bundle {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        }
        let resolver = Arc::new(SvidResolver::new(certified_key(&svid)?));
        let bundles = BundleStore::new(set);
        Ok(Self {
            spiffe_id,
            trust_domain: td,
            workload_id,
            caller_jwts: CallerJwtCache::new(idc.caller_jwt_ttl).with_bundles(bundles.clone()),
            bundles,
            resolver,
            svid: ArcSwap::from_pointee(svid),
            authority,
            config: idc.clone(),
            federated_files: config
                .federation
                .bundles
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The current X.509-SVID.
    pub fn svid(&self) -> Arc<X509Svid> {
        self.svid.load_full()
    }

    /// The in-process authority (development mode), if any.
    pub fn authority(&self) -> Option<&Arc<Authority>> {
        self.authority.as_ref()
    }

    /// The client-certificate verifier of the east-west listener: any peer of
    /// a trust domain with a bundle in the store (own or federated).
    pub fn client_verifier(&self) -> Arc<SpiffeClientVerifier> {
        Arc::new(
            SpiffeClientVerifier::new(self.bundles.clone(), PeerPolicy::AnyFederated)
                .with_provider(&provider()),
        )
    }

    /// The server-certificate resolver presenting the current SVID.
    pub(crate) fn resolver(&self) -> Arc<SvidResolver> {
        self.resolver.clone()
    }

    /// A client config that accepts only `peer` (verified against the bundle
    /// of its trust domain), presents this gateway's SVID and offers `alpn`.
    pub fn client_config(&self, peer: SpiffeId, alpn: &[u8]) -> Arc<rustls::ClientConfig> {
        let verifier = SpiffeServerVerifier::new(self.bundles.clone(), PeerPolicy::ids([peer]))
            .with_provider(&provider());
        // ring with safe default protocol versions cannot fail.
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"));
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }

    /// Runs the authority's due CA rotations (saving them to
    /// `authorityDir`) or re-reads the own bundle file an external CA keeps,
    /// and takes a newer own bundle into the store; re-reads federated
    /// bundle files; re-issues / re-reads the SVID when it is past half of
    /// its lifetime. Returns whether anything changed.
    pub fn refresh(&self) -> Result<bool, IdentityError> {
        let mut changed = false;
        let own = if let Some(a) = &self.authority {
            a.tick_and_save(self.config.authority_dir().map(|d| d.as_path()))?;
            Some(a.bundle())
        } else if let IdentitySource::Files { bundle, .. } = &self.config.source {
            Some(load_bundle(bundle)?)
        } else {
            None
        };
        // A bundle without a sequence (PEM `ca.crt`, or JSON without
        // `spiffe_sequence`) is taken when its authorities change, with the
        // held sequence grown by one (so the agent publishes it).
        let own = own.map(|b| {
            if b.sequence() != 0 {
                return b;
            }
            let set = self.bundles.load();
            workload::merged(set.get(&self.trust_domain), Some(&b), None)
                .unwrap_or_else(|| b.with_sequence(0))
        });
        if let Some(bundle) = own {
            let newer = self
                .bundles
                .load()
                .get(&self.trust_domain)
                .is_none_or(|b| b.sequence() < bundle.sequence());
            if newer {
                let seq = bundle.sequence();
                match self.bundles.update(&self.trust_domain, bundle) {
                    Ok(()) => {
                        tracing::info!(trust_domain = %self.trust_domain, sequence = seq, "own trust bundle updated");
                        changed = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "own trust bundle refused"),
                }
            }
        }
        for (td, path) in &self.federated_files {
            let bundle = match load_bundle(path) {
                Ok(b) => b,
                Err(IdentityError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let current = self.bundles.load();
            if current.get(td).is_none_or(|b| *b != bundle)
                && self.bundles.update(td, bundle).is_ok()
            {
                tracing::info!(trust_domain = %td, "federated bundle updated");
                changed = true;
            }
        }
        let svid = self.svid();
        let now = time::OffsetDateTime::now_utc();
        let half = svid.not_before() + (svid.not_after() - svid.not_before()) / 2;
        if now >= half {
            let fresh = if let Some(a) = &self.authority {
                let fresh = a.issue_x509_svid(&self.spiffe_id)?;
                let _ = self.bundles.update(&self.trust_domain, a.bundle());
                Some(fresh)
            } else if let IdentitySource::Files {
                svid: c, key: k, ..
            } = &self.config.source
            {
                X509Svid::from_pem(&read(c)?, &read(k)?)
                    .ok()
                    .filter(|s| s.not_after() > svid.not_after())
            } else {
                None
            };
            if let Some(fresh) = fresh {
                self.resolver.set(certified_key(&fresh)?);
                self.svid.store(Arc::new(fresh));
                tracing::info!(id = %self.spiffe_id, "x509-svid rotated");
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Seconds until the current SVID expires.
    pub fn svid_expiry_seconds(&self) -> f64 {
        (self.svid().not_after() - time::OffsetDateTime::now_utc()).as_seconds_f64()
    }
}

/// A SPIFFE bundle (JSON), or PEM CA certificates (cert-manager's
/// `ca.crt`; sequence 0, X.509 authorities only).
fn load_bundle(path: &Path) -> Result<Bundle, IdentityError> {
    let text = read(path)?;
    let bad = |message: String| IdentityError::Bundle {
        path: path.to_owned(),
        message,
    };
    if text.trim_start().starts_with("-----BEGIN") {
        use rustls_pki_types::pem::PemObject as _;
        let mut bundle = Bundle::new(0);
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(text.as_bytes()) {
            bundle
                .add_x509_authority(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
        }
        if bundle.is_empty() {
            return Err(bad("no CA certificate".into()));
        }
        return Ok(bundle);
    }
    Bundle::parse_str(&text).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine as _;

    use super::*;

    fn cluster() -> crate::config::ClusterConfig {
        crate::config::ClusterConfig::new(
            "eu-1".parse().unwrap(),
            TrustDomain::new("eu-1.test").unwrap(),
        )
    }

    fn config(dir: &Path) -> GatewayConfig {
        let source = IdentitySource::Authority {
            dir: dir.join("ca"),
        };
        GatewayConfig::new(cluster(), IdentityConfig::new(source))
    }

    #[test]
    fn gateway_ids_name_their_cluster() {
        let td = TrustDomain::new("eu-1.test").unwrap();
        let id = gateway_id(&td, "eu-1").unwrap();
        assert_eq!(id.to_string(), "spiffe://eu-1.test/causeway/gateway/eu-1");
        assert_eq!(cluster_of_gateway(&id), Some("eu-1"));
        let other = td.spiffe_id("/ns/demo/sa/web").unwrap();
        assert_eq!(cluster_of_gateway(&other), None);
    }

    /// The caller token is signed with the gateway's X.509-SVID key, reused
    /// while fresh, verified against the leaf the peer presented, and
    /// carries the residency verdict; another leaf, audience or a tampered
    /// token is refused with a typed reason.
    #[test]
    fn caller_tokens_are_bound_to_the_svid_and_carry_the_verdict() {
        use crate::routing::ResidencyVerdict;
        use crate::tokens::TokenRejection;
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::load(&config(dir.path())).unwrap();
        assert_eq!(
            id.spiffe_id.to_string(),
            "spiffe://eu-1.test/causeway/gateway/eu-1"
        );
        assert!(id.svid_expiry_seconds() > 0.0);
        assert!(dir.path().join("ca/bundle.json").exists());
        let svid = id.svid();
        let caller = TrustDomain::new("eu-1.test")
            .unwrap()
            .spiffe_id("/ns/shop/sa/web")
            .unwrap();
        let verdict = vec![ResidencyVerdict {
            policy: "eu-only".into(),
            jurisdictions: vec!["eu".into()],
            regions: vec![],
        }];
        let t1 = id
            .caller_jwts
            .token(&svid, &caller, "us-1.test", &verdict)
            .unwrap();
        let t2 = id
            .caller_jwts
            .token(&svid, &caller, "us-1.test", &verdict)
            .unwrap();
        assert_eq!(t1, t2, "token reused within half its lifetime");
        let t3 = id
            .caller_jwts
            .token(&svid, &caller, "us-1.test", &[])
            .unwrap();
        assert_ne!(t1, t3, "another verdict, another token");
        let validator = causeway_trust::JwtSvidValidator::new(id.bundles.clone());
        let leaf = svid.leaf_der().to_vec();
        let peer = id.spiffe_id.to_string();
        let got = id
            .caller_jwts
            .verify_caller(
                &validator,
                t1.to_str().unwrap(),
                "spiffe://us-1.test",
                &peer,
                Some(&leaf),
            )
            .unwrap();
        assert_eq!(got.caller, caller);
        assert_eq!(got.residency, verdict);
        assert_eq!(
            id.caller_jwts.verify_caller(
                &validator,
                t1.to_str().unwrap(),
                "spiffe://other.test",
                &peer,
                Some(&leaf)
            ),
            Err(TokenRejection::WrongAudience),
            "a cached token must not pass for another audience"
        );
        let other = Authority::new(
            TrustDomain::new("eu-1.test").unwrap(),
            AuthorityConfig::default(),
        )
        .unwrap();
        let other_leaf = other
            .issue_x509_svid(&gateway_id(&TrustDomain::new("eu-1.test").unwrap(), "eu-9").unwrap())
            .unwrap();
        assert_eq!(
            id.caller_jwts.verify_caller(
                &validator,
                t1.to_str().unwrap(),
                "spiffe://us-1.test",
                "spiffe://eu-1.test/causeway/gateway/eu-9",
                Some(other_leaf.leaf_der())
            ),
            Err(TokenRejection::NotThePeer),
            "a token replayed by another gateway does not verify"
        );
        // After a rotation, a pooled connection made with the previous
        // SVID carries tokens signed with the next one (x5c): they verify,
        // bound to the same gateway identity through the bundle.
        let rotated = id
            .authority()
            .unwrap()
            .issue_x509_svid(&id.spiffe_id)
            .unwrap();
        let t_rotated = id
            .caller_jwts
            .token(&rotated, &caller, "us-1.test", &verdict)
            .unwrap();
        assert_ne!(t_rotated, t1, "a new svid, a new token");
        let got = id
            .caller_jwts
            .verify_caller(
                &validator,
                t_rotated.to_str().unwrap(),
                "spiffe://us-1.test",
                &peer,
                Some(&leaf),
            )
            .unwrap();
        assert_eq!(got.caller, caller);
        // The same chain from a CA outside the bundle is refused.
        let forged_svid = other.issue_x509_svid(&id.spiffe_id).unwrap();
        let t_forged = id
            .caller_jwts
            .token(&forged_svid, &caller, "us-1.test", &verdict)
            .unwrap();
        assert_eq!(
            id.caller_jwts.verify_caller(
                &validator,
                t_forged.to_str().unwrap(),
                "spiffe://us-1.test",
                &peer,
                Some(&leaf)
            ),
            Err(TokenRejection::UnknownKey),
            "an x5c chain outside the bundle"
        );
        let s = t3.to_str().unwrap();
        let mut parts: Vec<&str> = s.split('.').collect();
        let forged_claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"sub":"spiffe://eu-1.test/ns/admin/sa/root","aud":["spiffe://us-1.test"],"exp":9999999999,"iat":0}"#,
        );
        parts[1] = &forged_claims;
        let forged = parts.join(".");
        assert_eq!(
            id.caller_jwts.verify_caller(
                &validator,
                &forged,
                "spiffe://us-1.test",
                &peer,
                Some(&leaf)
            ),
            Err(TokenRejection::BadSignature)
        );
        assert_eq!(
            id.caller_jwts.verify_caller(
                &validator,
                "a.b.c",
                "spiffe://us-1.test",
                &peer,
                Some(&leaf)
            ),
            Err(TokenRejection::Malformed)
        );
    }

    /// cert-manager's file layout: `tls.crt` (leaf + intermediate),
    /// `tls.key`, `ca.crt` (PEM roots). A changed `ca.crt` is taken with a
    /// grown sequence; an unchanged one changes nothing.
    #[test]
    fn pem_ca_file_layout_loads_and_a_changed_ca_crt_is_taken() {
        use causeway_trust::testing::{LeafSpec, TestCa};
        let dir = tempfile::tempdir().unwrap();
        let td = TrustDomain::new("eu-1.test").unwrap();
        let root = TestCa::new(&td).unwrap();
        let mid = root.intermediate().unwrap();
        let leaf = mid
            .issue(&LeafSpec::svid("spiffe://eu-1.test/causeway/gateway/eu-1"))
            .unwrap();
        let pem = |c: &rustls_pki_types::CertificateDer<'_>| {
            use base64::engine::general_purpose::STANDARD;
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                STANDARD.encode(c.as_ref())
            )
        };
        let (crt, key, ca) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("ca.crt"),
        );
        std::fs::write(&crt, leaf.chain.iter().map(&pem).collect::<String>()).unwrap();
        std::fs::write(
            &key,
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(leaf.key.secret_pkcs8_der())
            ),
        )
        .unwrap();
        std::fs::write(&ca, pem(root.cert_der())).unwrap();
        let source = IdentitySource::Files {
            svid: crt,
            key,
            bundle: ca.clone(),
        };
        let id =
            Identity::load(&GatewayConfig::new(cluster(), IdentityConfig::new(source))).unwrap();
        assert_eq!(id.svid().cert_chain_der().len(), 2, "leaf and intermediate");
        let held = id.bundles.load().get(&td).unwrap().clone();
        assert_eq!(held.x509_authorities().count(), 1);
        assert!(!id.refresh().unwrap(), "nothing changed");
        let next = TestCa::new(&td).unwrap();
        std::fs::write(
            &ca,
            format!("{}{}", pem(root.cert_der()), pem(next.cert_der())),
        )
        .unwrap();
        assert!(id.refresh().unwrap());
        let now = id.bundles.load().get(&td).unwrap().clone();
        assert_eq!(now.x509_authorities().count(), 2);
        assert_eq!(now.sequence(), held.sequence() + 1);
        assert!(!id.refresh().unwrap(), "taken once");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(id.refresh().is_err());
        assert_eq!(
            id.bundles.load().get(&td).unwrap().sequence(),
            now.sequence()
        );
    }

    #[test]
    fn missing_federated_bundle_is_skipped_until_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config(dir.path());
        let peer_file = dir.path().join("us.json");
        c.federation
            .bundles
            .insert(TrustDomain::new("us-1.test").unwrap(), peer_file.clone());
        let id = Identity::load(&c).unwrap();
        let us = TrustDomain::new("us-1.test").unwrap();
        assert!(!id.bundles.load().contains(&us));
        let other = Authority::new(us.clone(), AuthorityConfig::default()).unwrap();
        std::fs::write(&peer_file, other.bundle().to_json_pretty()).unwrap();
        assert!(id.refresh().unwrap());
        assert!(id.bundles.load().contains(&us));
    }

    /// With files kept by an external CA (SPIRE, cert-manager), a rotated
    /// own bundle file reaches the store (which the agent publishes from and
    /// the verifiers read); an older or broken one does not.
    #[test]
    fn own_bundle_file_is_taken_when_its_sequence_grows() {
        let dir = tempfile::tempdir().unwrap();
        let td = TrustDomain::new("eu-1.test").unwrap();
        let ca = Authority::new(td.clone(), AuthorityConfig::default()).unwrap();
        let svid = ca
            .issue_x509_svid(&gateway_id(&td, "eu-1").unwrap())
            .unwrap();
        let (svid_file, key_file, bundle_file) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("bundle.json"),
        );
        std::fs::write(&svid_file, svid.cert_chain_pem()).unwrap();
        std::fs::write(&key_file, svid.private_key_pem()).unwrap();
        std::fs::write(&bundle_file, ca.bundle().to_json_pretty()).unwrap();
        let source = IdentitySource::Files {
            svid: svid_file,
            key: key_file,
            bundle: bundle_file.clone(),
        };
        let id =
            Identity::load(&GatewayConfig::new(cluster(), IdentityConfig::new(source))).unwrap();
        let seq = ca.bundle().sequence();
        assert_eq!(id.bundles.load().get(&td).unwrap().sequence(), seq);
        assert!(!id.refresh().unwrap(), "nothing changed");
        let rotated = ca.bundle().with_sequence(seq + 1);
        std::fs::write(&bundle_file, rotated.to_json_pretty()).unwrap();
        assert!(id.refresh().unwrap());
        assert_eq!(id.bundles.load().get(&td).unwrap().sequence(), seq + 1);
        std::fs::write(&bundle_file, ca.bundle().to_json_pretty()).unwrap();
        assert!(!id.refresh().unwrap(), "an older bundle was taken");
        std::fs::write(&bundle_file, "{broken").unwrap();
        assert!(id.refresh().is_err());
        assert_eq!(id.bundles.load().get(&td).unwrap().sequence(), seq + 1);
    }
}
