//! Ambiguous framing and request smuggling (RFC 9112 §6.3): conflicting or malformed
//! `Content-Length` and `Transfer-Encoding`, obsolete line folding, broken chunked bodies. Each is
//! refused or re-framed, and no request hidden in a body is ever forwarded.

use std::time::Duration;

use crate::support::*;

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
