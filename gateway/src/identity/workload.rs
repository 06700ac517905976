//! The SPIFFE Workload API as the identity source (`identity.workloadApiSocket`,
//! a SPIRE agent's socket): the first X.509-SVID is awaited at start, then
//! two streams keep the identity current: `FetchX509SVID` (SVID rotations,
//! the own trust domain's X.509 authorities, federated bundles) and
//! `FetchJWTBundles` (JWT authorities, which verify workloads' JWT-SVIDs at
//! the egress).
//!
//! Nothing pushed on a stream is taken unless it is sound: an SVID must be in
//! this trust domain and verify, intermediates included, against the bundle
//! sent with it. A refused message, a broken stream or a vanished socket is
//! logged with its typed reason and counted
//! (`causeway_gateway_identity_source_errors_total`); the last good SVID and
//! bundles keep serving while the gateway reconnects with backoff.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use causeway_api::workload_api::{
    self, WorkloadApiError, X509Context, jwt_authorities, pb, trust_domain_key,
};
use causeway_trust::{
    Bundle, BundleSet, BundleStore, JwtAuthority, PeerPolicy, SpiffeId, SpiffeServerVerifier,
    TrustDomain,
};
use rustls_pki_types::UnixTime;
use tokio::sync::watch;

use super::{Identity, IdentityError, certified_key};
use crate::metrics::{IdentitySourceLabels, IdentityUpdateLabels, Metrics};

/// How long [`Identity::start`] waits for the first X.509-SVID (a SPIRE
/// agent answers `PERMISSION_DENIED` until the workload's entry reaches it).
pub const FIRST_SVID_TIMEOUT: Duration = Duration::from_secs(60);

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A refused message: its typed reason and a description.
pub(crate) type Refusal = (&'static str, String);

fn refusal(e: &WorkloadApiError) -> Refusal {
    (e.reason(), e.to_string())
}

/// Checks that the context's SVID is in `td` and that its chain (leaf and
/// intermediates) verifies against the bundle sent with it.
pub(crate) fn check_context(td: &TrustDomain, ctx: &X509Context) -> Result<(), Refusal> {
    let id = ctx.svid.spiffe_id();
    if id.trust_domain() != td {
        return Err((
            "wrong_trust_domain",
            format!("workload api svid {id} is not in trust domain {td}"),
        ));
    }
    let set = BundleSet::new()
        .with_bundle(td.clone(), ctx.bundle.clone())
        .map_err(|e| ("malformed", e.to_string()))?;
    let chain = ctx.svid.cert_chain_der();
    SpiffeServerVerifier::new(BundleStore::new(set), PeerPolicy::AnyFederated)
        .verify_chain(&chain[0], &chain[1..], UnixTime::now())
        .map_err(|e| {
            (
                "svid_not_verified",
                format!("workload api svid {id} does not verify against its bundle: {e}"),
            )
        })?;
    Ok(())
}

/// Connects and reads the first usable X.509 context, retrying with backoff
/// for up to [`FIRST_SVID_TIMEOUT`].
pub(crate) async fn first_context(
    socket: &Path,
    prefer: Option<&SpiffeId>,
) -> Result<X509Context, IdentityError> {
    let deadline = tokio::time::Instant::now() + FIRST_SVID_TIMEOUT;
    let mut backoff = BACKOFF_MIN;
    loop {
        let attempt = async {
            let mut client = workload_api::connect(socket).await?;
            let mut stream = client
                .fetch_x509svid(workload_api::request(pb::X509svidRequest {}))
                .await
                .map_err(|s| WorkloadApiError::Status(s.to_string()))?
                .into_inner();
            let msg = stream
                .message()
                .await
                .map_err(|s| WorkloadApiError::Status(s.to_string()))?
                .ok_or(WorkloadApiError::StreamEnded)?;
            X509Context::decode(&msg, prefer)
        };
        let last = match attempt.await {
            Ok(ctx) => return Ok(ctx),
            Err(e) => e,
        };
        tracing::warn!(reason = last.reason(), error = %last, socket = %socket.display(), "workload api: no x509-svid yet, retrying");
        if tokio::time::Instant::now() + backoff > deadline {
            return Err(IdentityError::WorkloadApi(format!(
                "no x509-svid from the workload api at {} within {}s: {last}",
                socket.display(),
                FIRST_SVID_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// `current`'s keys replaced by `x509` and/or `jwt` (each kept from
/// `current` when not given), with the sequence grown by one when anything
/// changed. `None` when nothing changed.
pub(crate) fn merged(
    current: Option<&Bundle>,
    x509: Option<&Bundle>,
    jwt: Option<&[JwtAuthority]>,
) -> Option<Bundle> {
    let seq = current.map_or(0, Bundle::sequence);
    let mut b = Bundle::new(seq);
    let x509_src = x509.or(current);
    for a in x509_src.into_iter().flat_map(|b| b.x509_authorities()) {
        // Already a valid authority in a parsed bundle.
        let _ = b.add_x509_authority(a.cert_der().clone());
    }
    let current_jwt: Vec<JwtAuthority> = current
        .map(|c| c.jwt_authorities().cloned().collect())
        .unwrap_or_default();
    for a in jwt.unwrap_or(&current_jwt) {
        let _ = b.add_jwt_authority(a.clone());
    }
    if let Some(hint) = current.and_then(Bundle::refresh_hint) {
        b = b.with_refresh_hint(Some(hint));
    }
    if current.is_some_and(|c| c.keys() == b.keys()) {
        None
    } else {
        Some(b.with_sequence(seq + 1))
    }
}

impl Identity {
    fn take_bundle(
        &self,
        td: &TrustDomain,
        x509: Option<&Bundle>,
        jwt: Option<&[JwtAuthority]>,
    ) -> bool {
        let set = self.bundles.load();
        let Some(new) = merged(set.get(td), x509, jwt) else {
            return false;
        };
        let seq = new.sequence();
        match self.bundles.update(td, new) {
            Ok(()) => {
                tracing::info!(trust_domain = %td, sequence = seq, "bundle updated from the workload api");
                true
            }
            Err(e) => {
                tracing::warn!(trust_domain = %td, error = %e, "workload api bundle refused");
                false
            }
        }
    }

    /// Takes an X.509 context pushed on the stream: bundles first (own and
    /// federated), then the SVID if it changed. Returns the kinds updated.
    pub(crate) fn apply_x509_context(
        &self,
        ctx: &X509Context,
    ) -> Result<Vec<&'static str>, Refusal> {
        check_context(&self.trust_domain, ctx)?;
        let mut kinds = Vec::new();
        if self.take_bundle(&self.trust_domain, Some(&ctx.bundle), None) {
            kinds.push("bundle");
        }
        for (td, b) in &ctx.federated {
            if td != &self.trust_domain && self.take_bundle(td, Some(b), None) {
                kinds.push("federated_bundle");
            }
        }
        let current = self.svid();
        if current.cert_chain_der() != ctx.svid.cert_chain_der() {
            let key = certified_key(&ctx.svid).map_err(|e| ("malformed", e.to_string()))?;
            self.resolver.set(key);
            self.svid.store(Arc::new(ctx.svid.clone()));
            tracing::info!(id = %ctx.svid.spiffe_id(), not_after = %ctx.svid.not_after(), "x509-svid rotated (workload api)");
            kinds.push("x509_svid");
        }
        Ok(kinds)
    }

    /// Takes a `FetchJWTBundles` message: the JWT authorities of each trust
    /// domain named. Returns how many bundles changed.
    pub(crate) fn apply_jwt_bundles(&self, msg: &pb::JwtBundlesResponse) -> Result<usize, Refusal> {
        let mut parsed: BTreeMap<TrustDomain, Vec<JwtAuthority>> = BTreeMap::new();
        for (key, jwks) in &msg.bundles {
            let td = trust_domain_key(key).map_err(|e| refusal(&e))?;
            parsed.insert(td, jwt_authorities(jwks).map_err(|e| refusal(&e))?);
        }
        Ok(parsed
            .iter()
            .filter(|(td, keys)| self.take_bundle(td, None, Some(keys)))
            .count())
    }
}

/// Keeps `identity` current from the Workload API at `socket` until
/// `shutdown`: one task per stream, each reconnecting with backoff.
pub async fn watch(
    identity: Arc<Identity>,
    socket: std::path::PathBuf,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) {
    let prefer = Some(identity.spiffe_id.clone());
    let x509 = {
        let (identity, socket, metrics, shutdown) = (
            identity.clone(),
            socket.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            follow(&socket, &metrics, shutdown, |mut client| {
                let (identity, metrics, prefer) =
                    (identity.clone(), metrics.clone(), prefer.clone());
                async move {
                    let mut stream = client
                        .fetch_x509svid(workload_api::request(pb::X509svidRequest {}))
                        .await
                        .map_err(|s| ("status", s.to_string()))?
                        .into_inner();
                    loop {
                        let msg = stream
                            .message()
                            .await
                            .map_err(|s| ("status", s.to_string()))?
                            .ok_or(("stream_ended", "x509-svid stream ended".to_owned()))?;
                        let applied = X509Context::decode(&msg, prefer.as_ref())
                            .map_err(|e| refusal(&e))
                            .and_then(|ctx| identity.apply_x509_context(&ctx));
                        match applied {
                            Ok(kinds) => {
                                for kind in kinds {
                                    metrics
                                        .identity_updates
                                        .get_or_create(&IdentityUpdateLabels { kind })
                                        .inc();
                                }
                            }
                            // A bad message is refused; the stream goes on
                            // (the next one may be good).
                            Err(r) => count_refusal(&metrics, &r),
                        }
                    }
                }
            })
            .await;
        })
    };
    let jwt = tokio::spawn(async move {
        let identity = identity.clone();
        follow(&socket, &metrics.clone(), shutdown, |mut client| {
            let (identity, metrics) = (identity.clone(), metrics.clone());
            async move {
                let mut stream = client
                    .fetch_jwt_bundles(workload_api::request(pb::JwtBundlesRequest {}))
                    .await
                    .map_err(|s| ("status", s.to_string()))?
                    .into_inner();
                loop {
                    let msg = stream
                        .message()
                        .await
                        .map_err(|s| ("status", s.to_string()))?
                        .ok_or(("stream_ended", "jwt bundle stream ended".to_owned()))?;
                    match identity.apply_jwt_bundles(&msg) {
                        Ok(n) => {
                            metrics
                                .identity_updates
                                .get_or_create(&IdentityUpdateLabels { kind: "jwt_bundle" })
                                .inc_by(n as u64);
                        }
                        Err(r) => count_refusal(&metrics, &r),
                    }
                }
            }
        })
        .await;
    });
    let _ = tokio::join!(x509, jwt);
}

fn count_refusal(metrics: &Metrics, (reason, message): &Refusal) {
    tracing::warn!(reason, error = %message, "workload api: refused, keeping the last good identity");
    metrics
        .identity_source_errors
        .get_or_create(&IdentitySourceLabels {
            source: "workload_api",
            reason,
        })
        .inc();
}

/// Runs `stream` on a fresh connection until shutdown, reconnecting with
/// backoff whenever the socket or the stream fails.
async fn follow<F, Fut>(
    socket: &Path,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
    stream: F,
) where
    F: Fn(workload_api::Client) -> Fut,
    Fut: std::future::Future<Output = Result<std::convert::Infallible, Refusal>>,
{
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = tokio::time::Instant::now();
        let outcome = tokio::select! {
            r = async {
                let client = workload_api::connect(socket).await.map_err(|e| refusal(&e))?;
                stream(client).await.map(|never| match never {})
            } => r,
            _ = shutdown.changed() => return,
        };
        let Err(r) = outcome;
        count_refusal(metrics, &r);
        // A stream that stayed up a while was healthy: start over.
        if started.elapsed() > BACKOFF_MAX {
            backoff = BACKOFF_MIN;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use causeway_trust::testing::{LeafSpec, TestCa};

    use super::*;

    #[test]
    fn merged_bundles_grow_their_sequence_only_on_change() {
        let td = TrustDomain::new("a.test").unwrap();
        let ca = TestCa::new(&td).unwrap();
        let other = TestCa::new(&td).unwrap();
        let cur = ca.bundle().with_sequence(4);
        assert!(merged(Some(&cur), Some(&ca.bundle()), None).is_none());
        let m = merged(Some(&cur), Some(&other.bundle()), None).unwrap();
        assert_eq!(m.sequence(), 5);
        assert_eq!(
            m.x509_authorities().next().unwrap().cert_der(),
            other.cert_der()
        );
        let first = merged(None, Some(&ca.bundle()), None).unwrap();
        assert_eq!(first.sequence(), 1);
    }

    #[test]
    fn a_context_whose_bundle_does_not_verify_its_svid_is_refused() {
        let td = TrustDomain::new("a.test").unwrap();
        let root = TestCa::new(&td).unwrap();
        let mid = root.intermediate().unwrap();
        let leaf = mid
            .issue(&LeafSpec::svid("spiffe://a.test/causeway/gateway/a"))
            .unwrap();
        let ctx = X509Context {
            svid: leaf.to_svid().unwrap(),
            bundle: root.bundle(),
            federated: BTreeMap::new(),
        };
        check_context(&td, &ctx).unwrap();
        let stranger = TestCa::new(&td).unwrap();
        let bad = X509Context {
            bundle: stranger.bundle(),
            ..ctx.clone()
        };
        assert_eq!(check_context(&td, &bad).unwrap_err().0, "svid_not_verified");
        let mut missing = leaf.chain.clone();
        missing.truncate(1);
        let no_intermediate = X509Context {
            svid: causeway_trust::X509Svid::from_der(missing, leaf.key.clone_key()).unwrap(),
            ..ctx.clone()
        };
        assert_eq!(
            check_context(&td, &no_intermediate).unwrap_err().0,
            "svid_not_verified"
        );
        let other_td = TrustDomain::new("b.test").unwrap();
        assert_eq!(
            check_context(&other_td, &ctx).unwrap_err().0,
            "wrong_trust_domain"
        );
    }
}
