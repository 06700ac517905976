#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use super::{COUNT_PATH, EchoServer};
use crate::client::HttpClient;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

#[tokio::test]
async fn counts_fails_stops_and_restarts() {
    let echo = EchoServer::start(any_port(), "eu-1", "shop/cart")
        .await
        .unwrap();
    let http = HttpClient::default();
    let r = http
        .get(echo.addr(), "x", "/a", &[("x-test", "1")])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.served_by.as_deref(), Some("eu-1"));
    assert_eq!(r.json()["headers"]["x-test"], "1");
    let c = http.get(echo.addr(), "x", COUNT_PATH, &[]).await.unwrap();
    assert_eq!(c.json()["count"], 1, "the counter read is not counted");

    echo.set_failing(true);
    assert_eq!(
        http.get(echo.addr(), "x", "/", &[]).await.unwrap().status,
        500
    );
    echo.set_failing(false);
    echo.set_fail_every(2);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(http.get(echo.addr(), "x", "/", &[]).await.unwrap().status);
    }
    assert_eq!(
        seen,
        vec![200, 500, 200, 500],
        "requests 3..6, every 2nd fails"
    );
    echo.set_fail_every(0);

    echo.stop().await;
    assert!(!echo.is_running().await);
    assert!(
        HttpClient::default()
            .get(echo.addr(), "x", "/", &[])
            .await
            .is_err()
    );
    echo.restart().await.unwrap();
    let r = HttpClient::default()
        .get(echo.addr(), "x", "/", &[])
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(echo.count(), 7);
}

#[tokio::test]
async fn grpc_unary_and_streaming_echo() {
    let echo = EchoServer::start(any_port(), "eu-1", "rpc/greeter")
        .await
        .unwrap();
    let unary = crate::grpc::call(echo.addr(), "greeter", "/g.G/Hi", &[b"hi"])
        .await
        .unwrap();
    assert_eq!(unary.grpc_status.as_deref(), Some("0"));
    assert_eq!(unary.messages, vec![bytes::Bytes::from_static(b"hi")]);
    let msgs: [&[u8]; 3] = [b"a", b"bb", b""];
    let s = crate::grpc::call(echo.addr(), "greeter", "/g.G/Chat", &msgs)
        .await
        .unwrap();
    assert_eq!(s.messages.len(), 3);
    assert_eq!(s.served_by.as_deref(), Some("eu-1"));
    assert_eq!(echo.count(), 2);
}
