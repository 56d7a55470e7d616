//! Who the upstream sees: verified claims as headers (`CLAIM_HEADERS`), and identity headers a
//! client sends — directly or named in `Connection:` — never reaching the upstream.

use std::time::Duration;

use crate::support::*;
use serde_json::json;

const MAPPING: (&str, &str) = (
    "CLAIM_HEADERS",
    "sub=X-Auth-Subject,email=X-Auth-Email,client_id=X-Auth-Client-Id,groups=X-Auth-Groups,org.name=X-Org",
);

/// The one header of the last request the upstream saw, as text.
fn last_header(s: &Stack, name: &str) -> Option<String> {
    s.upstream
        .seen()
        .last()
        .expect("the upstream saw a request")
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn verified_claims_reach_the_upstream_as_the_mapped_headers() {
    let s = stack(&[MAPPING]).await;
    let token = s.token_with(|c| {
        c["email"] = json!("alice@example.com");
        c["groups"] = json!(["eng", "ops"]);
        c["org"] = json!({"name": "Acme"});
    });
    // Twice: the second use is decided by the verified-token cache, which must carry the claims too.
    for _ in 0..2 {
        assert_eq!(s.post_bearer(&token).await.status, 200);
        assert_eq!(last_header(&s, "x-auth-subject").as_deref(), Some("alice"));
        assert_eq!(
            last_header(&s, "x-auth-email").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            last_header(&s, "x-auth-client-id").as_deref(),
            Some("client-1")
        );
        assert_eq!(last_header(&s, "x-auth-groups").as_deref(), Some("eng,ops"));
        assert_eq!(last_header(&s, "x-org").as_deref(), Some("Acme"));
    }
    assert_eq!(s.upstream.count(), 2);
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let s = stack(&[MAPPING]).await;
    // No email claim: the client's X-Auth-Email must not stand in for it.
    let token = s.token();
    let a = post(
        &s.gate.resource(),
        &[
            ("authorization", &bearer(&token)),
            ("x-auth-subject", "root"),
            ("x-auth-email", "root@example.com"),
            ("x-forwarded-user", "root"),
            ("x-remote-user", "root"),
            ("x-auth-request-email", "root@example.com"),
            ("x-auth-request-groups", "admin"),
            ("x-forwarded-email", "root@example.com"),
            ("x-forwarded-groups", "admin"),
            ("x-unrelated", "kept"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    let seen = s.upstream.seen();
    let headers = &seen[0].headers;
    let subjects: Vec<_> = headers.get_all("x-auth-subject").iter().collect();
    assert_eq!(subjects, ["alice"]);
    for spoofed in [
        "x-auth-email",
        "x-forwarded-user",
        "x-remote-user",
        "x-auth-request-email",
        "x-auth-request-groups",
        "x-forwarded-email",
        "x-forwarded-groups",
    ] {
        assert!(
            !headers.contains_key(spoofed),
            "{spoofed} reached the upstream"
        );
    }
    assert_eq!(headers["x-unrelated"], "kept");
}

#[tokio::test]
async fn naming_an_identity_header_in_connection_neither_smuggles_nor_removes_it() {
    let s = stack(&[MAPPING]).await;
    let token = s.token();
    for (connection, spoof) in [
        // Naming it with a spoofed value: the spoofed value goes, the gate's value stays.
        ("close, X-Auth-Subject", "X-Auth-Subject: root\r\n"),
        // Naming it alone: the gate's own header must still be sent.
        ("close, X-Auth-Subject, X-Auth-Email", ""),
        // A stripped header named in Connection is still stripped.
        ("close, X-Forwarded-User", "X-Forwarded-User: root\r\n"),
    ] {
        s.upstream.forget();
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: {connection}\r\n{spoof}\r\n",
            s.gate.addr
        );
        let a = raw(s.gate.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert_eq!(a.status(), Some(200), "{connection}: {}", a.text());
        let seen = s.upstream.seen();
        let headers = &seen[0].headers;
        let subjects: Vec<_> = headers.get_all("x-auth-subject").iter().collect();
        assert_eq!(subjects, ["alice"], "{connection}");
        assert!(!headers.contains_key("x-forwarded-user"), "{connection}");
    }
}

#[tokio::test]
async fn array_elements_and_unsafe_values_are_encoded_not_dropped() {
    let s = stack(&[MAPPING]).await;
    let token = s.token_with(|c| {
        c["sub"] = json!("José");
        c["email"] = json!("a@b\r\nX-Injected: 1");
        c["groups"] = json!(["eng", "r&d, west", "ü"]);
    });
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(
        last_header(&s, "x-auth-subject").as_deref(),
        Some("UTF-8''Jos%C3%A9")
    );
    assert_eq!(
        last_header(&s, "x-auth-email").as_deref(),
        Some("UTF-8''a%40b%0D%0AX-Injected%3A%201")
    );
    assert_eq!(
        last_header(&s, "x-auth-groups").as_deref(),
        Some("eng,UTF-8''r&d%2C%20west,UTF-8''%C3%BC")
    );
    assert_eq!(last_header(&s, "x-injected"), None);
}

#[tokio::test]
async fn default_strip_list_applies_without_any_mapping() {
    let s = stack(&[]).await;
    let a = post(
        &s.gate.resource(),
        &[
            ("authorization", &bearer(&s.token())),
            ("x-forwarded-user", "root"),
            ("x-auth-request-user", "root"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    let seen = s.upstream.seen();
    assert!(!seen[0].headers.contains_key("x-forwarded-user"));
    assert!(!seen[0].headers.contains_key("x-auth-request-user"));
}
