//! Prometheus metrics scraped after known traffic.

use std::time::Duration;

use crate::support::*;
use http::Method;
use serde_json::json;

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}

#[tokio::test]
async fn metrics_count_known_traffic_with_bounded_labels() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let metrics_addr = free_addr();
    let gate = TestGate::start(
        &idp,
        &upstream,
        &[("METRICS_ADDR", &metrics_addr.to_string())],
    )
    .await;
    gate.wait_ready().await;
    let scrape = || async { get(&format!("http://{metrics_addr}/metrics"), &[]).await };

    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    let mut expired = claims(&idp.issuer, &gate.resource());
    expired["exp"] = json!(now() - 3600);
    let expired = key.token(&expired);
    for _ in 0..3 {
        assert_eq!(
            post(&gate.resource(), &[("authorization", &bearer(&token))], "")
                .await
                .status,
            200
        );
    }
    assert_eq!(post(&gate.resource(), &[], "").await.status, 401);
    assert_eq!(
        post(
            &gate.resource(),
            &[("authorization", &bearer(&expired))],
            ""
        )
        .await
        .status,
        401
    );
    assert_eq!(
        post(&gate.url("/mcp/secret-path-123"), &[], "")
            .await
            .status,
        401
    );

    let answer = scrape().await;
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    assert_eq!(
        value(
            &text,
            "mcp_gate_requests_total{status=\"200\",outcome=\"allowed\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "mcp_gate_requests_total{status=\"401\",outcome=\"refused\"}"
        ),
        3.0
    );
    assert_eq!(
        value(&text, "mcp_gate_refusals_total{reason=\"missing_token\"}"),
        2.0
    );
    assert_eq!(
        value(&text, "mcp_gate_refusals_total{reason=\"expired\"}"),
        1.0
    );
    assert_eq!(
        value(&text, "mcp_gate_token_cache_misses_total"),
        2.0,
        "first use of each token"
    );
    assert_eq!(
        value(&text, "mcp_gate_token_cache_hits_total"),
        2.0,
        "repeat uses of the valid token"
    );
    let issuer = &idp.issuer;
    assert_eq!(
        value(
            &text,
            &format!("mcp_gate_jwks_fetches_total{{issuer=\"{issuer}\",result=\"ok\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("mcp_gate_signing_keys{{issuer=\"{issuer}\"}}")
        ),
        1.0
    );
    assert!(
        value(
            &text,
            &format!("mcp_gate_key_set_age_seconds{{issuer=\"{issuer}\"}}")
        ) >= 0.0
    );
    assert_eq!(
        value(&text, "mcp_gate_upstream_duration_seconds_count"),
        3.0
    );
    assert_eq!(value(&text, "mcp_gate_open_streams"), 0.0);
    // No paths, subjects or tokens as label values.
    for leak in ["secret-path-123", "alice", &token[..20], "/mcp"] {
        assert!(!text.contains(leak), "{leak} leaked into metrics");
    }

    // An open SSE stream is counted until it closes.
    let mut response = open(
        Method::GET,
        &gate.url("/sse"),
        &[("authorization", &bearer(&token))],
    )
    .await;
    next_chunk(response.body_mut(), Duration::from_secs(5))
        .await
        .unwrap();
    let text = String::from_utf8(scrape().await.body.to_vec()).unwrap();
    assert_eq!(value(&text, "mcp_gate_open_streams"), 1.0);
    drop(response);
    let mut closed = false;
    for _ in 0..50 {
        let text = String::from_utf8(scrape().await.body.to_vec()).unwrap();
        if value(&text, "mcp_gate_open_streams") == 0.0 {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        closed,
        "the stream gauge returns to 0 when the client leaves"
    );
    assert_eq!(
        get(&format!("http://{metrics_addr}/other"), &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn inspected_mcp_requests_are_counted_by_method_rule_pattern_and_decision() {
    let metrics_addr = free_addr();
    let s = stack(&[
        ("METRICS_ADDR", &metrics_addr.to_string()),
        ("TOOL_SCOPES", "delete_*=mcp:admin"),
    ])
    .await;
    let auth = bearer(&s.token());
    let call = |name: &str| {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#)
    };
    for name in ["echo", "random_tool_1", "random_tool_2"] {
        assert_eq!(
            post(&s.gate.resource(), &[("authorization", &auth)], &call(name))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        post(
            &s.gate.resource(),
            &[("authorization", &auth)],
            &call("delete_x")
        )
        .await
        .status,
        403
    );
    let text = get(&format!("http://{metrics_addr}/metrics"), &[]).await;
    let text = String::from_utf8(text.body.to_vec()).unwrap();
    // Tool names the policy does not name share `other`: the label set is bounded by the policy.
    assert_eq!(
        value(&text, "mcp_gate_mcp_requests_total{method=\"tools/call\",name=\"other\",decision=\"allowed\"}"),
        3.0
    );
    assert_eq!(
        value(&text, "mcp_gate_mcp_requests_total{method=\"tools/call\",name=\"delete_*\",decision=\"step_up\"}"),
        1.0
    );
    assert!(!text.contains("random_tool"), "{text}");
}
