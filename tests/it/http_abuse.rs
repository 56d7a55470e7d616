//! HTTP-level abuse and upstream faults: oversized header blocks and bodies, slow clients, request
//! smuggling shapes, too many connections, and an upstream that resets, stalls or talks garbage. The
//! gate answers with the documented status, forwards nothing ambiguous, cuts off what would hold it
//! forever, and leaks neither file descriptors nor tasks.

use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A generous upper bound for "cut off after a 1 s timeout" on a loaded two-core machine.
const CUT_OFF_BOUND: Duration = Duration::from_secs(4);

impl Stack {
    /// `POST /mcp` head with a valid token and the given extra header lines (each ending in CRLF).
    fn head(&self, extra: &str) -> String {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}\r\n",
            self.gate.addr,
            self.token()
        )
    }
}

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

/// Sends `request` with a valid token and asserts one 400, a closed connection, and nothing upstream.
async fn assert_refused_unforwarded(s: &Stack, case: &str, request: &[u8]) {
    let a = raw(s.gate.addr, request, Duration::from_secs(5)).await;
    assert_eq!(a.statuses(), vec![400], "{case}: {:?}", a.text());
    assert!(
        a.closed,
        "{case}: the connection must be closed after the refusal"
    );
    assert_eq!(
        s.upstream.count(),
        0,
        "{case}: forwarded {:?}",
        s.upstream.seen()
    );
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_no_hidden_request_is_ever_forwarded() {
    let s = stack(&[]).await;
    // Each body hides a second request that a server trusting the other length would see.
    let smuggled = format!(
        "0\r\n\r\nPOST /smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 0\r\n\r\n",
        s.token()
    );
    let len = smuggled.len();
    // Content-Length together with Transfer-Encoding: hyper applies RFC 9112 §6.3 ¶3 before the gate
    // sees the request — chunked wins, Content-Length is removed, and the connection is closed after
    // the response — so the gate cannot tell it from plain chunked and forwards the chunked body,
    // re-framed. What matters holds: one response, a closed connection, and the request hidden after
    // the chunked body is never read as a request.
    for (case, fields) in [
        (
            "Content-Length then Transfer-Encoding",
            format!("Content-Length: {len}\r\nTransfer-Encoding: chunked\r\n"),
        ),
        (
            "Transfer-Encoding then Content-Length",
            format!("Transfer-Encoding: chunked\r\nContent-Length: {len}\r\n"),
        ),
        (
            "Transfer-Encoding with Content-Length 0",
            "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n".to_string(),
        ),
    ] {
        let before = s.upstream.count();
        let a = raw(
            s.gate.addr,
            format!("{}{smuggled}", s.head(&fields)).as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(a.statuses().len(), 1, "{case}: {:?}", a.text());
        assert!(a.closed, "{case}: the connection must be closed");
        let seen = s.upstream.seen();
        assert!(seen.len() <= before + 1, "{case}");
        for request in &seen {
            assert_eq!(
                request.path_and_query, "/mcp",
                "{case}: the smuggled request got through"
            );
            assert!(request.body.is_empty(), "{case}: {:?}", request.body);
            assert!(request.headers.get("content-length").is_none(), "{case}");
        }
    }
    s.upstream.forget();
    let cases: Vec<(&str, String)> = vec![
        (
            "two different Content-Lengths",
            format!(
                "{}{smuggled}",
                s.head(&format!("Content-Length: 5\r\nContent-Length: {len}\r\n"))
            ),
        ),
        (
            "a Content-Length list",
            format!("{}hello", s.head("Content-Length: 5, 5\r\n")),
        ),
        (
            "chunked, identity",
            format!(
                "{}{smuggled}",
                s.head("Transfer-Encoding: chunked, identity\r\n")
            ),
        ),
        (
            "identity, chunked",
            format!(
                "{}{smuggled}",
                s.head("Transfer-Encoding: identity, chunked\r\n")
            ),
        ),
        (
            "gzip, chunked",
            format!(
                "{}{smuggled}",
                s.head("Transfer-Encoding: gzip, chunked\r\n")
            ),
        ),
        (
            "two Transfer-Encoding fields",
            format!(
                "{}{smuggled}",
                s.head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n")
            ),
        ),
        (
            "Transfer-Encoding that is not chunked",
            format!("{}{smuggled}", s.head("Transfer-Encoding: xchunked\r\n")),
        ),
        (
            "Transfer-Encoding with a space before the colon",
            format!("{}{smuggled}", s.head("Transfer-Encoding : chunked\r\n")),
        ),
        (
            "Transfer-Encoding folded onto the next line (obs-fold)",
            format!("{}{smuggled}", s.head("Transfer-Encoding:\r\n chunked\r\n")),
        ),
        (
            "obs-fold in another header",
            format!(
                "{}{smuggled}",
                s.head(&format!("X-Folded: a\r\n b\r\nContent-Length: {len}\r\n"))
            ),
        ),
        (
            "Transfer-Encoding with a vertical tab",
            format!("{}{smuggled}", s.head("Transfer-Encoding:\x0bchunked\r\n")),
        ),
        (
            "signed Content-Length",
            format!(
                "{}{smuggled}",
                s.head(&format!("Content-Length: +{len}\r\n"))
            ),
        ),
        (
            "hex Content-Length",
            format!("{}{smuggled}", s.head("Content-Length: 0x10\r\n")),
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            format!(
                "{}{smuggled}",
                s.head("Transfer-Encoding: chunked\r\n")
                    .replacen("HTTP/1.1", "HTTP/1.0", 1)
            ),
        ),
    ];
    for (case, request) in &cases {
        assert_refused_unforwarded(&s, case, request.as_bytes()).await;
    }
    // Broken chunked bodies: the head was fine, so the request was already on its way; the body
    // fails to decode partway, the upstream gets at most an aborted body, and the client a 400.
    for (case, chunks) in [
        (
            "a chunk size overflowing 64 bits",
            "1ffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        ),
        ("a chunk size that is not hex", "zz\r\nhello\r\n0\r\n\r\n"),
        (
            "a bare LF in a chunk extension",
            "5;a\nb\r\nhello\r\n0\r\n\r\n",
        ),
        ("a chunk longer than its size", "2\r\nhello\r\n0\r\n\r\n"),
    ] {
        let request = format!("{}{chunks}", s.head("Transfer-Encoding: chunked\r\n"));
        let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(a.statuses(), vec![400], "{case}: {:?}", a.text());
        assert!(a.closed, "{case}");
        for seen in s.upstream.seen() {
            assert!(
                !seen.body_complete,
                "{case}: a broken body was forwarded as complete"
            );
        }
        s.upstream.forget();
    }
    // Two equal Content-Length fields agree on the framing; hyper keeps one (RFC 9112 §6.3 ¶5
    // allows that), so the upstream receives a single, unambiguous length.
    let request = format!(
        "{}hello",
        s.head("Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n")
    );
    let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(a.statuses(), vec![200]);
    // (Aborted bodies of the cases above may be recorded late; only complete ones count here.)
    let complete = || -> Vec<Seen> {
        s.upstream
            .seen()
            .into_iter()
            .filter(|r| r.body_complete)
            .collect()
    };
    let seen = complete();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, "hello");
    assert_eq!(seen[0].headers.get_all("content-length").iter().count(), 1);
    s.upstream.forget();
    // Control: one well-framed chunked request is forwarded once, with a body the upstream reads whole.
    let request = format!(
        "{}5\r\nhello\r\n0\r\n\r\n",
        s.head("Transfer-Encoding: chunked\r\nConnection: close\r\n")
    );
    let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(a.statuses(), vec![200]);
    let seen = complete();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, "hello");
    assert!(
        seen[0].headers.get("transfer-encoding").is_none()
            || seen[0].headers.get("content-length").is_none()
    );
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

#[tokio::test]
async fn upstream_faults_give_502_or_504_or_a_cut_stream_and_the_gate_keeps_serving() {
    let faulty = FaultyUpstream::start().await;
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let unused = TestUpstream::start().await;
    let gate = TestGate::start(
        &idp,
        &unused,
        &[
            ("UPSTREAM_URL", &faulty.url()),
            ("UPSTREAM_TIMEOUT", "300ms"),
        ],
    )
    .await;
    gate.wait_ready().await;
    let auth = bearer(&key.token(&claims(&idp.issuer, &gate.resource())));
    for (path, status) in [
        ("/reset", 502),
        ("/close", 502),
        ("/garbage", 502),
        ("/bad-length", 502),
        ("/huge-headers", 502),
        ("/stall", 504),
    ] {
        let started = Instant::now();
        let a = post(&gate.url(path), &[("authorization", &auth)], "").await;
        assert_eq!(a.status, status, "{path}");
        assert!(started.elapsed() < CUT_OFF_BOUND, "{path}");
        assert_eq!(
            post(&gate.url("/"), &[("authorization", &auth)], "")
                .await
                .status,
            200
        );
    }
    // Failures after the head: the client sees the head, then a stream that ends in an error (not a
    // clean end, which would pass a truncated body off as complete).
    for path in ["/truncated", "/sse-reset"] {
        let mut response = open(Method::GET, &gate.url(path), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200, "{path}");
        let body = response.body_mut();
        let mut ended_in_error = false;
        loop {
            match tokio::time::timeout(CUT_OFF_BOUND, body.frame()).await {
                Err(_) => panic!("{path}: the stream was left hanging"),
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    ended_in_error = true;
                    break;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
        assert!(
            ended_in_error,
            "{path}: a cut upstream body must not end cleanly"
        );
        assert_eq!(
            post(&gate.url("/"), &[("authorization", &auth)], "")
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn a_thousand_upstream_faults_leak_no_file_descriptors_connections_or_tasks() {
    let faulty = FaultyUpstream::start().await;
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let unused = TestUpstream::start().await;
    let gate = TestGate::start(
        &idp,
        &unused,
        &[
            ("UPSTREAM_URL", &faulty.url()),
            ("UPSTREAM_TIMEOUT", "200ms"),
        ],
    )
    .await;
    gate.wait_ready().await;
    let auth = bearer(&key.token(&claims(&idp.issuer, &gate.resource())));
    let faults = [
        "/reset",
        "/close",
        "/garbage",
        "/bad-length",
        "/stall",
        "/truncated",
        "/sse-reset",
        "/huge-headers",
    ];
    let round = |n: usize| {
        let (url, auth) = (gate.url(""), auth.clone());
        async move {
            let mut tasks = Vec::new();
            for worker in 0..20 {
                let (url, auth) = (url.clone(), auth.clone());
                tasks.push(tokio::spawn(async move {
                    for i in (worker..n).step_by(20) {
                        let path = faults[i % faults.len()];
                        let a =
                            post(&format!("{url}{path}"), &[("authorization", &auth)], "").await;
                        assert!(matches!(a.status, 200 | 502 | 504), "{path}: {}", a.status);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    // Warm up (connection pools, lazily created runtime parts), then measure.
    round(faults.len() * 5).await;
    let settle = || async {
        for _ in 0..100 {
            if faulty.open_connections() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    settle().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let fds_before = open_fds();
    let tasks_before = metrics.num_alive_tasks();
    let accepted_before = faulty.accepted();
    round(1000).await;
    settle().await;
    assert!(
        faulty.accepted() - accepted_before >= 1000,
        "every request reached the faulty upstream"
    );
    assert_eq!(
        faulty.open_connections(),
        0,
        "the gate left upstream connections open"
    );
    let mut fds_after = open_fds();
    for _ in 0..40 {
        if fds_after <= fds_before + 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fds_after = open_fds();
    }
    let tasks_after = metrics.num_alive_tasks();
    assert!(
        fds_after <= fds_before + 10,
        "file descriptors: {fds_before} before, {fds_after} after 1,000 upstream faults"
    );
    assert!(
        tasks_after <= tasks_before + 10,
        "tasks: {tasks_before} before, {tasks_after} after 1,000 upstream faults"
    );
    assert_eq!(
        post(&gate.url("/"), &[("authorization", &auth)], "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_client_leaving_mid_sse_closes_the_upstream_connection_within_a_second() {
    let faulty = FaultyUpstream::start().await;
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let unused = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &unused, &[("UPSTREAM_URL", &faulty.url())]).await;
    gate.wait_ready().await;
    let auth = bearer(&key.token(&claims(&idp.issuer, &gate.resource())));
    for _ in 0..3 {
        let mut closures = faulty.closures();
        let mut response = open(Method::GET, &gate.url("/sse"), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200);
        next_chunk(response.body_mut(), Duration::from_secs(5))
            .await
            .expect("the first event");
        // The upstream now sends nothing more; the client hangs up in the silence.
        let left = Instant::now();
        drop(response);
        let closed = tokio::time::timeout(Duration::from_secs(5), closures.recv())
            .await
            .expect("the upstream connection was closed")
            .unwrap();
        assert_eq!(closed, "/sse");
        let took = left.elapsed();
        // "Within a second", with a margin for a loaded machine.
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
    assert_eq!(faulty.open_connections(), 0);
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
