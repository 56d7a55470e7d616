//! The request the upstream receives and the response the client gets back, over real sockets: the
//! request-target forms (`*`, CONNECT, absolute form), `Host` rules, paths that try to leave
//! `UPSTREAM_URL`'s base path, forwarded headers and whose are believed, and upstream responses that
//! cannot be relayed as they are (a 101 nobody asked for, a length beside chunked framing).

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(5);

impl Stack {
    /// A raw request: `line`, then `Host: <gate>` unless `host` says otherwise, a valid token, and
    /// `extra` header lines (each ending in CRLF), on a connection the gate is asked to close.
    fn raw_request(&self, line: &str, host: Option<&str>, extra: &str) -> String {
        let host = match host {
            Some(h) => h.to_string(),
            None => format!("Host: {}\r\n", self.gate.addr),
        };
        format!(
            "{line}\r\n{host}Authorization: Bearer {}\r\nContent-Length: 0\r\nConnection: close\r\n{extra}\r\n",
            self.token()
        )
    }
}

/// An upstream that answers every request with the same raw bytes, then closes the connection.
async fn raw_upstream(response: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                if read_head(&mut stream).await.is_none() {
                    return;
                }
                let _ = stream.write_all(response).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn asterisk_target_is_only_for_options_and_is_answered_by_the_gate() {
    let s = stack(&[]).await;
    let a = raw(
        s.gate.addr,
        s.raw_request("OPTIONS * HTTP/1.1", None, "").as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(a.status(), Some(200), "{}", a.text());
    assert!(a.header("allow").is_some_and(|v| v.contains("POST")));
    for method in ["GET", "POST", "DELETE", "PUT"] {
        let line = format!("{method} * HTTP/1.1");
        let a = raw(s.gate.addr, s.raw_request(&line, None, "").as_bytes(), WAIT).await;
        assert_eq!(a.status(), Some(400), "{line}: {}", a.text());
    }
    assert_eq!(s.upstream.count(), 0, "nothing with `*` is forwarded");
}

#[tokio::test]
async fn connect_is_refused_with_501_and_never_forwarded() {
    let s = stack(&[]).await;
    let upstream = s.upstream.addr;
    for line in [
        format!("CONNECT {upstream} HTTP/1.1"),
        "CONNECT 127.0.0.1:22 HTTP/1.1".to_string(),
    ] {
        let host = format!("Host: {upstream}\r\n");
        let a = raw(
            s.gate.addr,
            s.raw_request(&line, Some(&host), "").as_bytes(),
            WAIT,
        )
        .await;
        assert_eq!(a.status(), Some(501), "{line}: {}", a.text());
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn an_absolute_form_target_changes_neither_the_upstream_nor_its_host_and_names_the_forwarded_host(
) {
    let s = stack(&[]).await;
    let a = raw(
        s.gate.addr,
        s.raw_request("POST http://evil.example:1/mcp?q=1 HTTP/1.1", None, "")
            .as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(a.status(), Some(200), "{}", a.text());
    let seen = &s.upstream.seen()[0];
    assert_eq!(seen.path_and_query, "/mcp?q=1");
    assert_eq!(seen.headers["host"], s.upstream.addr.to_string().as_str());
    // RFC 9112 §3.2.2: the absolute-form authority, not the Host field, is the host addressed.
    assert_eq!(seen.headers["x-forwarded-host"], "evil.example:1");
}

#[tokio::test]
async fn upstream_101_to_a_request_without_upgrade_is_a_502() {
    let switch = raw_upstream(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nRAW-TUNNEL-BYTES",
    )
    .await;
    let url = format!("http://{switch}");
    let s = stack(&[("UPSTREAM_URL", &url)]).await;
    let a = raw(
        s.gate.addr,
        s.raw_request("POST /mcp HTTP/1.1", None, "").as_bytes(),
        WAIT,
    )
    .await;
    assert_eq!(a.status(), Some(502), "{}", a.text());
    assert!(!a.text().contains("RAW-TUNNEL-BYTES"));
}

#[tokio::test]
async fn upstream_content_length_beside_chunked_framing_is_dropped_not_used_to_truncate() {
    let both = raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n0123456789abcdefghij\r\n0\r\n\r\n",
    )
    .await;
    let url = format!("http://{both}");
    let s = stack(&[("UPSTREAM_URL", &url)]).await;
    let a = post(
        &s.gate.resource(),
        &[("authorization", &bearer(&s.token()))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-length"), None);
    assert_eq!(&a.body[..], b"0123456789abcdefghij", "the whole body");
}

#[tokio::test]
async fn dot_segments_never_leave_the_upstream_base_path() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let base = format!("{}/tenant-a", upstream.url());
    let gate = TestGate::start(&idp, &upstream, &[("UPSTREAM_URL", &base)]).await;
    gate.wait_ready().await;
    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    let request = |target: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
            gate.addr
        )
    };
    for target in [
        "/../tenant-b/mcp",
        "/%2e%2e/tenant-b/mcp",
        "/%2E%2E/tenant-b/mcp",
        "/.%2e/tenant-b/mcp",
        "/x/../../tenant-b/mcp",
    ] {
        upstream.forget();
        let a = raw(gate.addr, request(target).as_bytes(), WAIT).await;
        assert_eq!(a.status(), Some(200), "{target}: {}", a.text());
        assert_eq!(
            upstream.seen()[0].path_and_query,
            "/tenant-a/tenant-b/mcp",
            "{target}"
        );
    }
    // An encoded slash could become a segment boundary behind the gate: refused.
    upstream.forget();
    let a = raw(gate.addr, request("/..%2ftenant-b/mcp").as_bytes(), WAIT).await;
    assert_eq!(a.status(), Some(400), "{}", a.text());
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn http11_requests_need_exactly_one_valid_host() {
    let s = stack(&[]).await;
    for (case, host) in [
        ("two Host fields", "Host: a.example\r\nHost: b.example\r\n"),
        (
            "two equal Host fields",
            "Host: a.example\r\nHost: a.example\r\n",
        ),
        ("no Host", ""),
        ("userinfo in Host", "Host: user@a.example\r\n"),
        ("a bad port", "Host: a.example:http\r\n"),
        ("a path in Host", "Host: a.example/x\r\n"),
    ] {
        for line in ["POST /mcp HTTP/1.1", "GET /healthz HTTP/1.1"] {
            let a = raw(
                s.gate.addr,
                s.raw_request(line, Some(host), "").as_bytes(),
                WAIT,
            )
            .await;
            assert_eq!(a.status(), Some(400), "{case}, {line}: {}", a.text());
        }
    }
    // HTTP/1.0 has no Host requirement.
    let a = raw(s.gate.addr, b"GET /healthz HTTP/1.0\r\n\r\n", WAIT).await;
    assert_eq!(a.text().split(' ').nth(1), Some("200"), "{}", a.text());
    assert_eq!(s.upstream.count(), 0);
}

/// Every forwarded header a client might use to lie about where it came from.
const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "evil.example"),
    ("x-real-ip", "6.6.6.6"),
    ("forwarded", "for=6.6.6.6;proto=https;host=evil.example"),
];

#[tokio::test]
async fn forwarded_headers_from_an_untrusted_client_never_reach_the_upstream() {
    // 127.0.0.1 is the test client's address, and not in TRUSTED_PROXIES.
    let s = stack(&[("TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    let token = bearer(&s.token());
    let mut headers = vec![("authorization", token.as_str()), ("host", "mcp.example")];
    headers.extend_from_slice(SPOOFED);
    assert_eq!(post(&s.gate.resource(), &headers, "").await.status, 200);
    let h = &s.upstream.seen()[0].headers;
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "mcp.example");
    assert!(h.get("x-real-ip").is_none());
    assert!(h.get("forwarded").is_none());
}

#[tokio::test]
async fn a_trusted_proxys_forwarded_headers_are_kept_and_appended_to() {
    let s = stack(&[("TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1/32")]).await;
    let token = bearer(&s.token());
    let mut headers = vec![("authorization", token.as_str()), ("host", "gate.internal")];
    headers.extend_from_slice(SPOOFED);
    assert_eq!(post(&s.gate.resource(), &headers, "").await.status, 200);
    let h = &s.upstream.seen()[0].headers;
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "https");
    assert_eq!(h["x-forwarded-host"], "evil.example");
    assert_eq!(h["x-real-ip"], "6.6.6.6");
    assert_eq!(h["forwarded"], "for=6.6.6.6;proto=https;host=evil.example");
}

/// Sends one HTTP/2 request built by hand (no body) on a fresh connection and returns its status.
async fn h2_status(gate: SocketAddr, request: http::Request<()>) -> u16 {
    let tcp = tokio::net::TcpStream::connect(gate).await.unwrap();
    let (mut send, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let (response, _) = send.send_request(request, true).unwrap();
    let response = tokio::time::timeout(WAIT, response)
        .await
        .expect("an answer within 5 s")
        .expect("an HTTP/2 response, not a reset");
    response.status().as_u16()
}

#[tokio::test]
async fn http2_connect_and_asterisk_paths_are_never_forwarded() {
    let s = stack(&[]).await;
    let token = bearer(&s.token());
    let request = |method: http::Method, uri: http::Uri| {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", &token)
            .body(())
            .unwrap()
    };
    let star = || {
        http::Uri::builder()
            .scheme("http")
            .authority(s.gate.addr.to_string())
            .path_and_query("*")
            .build()
            .unwrap()
    };
    let connect: http::Uri = s.upstream.addr.to_string().parse().unwrap();
    assert_eq!(
        h2_status(s.gate.addr, request(http::Method::CONNECT, connect)).await,
        501
    );
    assert_eq!(
        h2_status(s.gate.addr, request(http::Method::GET, star())).await,
        400
    );
    assert_eq!(
        h2_status(s.gate.addr, request(http::Method::OPTIONS, star())).await,
        200
    );
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn http2_authority_is_the_forwarded_host_and_a_contradicting_host_is_400() {
    let s = stack(&[]).await;
    let token = bearer(&s.token());
    let request = |host: Option<&str>| {
        let mut r =
            http::Request::post("http://mcp.example:8443/mcp").header("authorization", &token);
        if let Some(host) = host {
            r = r.header("host", host);
        }
        r.body(()).unwrap()
    };
    assert_eq!(h2_status(s.gate.addr, request(None)).await, 200);
    assert_eq!(
        s.upstream.seen()[0].headers["x-forwarded-host"],
        "mcp.example:8443"
    );
    assert_eq!(
        h2_status(s.gate.addr, request(Some("evil.example"))).await,
        400
    );
    assert_eq!(s.upstream.count(), 1);
}

/// A raw request from a chosen loopback address (all of 127.0.0.0/8 is local on Linux); returns
/// the status line's code.
async fn raw_from(from: &str, gate: SocketAddr, request: String) -> Option<u16> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(gate).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn the_access_log_names_the_client_behind_a_trusted_proxy_and_the_peer_otherwise() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-gate"))
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", &resource)
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .env("TRUSTED_PROXIES", "127.0.0.1/32")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    wait_ready_on(port).await;
    let gate: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let token = key.token(&claims(&idp.issuer, &resource));
    let request = |client: &str| {
        format!(
            "GET /mcp?from={client} HTTP/1.1\r\nHost: {gate}\r\nAuthorization: Bearer {token}\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.9\r\nConnection: close\r\n\r\n"
        )
    };
    // From the trusted proxy: the right-most address it forwarded. From anyone else: the peer.
    assert_eq!(
        raw_from("127.0.0.1", gate, request("trusted")).await,
        Some(200)
    );
    assert_eq!(
        raw_from("127.0.0.2", gate, request("other")).await,
        Some(200)
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let clients: Vec<String> = lines
        .try_iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|v| v["msg"] == "request" && v["path"] == "/mcp")
        .map(|v| v["client_ip"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(clients, ["203.0.113.9", "127.0.0.2"]);
    // The upstream hears the same: a trusted proxy's list is appended to, anyone else's replaced.
    let forwarded: Vec<_> = upstream
        .seen()
        .iter()
        .map(|s| s.headers["x-forwarded-for"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(forwarded, ["6.6.6.6, 203.0.113.9, 127.0.0.1", "127.0.0.2"]);
}
