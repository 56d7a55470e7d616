//! The gate end to end over real sockets: metadata, challenges, token checks, proxying, streaming,
//! key rotation and IdP faults. Each test starts its own identity provider, upstream and gate.

use std::time::{Duration, Instant};

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
async fn request_without_token_gets_401_with_a_single_challenge_no_error_code_and_never_reaches_upstream(
) {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools mcp:read")]).await;
    for method in [Method::POST, Method::GET, Method::DELETE, Method::PUT] {
        let a = send(method.clone(), &s.gate.resource(), &[], "{}").await;
        assert_eq!(a.status, 401, "{method}");
        let challenges: Vec<_> = a.headers.get_all("www-authenticate").iter().collect();
        assert_eq!(challenges.len(), 1);
        let expected = format!(
            "Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools mcp:read\"",
            s.gate.addr
        );
        assert_eq!(challenges[0], expected.as_str());
        assert_eq!(a.header("content-type"), Some("application/json"));
        // The body agrees with the challenge: no error code without a token (RFC 6750 §3.1).
        let body = a.json();
        assert!(body.get("error").is_none(), "{method}: {body}");
        assert_eq!(body["error_description"], "An access token is required");
    }
    // The advertised metadata URL answers.
    let a = post(&s.gate.resource(), &[], "{}").await;
    let url = a
        .header("www-authenticate")
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(get(&url, &[]).await.status, 200);
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn valid_token_is_forwarded_with_path_query_and_mcp_headers_and_without_authorization() {
    let s = stack(&[]).await;
    let token = s.token();
    let a = post(
        &s.gate.url("/mcp?x=1&y=two"),
        &[
            ("authorization", &bearer(&token)),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/call"),
            ("last-event-id", "42"),
            ("host", "mcp.public.example"),
        ],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("mcp-session-id"),
        Some("sess-1"),
        "response headers pass back"
    );
    let seen = &s.upstream.seen()[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.path_and_query, "/mcp?x=1&y=two");
    assert_eq!(seen.body, r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    let h = &seen.headers;
    assert!(
        h.get("authorization").is_none(),
        "token must not be passed through"
    );
    assert_eq!(h["host"], s.upstream.addr.to_string().as_str());
    assert_eq!(h["x-forwarded-host"], "mcp.public.example");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    for (k, v) in [
        ("mcp-session-id", "abc"),
        ("mcp-protocol-version", "2025-11-25"),
        ("mcp-method", "tools/call"),
        ("last-event-id", "42"),
        ("accept", "application/json, text/event-stream"),
    ] {
        assert_eq!(h[k], v, "{k}");
    }
}

#[tokio::test]
async fn forward_token_true_passes_the_authorization_header() {
    let s = stack(&[("FORWARD_TOKEN", "true")]).await;
    let token = s.token();
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(
        s.upstream.seen()[0].headers["authorization"],
        bearer(&token).as_str()
    );
}

#[tokio::test]
async fn every_method_is_proxied_and_upstream_statuses_pass_through_untouched() {
    let s = stack(&[]).await;
    let auth = bearer(&s.token());
    for method in [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::PUT,
        Method::PATCH,
    ] {
        let a = send(
            method.clone(),
            &s.gate.resource(),
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "{method}");
    }
    for code in [202, 400, 404, 405, 421, 500] {
        let a = post(
            &s.gate.url(&format!("/status/{code}")),
            &[("authorization", &auth)],
            "",
        )
        .await;
        assert_eq!(a.status, code);
    }
    // No redirect for a trailing slash.
    let a = post(&s.gate.url("/mcp/"), &[("authorization", &auth)], "").await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.seen().last().unwrap().path_and_query, "/mcp/");
}

#[tokio::test]
async fn upstream_base_path_is_joined_with_the_request_path() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let base = format!("{}/base/", upstream.url());
    let gate = TestGate::start(&idp, &upstream, &[("UPSTREAM_URL", &base)]).await;
    gate.wait_ready().await;
    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    assert_eq!(
        post(
            &gate.url("/mcp?a=b"),
            &[("authorization", &bearer(&token))],
            ""
        )
        .await
        .status,
        200
    );
    assert_eq!(upstream.seen()[0].path_and_query, "/base/mcp?a=b");
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token_and_never_reach_upstream() {
    let s = stack(&[]).await;
    let other_key = TestKey::rsa("k1", 2048);
    let cases: Vec<(&str, String)> = vec![
        ("expired", s.token_with(|c| c["exp"] = json!(now() - 3600))),
        (
            "not yet valid",
            s.token_with(|c| c["nbf"] = json!(now() + 3600)),
        ),
        (
            "wrong audience",
            s.token_with(|c| c["aud"] = json!("http://elsewhere/mcp")),
        ),
        (
            "audience with trailing slash",
            s.token_with(|c| c["aud"] = json!(format!("{}/", s.gate.resource()))),
        ),
        (
            "wrong issuer",
            s.token_with(|c| c["iss"] = json!("http://evil.example")),
        ),
        (
            "no exp",
            s.token_with(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "forged signature",
            other_key.token(&claims(&s.idp.issuer, &s.gate.resource())),
        ),
        ("not a jwt", "abc.def.ghi".to_string()),
        ("opaque", "2YotnFZFEjr1zCsicMWpAA".to_string()),
    ];
    for (name, token) in cases {
        let a = s.post_bearer(&token).await;
        assert_eq!(a.status, 401, "{name}");
        let challenge = a.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        assert!(challenge.contains("resource_metadata=\""), "{name}");
        assert!(
            !challenge.contains("k1"),
            "{name}: no key ids in descriptions"
        );
        assert_eq!(a.json()["error"], "invalid_token", "{name}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn malformed_requests_get_400_invalid_request() {
    let s = stack(&[]).await;
    let token = s.token();
    let a = post(&s.gate.url(&format!("/mcp?access_token={token}")), &[], "").await;
    assert_eq!(a.status, 400);
    assert!(a
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_request\""));
    let a = post(
        &s.gate.url("/mcp?access_token=x"),
        &[("authorization", &bearer(&token))],
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    let a = post(&s.gate.resource(), &[("authorization", "Bearer a b")], "").await;
    assert_eq!(a.status, 400);
    let a = post(
        &s.gate.resource(),
        &[
            ("authorization", &bearer(&token)),
            ("authorization", &bearer(&token)),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    // The scheme is case-insensitive.
    let a = post(
        &s.gate.resource(),
        &[("authorization", &format!("bEaReR {token}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn missing_scope_gets_403_naming_all_required_scopes() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools mcp:admin")]).await;
    let token = s.token();
    let a = s.post_bearer(&token).await;
    assert_eq!(a.status, 403);
    let challenge = a.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"mcp:tools mcp:admin\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    let token = s.token_with(|c| c["scope"] = json!("mcp:admin mcp:tools"));
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

/// Entra ID as README's setup configures it: tokens carry the short scope name in `scp`, clients
/// must request the full name under the Application ID URI.
#[tokio::test]
async fn challenges_name_scopes_as_clients_request_them_when_the_token_carries_short_names() {
    const FULL: &str = "https://mcp.example.com/mcp/mcp.tools";
    let s = stack(&[("REQUIRED_SCOPES", "mcp.tools"), ("SCOPES_SUPPORTED", FULL)]).await;
    let scope_of = |a: &Answer| {
        let challenge = a.header("www-authenticate").unwrap_or_default().to_string();
        challenge
            .split("scope=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no scope in {challenge:?}"))
    };
    let missing = post(&s.gate.resource(), &[], "{}").await;
    assert_eq!(missing.status, 401);
    assert_eq!(scope_of(&missing), FULL);
    let without_scope = s.post_bearer(&s.token()).await;
    assert_eq!(without_scope.status, 403);
    assert_eq!(scope_of(&without_scope), FULL);
    // The token itself still needs only the short name, as Entra writes it.
    let entra = s.token_with(|c| c["scp"] = json!("mcp.tools"));
    assert_eq!(s.post_bearer(&entra).await.status, 200);
    let doc = get(
        &s.gate.url("/.well-known/oauth-protected-resource/mcp"),
        &[],
    )
    .await;
    assert_eq!(doc.json()["scopes_supported"], json!([FULL]));
}

#[tokio::test]
async fn failed_claim_rule_gets_403() {
    let s = stack(&[(
        "REQUIRED_CLAIMS",
        "email_verified=true,realm_access.roles=mcp-user",
    )])
    .await;
    let without = s.token_with(|c| c["email_verified"] = json!(true));
    assert_eq!(s.post_bearer(&without).await.status, 403);
    let with = s.token_with(|c| {
        c["email_verified"] = json!(true);
        c["realm_access"] = json!({"roles": ["x", "mcp-user"]});
    });
    assert_eq!(s.post_bearer(&with).await.status, 200);
}

#[tokio::test]
async fn sse_events_reach_the_client_before_the_upstream_sends_the_next_one() {
    let s = stack(&[]).await;
    let token = s.token();
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse"),
        &[
            ("authorization", &bearer(&token)),
            ("accept", "text/event-stream"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["mcp-session-id"], "sess-sse");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let body = response.body_mut();
    // Event 2 is only sent once the test has seen event 1: a buffering proxy would deadlock here.
    let first = next_chunk(body, Duration::from_secs(5))
        .await
        .expect("first event arrives on its own");
    assert_eq!(first, "data: event 1\n\n");
    s.upstream.release();
    let second = next_chunk(body, Duration::from_secs(5))
        .await
        .expect("second event");
    assert_eq!(second, "data: event 2\n\n");
}

#[tokio::test]
async fn client_hanging_up_closes_the_upstream_stream() {
    let s = stack(&[]).await;
    let token = s.token();
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse"),
        &[("authorization", &bearer(&token))],
    )
    .await;
    next_chunk(response.body_mut(), Duration::from_secs(5))
        .await
        .unwrap();
    drop(response);
    tokio::time::timeout(Duration::from_secs(2), s.upstream.sse_closed.notified())
        .await
        .expect("upstream stream closed within a second or two of the client leaving");
}

#[tokio::test]
async fn upstream_refusing_gives_502_and_stalling_gives_504() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    // A port nothing listens on.
    let closed = free_addr();
    let gate = TestGate::start(
        &idp,
        &upstream,
        &[("UPSTREAM_URL", &format!("http://{closed}"))],
    )
    .await;
    gate.wait_ready().await;
    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    let a = post(&gate.resource(), &[("authorization", &bearer(&token))], "").await;
    assert_eq!(a.status, 502);
    assert_eq!(a.json()["error"], "bad_gateway");

    let gate = TestGate::start(&idp, &upstream, &[("UPSTREAM_TIMEOUT", "300ms")]).await;
    gate.wait_ready().await;
    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    let started = Instant::now();
    let a = post(
        &gate.url("/slow"),
        &[("authorization", &bearer(&token))],
        "",
    )
    .await;
    assert_eq!(a.status, 504);
    assert_eq!(a.json()["error"], "gateway_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The gate keeps serving.
    assert_eq!(
        post(&gate.resource(), &[("authorization", &bearer(&token))], "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let s = stack(&[("MAX_REQUEST_BODY", "1KiB")]).await;
    let auth = bearer(&s.token());
    let big = "x".repeat(2048);
    let a = post(&s.gate.resource(), &[("authorization", &auth)], &big).await;
    assert_eq!(a.status, 413);
    assert_eq!(s.upstream.count(), 0);
    let a = post(
        &s.gate.resource(),
        &[("authorization", &auth)],
        &"x".repeat(1000),
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn rotated_key_is_accepted_without_restart_and_removed_key_is_refused() {
    let s = stack(&[]).await;
    let old = s.token();
    assert_eq!(s.post_bearer(&old).await.status, 200);
    let new_key = TestKey::rsa("k2", 2048);
    s.idp.serve_keys(&[&new_key]);
    let fetches_before = s.idp.jwks_fetches();
    // Past JWKS_MIN_REFRESH_INTERVAL (1 s in tests) since the initial load.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = new_key.token(&claims(&s.idp.issuer, &s.gate.resource()));
    let a = s.post_bearer(&new).await;
    assert_eq!(
        a.status, 200,
        "a token from the new key is accepted on first sight"
    );
    assert_eq!(s.idp.jwks_fetches(), fetches_before + 1);
    let a = s.post_bearer(&old).await;
    assert_eq!(a.status, 401, "the removed key no longer verifies");
}

#[tokio::test]
async fn key_replaced_under_the_same_kid_is_picked_up() {
    let s = stack(&[]).await;
    let replacement = TestKey::rsa("k1", 2048);
    s.idp.serve_keys(&[&replacement]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let token = replacement.token(&claims(&s.idp.issuer, &s.gate.resource()));
    assert_eq!(s.post_bearer(&token).await.status, 200);
}

#[tokio::test]
async fn unknown_kid_flood_shares_one_rate_limited_fetch() {
    let s = stack(&[("JWKS_MIN_REFRESH_INTERVAL", "10s")]).await;
    let before = s.idp.jwks_fetches();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let key = &s.key;
        let c = claims(&s.idp.issuer, &s.gate.resource());
        let token = key.sign(
            &format!(r#"{{"alg":"RS256","kid":"random-{i}"}}"#),
            &c.to_string(),
        );
        let url = s.gate.resource();
        tasks.push(tokio::spawn(async move {
            post(&url, &[("authorization", &bearer(&token))], "")
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 401);
    }
    // The initial load happened within the last 10 s, so no refetch is allowed at all yet.
    assert!(
        s.idp.jwks_fetches() - before <= 1,
        "{} fetches",
        s.idp.jwks_fetches() - before
    );
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn idp_down_at_start_gives_503_then_recovers_without_restart() {
    let key = TestKey::rsa("k1", 2048);
    let reserved = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp_addr = reserved.local_addr().unwrap();
    drop(reserved);
    let upstream = TestUpstream::start().await;
    // A stand-in TestIdp value so the gate knows the issuer; nothing listens yet.
    let issuer = format!("http://{idp_addr}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gate_addr = listener.local_addr().unwrap();
    let vars: std::collections::HashMap<String, String> = [
        ("UPSTREAM_URL", upstream.url()),
        ("RESOURCE_URI", format!("http://{gate_addr}/mcp")),
        ("AUTHORIZATION_SERVER", issuer.clone()),
        ("JWKS_FETCH_TIMEOUT", "1s".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (config, _) = mcp_gate::Config::from_vars(&vars).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mcp_gate::serve(listener, config, async {
        let _ = stop_rx.await;
    }));
    let url = |p: &str| format!("http://{gate_addr}{p}");
    let token = key.token(&claims(&issuer, &url("/mcp")));

    assert_eq!(get(&url("/healthz"), &[]).await.status, 200);
    assert_eq!(get(&url("/readyz"), &[]).await.status, 503);
    let a = post(&url("/mcp"), &[("authorization", &bearer(&token))], "").await;
    assert_eq!(a.status, 503);
    assert!(a.header("retry-after").is_some());
    assert_eq!(upstream.count(), 0);

    let listener = tokio::net::TcpListener::bind(idp_addr).await.unwrap();
    let _idp = TestIdp::start_on(listener, JwksBehaviour::Serve(jwks(&[&key]))).await;
    // The next request fetches the keys itself rather than waiting for the background retry.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = post(&url("/mcp"), &[("authorization", &bearer(&token))], "").await;
    assert_eq!(a.status, 200);
    assert_eq!(get(&url("/readyz"), &[]).await.status, 200);
    let _ = stop_tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn idp_failing_later_keeps_the_last_good_keys() {
    let s = stack(&[
        ("JWKS_REFRESH_INTERVAL", "200ms"),
        ("JWKS_MIN_REFRESH_INTERVAL", "100ms"),
    ])
    .await;
    let token = s.token();
    for behaviour in [
        JwksBehaviour::Fail,
        JwksBehaviour::Garbage("<html>login</html>".into()),
        JwksBehaviour::Garbage(r#"{"keys":[{"kty":"RSA""#.into()),
        JwksBehaviour::Garbage(r#"{"keys":[]}"#.into()),
        JwksBehaviour::Stall,
    ] {
        s.idp.set(behaviour);
        let fetches = s.idp.jwks_fetches();
        // Wait for at least one failed background refresh.
        for _ in 0..100 {
            if s.idp.jwks_fetches() > fetches {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(s.idp.jwks_fetches() > fetches);
        let started = Instant::now();
        assert_eq!(s.post_bearer(&token).await.status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(get(&s.gate.url("/readyz"), &[]).await.status, 200);
    }
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

#[tokio::test]
async fn shutdown_drains_within_the_timeout_even_with_an_open_stream() {
    let s = stack(&[("SHUTDOWN_TIMEOUT", "500ms")]).await;
    let token = s.token();
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse"),
        &[("authorization", &bearer(&token))],
    )
    .await;
    next_chunk(response.body_mut(), Duration::from_secs(5))
        .await
        .unwrap();
    let took = s.gate.shutdown().await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        took >= Duration::from_millis(400),
        "waited for the open stream: {took:?}"
    );
}
