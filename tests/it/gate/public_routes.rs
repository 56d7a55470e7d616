//! What the gate answers without a token: the protected resource metadata at the root and the
//! path-inserted well-known URL (RFC 9728 §3), CORS preflights before authentication (and foreign
//! origins refused), and the health paths.

use crate::support::*;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn metadata_is_served_at_root_and_path_inserted_without_auth() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools"), ("RESOURCE_NAME", "Test")]).await;
    let root = get(&s.gate.url("/.well-known/oauth-protected-resource"), &[]).await;
    let inserted = get(
        &s.gate.url("/.well-known/oauth-protected-resource/mcp"),
        &[],
    )
    .await;
    for a in [&root, &inserted] {
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("access-control-allow-origin"), Some("*"));
        assert!(a.header("cache-control").unwrap().contains("max-age="));
    }
    assert_eq!(root.body, inserted.body);
    let doc = root.json();
    assert_eq!(doc["resource"], s.gate.resource());
    assert_eq!(doc["authorization_servers"], json!([s.idp.issuer]));
    assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
    assert_eq!(doc["resource_name"], "Test");
    assert!(!root.body.windows(4).any(|w| w == b"null"));
    // The document never depends on the Host header.
    let spoofed = get(
        &s.gate.url("/.well-known/oauth-protected-resource/mcp"),
        &[("host", "evil.example.com")],
    )
    .await;
    assert_eq!(spoofed.body, inserted.body);
    let head = send(
        Method::HEAD,
        &s.gate.url("/.well-known/oauth-protected-resource"),
        &[],
        "",
    )
    .await;
    assert_eq!(head.status, 200);
    let options = send(
        Method::OPTIONS,
        &s.gate.url("/.well-known/oauth-protected-resource/mcp"),
        &[],
        "",
    )
    .await;
    assert_eq!(options.status, 200);
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn cors_preflight_is_answered_before_auth_and_foreign_origins_are_refused() {
    let s = stack(&[("CORS_ALLOWED_ORIGINS", "http://app.example")]).await;
    let pre = send(
        Method::OPTIONS,
        &s.gate.resource(),
        &[
            ("origin", "http://app.example"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type, mcp-protocol-version",
            ),
        ],
        "",
    )
    .await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("http://app.example")
    );
    assert!(pre
        .header("access-control-allow-headers")
        .unwrap()
        .contains("MCP-Protocol-Version"));
    let unauth = post(&s.gate.resource(), &[("origin", "http://app.example")], "").await;
    assert_eq!(unauth.status, 401);
    assert!(unauth
        .header("access-control-expose-headers")
        .unwrap()
        .contains("WWW-Authenticate"));
    let token = s.token();
    let ok = post(
        &s.gate.resource(),
        &[
            ("origin", "http://app.example"),
            ("authorization", &bearer(&token)),
        ],
        "",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert!(ok
        .header("access-control-expose-headers")
        .unwrap()
        .contains("Mcp-Session-Id"));
    let evil = post(
        &s.gate.resource(),
        &[
            ("origin", "http://evil.example"),
            ("authorization", &bearer(&token)),
        ],
        "",
    )
    .await;
    assert_eq!(evil.status, 403);
    // Server-side clients send no Origin and are unaffected.
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(s.upstream.count(), 2);
}

#[tokio::test]
async fn health_paths_are_public_and_configurable() {
    let s = stack(&[
        ("HEALTH_PATH", "/_gate/live"),
        ("READY_PATH", "/_gate/ready"),
    ])
    .await;
    assert_eq!(get(&s.gate.url("/_gate/live"), &[]).await.status, 200);
    assert_eq!(get(&s.gate.url("/_gate/ready"), &[]).await.status, 200);
    // The default paths are now ordinary, protected paths.
    assert_eq!(get(&s.gate.url("/healthz"), &[]).await.status, 401);
}
