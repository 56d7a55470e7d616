//! Connection slots an attacker could hold: a client that asks and then never reads its answer
//! (`SEND_TIMEOUT`), and a client that opens connection after connection (`MAX_CONNECTIONS_PER_IP`).
//! Neither may lock other clients out, and neither rule may cut a healthy quiet stream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A generous upper bound for "cut off after a 1 s timeout" on a loaded two-core machine.
const CUT_OFF_BOUND: Duration = Duration::from_secs(4);

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// An HTTP/2 client that announces a zero stream window (RFC 9113 §6.9.2) — it will accept no DATA
/// — sends one request for the public metadata document, and returns once the response headers
/// (which flow control does not hold back) arrived. The returned task is the connection: it ends
/// when the gate closes it.
async fn h2_request_never_read(s: &Stack) -> tokio::task::JoinHandle<()> {
    let tcp = TcpStream::connect(s.gate.addr).await.unwrap();
    let (mut client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(s.gate.url("/.well-known/oauth-protected-resource/mcp"))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    // Keep the request handle alive with the connection: dropping it would not release anything
    // on the gate's side, but the test must not depend on that.
    tokio::spawn(async move {
        let _keep = (client, response);
        std::future::pending::<()>().await;
    });
    connection
}

#[tokio::test]
async fn an_http2_client_that_never_opens_its_window_is_cut_after_send_timeout_and_frees_its_slot()
{
    // One slot; idle and header timeouts far away, so only SEND_TIMEOUT can free it.
    let s = stack(&[
        ("MAX_CONNECTIONS", "1"),
        ("SEND_TIMEOUT", "1s"),
        ("IDLE_TIMEOUT", "60s"),
        ("HEADER_READ_TIMEOUT", "60s"),
    ])
    .await;
    let stalled = h2_request_never_read(&s).await;
    let since = Instant::now();

    // A legitimate client waits in the backlog while the stalled one holds the slot, then is served.
    let a = raw(s.gate.addr, HEALTH, CUT_OFF_BOUND).await;
    assert_eq!(a.status(), Some(200), "locked out: {:?}", a.text());
    let waited = since.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "served after {waited:?}, before SEND_TIMEOUT: the slot was not held at all?"
    );
    tokio::time::timeout(CUT_OFF_BOUND, stalled)
        .await
        .expect("the stalled connection was closed")
        .unwrap();
}

/// An HTTP/2 connection of the test's own (hyper's client, which reads everything it is sent).
async fn h2_connect(
    s: &Stack,
) -> (
    hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let stream = TcpStream::connect(s.gate.addr).await.unwrap();
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    (
        send,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

#[tokio::test]
async fn a_quiet_sse_stream_outlives_send_timeout_because_it_has_nothing_to_send() {
    let s = stack(&[("SEND_TIMEOUT", "1s"), ("IDLE_TIMEOUT", "60s")]).await;
    let (mut send, conn) = h2_connect(&s).await;
    let request = http::Request::builder()
        .method(Method::GET)
        .uri(s.gate.url("/sse"))
        .header("authorization", bearer(&s.token()))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = send.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let first = next_chunk(&mut body, Duration::from_secs(2)).await;
    assert_eq!(first, Some(Bytes::from("data: event 1\n\n")));
    // Silence for well over SEND_TIMEOUT (and its quarter of slack): the stream is healthy.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !conn.is_finished(),
        "a quiet stream was cut by SEND_TIMEOUT"
    );
    s.upstream.release();
    let second = next_chunk(&mut body, Duration::from_secs(2)).await;
    assert_eq!(second, Some(Bytes::from("data: event 2\n\n")));
    drop(body);
    // The same connection still serves.
    let again = send
        .send_request(
            http::Request::get(s.gate.url("/healthz"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    again.into_body().collect().await.unwrap();
}

/// Connects to `gate` from the loopback address `from` and sends a health check; returns the open
/// connection and whether a 200 came back within `wait` (false: closed or silent).
async fn health_from(from: [u8; 4], gate: SocketAddr, wait: Duration) -> (TcpStream, bool) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let mut stream = socket.connect(gate).await.unwrap();
    let _ = stream.write_all(HEALTH).await;
    let mut buf = [0u8; 1024];
    let served = match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        _ => false,
    };
    (stream, served)
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_max_connections_per_ip() {
    let s = stack(&[("MAX_CONNECTIONS_PER_IP", "2"), ("MAX_CONNECTIONS", "10")]).await;
    let wait = Duration::from_secs(3);
    let mut held = Vec::new();
    for _ in 0..2 {
        let (c, served) = health_from([127, 0, 0, 1], s.gate.addr, wait).await;
        assert!(served, "a connection within the cap");
        held.push(c);
    }
    // A third from the same address is closed at once, unanswered.
    let started = Instant::now();
    let (_third, served) = health_from([127, 0, 0, 1], s.gate.addr, wait).await;
    assert!(!served, "a third connection from one address was served");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "not closed at once"
    );
    // Another address is not affected.
    let (_other, served) = health_from([127, 0, 0, 2], s.gate.addr, wait).await;
    assert!(served, "another address was refused");
    // Once one of the two closes, the address may connect again.
    drop(held.pop());
    let deadline = Instant::now() + CUT_OFF_BOUND;
    loop {
        let (_c, served) = health_from([127, 0, 0, 1], s.gate.addr, wait).await;
        if served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the address's slot was never given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_trusted_front_proxy_is_not_held_to_max_connections_per_ip() {
    let s = stack(&[
        ("MAX_CONNECTIONS_PER_IP", "1"),
        ("MAX_CONNECTIONS", "10"),
        ("TRUSTED_PROXIES", "127.0.0.3/32"),
    ])
    .await;
    let wait = Duration::from_secs(3);
    let mut held = Vec::new();
    for n in 0..3 {
        let (c, served) = health_from([127, 0, 0, 3], s.gate.addr, wait).await;
        assert!(served, "connection {n} from the trusted proxy was refused");
        held.push(c);
    }
    let (_first, served) = health_from([127, 0, 0, 4], s.gate.addr, wait).await;
    assert!(served);
    let (_second, served) = health_from([127, 0, 0, 4], s.gate.addr, wait).await;
    assert!(!served, "an untrusted address is still capped");
}
