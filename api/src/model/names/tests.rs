#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn labels_accept_rfc1123() {
    for ok in ["a", "eu-west-1", "0abc", &"a".repeat(63)] {
        ClusterId::new(ok).unwrap();
        Namespace::new(ok).unwrap();
        ServiceName::new(ok).unwrap();
    }
}

#[test]
fn labels_name_the_broken_rule() {
    let e = ClusterId::new("").unwrap_err();
    assert!(e.to_string().contains("must not be empty"), "{e}");
    let e = ClusterId::new("a".repeat(64)).unwrap_err();
    assert!(e.to_string().contains("at most 63"), "{e}");
    let e = ClusterId::new("EU").unwrap_err();
    assert!(e.to_string().contains("lowercase alphanumeric"), "{e}");
    assert!(e.to_string().contains("cluster id"), "{e}");
    let e = Namespace::new("-a").unwrap_err();
    assert!(e.to_string().contains("start and end"), "{e}");
    let e = ServiceName::new("a.b").unwrap_err();
    assert!(e.to_string().contains("'.'"), "{e}");
}

#[test]
fn policy_names_are_subdomains() {
    PolicyName::new("eu-only.payments").unwrap();
    PolicyName::new("a".repeat(63)).unwrap();
    assert!(PolicyName::new("a..b").is_err());
    assert!(PolicyName::new(format!("{}.b", "a".repeat(252))).is_err());
    assert!(PolicyName::new("Upper").is_err());
}

#[test]
fn trust_domains() {
    TrustDomainName::new("eu-west-1.causeway.dev").unwrap();
    TrustDomainName::new("example_org").unwrap();
    assert!(TrustDomainName::new("Example.org").is_err());
    assert!(TrustDomainName::new("spiffe://x").is_err());
}

#[test]
fn service_ref_round_trips_as_string() {
    let r: ServiceRef = "payments/checkout".parse().unwrap();
    assert_eq!(r.to_string(), "payments/checkout");
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(json, "\"payments/checkout\"");
    let back: ServiceRef = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert!("payments".parse::<ServiceRef>().is_err());
    assert!("payments/Checkout".parse::<ServiceRef>().is_err());
}

#[test]
fn deserialize_rejects_invalid() {
    let e = serde_json::from_str::<ClusterId>("\"Bad_Id\"").unwrap_err();
    assert!(e.to_string().contains("invalid cluster id"), "{e}");
}
