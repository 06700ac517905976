//! Scenario 13: a rolling restart of the serving cluster's gateway
//! replicas under steady cross-cluster load. Each cluster runs two gateway
//! replicas (both its gateway endpoints) whose agents elect a leader on the
//! cluster's (wire-true fake) Kubernetes API server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use causeway_agent::kubernetes::mcs::{ServiceExport, ServiceExportSpec};
use causeway_e2e::client::HttpClient;
use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, Federation, Store};
use k8s_openapi::api::core::v1::Service;
use kube::api::PostParams;

const A: &str = "eu-west-1";
const B: &str = "us-east-1";

/// The Lease writers of `cluster`'s API server in order (consecutive
/// duplicates folded), and checks that every other write of its agents came
/// from the replica that wrote the Lease last.
fn lease_writers_and_check_single_writer(
    fed: &Federation,
    cluster: &str,
) -> (Vec<String>, std::collections::BTreeMap<String, usize>) {
    let kube_api = fed
        .cluster(cluster)
        .expect("cluster")
        .kube
        .as_ref()
        .expect("kubernetes");
    let mut holder = String::new();
    let mut writers: Vec<String> = Vec::new();
    let mut others: std::collections::BTreeMap<String, usize> = Default::default();
    for r in kube_api.requests() {
        if r.user_agent != causeway_agent::kubernetes::USER_AGENT
            || !matches!(r.verb, "create" | "update" | "patch" | "delete")
            || r.code >= 300
        {
            continue;
        }
        if r.resource == "leases" {
            if writers.last() != Some(&r.user) {
                writers.push(r.user.clone());
            }
            holder = r.user.clone();
        } else {
            assert_eq!(
                r.user, holder,
                "{cluster}: {} {} {:?} written by {} while {} held the lease",
                r.verb, r.resource, r.name, r.user, holder
            );
            *others.entry(r.user.clone()).or_default() += 1;
        }
    }
    eprintln!("s13: {cluster}: lease writers {writers:?}, other writes by replica {others:?}");
    (writers, others)
}

/// 13. Two gateway replicas per cluster with leader election; steady load
/// from B to A's service while each of A's replicas is sent SIGTERM in turn
/// (drained, exit 0, restarted): no request fails, A's leadership moves to
/// the other replica and back, and A's API server never sees writes from
/// two replicas at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_rolling_restart_fails_no_request() -> anyhow::Result<()> {
    let mut fed = Federation::builder()
        .store(Store::Etcd { members: 1 })
        .cluster(
            ClusterDef::new(A, "eu-west", "eu-west-1a", &["eu"])
                .kubernetes()
                .replicas(2)
                .service("shop/cart"),
        )
        .cluster(
            ClusterDef::new(B, "us-east", "us-east-1a", &["us"])
                .kubernetes()
                .replicas(2)
                .service("shop/web"),
        )
        .start()
        .await?;
    let cart = host("shop/cart");
    let r = fed.call(B, &cart, &[]).await?;
    assert_eq!((r.status, r.served_by.as_deref()), (200, Some(A)));

    // Steady load from B's egress.
    let egress = fed.cluster(B)?.gateway.egress();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        let cart = cart.clone();
        let http = HttpClient::new(Duration::from_secs(5));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match http.get(egress, &cart, "/", &[]).await {
                    Ok(r) if r.status == 200 && r.served_by.as_deref() == Some(A) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(format!("{} from {:?}", r.status, r.served_by)),
                    Err(e) => failures
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    for i in 0..2 {
        let a = fed.cluster_mut(A)?;
        let replica = if i == 0 {
            &mut a.gateway
        } else {
            &mut a.more_replicas[0]
        };
        let status = replica
            .terminate(Duration::from_secs(15))
            .await
            .ok_or_else(|| anyhow::anyhow!("replica {i} did not exit after draining"))?;
        assert!(status.success(), "replica {i} exit status {status}");
        replica.start().await?;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        if i == 0 {
            // The other replica leads now: give it something to write (the
            // status of a new ServiceExport in A).
            let client = fed.cluster(A)?.kube_client()?;
            let svc: Service = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "extra", "namespace": "shop"},
                "spec": {"ports": [{"name": "http", "port": 8080}]}
            }))?;
            kube::Api::<Service>::namespaced(client.clone(), "shop")
                .create(&PostParams::default(), &svc)
                .await?;
            let exports: kube::Api<ServiceExport> = kube::Api::namespaced(client, "shop");
            exports
                .create(
                    &PostParams::default(),
                    &ServiceExport::new("extra", ServiceExportSpec::default()),
                )
                .await?;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let se = exports.get("extra").await?;
                if se.status.is_some_and(|s| !s.conditions.is_empty()) {
                    break;
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "the new leader wrote no serviceexport status"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await?;
    }
    let served = ok.load(Ordering::Relaxed);
    let failures = failures
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    eprintln!(
        "s13: {served} requests served during the rolling restart, {} failed",
        failures.len()
    );
    assert!(served > 100, "only {served} requests served");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        served + failures.len(),
        &failures[..failures.len().min(5)]
    );

    // Leadership moved with each SIGTERM; writes came from one replica at
    // a time.
    let (writers, others) = lease_writers_and_check_single_writer(&fed, A);
    assert!(
        writers.len() >= 3 && writers[0] != writers[1],
        "leadership did not move: {writers:?}"
    );
    assert_eq!(
        others.len(),
        2,
        "both replicas wrote in their turn: {others:?}"
    );
    lease_writers_and_check_single_writer(&fed, B);
    Ok(())
}
