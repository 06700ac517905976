#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

#[test]
fn valid_ids_parse_and_round_trip() {
    let cases = [
        ("spiffe://example.org", "example.org", ""),
        ("spiffe://trustdomain/path", "trustdomain", "/path"),
        (
            "spiffe://trustdomain/path1/path2",
            "trustdomain",
            "/path1/path2",
        ),
        (
            "spiffe://td-1.example_x/ns/default/sa/web",
            "td-1.example_x",
            "/ns/default/sa/web",
        ),
        (
            "spiffe://example.org/Upper.Case-Path_0",
            "example.org",
            "/Upper.Case-Path_0",
        ),
        ("spiffe://example.org/..a/b..", "example.org", "/..a/b.."),
        ("spiffe://0123456789/a", "0123456789", "/a"),
    ];
    for (input, td, path) in cases {
        let id = SpiffeId::new(input).unwrap();
        assert_eq!(id.trust_domain().name(), td, "{input}");
        assert_eq!(id.path(), path, "{input}");
        assert_eq!(id.to_string(), input);
        assert_eq!(input.parse::<SpiffeId>().unwrap(), id);
        assert_eq!(SpiffeId::try_from(input).unwrap(), id);
    }
}

#[test]
fn invalid_ids_are_rejected_with_the_rule_they_break() {
    use SpiffeIdError::*;
    let long_td = format!("spiffe://{}", "a".repeat(256));
    let max_td = format!("spiffe://{}/p", "a".repeat(255));
    let long_id = format!("spiffe://example.org/{}", "a".repeat(2048 - 20));
    let cases: Vec<(&str, SpiffeIdError)> = vec![
        ("", Empty),
        ("example.org/path", WrongScheme),
        ("http://example.org/path", WrongScheme),
        ("SPIFFE://example.org/path", WrongScheme),
        ("spiffe:/example.org", WrongScheme),
        ("spiffe://", MissingTrustDomain),
        ("spiffe:///path", MissingTrustDomain),
        ("spiffe://Example.org/path", BadTrustDomainChar { ch: 'E' }),
        ("spiffe://exa mple.org", BadTrustDomainChar { ch: ' ' }),
        ("spiffe://exa%41mple.org", BadTrustDomainChar { ch: '%' }),
        ("spiffe://exämple.org", BadTrustDomainChar { ch: 'ä' }),
        ("spiffe://example.org:8080/path", Port),
        ("spiffe://user@example.org/path", UserInfo),
        ("spiffe://user:pw@example.org/path", UserInfo),
        ("spiffe://example.org/path?query=1", Query),
        ("spiffe://example.org?x", Query),
        ("spiffe://example.org/path#frag", Fragment),
        ("spiffe://example.org/", TrailingSlash),
        ("spiffe://example.org/path/", TrailingSlash),
        ("spiffe://example.org//path", EmptySegment),
        ("spiffe://example.org/a//b", EmptySegment),
        ("spiffe://example.org/./path", DotSegment),
        ("spiffe://example.org/a/..", DotSegment),
        ("spiffe://example.org/../a", DotSegment),
        ("spiffe://example.org/pa th", BadPathChar { ch: ' ' }),
        ("spiffe://example.org/pa%20th", BadPathChar { ch: '%' }),
        ("spiffe://example.org/a:b", BadPathChar { ch: ':' }),
        ("spiffe://example.org/a@b", BadPathChar { ch: '@' }),
        ("spiffe://example.org/ä", BadPathChar { ch: 'ä' }),
        (&long_td, TrustDomainTooLong { len: 256 }),
        (&long_id, TooLong { len: 2049 }),
    ];
    for (input, expected) in cases {
        assert_eq!(SpiffeId::new(input).unwrap_err(), expected, "{input:?}");
        assert!(!expected.to_string().is_empty());
    }
    // The limits are inclusive.
    assert!(SpiffeId::new(&max_td).is_ok());
    let max_id = format!("spiffe://example.org/{}", "a".repeat(2048 - 21));
    assert_eq!(max_id.len(), 2048);
    assert!(SpiffeId::new(&max_id).is_ok());
}

#[test]
fn trust_domain_parsing() {
    let td = TrustDomain::new("example.org").unwrap();
    assert_eq!(td, TrustDomain::new("spiffe://example.org").unwrap());
    assert_eq!(td.id().to_string(), "spiffe://example.org");
    assert_eq!(td.to_string(), "example.org");
    assert_eq!(
        td.spiffe_id("/ns/a").unwrap().to_string(),
        "spiffe://example.org/ns/a"
    );
    assert_eq!(
        td.spiffe_id("/a/").unwrap_err(),
        SpiffeIdError::TrailingSlash
    );
    assert!(td.spiffe_id("a").is_err());
    assert_eq!(
        TrustDomain::new("").unwrap_err(),
        SpiffeIdError::MissingTrustDomain
    );
    assert_eq!(
        TrustDomain::new("Example.org").unwrap_err(),
        SpiffeIdError::BadTrustDomainChar { ch: 'E' }
    );
    assert_eq!(
        TrustDomain::new("example.org:443").unwrap_err(),
        SpiffeIdError::Port
    );
    assert!(TrustDomain::new("spiffe://example.org/path").is_err());
    assert_eq!(
        TrustDomain::new(&"a".repeat(256)).unwrap_err(),
        SpiffeIdError::TrustDomainTooLong { len: 256 }
    );
}

#[test]
fn serde_validates() {
    let id: SpiffeId = serde_json::from_str("\"spiffe://example.org/a\"").unwrap();
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        "\"spiffe://example.org/a\""
    );
    assert!(serde_json::from_str::<SpiffeId>("\"spiffe://example.org/a/\"").is_err());
    assert!(serde_json::from_str::<SpiffeId>("42").is_err());
    let td: TrustDomain = serde_json::from_str("\"example.org\"").unwrap();
    assert_eq!(serde_json::to_string(&td).unwrap(), "\"example.org\"");
    let err = serde_json::from_str::<TrustDomain>("\"EXAMPLE\"").unwrap_err();
    assert!(err.to_string().contains("trust domain character"), "{err}");
}

#[test]
fn ordering_and_hashing_are_by_value() {
    use std::collections::{BTreeSet, HashSet};
    let a = SpiffeId::new("spiffe://a.org/x").unwrap();
    let b = SpiffeId::new("spiffe://b.org/x").unwrap();
    let set: BTreeSet<_> = [b.clone(), a.clone(), a.clone()].into_iter().collect();
    assert_eq!(
        set.into_iter().collect::<Vec<_>>(),
        vec![a.clone(), b.clone()]
    );
    let hs: HashSet<_> = [a.clone(), a].into_iter().collect();
    assert_eq!(hs.len(), 1);
}

fn arb_id() -> impl Strategy<Value = String> {
    let td = "[a-z0-9._-]{1,40}";
    let seg = "[a-zA-Z0-9._-]{1,12}".prop_filter("no dot segments", |s| s != "." && s != "..");
    (td, proptest::collection::vec(seg, 0..6)).prop_map(|(td, segs)| {
        let mut s = format!("spiffe://{td}");
        for seg in segs {
            s.push('/');
            s.push_str(&seg);
        }
        s
    })
}

proptest! {
    #[test]
    fn display_parse_round_trip(input in arb_id()) {
        let id = SpiffeId::new(&input).unwrap();
        prop_assert_eq!(id.to_string(), input.clone());
        let again: SpiffeId = id.to_string().parse().unwrap();
        prop_assert_eq!(&again, &id);
        let json = serde_json::to_string(&id).unwrap();
        prop_assert_eq!(serde_json::from_str::<SpiffeId>(&json).unwrap(), id);
    }

    #[test]
    fn parse_never_panics(input in "\\PC{0,80}") {
        if let Ok(id) = SpiffeId::new(&input) {
            prop_assert_eq!(id.to_string(), input);
        }
    }
}
