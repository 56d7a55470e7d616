//! The token exchange (RFC 8693) as a child span of the request it serves, failed or not.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;

use super::harness::*;
use crate::support::*;

#[tokio::test]
async fn a_token_exchange_is_a_child_span_of_its_request_and_a_refused_one_says_so() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    let endpoint = TokenEndpoint::start(ExchangeMode::Issue { expires_in: 300 }).await;
    let url = endpoint.url();
    let gate = gate(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("TOKEN_EXCHANGE", "true"),
            ("TOKEN_EXCHANGE_ENDPOINT", &url),
            ("TOKEN_EXCHANGE_AUDIENCE", "billing-api"),
            ("TOKEN_EXCHANGE_CLIENT_ID", "gate"),
            ("TOKEN_EXCHANGE_CLIENT_SECRET", "s"),
        ],
    )
    .await;
    let resource = format!("{}/mcp", gate.url);
    let token = key.token(&claims(&idp.issuer, &resource));
    let bearer = format!("Bearer {token}");
    let answer = post(&resource, &[("authorization", &bearer)], "{}").await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let server = receiver
        .wait_for("server", |s| s.kind == SpanKind::Server as i32)
        .await;
    let exchange = receiver
        .wait_for("exchange", |s| s.name == "token exchange")
        .await;
    assert_eq!(exchange.trace_id, server.trace_id);
    assert_eq!(exchange.parent_span_id, server.span_id);
    assert_eq!(exchange.kind, SpanKind::Client as i32);
    assert_eq!(attr(&exchange, "error.type"), None);

    // Another caller (no cached exchange), and the token endpoint now refuses.
    endpoint.set(ExchangeMode::Refuse);
    let mut other = claims(&idp.issuer, &resource);
    other["sub"] = json!("bob");
    let bearer = format!("Bearer {}", key.token(&other));
    let answer = post(&resource, &[("authorization", &bearer)], "{}").await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);
    let failed = receiver
        .wait_for("failed exchange", |s| {
            s.name == "token exchange" && s.trace_id != exchange.trace_id
        })
        .await;
    assert_eq!(
        attr(&failed, "error.type").as_deref(),
        Some("token_exchange_failed")
    );
}
