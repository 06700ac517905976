//! Scenario 10: gRPC (unary and streaming) and TCP across clusters.

use causeway_e2e::federation::host;
use causeway_e2e::grpc;
use causeway_e2e::{ClusterDef, Federation, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// 10. A gRPC unary call, a bidirectional stream and a raw TCP connection
/// from us-east-1 are served by eu-west-1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_grpc_and_tcp_cross_clusters() -> anyhow::Result<()> {
    let fed = Federation::builder()
        .store(Store::Embedded)
        .cluster(
            ClusterDef::new("eu-west-1", "eu-west", "eu-west-1a", &["eu"])
                .service("rpc/greeter")
                .tcp_service("db/ledger"),
        )
        .cluster(
            ClusterDef::new("us-east-1", "us-east", "us-east-1a", &["us"]).tcp_import("db/ledger"),
        )
        .start()
        .await?;
    let us = fed.cluster("us-east-1")?;
    let greeter = host("rpc/greeter");
    let backend = fed.backend("eu-west-1", "rpc/greeter")?;

    let unary = grpc::call(
        us.egress(),
        &greeter,
        "/greeter.Greeter/SayHello",
        &[b"hello"],
    )
    .await?;
    assert_eq!(unary.http_status, 200, "{unary:?}");
    assert_eq!(unary.served_by.as_deref(), Some("eu-west-1"), "{unary:?}");
    assert_eq!(unary.messages, vec![bytes::Bytes::from_static(b"hello")]);
    assert_eq!(unary.grpc_status.as_deref(), Some("0"), "{unary:?}");

    let msgs: [&[u8]; 3] = [b"one", b"two", b"three"];
    let stream = grpc::call(us.egress(), &greeter, "/greeter.Greeter/Chat", &msgs).await?;
    assert_eq!(stream.served_by.as_deref(), Some("eu-west-1"), "{stream:?}");
    assert_eq!(
        stream.messages.len(),
        3,
        "each message echoed while the stream is open: {stream:?}"
    );
    assert_eq!(stream.messages[2], bytes::Bytes::from_static(b"three"));
    assert_eq!(stream.grpc_status.as_deref(), Some("0"), "{stream:?}");
    assert_eq!(backend.count(), 2, "two calls reached the backend");

    // TCP: bytes written to the local TCP egress port reach eu-west-1's
    // backend through the mTLS tunnel (the backend speaks HTTP, so its
    // answer names itself).
    let tcp_port = us
        .tcp_egress("db/ledger")
        .ok_or_else(|| anyhow::anyhow!("no tcp egress"))?;
    let mut s = tokio::net::TcpStream::connect(tcp_port).await?;
    s.write_all(b"GET /raw HTTP/1.1\r\nHost: anything\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await??;
    let text = String::from_utf8_lossy(&out).to_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("x-served-by: eu-west-1"), "{text}");
    assert_eq!(fed.backend("eu-west-1", "db/ledger")?.count(), 1);
    Ok(())
}
