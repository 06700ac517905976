//! Scenario 17: a gRPC backend answering `UNAVAILABLE` is retried on the
//! next cluster and ejected; callers only see successes.

use std::time::Duration;

use causeway_api::model::{OutlierDetection, RetryCondition, TrafficPolicy, TrafficPolicySpec};
use causeway_e2e::federation::host;
use causeway_e2e::{ClusterDef, Federation, Store, grpc, metrics};

/// Consecutive failures that eject a cluster in this scenario's policy.
const EJECT_AFTER: u32 = 3;
/// Calls made while the near cluster fails.
const CALLS: usize = 20;

/// 17. rpc/greeter runs in eu-west-1 (near the caller in eu-west-2) and
/// us-east-1. eu-west-1's backend starts answering every call with a
/// trailers-only `grpc-status: 14`: each call is retried on us-east-1
/// (callers see `grpc-status: 0`), and after `EJECT_AFTER` failures
/// eu-west-1 is ejected (two clusters, default `maxEjectionPercent` 10:
/// one ejection is always allowed), so later calls go straight to
/// us-east-1. The metrics show the status where it happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s17_grpc_unavailable_is_retried_and_ejected() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("rpc/greeter"),
        )
        .cluster(ClusterDef::new(
            "eu-west-2",
            "eu-west",
            "eu-west-2b",
            &["eu"],
        ))
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"]).service("rpc/greeter"),
        )
        .start()
        .await?;
    let mut spec = TrafficPolicySpec::new("rpc/greeter".parse()?);
    spec.retries.attempts = 2;
    spec.retries.retry_on = vec![RetryCondition::ConnectFailure, RetryCondition::Unavailable];
    spec.outlier_detection = Some(OutlierDetection {
        consecutive_errors: EJECT_AFTER,
        base_ejection_time: Duration::from_secs(120),
        ..OutlierDetection::default()
    });
    fed.put_policy(
        "traffic",
        "greeter",
        &TrafficPolicy::new("greeter".parse()?, spec),
    )
    .await?;
    fed.converge().await?;
    let greeter = host("rpc/greeter");
    let egress = fed.cluster("eu-west-2")?.egress();
    let near = fed.backend("eu-west-1", "rpc/greeter")?;
    let far = fed.backend("us-east-1", "rpc/greeter")?;

    let ok = grpc::call(egress, &greeter, "/greeter.Greeter/SayHello", &[b"hi"]).await?;
    assert_eq!(
        ok.served_by.as_deref(),
        Some("eu-west-1"),
        "near first: {ok:?}"
    );
    assert_eq!(ok.grpc_status.as_deref(), Some("0"), "{ok:?}");

    near.set_grpc_status(14);
    let (near0, far0) = (near.count(), far.count());
    for i in 0..CALLS {
        let r = grpc::call(egress, &greeter, "/greeter.Greeter/SayHello", &[b"hi"]).await?;
        assert_eq!(r.http_status, 200, "call {i}: {r:?}");
        assert_eq!(r.grpc_status.as_deref(), Some("0"), "call {i}: {r:?}");
        assert_eq!(r.served_by.as_deref(), Some("us-east-1"), "call {i}: {r:?}");
        assert_eq!(
            r.messages,
            vec![bytes::Bytes::from_static(b"hi")],
            "call {i}"
        );
    }
    let near_calls = near.count() - near0;
    let far_calls = far.count() - far0;
    assert_eq!(
        near_calls,
        u64::from(EJECT_AFTER),
        "eu-west-1 is tried until ejected, then skipped"
    );
    assert_eq!(far_calls, CALLS as u64, "every call succeeded on us-east-1");

    let src = fed.cluster("eu-west-2")?.gateway.metrics().await?;
    let dst = fed.cluster("eu-west-1")?.gateway.metrics().await?;
    assert_eq!(
        metrics::sum(
            &src,
            "causeway_gateway_target_ejected",
            &[
                ("service", "rpc/greeter"),
                ("destination_cluster", "eu-west-1")
            ],
        ),
        1.0,
        "{src}"
    );
    assert_eq!(
        metrics::sum(
            &src,
            "causeway_gateway_retries_total",
            &[("service", "rpc/greeter")]
        ),
        f64::from(EJECT_AFTER),
        "{src}"
    );
    assert_eq!(
        metrics::sum(
            &src,
            "causeway_gateway_requests_total",
            &[
                ("listener", "egress"),
                ("service", "rpc/greeter"),
                ("grpc_status", "0")
            ],
        ),
        (CALLS + 1) as f64,
        "the caller's view: every call OK\n{src}"
    );
    assert_eq!(
        metrics::sum(
            &dst,
            "causeway_gateway_requests_total",
            &[
                ("listener", "ingress"),
                ("service", "rpc/greeter"),
                ("grpc_status", "14")
            ],
        ),
        f64::from(EJECT_AFTER),
        "eu-west-1's ingress counts the UNAVAILABLE answers\n{dst}"
    );
    eprintln!(
        "s17: {CALLS} calls, all OK; eu-west-1 answered UNAVAILABLE {near_calls} times before its ejection"
    );
    Ok(())
}
