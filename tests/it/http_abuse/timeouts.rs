//! Clients that hold a connection without finishing a request: trickled headers, silent and
//! half-open connections are cut off after `HEADER_READ_TIMEOUT`; an idle HTTP/2 connection is
//! closed after `IDLE_TIMEOUT`, while a quiet stream in flight keeps it open.

use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// Waits until the server closes `stream` (EOF or reset) and returns how long that took, or `None`
/// if it was still open after `bound`.
async fn time_until_closed(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + bound).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_after_header_read_timeout() {
    let s = stack(&[("HEADER_READ_TIMEOUT", "1s")]).await;
    let mut stream = TcpStream::connect(s.gate.addr).await.unwrap();
    stream.write_all(b"POST /mcp HTTP/1.1\r\n").await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let trickle = tokio::spawn(async move {
        for i in 0..100 {
            if wr
                .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let closed = loop {
        match tokio::time::timeout(CUT_OFF_BOUND, rd.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    };
    trickle.abort();
    let took = closed.expect("the trickling client was cut off");
    assert!(took < CUT_OFF_BOUND, "{took:?}");
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn silent_and_half_open_connections_are_closed_after_header_read_timeout() {
    let s = stack(&[("HEADER_READ_TIMEOUT", "1s")]).await;
    let h2_preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An HTTP/2 SETTINGS frame with no settings: a complete, valid connection start.
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a connection that sends nothing", vec![]),
        ("one byte", b"G".to_vec()),
        ("part of the HTTP/2 preface", b"PRI * HTT".to_vec()),
        ("the HTTP/2 preface and nothing else", h2_preface.to_vec()),
        (
            "the HTTP/2 preface and settings, then no request",
            [&h2_preface[..], &settings].concat(),
        ),
    ];
    for (case, bytes) in cases {
        let mut stream = TcpStream::connect(s.gate.addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let took = time_until_closed(&mut stream, CUT_OFF_BOUND).await;
        assert!(took.is_some(), "{case}: still open after {CUT_OFF_BOUND:?}");
    }
    // A keep-alive connection that goes quiet after a request is closed the same way.
    let mut stream = TcpStream::connect(s.gate.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let took = time_until_closed(&mut stream, CUT_OFF_BOUND).await;
    assert!(took.is_some(), "idle keep-alive connection still open");
}

/// An HTTP/2 connection of the test's own, driven by a task whose end is the connection's end.
async fn h2_connect(
    s: &Stack,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let stream = TcpStream::connect(s.gate.addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    (
        send,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

fn h2_request(s: &Stack, method: Method, path: &str) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(s.gate.url(path))
        .header("authorization", bearer(&s.token()))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_a_quiet_stream_keeps_its_own_open() {
    // The header read timeout is long here, so only IDLE_TIMEOUT can be what closes connections.
    let s = stack(&[("IDLE_TIMEOUT", "1s"), ("HEADER_READ_TIMEOUT", "10s")]).await;

    // One request, then nothing: the connection is closed about IDLE_TIMEOUT after the response.
    let (mut send, conn) = h2_connect(&s).await;
    let response = send
        .send_request(h2_request(&s, Method::POST, "/mcp"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    let idle_since = Instant::now();
    tokio::time::timeout(CUT_OFF_BOUND, conn)
        .await
        .expect("an idle HTTP/2 connection was still open")
        .unwrap();
    let took = idle_since.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "closed after {took:?}, before IDLE_TIMEOUT"
    );

    // An SSE stream that stays quiet for longer than IDLE_TIMEOUT keeps its connection: a request in
    // flight is not idleness.
    let (mut send, conn) = h2_connect(&s).await;
    let response = send
        .send_request(h2_request(&s, Method::GET, "/sse"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = next_chunk(&mut body, Duration::from_secs(2)).await.unwrap();
    assert_eq!(first, Bytes::from("data: event 1\n\n"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !conn.is_finished(),
        "the connection of a live stream was closed as idle"
    );
    s.upstream.release();
    let second = next_chunk(&mut body, Duration::from_secs(2)).await;
    assert_eq!(second, Some(Bytes::from("data: event 2\n\n")));
    // Once the stream is over, the connection is idle and goes the same way.
    drop(body);
    tokio::time::timeout(CUT_OFF_BOUND, conn)
        .await
        .expect("the connection stayed open after its stream ended")
        .unwrap();
}
