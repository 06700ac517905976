#![allow(clippy::unwrap_used)]

use super::*;

fn es_keys() -> (JwtKeys, String) {
    let (private, public) = generate_es256_pem().unwrap();
    let keys = JwtKeys::es256(
        public.as_bytes(),
        Some(private.as_bytes()),
        "causeway",
        None,
    )
    .unwrap();
    (keys, public)
}

#[test]
fn minted_token_verifies_with_its_scopes() {
    let (keys, _) = es_keys();
    let t = keys
        .mint(
            &[Scope::Cluster("eu-1".into()), Scope::Read],
            Duration::from_secs(60),
            Some("gw"),
        )
        .unwrap();
    let p = keys.verify(&t).unwrap();
    assert!(p.can_write_cluster("eu-1"));
    assert!(!p.can_write_cluster("us-1"));
    assert!(!p.is_admin());
    assert_eq!(p.subject.as_deref(), Some("gw"));
}

#[test]
fn hs256_token_signed_with_the_public_key_is_rejected() {
    let (keys, public) = es_keys();
    let forged = JwtKeys::hs256(public.as_bytes(), "causeway", None)
        .mint(&[Scope::Admin], Duration::from_secs(60), None)
        .unwrap();
    assert_eq!(
        keys.verify(&forged).unwrap_err(),
        "token algorithm not accepted"
    );
}

#[test]
fn foreign_key_wrong_audience_and_missing_scope_are_rejected() {
    let (keys, _) = es_keys();
    let (other, _) = es_keys();
    let t = other
        .mint(&[Scope::Admin], Duration::from_secs(60), None)
        .unwrap();
    assert_eq!(keys.verify(&t).unwrap_err(), "token signature invalid");
    let hs = JwtKeys::hs256(b"secret", "causeway", None);
    let wrong_aud = JwtKeys::hs256(b"secret", "elsewhere", None)
        .mint(&[Scope::Admin], Duration::from_secs(60), None)
        .unwrap();
    assert_eq!(
        hs.verify(&wrong_aud).unwrap_err(),
        "token audience not accepted"
    );
    let no_scope = hs.mint(&[], Duration::from_secs(60), None).unwrap();
    assert_eq!(
        hs.verify(&no_scope).unwrap_err(),
        "token carries no valid scope"
    );
}

#[test]
fn scopes_parse_strictly() {
    assert_eq!("admin".parse::<Scope>().unwrap(), Scope::Admin);
    assert_eq!(
        "cluster:eu-1".parse::<Scope>().unwrap(),
        Scope::Cluster("eu-1".into())
    );
    assert!("cluster:EU".parse::<Scope>().is_err());
    assert!("cluster:".parse::<Scope>().is_err());
    assert!("root".parse::<Scope>().is_err());
}
