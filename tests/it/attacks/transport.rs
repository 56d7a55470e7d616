//! How a token is carried: exactly one `Authorization: Bearer` header (RFC 6750 §2.1), never the
//! query or a form body (§2.2, §2.3), no bytes HTTP forbids, no 1 MB header; and requests whose
//! path or target tries to reach the upstream through a public route or change what the gate
//! advertises.

use std::time::Duration;

use http::Method;

use super::*;

#[tokio::test]
async fn a_1_mb_authorization_header_is_refused_with_431_by_default() {
    let s = battery(&[]).await;
    let huge = format!(
        "{}.{}.{}",
        "A".repeat(1 << 19),
        "B".repeat(1 << 19),
        "C".repeat(64)
    );
    let a = s
        .raw(
            RESOURCE_PATH,
            &[("Authorization", format!("Bearer {huge}").as_bytes())],
        )
        .await;
    assert_eq!(
        a.status(),
        Some(431),
        "{:?}",
        a.text().chars().take(200).collect::<String>()
    );
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn nul_control_and_non_ascii_bytes_in_the_token_are_refused() {
    let s = battery(&[]).await;
    let good = s.rsa.token(&s.claims());
    // Bytes HTTP forbids in a field value (NUL, other controls): the request is rejected by the HTTP
    // parser with a bare 400 before the gate sees it.
    for (case, value) in [
        ("NUL bytes", [b"Bearer ".as_slice(), &[0u8; 64]].concat()),
        (
            "NUL inside a valid token",
            format!("Bearer {good}").replacen('.', "\0", 1).into_bytes(),
        ),
        (
            "control character",
            format!("Bearer {good}\x01").into_bytes(),
        ),
        ("DEL", format!("Bearer \x7f{good}").into_bytes()),
        (
            "bare CR",
            format!("Bearer {good}\rX-Injected: 1").into_bytes(),
        ),
    ] {
        let a = s.raw(RESOURCE_PATH, &[("Authorization", &value)]).await;
        assert_eq!(a.status(), Some(400), "{case}: {}", a.text());
        assert_eq!(s.upstream.count(), 0, "{case}");
    }
    // obs-text (0x80–0xFF) is legal in a field value but not in a b64token: the gate's 400.
    for (case, value) in [
        (
            "Latin-1 bytes",
            [b"Bearer ".as_slice(), &[0xe9u8; 32]].concat(),
        ),
        ("UTF-8 token", "Bearer ééé.ñ.ü".as_bytes().to_vec()),
        (
            "valid token with a trailing UTF-8 BOM",
            [format!("Bearer {good}").as_bytes(), "\u{feff}".as_bytes()].concat(),
        ),
        (
            "high bytes everywhere",
            (0x80u8..=0xff).collect::<Vec<u8>>(),
        ),
    ] {
        let a = s.raw(RESOURCE_PATH, &[("Authorization", &value)]).await;
        // A field value that is not visible ASCII cannot even be read for its scheme.
        s.assert_raw(case, &a, MALFORMED_HEADER);
    }
}

/// Header fields of one request, by name.
type Headers = Vec<(&'static str, String)>;

#[tokio::test]
async fn tokens_outside_a_single_authorization_bearer_header_are_refused() {
    let s = battery(&[]).await;
    let good = s.rsa.token(&s.claims());
    let forged = TestKey::rsa("k1", 2048).token(&s.claims());
    s.refused_at(
        "valid token in the query",
        &format!("/mcp?access_token={good}"),
        &[],
        "",
        TOKEN_IN_URL,
    )
    .await;
    s.refused_at(
        "valid token in the query, percent-encoded name",
        &format!("/mcp?access%5Ftoken={good}"),
        &[],
        "",
        TOKEN_IN_URL,
    )
    .await;
    s.refused_at(
        "valid token in the header and the query",
        &format!("/mcp?access_token={good}"),
        &[("authorization", &bearer(&good))],
        "",
        TWO_TOKENS,
    )
    .await;
    s.refused_at(
        "valid token in a form body",
        RESOURCE_PATH,
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("access_token={good}"),
        Expect::NoToken,
    )
    .await;
    let cases: Vec<(&str, Headers, Expect)> = vec![
        (
            "two Authorization headers",
            vec![
                ("authorization", bearer(&good)),
                ("authorization", bearer(&good)),
            ],
            TWO_TOKENS,
        ),
        (
            "a forged and a valid token in two headers",
            vec![
                ("authorization", bearer(&forged)),
                ("authorization", bearer(&good)),
            ],
            TWO_TOKENS,
        ),
        (
            "Basic and Bearer headers",
            vec![
                ("authorization", "Basic dXNlcjpwYXNz".into()),
                ("authorization", bearer(&good)),
            ],
            TWO_TOKENS,
        ),
        (
            "Basic",
            vec![("authorization", "Basic dXNlcjpwYXNz".into())],
            Expect::NoToken,
        ),
        // `DPoP <token>` without a proof is a DPoP refusal now (RFC 9449 §7.1): tests/it/dpop.rs.
        (
            "Bearer without a space",
            vec![("authorization", format!("Bearer{good}"))],
            Expect::NoToken,
        ),
        (
            "Bearer with a tab",
            vec![("authorization", format!("Bearer\t{good}"))],
            Expect::NoToken,
        ),
        (
            "token without a scheme",
            vec![("authorization", good.clone())],
            Expect::NoToken,
        ),
        (
            "Bearer twice",
            vec![("authorization", format!("Bearer Bearer {good}"))],
            MALFORMED_HEADER,
        ),
        (
            "two tokens in one header",
            vec![("authorization", format!("Bearer {good}, Bearer {good}"))],
            MALFORMED_HEADER,
        ),
        (
            "two tokens separated by a space",
            vec![("authorization", format!("Bearer {good} {good}"))],
            MALFORMED_HEADER,
        ),
        (
            "empty Bearer",
            vec![("authorization", "Bearer".into())],
            MALFORMED_HEADER,
        ),
        (
            "auth-param form",
            vec![("authorization", format!("Bearer token=\"{good}\""))],
            MALFORMED_HEADER,
        ),
        (
            "empty header",
            vec![("authorization", String::new())],
            MALFORMED_HEADER,
        ),
        (
            "extra spaces around a forged token",
            vec![("authorization", format!("Bearer    {forged}   "))],
            INVALID,
        ),
        (
            "lower-case scheme, forged token",
            vec![("authorization", format!("bearer {forged}"))],
            INVALID,
        ),
        (
            "valid token as a cookie",
            vec![("cookie", format!("access_token={good}"))],
            Expect::NoToken,
        ),
        (
            "valid token in Proxy-Authorization",
            vec![("proxy-authorization", bearer(&good))],
            Expect::NoToken,
        ),
        (
            "valid token in X-Access-Token",
            vec![("x-access-token", good.clone())],
            Expect::NoToken,
        ),
    ];
    for (case, headers, expect) in &cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.refused(case, &h, *expect).await;
    }
    // Extra spaces between the scheme and a valid token are tolerated (RFC 6750 §2.1 grammar is
    // 1*SP in spirit; clients differ): that is not a bypass, the token is still checked.
    let a = post(
        &s.gate.resource(),
        &[("authorization", &format!("Bearer   {good}  "))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn path_tricks_never_reach_the_upstream_through_the_public_routes() {
    let s = battery(&[]).await;
    let metadata = get(&s.metadata_url(), &[]).await.body;
    let tricks = [
        "/.well-known/oauth-protected-resource/../mcp",
        "/.well-known/oauth-protected-resource/mcp/../../../mcp",
        "/.well-known/oauth-protected-resource/..%2fmcp",
        "/.well-known/oauth-protected-resource/%2e%2e/mcp",
        "/.well-known/oauth-protected-resource%2F..%2F..%2Fmcp",
        "/.well-known/oauth-protected-resource/mcp%00",
        "/.well-known/oauth-protected-resource/mcp/",
        "/.well-known/oauth-protected-resource/mcp;/../x",
        "/.well-known/oauth-protected-resource%2fmcp",
        "/.well-known/./oauth-protected-resource",
        "/./.well-known/oauth-protected-resource",
        "//.well-known/oauth-protected-resource",
        "/.well-known//oauth-protected-resource",
        "/.WELL-KNOWN/OAUTH-PROTECTED-RESOURCE",
        "/.well-known/OAuth-Protected-Resource/mcp",
        "/%2Ewell-known/oauth-protected-resource",
        "/healthz/../mcp",
        "/healthz/",
        "/healthz/x",
        "/HEALTHZ",
        "/healthz%2F..%2Fmcp",
        "/healthz;/mcp",
        "/readyz/..%2Fmcp",
        "//healthz",
        "//mcp",
        "/./mcp",
        "/mcp/.",
        "/%6Dcp",
        "/MCP",
        "/",
        "/*",
    ];
    for path in tricks {
        for method in [Method::GET, Method::POST] {
            let a = send(method.clone(), &s.gate.url(path), &[], "{}").await;
            assert_eq!(a.status, 401, "{method} {path}");
            assert_eq!(
                a.header("www-authenticate").unwrap(),
                s.challenge(Expect::NoToken),
                "{method} {path}"
            );
        }
    }
    // The public routes answer themselves and only with their own documents, whatever follows.
    for (path, body) in [
        (
            "/.well-known/oauth-protected-resource?/../../mcp",
            metadata.clone(),
        ),
        (
            "/.well-known/oauth-protected-resource/mcp?x=/mcp",
            metadata.clone(),
        ),
        (
            "/healthz?/../mcp",
            bytes::Bytes::from_static(br#"{"status":"ok"}"#),
        ),
    ] {
        let a = get(&s.gate.url(path), &[]).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, body, "{path}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let a = send(method.clone(), &s.metadata_url(), &[], "{}").await;
        assert_eq!(a.status, 405, "{method}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn absolute_form_targets_and_foreign_hosts_change_neither_routing_nor_metadata() {
    let s = battery(&[]).await;
    let metadata = get(&s.metadata_url(), &[]).await.body;
    let upstream = s.upstream.addr;
    let request = |line: String, host: &str| {
        format!("{line}\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    // The metadata is the same whatever the request names as its authority.
    for (line, host) in [
        (
            "GET http://evil.example/.well-known/oauth-protected-resource/mcp HTTP/1.1".to_string(),
            "evil.example",
        ),
        (
            format!("GET http://{upstream}/.well-known/oauth-protected-resource/mcp HTTP/1.1"),
            "evil.example",
        ),
        (
            "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1".to_string(),
            "evil.example:8443",
        ),
    ] {
        let a = raw(
            s.gate.addr,
            request(line.clone(), host).as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(a.status(), Some(200), "{line}");
        assert!(a.bytes.ends_with(&metadata), "{line}: {}", a.text());
    }
    // Absolute-form, authority-form and asterisk-form targets aimed at the upstream need a token too.
    for (line, host) in [
        (
            format!("POST http://{upstream}/mcp HTTP/1.1"),
            upstream.to_string(),
        ),
        (
            "POST http://evil.example/mcp HTTP/1.1".to_string(),
            "evil.example".to_string(),
        ),
        (
            format!("GET http://{upstream}/healthz/../mcp HTTP/1.1"),
            s.gate.addr.to_string(),
        ),
        (format!("CONNECT {upstream} HTTP/1.1"), upstream.to_string()),
        ("OPTIONS * HTTP/1.1".to_string(), s.gate.addr.to_string()),
    ] {
        let a = raw(
            s.gate.addr,
            request(line.clone(), &host).as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(a.status(), Some(401), "{line}: {}", a.text());
        assert_eq!(
            a.header("www-authenticate").as_deref(),
            Some(s.challenge(Expect::NoToken).as_str()),
            "{line}: the challenge names the configured metadata URL, not the Host"
        );
    }
    // A foreign Host header does not move the challenge's metadata URL either.
    let a = post(&s.gate.resource(), &[("host", "evil.example")], "").await;
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        s.challenge(Expect::NoToken)
    );
    assert_eq!(s.upstream.count(), 0);
}
