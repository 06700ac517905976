//! Endpoint selection with failover: one lazily connected client per etcd
//! member, a pinned current member, and a move to the next member when the
//! current one is unreachable (like the etcd Go client's pinned endpoint).
//!
//! A request that provably never reached a member (connection refused,
//! connect timeout, "no leader" with `require_leader`) is retried on the next
//! member; any other error is returned to the caller, because the request
//! may have been applied.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use tokio::sync::OnceCell;

use super::convert::map_err;
use crate::store::{LeaseId, StoreError};

/// The members and the current one.
pub(super) struct Endpoints {
    urls: Vec<String>,
    clients: Vec<OnceCell<Client>>,
    options: ConnectOptions,
    current: AtomicUsize,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Endpoints {
    pub(super) fn new(
        urls: Vec<String>,
        options: ConnectOptions,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Self {
        let clients = urls.iter().map(|_| OnceCell::new()).collect();
        Self {
            urls,
            clients,
            options,
            current: AtomicUsize::new(0),
            connect_timeout,
            request_timeout,
        }
    }

    /// The number of members.
    pub(super) fn len(&self) -> usize {
        self.urls.len()
    }

    /// The index of the current member.
    pub(super) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.urls.len().max(1)
    }

    /// Moves away from member `i` (if it is still the current one).
    pub(super) fn fail(&self, i: usize) {
        let next = (i + 1) % self.urls.len().max(1);
        let _ = self
            .current
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
        tracing::debug!(endpoint = %self.urls[i], "etcd endpoint failed, moving on");
    }

    /// The client of member `i`, connecting it on first use.
    pub(super) async fn client(&self, i: usize) -> Result<Client, StoreError> {
        let url = self.urls[i].clone();
        let connect = self.clients[i].get_or_try_init(|| async {
            Client::connect([url], Some(self.options.clone()))
                .await
                .map_err(|e| map_err(e, None))
        });
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(c)) => Ok(c.clone()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::unavailable(format!(
                "timed out connecting to etcd at {}",
                self.urls[i]
            ))),
        }
    }

    /// Runs `op` on the current member, failing over to the next members
    /// while the error shows the request was never sent.
    pub(super) async fn run<T, F, Fut>(
        &self,
        lease: Option<LeaseId>,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.run_op(lease, op).await.map_err(|(e, _)| e)
    }

    /// [`Self::run`] for a write: an unavailable answer after the request
    /// may have reached etcd (a timeout, a leader lost mid-proposal) is
    /// [`StoreError::OutcomeUnknown`], since etcd may still commit it.
    pub(super) async fn run_write<T, F, Fut>(
        &self,
        lease: Option<LeaseId>,
        op: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        self.run_op(lease, op)
            .await
            .map_err(|(e, maybe_sent)| match e {
                StoreError::Unavailable { message } if maybe_sent => {
                    StoreError::OutcomeUnknown { message }
                }
                e => e,
            })
    }

    /// Runs `op`; an error comes with whether the request may have been
    /// sent to a member.
    async fn run_op<T, F, Fut>(
        &self,
        lease: Option<LeaseId>,
        op: F,
    ) -> Result<T, (StoreError, bool)>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let start = self.current();
        let mut last = StoreError::unavailable("no etcd endpoints");
        for attempt in 0..self.len() {
            let i = (start + attempt) % self.len();
            let client = match self.client(i).await {
                Ok(c) => c,
                Err(e) if e.is_retryable() => {
                    self.fail(i);
                    last = e;
                    continue;
                }
                Err(e) => return Err((e, false)),
            };
            match tokio::time::timeout(self.request_timeout, op(client)).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => {
                    let not_sent = never_sent(&e);
                    let err = map_err(e, lease);
                    if err.is_retryable() {
                        self.fail(i);
                    }
                    if not_sent {
                        last = err;
                        continue;
                    }
                    return Err((err, true));
                }
                Err(_) => {
                    self.fail(i);
                    return Err((
                        StoreError::unavailable(format!(
                            "etcd request to {} timed out",
                            self.urls[i]
                        )),
                        true,
                    ));
                }
            }
        }
        Err((last, false))
    }
}

/// Whether an error proves the request did not reach etcd's state machine.
fn never_sent(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            let m = s.message();
            s.code() == tonic::Code::Unavailable
                && (m.contains("connect")
                    || m.contains("Connection refused")
                    || m.contains("no leader"))
        }
        _ => false,
    }
}
