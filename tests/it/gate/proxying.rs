//! What an accepted request does upstream: forwarded with its path, query and MCP headers but not
//! its `Authorization` (unless `FORWARD_TOKEN`), every method, the upstream's status untouched and
//! its base path joined; 502 and 504 when the upstream refuses or stalls, 413 for an oversized body.

use std::time::{Duration, Instant};

use crate::support::*;
use http::Method;

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
