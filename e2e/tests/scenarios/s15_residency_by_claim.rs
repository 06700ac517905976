//! Scenario 15: residency by a verified token claim, enforced at both ends.

use std::net::IpAddr;
use std::time::Duration;

use causeway_api::model::{
    OidcIssuer, OnUnverified, RequestClassification, ResidencyPolicy, ResidencyPolicySpec,
    ServiceSelector,
};
use causeway_e2e::federation::host;
use causeway_e2e::mtls::{Attempt, attempt_with, gateway_svid, load_authority};
use causeway_e2e::oidc::FakeIssuer;
use causeway_e2e::{ClusterDef, Federation, Store};
use causeway_gateway::identity::CallerJwtCache;
use causeway_gateway::routing::ResidencyVerdict;
use causeway_trust::TrustDomain;
use serde_json::json;

use crate::support::{calls, tally};

const POLICY: &str = "profile-eu-by-claim";

fn policy(idp: &FakeIssuer, on_unverified: OnUnverified) -> ResidencyPolicy {
    ResidencyPolicy::new(
        POLICY.parse().unwrap(),
        ResidencyPolicySpec {
            services: ServiceSelector(vec!["shop/profile".parse().unwrap()]),
            match_: Some(RequestClassification {
                jwt_claim: Some("data_region".into()),
                oidc: Some(OidcIssuer {
                    issuer: idp.issuer.clone(),
                    audience: idp.audience.clone(),
                    jwks_url: idp.jwks_url.clone(),
                }),
                on_unverified,
                values: vec!["eu".into()],
                ..Default::default()
            }),
            allowed_jurisdictions: vec!["eu".into()],
            allowed_regions: vec![],
        },
    )
}

/// 15. A request whose verified OIDC token says `data_region: eu` is
/// served only in the EU, and gets 503 (with an audit line) when every EU
/// backend is down; a forged or expired token with the same claim is refused
/// (`onUnverified: deny`) or routed as unclassified, never as EU; a request
/// that reaches a non-EU ingress with an EU-only verdict is refused there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s15_residency_by_claim() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"]).service("shop/profile"),
        )
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"]).service("shop/profile"),
        )
        .start()
        .await?;
    let api_host = fed
        .api_url()
        .trim_start_matches("http://")
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_owned())
        .unwrap_or_default();
    let idp = FakeIssuer::start(api_host.parse::<IpAddr>()?).await?;
    fed.put_policy("residency", POLICY, &policy(&idp, OnUnverified::Deny))
        .await?;
    fed.converge().await?;
    let profile = host("shop/profile");
    let us_backend = fed.backend("us-east-1", "shop/profile")?.clone();
    let bearer = |t: String| format!("Bearer {t}");
    let eu = bearer(idp.token(json!({"data_region": "eu"}))?);
    let us = bearer(idp.token(json!({"data_region": "us"}))?);
    let forged = bearer(idp.forged_token(json!({"data_region": "eu"}))?);
    let expired = bearer(idp.expired_token(json!({"data_region": "eu"}))?);

    // Verified EU token: served in the EU although the caller's own
    // cluster exports the service; a verified US token and no token stay local.
    let t = tally(&calls(&fed, "us-east-1", &profile, &[("authorization", &eu)], 10).await?);
    assert_eq!(t.get("200 eu-west-1"), Some(&10), "{t:?}");
    let t = tally(&calls(&fed, "us-east-1", &profile, &[("authorization", &us)], 5).await?);
    assert_eq!(t.get("200 us-east-1"), Some(&5), "{t:?}");
    let t = tally(&calls(&fed, "us-east-1", &profile, &[], 5).await?);
    assert_eq!(t.get("200 us-east-1"), Some(&5), "{t:?}");
    assert_eq!(us_backend.count(), 10);
    assert!(idp.fetches() >= 1, "the gateway fetched the issuer's JWKS");

    // Forged and expired tokens with the EU claim: refused, not routed.
    for (what, token) in [("forged", &forged), ("expired", &expired)] {
        let replies = calls(&fed, "us-east-1", &profile, &[("authorization", token)], 5).await?;
        for r in &replies {
            assert_eq!(r.status, 403, "{what}: {r:?}");
            assert_eq!(
                r.deny_reason.as_deref(),
                Some("unverified_token"),
                "{what}: {r:?}"
            );
            assert_eq!(r.json()["policy"], POLICY, "{what}: {}", r.body);
        }
    }
    assert_eq!(
        us_backend.count(),
        10,
        "no refused request reached a backend"
    );
    let m = fed.cluster("us-east-1")?.gateway.metrics().await?;
    for reason in ["bad_signature", "expired"] {
        assert!(
            causeway_e2e::metrics::sum(
                &m,
                "causeway_gateway_token_rejections_total",
                &[("source", "oidc"), ("reason", reason)]
            ) >= 5.0,
            "{reason}: {m}"
        );
    }

    // Served requests under the policy were audited at both ends.
    let audit = fed.cluster("us-east-1")?.gateway.audit_log();
    let served = audit
        .iter()
        .filter(|l| l["event"] == "served" && l["listener"] == "egress")
        .filter(|l| {
            l["policies"]
                .as_array()
                .is_some_and(|p| p.contains(&json!(POLICY)))
        })
        .count();
    assert_eq!(served, 10, "{audit:?}");
    let eu_audit = fed.cluster("eu-west-1")?.gateway.audit_log();
    assert_eq!(
        eu_audit
            .iter()
            .filter(|l| l["event"] == "served" && l["listener"] == "ingress")
            .count(),
        10,
        "the destination audits what it served under the verdict: {eu_audit:?}"
    );

    // `onUnverified: unclassified`: the forged token counts as no token.
    fed.put_policy(
        "residency",
        POLICY,
        &policy(&idp, OnUnverified::Unclassified),
    )
    .await?;
    fed.converge().await?;
    let t = tally(
        &calls(
            &fed,
            "us-east-1",
            &profile,
            &[("authorization", &forged)],
            5,
        )
        .await?,
    );
    assert_eq!(
        t.get("200 us-east-1"),
        Some(&5),
        "routed as unclassified: {t:?}"
    );
    assert_eq!(us_backend.count(), 15);

    // Every EU backend down: the verified EU request gets 503, never the US.
    fed.stop_backend("eu-west-1", "shop/profile").await?;
    fed.converge().await?;
    let replies = calls(&fed, "us-east-1", &profile, &[("authorization", &eu)], 10).await?;
    for r in &replies {
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.deny_reason.as_deref(), Some("residency"), "{r:?}");
        assert_eq!(r.json()["policy"], POLICY, "{}", r.body);
    }
    assert_eq!(
        us_backend.count(),
        15,
        "no EU-classified request reached the US"
    );
    let denied = causeway_e2e::wait::until(
        "audit lines of the denials",
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async {
            let a = fed.cluster("us-east-1").ok()?.gateway.audit_log();
            let n = a
                .iter()
                .filter(|l| l["event"] == "denied" && l["status"] == 503)
                .filter(|l| {
                    l["policies"]
                        .as_array()
                        .is_some_and(|p| p.contains(&json!(POLICY)))
                })
                .count();
            (n >= 10).then_some(n)
        },
    )
    .await?;
    assert_eq!(denied, 10);

    // A source that ignores the verdict: a request reaching the US ingress
    // with an EU-only verdict, signed by a genuine EU gateway, is refused
    // there (403, the policy named, counted, audited).
    let eu_ca = load_authority(&fed.dir().join("eu-west-1").join("ca"))?;
    let us_ca = load_authority(&fed.dir().join("us-east-1").join("ca"))?;
    let svid = gateway_svid(&eu_ca, "eu-west-1")?;
    let caller = TrustDomain::new("eu-west-1.causeway.test")?.spiffe_id("/ns/shop/sa/web")?;
    let verdict = [ResidencyVerdict {
        policy: POLICY.into(),
        jurisdictions: vec!["eu".into()],
        regions: vec![],
    }];
    let token = CallerJwtCache::new(Duration::from_secs(60))
        .token(&svid, &caller, "us-east-1.causeway.test", &verdict)
        .ok_or_else(|| anyhow::anyhow!("cannot mint a caller token"))?;
    let ingress = fed.cluster("us-east-1")?.gateway.ingress();
    let answer = attempt_with(
        ingress,
        &svid,
        &us_ca,
        &profile,
        &[("x-causeway-caller-jwt", token.to_str()?)],
    )
    .await?;
    let Attempt::Answered(text) = answer else {
        panic!("refused at the handshake: {answer:?}");
    };
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(text.contains(POLICY), "names the policy: {text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("x-causeway-deny-reason: residency"),
        "{text}"
    );
    // The same request without the verdict is served: the refusal is the verdict's.
    let plain = CallerJwtCache::new(Duration::from_secs(60))
        .token(&svid, &caller, "us-east-1.causeway.test", &[])
        .ok_or_else(|| anyhow::anyhow!("cannot mint a caller token"))?;
    let answer = attempt_with(
        ingress,
        &svid,
        &us_ca,
        &profile,
        &[("x-causeway-caller-jwt", plain.to_str()?)],
    )
    .await?;
    assert!(
        matches!(&answer, Attempt::Answered(t) if t.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
    assert_eq!(
        us_backend.count(),
        16,
        "only the request without a verdict was served"
    );
    let m = fed.cluster("us-east-1")?.gateway.metrics().await?;
    assert!(
        causeway_e2e::metrics::sum(
            &m,
            "causeway_gateway_residency_denials_total",
            &[("reason", "residency_forbids_destination")]
        ) >= 1.0,
        "{m}"
    );
    let audit = fed.cluster("us-east-1")?.gateway.audit_log();
    assert!(
        audit.iter().any(|l| l["event"] == "denied"
            && l["listener"] == "ingress"
            && l["reason"] == "residency_forbids_destination"
            && l["caller"] == caller.to_string()),
        "{audit:?}"
    );
    Ok(())
}
