//! Token exchange (RFC 8693) for the upstream, against a small in-process token endpoint whose
//! answers the tests change: the exchanged token reaches the upstream and the caller's never does;
//! every failure is 502 with nothing forwarded; the cache, its single flight and its expiry; client
//! authentication.

use std::time::{Duration, Instant};

use crate::support::*;

/// A stack whose gate exchanges every accepted token at `endpoint`, with extra settings.
async fn exchanging(endpoint: &TokenEndpoint, extra: &[(&str, &str)]) -> Stack {
    let url = endpoint.url();
    let mut vars = vec![
        ("TOKEN_EXCHANGE", "true"),
        ("TOKEN_EXCHANGE_ENDPOINT", url.as_str()),
        ("TOKEN_EXCHANGE_AUDIENCE", "billing-api"),
        ("TOKEN_EXCHANGE_RESOURCE", "https://billing.example.com/api"),
        ("TOKEN_EXCHANGE_SCOPE", "billing:read"),
        ("TOKEN_EXCHANGE_CLIENT_ID", "gate"),
        ("TOKEN_EXCHANGE_CLIENT_SECRET", "s3cret:x"),
    ];
    vars.extend_from_slice(extra);
    stack(&vars).await
}

/// Whether any header the upstream saw carries `token`.
fn upstream_saw(s: &Stack, token: &str) -> bool {
    s.upstream.seen().iter().any(|seen| {
        seen.headers
            .values()
            .any(|v| String::from_utf8_lossy(v.as_bytes()).contains(token))
    })
}

#[tokio::test]
async fn the_upstream_gets_the_exchanged_token_and_never_the_callers() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let s = exchanging(&e, &[]).await;
    let token = s.token();
    let a = s.post_bearer(&token).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let seen = s.upstream.seen();
    assert_eq!(seen[0].headers["authorization"], "Bearer exchanged-1");
    assert!(
        !upstream_saw(&s, &token),
        "the caller's token reached the upstream"
    );

    let (auth, form) = e.last();
    // RFC 6749 §2.3.1: id and secret form-encoded, then HTTP Basic.
    assert_eq!(auth, "Basic Z2F0ZTpzM2NyZXQlM0F4");
    for part in [
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange",
        &format!("subject_token={token}"),
        "subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
        "requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
        "audience=billing-api",
        "resource=https%3A%2F%2Fbilling.example.com%2Fapi",
        "scope=billing%3Aread",
    ] {
        assert!(form.split('&').any(|p| p == part), "{part} not in {form}");
    }
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let s = exchanging(&e, &[("TOKEN_EXCHANGE_AUTH_METHOD", "client_secret_post")]).await;
    assert_eq!(s.post_bearer(&s.token()).await.status, 200);
    let (auth, form) = e.last();
    assert_eq!(auth, "");
    assert!(
        form.contains("&client_id=gate&client_secret=s3cret%3Ax"),
        "{form}"
    );
}

#[tokio::test]
async fn a_refused_exchange_is_502_and_nothing_reaches_the_upstream() {
    let e = TokenEndpoint::start(ExchangeMode::Refuse).await;
    let s = exchanging(&e, &[]).await;
    let a = s.post_bearer(&s.token()).await;
    assert_eq!(a.status, 502);
    assert_eq!(a.json()["error"], "bad_gateway");
    assert_eq!(s.upstream.count(), 0);
    assert_eq!(e.calls(), 1);
}

#[tokio::test]
async fn a_slow_garbled_or_oversized_token_endpoint_is_502_within_the_bound() {
    let e = TokenEndpoint::start(ExchangeMode::Stall).await;
    let s = exchanging(&e, &[]).await;
    for (i, mode) in [
        ExchangeMode::Stall,
        ExchangeMode::Garbage,
        ExchangeMode::Oversized,
    ]
    .into_iter()
    .enumerate()
    {
        e.set(mode.clone());
        // A token of its own for each case, so no earlier outcome is reused.
        let token = s.token_with(|c| c["jti"] = serde_json::json!(format!("case-{i}")));
        let started = Instant::now();
        let a = s.post_bearer(&token).await;
        assert_eq!(a.status, 502, "{mode:?}");
        // Bounded by JWKS_FETCH_TIMEOUT (1 s in tests).
        assert!(started.elapsed() < Duration::from_secs(3), "{mode:?}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn requests_with_one_token_cost_one_exchange_and_another_token_its_own() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let s = exchanging(&e, &[]).await;
    let token = s.token();
    for _ in 0..5 {
        assert_eq!(s.post_bearer(&token).await.status, 200);
    }
    assert_eq!(e.calls(), 1);
    let other = s.token_with(|c| c["sub"] = serde_json::json!("bob"));
    assert_eq!(s.post_bearer(&other).await.status, 200);
    assert_eq!(e.calls(), 2);
    let seen: Vec<_> = s
        .upstream
        .seen()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(seen[..5], ["Bearer exchanged-1"; 5]);
    assert_eq!(seen[5], "Bearer exchanged-2");
}

#[tokio::test]
async fn a_burst_with_one_token_costs_one_exchange() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let s = exchanging(&e, &[]).await;
    *e.delay.lock().unwrap() = Duration::from_millis(300);
    let url = s.gate.resource();
    let auth = bearer(&s.token());
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let (url, auth) = (url.clone(), auth.clone());
            tokio::spawn(async move { post(&url, &[("authorization", &auth)], "").await.status })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(e.calls(), 1);
}

#[tokio::test]
async fn an_exchanged_token_is_replaced_shortly_before_it_expires() {
    // expires_in 2 s: reused for 1 s (the skew takes at most half the lifetime).
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 2 }).await;
    let s = exchanging(&e, &[]).await;
    let token = s.token();
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(e.calls(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(e.calls(), 2);
    let last = s.upstream.seen().pop().unwrap();
    assert_eq!(last.headers["authorization"], "Bearer exchanged-2");
}

#[tokio::test]
async fn a_failure_is_remembered_briefly_then_the_exchange_is_tried_again() {
    let e = TokenEndpoint::start(ExchangeMode::Refuse).await;
    let s = exchanging(&e, &[]).await;
    let token = s.token();
    assert_eq!(s.post_bearer(&token).await.status, 502);
    assert_eq!(s.post_bearer(&token).await.status, 502);
    assert_eq!(e.calls(), 1, "a replay within a second costs no call");
    e.set(ExchangeMode::Issue { expires_in: 300 });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(e.calls(), 2);
}

#[tokio::test]
async fn the_token_endpoint_is_found_in_the_servers_metadata() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let jwks_uri = format!("{}/jwks", idp.issuer);
    // The token endpoint's server is the authorization server; its keys are served elsewhere.
    let gate = TestGate::start(
        &idp,
        &upstream,
        &[
            ("AUTHORIZATION_SERVER", e.base.as_str()),
            ("JWKS_URI", jwks_uri.as_str()),
            ("TOKEN_EXCHANGE", "true"),
            ("TOKEN_EXCHANGE_AUDIENCE", "billing-api"),
            ("TOKEN_EXCHANGE_CLIENT_ID", "gate"),
            ("TOKEN_EXCHANGE_CLIENT_SECRET", "s"),
        ],
    )
    .await;
    gate.wait_ready().await;
    let token = key.token(&claims(&e.base, &gate.resource()));
    let a = post(&gate.resource(), &[("authorization", &bearer(&token))], "").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(e.calls(), 1);
    assert_eq!(
        upstream.seen()[0].headers["authorization"],
        "Bearer exchanged-1"
    );
}

#[tokio::test]
async fn exchange_outcomes_are_counted_and_timed_in_the_metrics() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let metrics_addr = free_addr().to_string();
    let s = exchanging(&e, &[("METRICS_ADDR", metrics_addr.as_str())]).await;
    let token = s.token();
    for _ in 0..3 {
        assert_eq!(s.post_bearer(&token).await.status, 200);
    }
    e.set(ExchangeMode::Refuse);
    let other = s.token_with(|c| c["sub"] = serde_json::json!("bob"));
    assert_eq!(s.post_bearer(&other).await.status, 502);
    let text = get(&format!("http://{metrics_addr}/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&text.body).to_string();
    for line in [
        r#"mcp_gate_token_exchanges_total{result="miss"} 1"#,
        r#"mcp_gate_token_exchanges_total{result="hit"} 2"#,
        r#"mcp_gate_token_exchanges_total{result="failure"} 1"#,
        "mcp_gate_token_exchange_duration_seconds_count 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
    }
    assert!(!text.contains(&token));
}

#[tokio::test]
async fn a_request_the_mcp_rules_refuse_costs_no_exchange_and_an_allowed_one_is_exchanged() {
    let e = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let s = exchanging(&e, &[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    let call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#
        )
    };
    let auth = bearer(&s.token());
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let refused = post(&s.gate.resource(), &headers, &call("delete_note")).await;
    assert_eq!(refused.status, 403);
    assert_eq!(e.calls(), 0, "the rules decide before any exchange");
    let allowed = post(&s.gate.resource(), &headers, &call("echo")).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(e.calls(), 1);
    assert_eq!(
        s.upstream.seen()[0].headers["authorization"],
        "Bearer exchanged-1"
    );
}
