//! etcd-specific store behaviour: failures, HA and namespaces, against real
//! etcd processes started by the `testing` harness.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use causeway_federation::store::{
    EtcdStore, EtcdStoreConfig, Page, Precondition, Store, StoreError,
};
use causeway_federation::testing::{EtcdCluster, EtcdProcess};
use futures::StreamExt;

fn config(endpoints: Vec<String>) -> EtcdStoreConfig {
    EtcdStoreConfig {
        endpoints,
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        ..EtcdStoreConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_breaks_when_etcd_dies_and_resumes_after_restart() -> anyhow::Result<()> {
    let mut etcd = EtcdProcess::start().await?;
    let store = EtcdStore::connect(&config(etcd.endpoints())).await?;
    let r1 = store
        .put("/w/a", Bytes::from_static(b"1"), Precondition::None, None)
        .await?;
    let mut w = store.watch("/w/", r1 + 1).await?;
    etcd.kill();
    let item = tokio::time::timeout(Duration::from_secs(20), w.next()).await?;
    match item {
        Some(Err(e)) => assert!(e.is_retryable(), "{e:?}"),
        other => anyhow::bail!("expected a retryable watch error, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), w.next())
            .await?
            .is_none()
    );
    // While etcd is down, requests fail as retryable.
    let err = store.get("/w/a").await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    etcd.restart().await?;
    // The data survived (same data dir), and a new watch resumes from r1+1
    // with nothing lost.
    let mut got = None;
    for _ in 0..50 {
        match store.get("/w/a").await {
            Ok(v) => {
                got = v;
                break;
            }
            Err(e) if e.is_retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!(got.unwrap().value, Bytes::from_static(b"1"));
    let r2 = store
        .put("/w/b", Bytes::from_static(b"2"), Precondition::None, None)
        .await?;
    let mut w = store.watch("/w/", r1 + 1).await?;
    let e = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await?
        .unwrap()?;
    assert_eq!(e.revision, r2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_isolate_and_are_stripped() -> anyhow::Result<()> {
    let etcd = EtcdProcess::shared().await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let a = EtcdStore::connect(&EtcdStoreConfig {
        namespace: format!("/ns-a-{nanos}"),
        ..config(etcd.endpoints())
    })
    .await?;
    let b = EtcdStore::connect(&EtcdStoreConfig {
        namespace: format!("/ns-b-{nanos}"),
        ..config(etcd.endpoints())
    })
    .await?;
    a.put(
        "/causeway/v1/clusters/x",
        Bytes::from_static(b"a"),
        Precondition::MustNotExist,
        None,
    )
    .await?;
    b.put(
        "/causeway/v1/clusters/x",
        Bytes::from_static(b"b"),
        Precondition::MustNotExist,
        None,
    )
    .await?;
    let la = a.range("/causeway/v1/", Page::all()).await?;
    assert_eq!(la.kvs.len(), 1);
    assert_eq!(la.kvs[0].key, "/causeway/v1/clusters/x");
    assert_eq!(la.kvs[0].value, Bytes::from_static(b"a"));
    let mut w = b.watch("/causeway/v1/", la.revision - 1).await?;
    let e = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await?
        .unwrap()?;
    assert_eq!(e.kv.key, "/causeway/v1/clusters/x");
    assert_eq!(e.kv.value, Bytes::from_static(b"b"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_cluster_survives_leader_kill() -> anyhow::Result<()> {
    let mut cluster = EtcdCluster::start().await?;
    let store = EtcdStore::connect(&config(cluster.endpoints())).await?;
    let r1 = store
        .put("/ha/k", Bytes::from_static(b"1"), Precondition::None, None)
        .await?;
    let leader = cluster
        .wait_for_leader(Duration::from_secs(10))
        .await
        .ok_or_else(|| anyhow::anyhow!("no leader"))?;
    let old_pid = cluster.pid(leader);
    assert!(old_pid.is_some());
    cluster.kill(leader);
    assert_eq!(cluster.pid(leader), None);
    let new_leader = cluster
        .wait_for_leader(Duration::from_secs(15))
        .await
        .ok_or_else(|| anyhow::anyhow!("no new leader"))?;
    assert_ne!(new_leader, leader);
    // Writes succeed again once the client routes around the dead member;
    // the compare-and-swap sees the pre-failure revision.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let r2 = loop {
        match store
            .put(
                "/ha/k",
                Bytes::from_static(b"2"),
                Precondition::ModRevision(r1),
                None,
            )
            .await
        {
            Ok(r) => break r,
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    assert!(r2 > r1);
    // The killed member rejoins and serves the new value.
    cluster.restart(leader).await?;
    let only = EtcdStore::connect(&config(vec![cluster.endpoint(leader)])).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match only.get("/ha/k").await {
            Ok(Some(kv)) if kv.mod_revision == r2 => break,
            Ok(_) | Err(StoreError::Unavailable { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => anyhow::bail!("rejoined member did not catch up: {other:?}"),
        }
    }
    Ok(())
}

/// Writes a CA, a server certificate for 127.0.0.1 and a client
/// certificate into `dir`; returns (ca, server cert, server key, client
/// cert, client key) paths.
fn write_pki(dir: &std::path::Path) -> anyhow::Result<[std::path::PathBuf; 5]> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "causeway test etcd ca");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_cert = server.signed_by(&server_key, &ca)?;

    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "causeway");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &ca)?;

    let paths = [
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server-key.pem"),
        dir.join("client.pem"),
        dir.join("client-key.pem"),
    ];
    std::fs::write(&paths[0], ca.pem())?;
    std::fs::write(&paths[1], server_cert.pem())?;
    std::fs::write(&paths[2], server_key.serialize_pem())?;
    std::fs::write(&paths[3], client_cert.pem())?;
    std::fs::write(&paths[4], client_key.serialize_pem())?;
    Ok(paths)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_to_etcd() -> anyhow::Result<()> {
    use causeway_federation::store::EtcdTls;
    use causeway_federation::testing::EtcdServerTls;
    let dir = tempfile::tempdir()?;
    let [ca, server_cert, server_key, client_cert, client_key] = write_pki(dir.path())?;
    let etcd = EtcdProcess::start_with_tls(Some(EtcdServerTls {
        cert_file: server_cert,
        key_file: server_key,
        client_ca_file: Some(ca.clone()),
    }))
    .await?;
    assert!(etcd.endpoint().starts_with("https://"));
    let tls = EtcdTls {
        ca_file: ca.clone(),
        cert_file: Some(client_cert),
        key_file: Some(client_key),
        domain: None,
    };
    let store = EtcdStore::connect(&EtcdStoreConfig {
        tls: Some(tls),
        ..config(etcd.endpoints())
    })
    .await?;
    let r = store
        .put(
            "/tls/k",
            Bytes::from_static(b"v"),
            Precondition::MustNotExist,
            None,
        )
        .await?;
    assert_eq!(store.get("/tls/k").await?.unwrap().mod_revision, r);

    // Without a client certificate, etcd refuses the client.
    let anonymous = EtcdStore::connect(&EtcdStoreConfig {
        tls: Some(EtcdTls {
            ca_file: ca,
            cert_file: None,
            key_file: None,
            domain: None,
        }),
        ..config(etcd.endpoints())
    })
    .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(s) => s.get("/tls/k").await.is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_and_password_authentication() -> anyhow::Result<()> {
    let etcd = EtcdProcess::start().await?;
    let admin = EtcdStore::connect(&config(etcd.endpoints())).await?;
    let mut client = admin.client().await?;
    client.user_add("root", "s3cret", None).await?;
    client.user_grant_role("root", "root").await?;
    client.auth_enable().await?;

    let authed = EtcdStore::connect(&EtcdStoreConfig {
        user: Some("root".to_owned()),
        password: Some("s3cret".to_owned()),
        ..config(etcd.endpoints())
    })
    .await?;
    authed
        .put(
            "/auth/k",
            Bytes::from_static(b"v"),
            Precondition::None,
            None,
        )
        .await?;
    let debug = format!(
        "{:?}",
        EtcdStoreConfig {
            password: Some("s3cret".to_owned()),
            ..EtcdStoreConfig::default()
        }
    );
    assert!(!debug.contains("s3cret"), "{debug}");

    // Connecting checks the credentials: a missing user fails at once and
    // is not retryable.
    let err = EtcdStore::connect(&config(etcd.endpoints()))
        .await
        .unwrap_err();
    assert!(
        !err.is_retryable(),
        "an auth failure is not retryable: {err:?}"
    );
    let wrong = EtcdStore::connect(&EtcdStoreConfig {
        user: Some("root".to_owned()),
        password: Some("wrong".to_owned()),
        ..config(etcd.endpoints())
    })
    .await;
    assert!(wrong.is_err(), "a wrong password must be refused");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_fails_over_without_errors() -> anyhow::Result<()> {
    let etcd = EtcdProcess::shared().await?;
    // A loopback port nobody listens on: connections are refused.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", l.local_addr()?)
    };
    let store = EtcdStore::connect(&config(vec![dead, etcd.endpoint()])).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    for i in 0..20 {
        store
            .put(
                &format!("/failover/{nanos}/{i}"),
                Bytes::from_static(b"v"),
                Precondition::MustNotExist,
                None,
            )
            .await?;
    }
    let listed = store
        .range(&format!("/failover/{nanos}/"), Page::all())
        .await?;
    assert_eq!(listed.kvs.len(), 20);
    Ok(())
}
