//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's
//! renew/acquire semantics, so that of the gateway's replicas exactly one
//! writes to the Kubernetes API (ServiceExport status, ServiceImports,
//! EndpointSlices) while every replica serves traffic and follows the
//! catalog.
//!
//! - The holder renews every `retryPeriod`; a renewal the API server refuses
//!   with 409 (someone else wrote the Lease) or a Lease naming another
//!   holder ends leadership **at once**; failing to renew for
//!   `renewDeadline` ends it too.
//! - A candidate takes the Lease over when it saw no renewal for
//!   `leaseDuration` (measured on its own clock from when it last saw the
//!   Lease change, never by comparing clocks), or when the Lease has no
//!   holder. Every write carries the `resourceVersion` it read, so two
//!   candidates cannot both win.
//! - On shutdown the holder releases the Lease (empty holder), so a
//!   successor takes over without waiting for it to expire.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease stays held without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps leading while renewals fail.
    pub renew_deadline: Duration,
    /// Interval of renewals and acquisition attempts.
    pub retry_period: Duration,
}

/// The elector of one replica.
#[derive(Clone)]
pub struct LeaderElector {
    /// The Kubernetes client.
    pub client: kube::Client,
    /// Lease settings.
    pub settings: LeaseSettings,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What a candidate remembers of the Lease it last saw.
#[derive(Debug, Default)]
struct Observed {
    /// `resourceVersion` of the Lease when it last changed.
    version: Option<String>,
    /// When (on our clock) it last changed.
    at: Option<Instant>,
}

fn params() -> PostParams {
    super::post_params()
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl LeaderElector {
    fn api(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.settings.namespace)
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.settings.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One attempt to acquire or renew; `Ok(true)` when this replica holds
    /// the Lease afterwards.
    async fn try_acquire_or_renew(&self, observed: &mut Observed) -> Result<bool, kube::Error> {
        let me = &self.settings.identity;
        let api = self.api();
        let Some(mut lease) = api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.clone()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&params(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let version = lease.metadata.resource_version.clone();
        if observed.version != version {
            observed.version = version;
            observed.at = Some(Instant::now());
        }
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        if holder == *me {
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(self.duration_secs());
        } else {
            let expired = holder.is_empty()
                || observed
                    .at
                    .is_none_or(|at| at.elapsed() >= self.settings.lease_duration);
            if !expired {
                return Ok(false);
            }
            spec.holder_identity = Some(me.clone());
            spec.acquire_time = Some(now());
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(self.duration_secs());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        match api.replace(&self.settings.name, &params(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (empty holder) if this replica holds it.
    async fn release(&self) {
        let api = self.api();
        let Ok(Some(mut lease)) = api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match api.replace(&self.settings.name, &params(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.settings.name, "leadership released"),
            Err(e) => tracing::warn!(error = %e, "cannot release the lease"),
        }
    }

    /// Runs until shutdown, publishing on `leader` whether this replica
    /// leads (false at start and at once when leadership is lost).
    pub async fn run(self, leader: watch::Sender<bool>, mut shutdown: watch::Receiver<bool>) {
        let mut observed = Observed::default();
        let mut last_renew: Option<Instant> = None;
        loop {
            let result = self.try_acquire_or_renew(&mut observed).await;
            let leading = match result {
                Ok(true) => {
                    last_renew = Some(Instant::now());
                    true
                }
                Ok(false) => false,
                Err(e) => {
                    tracing::warn!(error = %e, lease = %self.settings.name, "lease renewal failed");
                    // Keep leading only within the renew deadline.
                    *leader.borrow()
                        && last_renew.is_some_and(|t| t.elapsed() < self.settings.renew_deadline)
                }
            };
            let was = leader.send_replace(leading);
            if was != leading {
                tracing::info!(
                    identity = %self.settings.identity,
                    lease = %self.settings.name,
                    leading,
                    "leadership changed"
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.retry_period) => {}
                _ = shutdown.changed() => {
                    leader.send_replace(false);
                    if leading {
                        self.release().await;
                    }
                    return;
                }
            }
        }
    }
}
