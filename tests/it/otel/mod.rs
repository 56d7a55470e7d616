//! OpenTelemetry traces from the real binary to an OTLP/HTTP receiver that decodes the official
//! protobuf definitions (`opentelemetry-proto`): the span tree, its attributes, W3C Trace Context
//! from the client (header or MCP `_meta`) and to the upstream, and nothing at all when `OTEL_*` is
//! unset. A collector that does not answer never slows a request, and what it cannot take is counted.

mod exchange;
mod harness;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;
use tokio::net::TcpListener;

use crate::support::*;
use harness::*;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn a_request_span_continues_the_callers_trace_with_key_fetch_and_upstream_children() {
    let (k1, k2) = (TestKey::rsa("k1", 2048), TestKey::rsa("k2", 2048));
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&k1]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    let gate = gate(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("OTEL_SERVICE_NAME", "gate-under-test"),
        ],
    )
    .await;
    // A key the gate has not seen: the request waits for a JWKS fetch, which is its child span.
    idp.serve_keys(&[&k1, &k2]);
    let token = k2.token(&claims(&idp.issuer, &format!("{}/mcp", gate.url)));
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let answer = post(
        &format!("{}/mcp", gate.url),
        &[
            ("authorization", &bearer(&token)),
            ("traceparent", &traceparent),
            ("tracestate", "vendor=opaque"),
            ("user-agent", "otel-test"),
        ],
        "{}",
    )
    .await;
    assert_eq!(answer.status, 200);

    let server = receiver
        .wait_for("server", |s| s.kind == SpanKind::Server as i32)
        .await;
    assert_eq!(hex(&server.trace_id), TRACE, "the caller's trace continues");
    assert_eq!(hex(&server.parent_span_id), PARENT, "as the caller's child");
    assert_eq!(server.trace_state, "vendor=opaque");
    assert_eq!(server.name, "POST");
    for (key, value) in [
        ("http.request.method", "POST"),
        ("url.path", "/mcp"),
        ("http.response.status_code", "200"),
        ("server.address", "127.0.0.1"),
        ("client.address", "127.0.0.1"),
        ("network.protocol.version", "1.1"),
        ("user_agent.original", "otel-test"),
        ("mcp_gate.auth.decision", "allowed"),
    ] {
        assert_eq!(attr(&server, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(attr(&server, "enduser.id"), None, "sub only when asked for");

    let fetch = receiver
        .wait_for("jwks fetch", |s| s.name == "jwks fetch")
        .await;
    assert_eq!(fetch.trace_id, server.trace_id);
    assert_eq!(fetch.parent_span_id, server.span_id);
    assert_eq!(fetch.kind, SpanKind::Client as i32);

    let client = receiver
        .wait_for("upstream call", |s| {
            s.kind == SpanKind::Client as i32 && s.name == "POST"
        })
        .await;
    assert_eq!(client.trace_id, server.trace_id);
    assert_eq!(client.parent_span_id, server.span_id);
    assert_eq!(
        attr(&client, "http.response.status_code").as_deref(),
        Some("200")
    );

    // The upstream continues the trace as the gate's client span's child, not the caller's.
    let seen = upstream.seen();
    let sent = seen[0].headers["traceparent"].to_str().unwrap();
    assert_eq!(sent, format!("00-{TRACE}-{}-01", hex(&client.span_id)));
    assert_eq!(seen[0].headers["tracestate"], "vendor=opaque");
    // The readiness probes the test polled before the request are not traced.
    let spans = receiver.spans.lock().unwrap();
    assert!(
        !spans
            .iter()
            .any(|s| attr(s, "url.path").as_deref() == Some("/readyz")),
        "a probe was traced"
    );
}

#[tokio::test]
async fn a_refused_request_has_a_span_with_the_refusal_reason_and_sub_is_recorded_on_request() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    let gate = gate(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("TRACE_RECORD_SUBJECT", "true"),
        ],
    )
    .await;
    let refused = post(&format!("{}/mcp", gate.url), &[], "{}").await;
    assert_eq!(refused.status, 401);
    let span = receiver
        .wait_for("refused", |s| {
            attr(s, "mcp_gate.auth.decision").as_deref() == Some("refused")
        })
        .await;
    assert_eq!(
        attr(&span, "mcp_gate.refusal.reason").as_deref(),
        Some("missing_token")
    );
    assert_eq!(
        attr(&span, "http.response.status_code").as_deref(),
        Some("401")
    );
    assert_eq!(span.parent_span_id.len(), 0, "no traceparent: a new trace");

    let token = key.token(&claims(&idp.issuer, &format!("{}/mcp", gate.url)));
    let allowed = post(
        &format!("{}/mcp", gate.url),
        &[("authorization", &bearer(&token))],
        "{}",
    )
    .await;
    assert_eq!(allowed.status, 200);
    let span = receiver
        .wait_for("allowed", |s| attr(s, "enduser.id").is_some())
        .await;
    assert_eq!(attr(&span, "enduser.id").as_deref(), Some("alice"));
    assert_eq!(
        upstream.count(),
        1,
        "the refused request never reached the upstream"
    );
}

#[tokio::test]
async fn an_mcp_body_meta_traceparent_continues_the_trace_and_names_method_and_tool() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    let gate = gate(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("TOOL_SCOPES", "delete_*=mcp:admin"),
        ],
    )
    .await;
    let token = key.token(&claims(&idp.issuer, &format!("{}/mcp", gate.url)));
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "get_weather", "arguments": {},
                   "_meta": {"traceparent": format!("00-{TRACE}-{PARENT}-01")}}});
    let answer = post(
        &format!("{}/mcp", gate.url),
        &[
            ("authorization", &bearer(&token)),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ],
        &body.to_string(),
    )
    .await;
    assert_eq!(answer.status, 200);
    let server = receiver
        .wait_for("server", |s| s.kind == SpanKind::Server as i32)
        .await;
    assert_eq!(hex(&server.trace_id), TRACE);
    assert_eq!(hex(&server.parent_span_id), PARENT);
    assert_eq!(
        attr(&server, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attr(&server, "gen_ai.tool.name").as_deref(),
        Some("get_weather")
    );
    let sent = upstream.seen()[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(sent.starts_with(&format!("00-{TRACE}-")), "{sent}");
}

#[tokio::test]
async fn nothing_is_exported_when_otel_is_unset() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    let gate = gate(&idp, &upstream, &[("OTEL_BSP_SCHEDULE_DELAY", "50")]).await;
    let token = key.token(&claims(&idp.issuer, &format!("{}/mcp", gate.url)));
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    for _ in 0..3 {
        let answer = post(
            &format!("{}/mcp", gate.url),
            &[
                ("authorization", &bearer(&token)),
                ("traceparent", &traceparent),
            ],
            "{}",
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.exports.load(Ordering::SeqCst), 0);
    // Off, the gate is transparent: the client's own traceparent reaches the upstream untouched.
    assert_eq!(
        upstream.seen()[0].headers["traceparent"],
        traceparent.as_str()
    );
}

#[tokio::test]
async fn a_collector_that_never_answers_does_not_slow_requests_and_drops_are_counted() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    // Accepts connections and reads nothing: every export waits for its timeout.
    let stalled = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", stalled.local_addr().unwrap());
    let metrics_port = free_addr().port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
    let gate = gate(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
            ("OTEL_BSP_SCHEDULE_DELAY", "10"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10000"),
            ("METRICS_ADDR", &metrics_addr),
        ],
    )
    .await;
    let token = key.token(&claims(&idp.issuer, &format!("{}/mcp", gate.url)));
    let started = Instant::now();
    for _ in 0..40 {
        let answer = post(
            &format!("{}/mcp", gate.url),
            &[("authorization", &bearer(&token))],
            "{}",
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "40 requests took {took:?}");
    let metrics = get(&format!("http://{metrics_addr}/metrics"), &[]).await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    let dropped: u64 = text
        .lines()
        .find(|l| l.starts_with("mcp_gate_trace_spans_dropped_total{reason=\"queue_full\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no queue_full count in {text}"));
    // 80 spans (server + upstream per request), at most 4 waiting and 2 in the stalled export.
    assert!(dropped >= 70, "dropped {dropped}");
    drop(stalled);
}

#[test]
fn an_otlp_protocol_the_gate_cannot_speak_stops_the_start_naming_the_variable() {
    let out = Command::new(BIN)
        .env_clear()
        .env("UPSTREAM_URL", "http://127.0.0.1:3000")
        .env("RESOURCE_URI", "https://mcp.example.com/mcp")
        .env("AUTHORIZATION_SERVER", "https://idp.example.com")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{stderr}");
}

#[tokio::test]
async fn an_introspection_call_is_a_child_span_of_the_request_it_decides() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    // Answers every token as active, for the audience set once the gate's port is known.
    let audience = Arc::new(Mutex::new(String::new()));
    let aud = audience.clone();
    let (introspection, _stop) = spawn_server(move |_req: Request<Incoming>| {
        let aud = aud.lock().unwrap().clone();
        async move {
            let answer = json!({"active": true, "sub": "alice", "aud": aud,
                                "exp": now() + 300, "scope": "mcp:tools"});
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(answer.to_string())).boxed())
                .unwrap()
        }
    })
    .await;
    let endpoint = format!("http://{introspection}/introspect");
    let gate = gate(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            ("TOKEN_VALIDATION", "auto"),
            ("INTROSPECTION_ENDPOINT", &endpoint),
            ("INTROSPECTION_CLIENT_ID", "gate"),
            ("INTROSPECTION_CLIENT_SECRET", "s"),
        ],
    )
    .await;
    *audience.lock().unwrap() = format!("{}/mcp", gate.url);
    let answer = post(
        &format!("{}/mcp", gate.url),
        &[("authorization", "Bearer opaque-alice")],
        "{}",
    )
    .await;
    assert_eq!(answer.status, 200);
    let server = receiver
        .wait_for("server", |s| s.kind == SpanKind::Server as i32)
        .await;
    let call = receiver
        .wait_for("introspection", |s| s.name == "token introspection")
        .await;
    assert_eq!(call.trace_id, server.trace_id);
    assert_eq!(call.parent_span_id, server.span_id);
    assert_eq!(
        attr(&call, "mcp_gate.token.active").as_deref(),
        Some("true")
    );
}

#[tokio::test]
async fn sigterm_flushes_the_spans_still_waiting_for_their_export() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let receiver = Receiver::start().await;
    // No scheduled export during the test: only the shutdown flush can deliver the span.
    let mut gate = gate_on_one_core(
        &idp,
        &upstream,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.url),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000"),
        ],
    )
    .await;
    let token = key.token(&claims(&idp.issuer, &format!("{}/mcp", gate.url)));
    let answer = post(
        &format!("{}/mcp", gate.url),
        &[("authorization", &bearer(&token))],
        "{}",
    )
    .await;
    assert_eq!(answer.status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.exports.load(Ordering::SeqCst), 0);
    let status = Command::new("kill")
        .args(["-TERM", &gate.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    // Polled, not waited for: the receiver runs on this test's runtime and must answer the flush.
    let exit = loop {
        if let Some(exit) = gate.child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(exit.code(), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        started.elapsed()
    );
    receiver
        .wait_for("flushed at shutdown", |s| s.kind == SpanKind::Server as i32)
        .await;
}
