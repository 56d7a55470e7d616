//! `RATE_LIMIT_TOOL` over real sockets: `tools/call` requests counted per subject and tool from the
//! JSON-RPC body (each call of a batch), the 429 as a JSON-RPC error with the request's id, limited
//! calls never forwarded, `Mcp-*` headers checked against the body before anything counts, and two
//! gates sharing one tool budget through a real `redis-server`.

use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::support::*;

fn tool_call(id: Value, tool: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
        .to_string()
}

/// `POST` of `body` to `url` with `token` and `extra` headers.
async fn call(url: &str, token: &str, extra: &[(&str, &str)], body: &str) -> Answer {
    let auth = bearer(token);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    post(url, &headers, body).await
}

/// `n` concurrent calls of `tool` as `token`, the i-th sent to `url(i)`; their statuses.
async fn burst(n: usize, url: impl Fn(usize) -> String, token: &str, tool: &str) -> Vec<u16> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let (url, token, body) = (url(i), token.to_string(), tool_call(json!(i), tool));
        set.spawn(async move { call(&url, &token, &[], &body).await.status });
    }
    let mut statuses = Vec::new();
    while let Some(done) = set.join_next().await {
        statuses.push(done.unwrap());
    }
    statuses.sort();
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn the_tool_limit_passes_exactly_its_burst_per_subject_and_tool_under_concurrent_load() {
    let s = stack(&[("RATE_LIMIT_TOOL", "5/1h")]).await;
    let alice = s.token();
    let statuses = burst(20, |_| s.gate.resource(), &alice, "search").await;
    assert_eq!(count(&statuses, 200), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 15, "{statuses:?}");
    assert_eq!(
        s.upstream.count(),
        5,
        "limited calls never reach the upstream"
    );

    let url = s.gate.resource();
    // Another tool of the same subject has its own budget…
    let other_tool = call(&url, &alice, &[], &tool_call(json!(1), "fetch")).await;
    assert_eq!(other_tool.status, 200);
    // …so has another subject for the same tool…
    let bob = s.token_with(|c| c["sub"] = "bob".into());
    let other_subject = call(&url, &bob, &[], &tool_call(json!(1), "search")).await;
    assert_eq!(other_subject.status, 200);
    // …and what is not a tools/call is not counted at this level.
    let list = r#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#;
    assert_eq!(call(&url, &alice, &[], list).await.status, 200);
    assert_eq!(s.upstream.count(), 8);
}

#[tokio::test]
async fn a_tool_429_is_a_jsonrpc_error_with_the_request_id_and_the_ratelimit_fields() {
    let s = stack(&[
        ("RATE_LIMIT_TOOL", "1/1h"),
        ("CORS_ALLOWED_ORIGINS", "http://app.example"),
    ])
    .await;
    let (url, token) = (s.gate.resource(), s.token());
    assert_eq!(
        call(&url, &token, &[], &tool_call(json!(1), "search"))
            .await
            .status,
        200
    );
    let origin = [("origin", "http://app.example")];
    let answer = call(&url, &token, &origin, &tool_call(json!("req-42"), "search")).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("retry-after"), Some("3600"));
    assert_eq!(
        answer.header("ratelimit-policy"),
        Some("\"tool\";q=1;w=3600")
    );
    assert_eq!(answer.header("ratelimit"), Some("\"tool\";r=0;t=3600"));
    let exposed = answer.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("Retry-After"), "{exposed}");
    let body = answer.json();
    assert_eq!(
        body,
        json!({
            "jsonrpc": "2.0",
            "id": "req-42",
            "error": {
                "code": -32029,
                "message": "rate limited",
                "data": {"limit": "tool", "tool": "search", "retry_after": 3600},
            },
        })
    );
    // A refused batch gets one error per request, each with its id.
    let batch = format!(
        "[{},{}]",
        tool_call(json!(7), "fetch"),
        tool_call(json!(8), "search")
    );
    let answer = call(&url, &token, &[], &batch).await;
    assert_eq!(answer.status, 429);
    let ids: Vec<Value> = answer
        .json()
        .as_array()
        .expect("an array for a batch")
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, [json!(7), json!(8)]);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn each_tools_call_of_a_batch_spends_one_unit() {
    let s = stack(&[("RATE_LIMIT_TOOL", "3/1h")]).await;
    let (url, token) = (s.gate.resource(), s.token());
    let two = format!(
        "[{},{}]",
        tool_call(json!(1), "search"),
        tool_call(json!(2), "search")
    );
    assert_eq!(call(&url, &token, &[], &two).await.status, 200);
    // One unit left: a batch of two does not fit, whatever its size as one request.
    assert_eq!(call(&url, &token, &[], &two).await.status, 429);
    // The refused batch spent the last unit before its second call was refused.
    let one = tool_call(json!(3), "search");
    assert_eq!(call(&url, &token, &[], &one).await.status, 429);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn an_mcp_name_header_that_disagrees_with_the_body_is_refused_before_anything_counts() {
    let s = stack(&[("RATE_LIMIT_TOOL", "1/1h")]).await;
    let (url, token) = (s.gate.resource(), s.token());
    let body = tool_call(json!(1), "search");
    // The header names a tool with budget left; the body calls another.
    let lying = [("mcp-method", "tools/call"), ("mcp-name", "fetch")];
    for _ in 0..3 {
        let answer = call(&url, &token, &lying, &body).await;
        assert_eq!(answer.status, 400);
        assert_eq!(answer.json()["error"]["code"], -32020);
    }
    // The refusals spent nothing: search's one unit is still there, and then gone.
    let honest = [("mcp-method", "tools/call"), ("mcp-name", "search")];
    assert_eq!(call(&url, &token, &honest, &body).await.status, 200);
    assert_eq!(call(&url, &token, &honest, &body).await.status, 429);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn without_a_policy_the_tool_limit_reads_bodies_forwards_them_intact_and_refuses_unparsable_ones(
) {
    let s = stack(&[("RATE_LIMIT_TOOL", "10/1h")]).await;
    let (url, token) = (s.gate.resource(), s.token());
    let body = "{ \"params\":{\"name\":\"search\"}, \"method\":\"tools/call\",\"id\":1,\"jsonrpc\":\"2.0\" }";
    assert_eq!(call(&url, &token, &[], body).await.status, 200);
    assert_eq!(s.upstream.seen()[0].body, body.as_bytes());
    // A repeated member: an upstream that keeps the last `method` would run a tools/call the gate
    // never counted, so the gate refuses the body instead of forwarding it.
    let twice = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"name":"search"},"method":"tools/call"}"#;
    let answer = call(&url, &token, &[], twice).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["code"], -32700);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn a_call_the_policy_refuses_spends_nothing_of_the_tool_budget() {
    let s = stack(&[
        ("TOOL_SCOPES", "delete_*=mcp:admin"),
        ("RATE_LIMIT_TOOL", "1/1h"),
    ])
    .await;
    let url = s.gate.resource();
    let body = tool_call(json!(1), "delete_note");
    let plain = s.token();
    for _ in 0..3 {
        assert_eq!(call(&url, &plain, &[], &body).await.status, 403);
    }
    // The same subject with the scope: its one unit is still there.
    let admin = s.token_with(|c| c["scope"] = json!("mcp:admin"));
    assert_eq!(call(&url, &admin, &[], &body).await.status, 200);
    assert_eq!(call(&url, &admin, &[], &body).await.status, 429);
    assert_eq!(s.upstream.count(), 1);
}

const SHARED_RESOURCE: &str = "http://127.0.0.1:9/mcp";

#[tokio::test]
async fn two_gates_sharing_redis_share_the_tool_budget() {
    let redis = RedisServer::start().await;
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let url = redis.url();
    let extra = [
        ("RESOURCE_URI", SHARED_RESOURCE),
        ("RATE_LIMIT_TOOL", "6/1h"),
        ("RATE_LIMIT_REDIS_URL", url.as_str()),
        // Generous on a loaded machine: these tests count on Redis deciding while it is up.
        ("RATE_LIMIT_REDIS_TIMEOUT", "2s"),
    ];
    let gates = [
        TestGate::start(&idp, &upstream, &extra).await,
        TestGate::start(&idp, &upstream, &extra).await,
    ];
    for gate in &gates {
        gate.wait_ready().await;
    }
    let token = key.token(&claims(&idp.issuer, SHARED_RESOURCE));
    let statuses = burst(20, |i| gates[i % 2].resource(), &token, "search").await;
    assert_eq!(
        count(&statuses, 200),
        6,
        "one budget for both: {statuses:?}"
    );
    assert_eq!(count(&statuses, 429), 14, "{statuses:?}");
    assert_eq!(upstream.count(), 6);
    assert_eq!(redis.keys().await, 1, "one key for (alice, search)");
    let other = call(
        &gates[1].resource(),
        &token,
        &[],
        &tool_call(json!(1), "fetch"),
    )
    .await;
    assert_eq!(other.status, 200);
    assert_eq!(redis.keys().await, 2);
}

const BIN: &str = env!("CARGO_BIN_EXE_mcp-gate");

#[tokio::test]
async fn a_tool_limited_call_is_logged_audited_and_counted_with_the_tool_level() {
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let (port, metrics) = (free_addr().port(), free_addr());
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", metrics.to_string())
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", &resource)
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .env("RATE_LIMIT_TOOL", "1/1h")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    wait_ready_on(port).await;
    let token = key.token(&claims(&idp.issuer, &resource));
    let body = tool_call(json!(5), "search");
    assert_eq!(call(&resource, &token, &[], &body).await.status, 200);
    assert_eq!(call(&resource, &token, &[], &body).await.status, 429);

    let wanted = [
        "mcp_gate_rate_limit_decisions_total{level=\"tool\",decision=\"allowed\"} 1",
        "mcp_gate_rate_limit_decisions_total{level=\"tool\",decision=\"limited\"} 1",
        "mcp_gate_refusals_total{reason=\"rate_limited\"} 1",
    ];
    let mut scraped = String::new();
    let (mut access, mut audit) = (None, None);
    let mut lines = Vec::new();
    for _ in 0..40 {
        scraped =
            String::from_utf8_lossy(&get(&format!("http://{metrics}/metrics"), &[]).await.body)
                .into_owned();
        lines.extend(
            rx.try_iter()
                .filter_map(|l| serde_json::from_str::<Value>(&l).ok()),
        );
        access = lines
            .iter()
            .find(|v| v["msg"] == "request" && v["status"] == 429)
            .cloned();
        audit = lines
            .iter()
            .find(|v| v["msg"] == "mcp" && v["status"] == 429)
            .cloned();
        if wanted.iter().all(|w| scraped.contains(w)) && access.is_some() && audit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    for w in wanted {
        assert!(scraped.contains(w), "{w} in\n{scraped}");
    }
    let access = access.expect("an access-log line for the 429");
    assert_eq!(access["reason"], "rate_limited", "{access}");
    assert_eq!(access["limit"], "tool", "{access}");
    let audit = audit.expect("an audit line for the 429");
    assert_eq!(audit["decision"], "rate_limited", "{audit}");
    assert_eq!(audit["name"], "search", "{audit}");
    assert_eq!(upstream.count(), 1);
}
