//! The size and count limits: a header block over `MAX_HEADER_SIZE` gets 431 (RFC 6585 §5) over
//! HTTP/1.1 and HTTP/2 alike, a body over `MAX_REQUEST_BODY` gets 413 and never reaches the upstream
//! whole, and connections beyond `MAX_CONNECTIONS` wait in the backlog.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_header_block_over_max_header_size_gets_431() {
    let s = stack(&[("MAX_HEADER_SIZE", "16KiB")]).await;
    let token = s.token();
    let filler = |total: usize| -> String {
        (0..total / 1000)
            .map(|i| format!("X-Filler-{i:03}: {}\r\n", "f".repeat(985)))
            .collect()
    };
    // Many headers, one huge header, a huge request target: all over the limit.
    for (case, request) in [
        ("many headers", format!("GET /mcp HTTP/1.1\r\nHost: x\r\n{}\r\n", filler(20_000))),
        (
            "one huge header",
            format!("GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000)),
        ),
        ("huge target", format!("GET /mcp?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(20_000))),
        (
            "huge header with a valid token",
            format!(
                "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{}Content-Length: 0\r\n\r\n",
                filler(40_000)
            ),
        ),
    ] {
        let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(a.status(), Some(431), "{case}: {:?}", a.text());
        assert!(a.closed, "{case}: the connection is closed after a 431");
    }
    // An ordinary HTTP client sees the 431 too.
    let big = "v".repeat(30_000);
    let a = get(&s.gate.resource(), &[("x-big", &big)]).await;
    assert_eq!(a.status, 431);
    // Just under the limit is an ordinary request.
    let a = post(
        &s.gate.resource(),
        &[
            ("authorization", &bearer(&token)),
            ("x-fill", &"v".repeat(10_000)),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn http2_requests_honour_max_header_size_too() {
    let s = stack(&[("MAX_HEADER_SIZE", "64KiB")]).await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let send = |extra: usize| {
        let request = http::Request::post(s.gate.resource())
            .header("authorization", bearer(&s.token()))
            .header("x-fill", "v".repeat(extra))
            .body(Full::new(Bytes::new()))
            .unwrap();
        client.request(request)
    };
    // 40 KB of headers is within the configured 64 KiB, over HTTP/2 as over HTTP/1.1.
    let ok = send(40_000).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.version(), http::Version::HTTP_2);
    // 100 KB is not.
    match send(100_000).await {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => panic!("expected a 431, got {e}"),
    }
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn a_body_over_max_request_body_gets_413_and_never_reaches_the_upstream_whole() {
    let s = stack(&[("MAX_REQUEST_BODY", "1KiB")]).await;
    // Declared too large: refused before a byte of the body is read or forwarded.
    let head = s.head("Content-Length: 10485760\r\n");
    let a = raw(s.gate.addr, head.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(a.status(), Some(413), "{}", a.text());
    assert_eq!(s.upstream.count(), 0);

    // Chunked, complete, too large.
    let chunk = format!("400\r\n{}\r\n", "x".repeat(0x400));
    let request = format!(
        "{}{chunk}{chunk}0\r\n\r\n",
        s.head("Transfer-Encoding: chunked\r\n")
    );
    let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(a.status(), Some(413), "{}", a.text());
    // Chunked and still streaming when the limit is crossed.
    let request = format!(
        "{}{chunk}{chunk}{chunk}",
        s.head("Transfer-Encoding: chunked\r\n")
    );
    let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(a.status(), Some(413), "{}", a.text());

    // A real client streaming its body gets the 413 while it is still sending.
    let (tx, body) = ChannelBody::pair();
    let client: Client<_, ChannelBody> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::post(s.gate.resource())
        .header("authorization", bearer(&s.token()))
        .body(body)
        .unwrap();
    let sender = tokio::spawn(async move {
        for _ in 0..64 {
            if tx.send(Bytes::from(vec![b'y'; 512])).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Then hold the body open: only the gate's answer ends this exchange.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let response = tokio::time::timeout(Duration::from_secs(5), client.request(request))
        .await
        .expect("an answer while the body is still streaming")
        .expect("a response, not a reset");
    assert_eq!(response.status(), 413);
    sender.abort();

    // The upstream never received a complete oversized body: at most an aborted one.
    for seen in s.upstream.seen() {
        assert!(!seen.body_complete, "an oversized body was forwarded whole");
        assert!(seen.body.len() <= 1024);
    }
    // The gate still serves.
    let a = post(
        &s.gate.resource(),
        &[("authorization", &bearer(&s.token()))],
        "ok",
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn max_connections_holds_further_connections_in_the_backlog_until_one_closes() {
    let s = stack(&[("MAX_CONNECTIONS", "2")]).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(s.gate.addr).await.unwrap();
        c.write_all(request).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    // A third connection is accepted by the kernel but not served while two are open.
    let mut third = TcpStream::connect(s.gate.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served beyond MAX_CONNECTIONS");
    // One closes: the waiting connection is served.
    drop(held.pop());
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}
