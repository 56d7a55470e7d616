//! Rate limits over real sockets: per client address before the token, per subject after it, the
//! 429's exact fields, and two gates sharing one budget through a real `redis-server` — which, when
//! killed, leaves each gate on its own local limits until it is back.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::support::*;

/// Sends `n` POSTs at once to `url`, each with `headers(i)`, and returns their statuses in order.
async fn burst(
    n: usize,
    url: impl Fn(usize) -> String,
    headers: impl Fn(usize) -> Vec<(String, String)>,
) -> Vec<u16> {
    let mut set = JoinSet::new();
    for i in 0..n {
        let (url, headers) = (url(i), headers(i));
        set.spawn(async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            (i, post(&url, &h, "{}").await.status)
        });
    }
    let mut statuses = vec![0; n];
    while let Some(done) = set.join_next().await {
        let (i, status) = done.unwrap();
        statuses[i] = status;
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

fn auth(token: &str) -> Vec<(String, String)> {
    vec![("authorization".into(), bearer(token))]
}

#[tokio::test]
async fn the_address_limit_refuses_garbage_tokens_past_the_burst_before_the_token_check() {
    let s = stack(&[("RATE_LIMIT_IP", "10/1h")]).await;
    let statuses = burst(30, |_| s.gate.resource(), |_| auth("garbage")).await;
    // Ten reached the token check (and were refused there); the other twenty never did.
    assert_eq!(count(&statuses, 401), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 20, "{statuses:?}");
    // A good token from the same address is limited too: the address has spent its budget.
    let answer = s.post_bearer(&s.token()).await;
    assert_eq!(answer.status, 429);
    assert_eq!(s.upstream.count(), 0, "nothing reaches the upstream");
}

#[tokio::test]
async fn a_429_carries_retry_after_the_ratelimit_fields_and_a_json_body() {
    let s = stack(&[
        ("RATE_LIMIT_IP", "2/1h"),
        ("CORS_ALLOWED_ORIGINS", "http://app.example"),
    ])
    .await;
    for _ in 0..2 {
        assert_eq!(s.post_bearer(&s.token()).await.status, 200);
    }
    let token = bearer(&s.token());
    let headers = [
        ("authorization", token.as_str()),
        ("origin", "http://app.example"),
    ];
    let answer = post(&s.gate.resource(), &headers, "").await;
    assert_eq!(answer.status, 429);
    // A browser client may read when to retry.
    let exposed = answer.header("access-control-expose-headers").unwrap();
    for name in ["Retry-After", "RateLimit", "RateLimit-Policy"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    // One request costs 1800 s; both were spent a moment ago.
    assert_eq!(answer.header("retry-after"), Some("1800"));
    assert_eq!(answer.header("ratelimit-policy"), Some("\"ip\";q=2;w=3600"));
    assert_eq!(answer.header("ratelimit"), Some("\"ip\";r=0;t=3600"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    let body: Value = answer.json();
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(
        s.upstream.count(),
        2,
        "the refused request was not forwarded"
    );
}

#[tokio::test]
async fn the_subject_limit_counts_each_subject_on_its_own_under_concurrent_load() {
    let s = stack(&[("RATE_LIMIT_SUBJECT", "5/1h")]).await;
    let alice = s.token();
    let statuses = burst(20, |_| s.gate.resource(), |_| auth(&alice)).await;
    assert_eq!(count(&statuses, 200), 5, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 15, "{statuses:?}");
    let answer = s.post_bearer(&alice).await;
    assert_eq!(
        answer.header("ratelimit-policy"),
        Some("\"subject\";q=5;w=3600")
    );
    // Another user, and a client-credentials token named only by its client_id, have their own.
    let bob = s.token_with(|c| c["sub"] = "bob".into());
    assert_eq!(s.post_bearer(&bob).await.status, 200);
    let service = s.token_with(|c| {
        c.as_object_mut().unwrap().remove("sub");
    });
    assert_eq!(s.post_bearer(&service).await.status, 200);
    assert_eq!(s.upstream.count(), 7);
}

#[tokio::test]
async fn a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let s = stack(&[("RATE_LIMIT_IP", "3/1h")]).await;
    let statuses = burst(
        9,
        |_| s.gate.resource(),
        |i| {
            let mut h = auth("garbage");
            h.push(("x-forwarded-for".into(), format!("198.51.100.{i}")));
            h
        },
    )
    .await;
    assert_eq!(
        count(&statuses, 429),
        6,
        "one budget for the peer: {statuses:?}"
    );

    // The same headers from a trusted proxy name nine clients with a budget each.
    let s = stack(&[("RATE_LIMIT_IP", "3/1h"), ("TRUSTED_PROXIES", "127.0.0.1")]).await;
    let statuses = burst(
        9,
        |_| s.gate.resource(),
        |i| {
            let mut h = auth("garbage");
            h.push(("x-forwarded-for".into(), format!("198.51.100.{i}")));
            h
        },
    )
    .await;
    assert_eq!(count(&statuses, 429), 0, "{statuses:?}");
}

/// Two gates in front of one upstream, one resource URI (so one token is good at both), one Redis.
struct Replicas {
    idp: TestIdp,
    upstream: TestUpstream,
    gates: [TestGate; 2],
    key: TestKey,
}

const SHARED_RESOURCE: &str = "http://127.0.0.1:9/mcp";

async fn replicas(redis: &RedisServer, subject_limit: &str) -> Replicas {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let url = redis.url();
    let extra = [
        ("RESOURCE_URI", SHARED_RESOURCE),
        ("RATE_LIMIT_SUBJECT", subject_limit),
        ("RATE_LIMIT_REDIS_URL", url.as_str()),
        // Generous on a loaded two-core machine: a slow answer here would be a local decision,
        // and these tests count on Redis deciding while it is up.
        ("RATE_LIMIT_REDIS_TIMEOUT", "2s"),
    ];
    let gates = [
        TestGate::start(&idp, &upstream, &extra).await,
        TestGate::start(&idp, &upstream, &extra).await,
    ];
    for gate in &gates {
        gate.wait_ready().await;
    }
    Replicas {
        idp,
        upstream,
        gates,
        key,
    }
}

impl Replicas {
    fn token(&self, sub: &str) -> String {
        let mut c = claims(&self.idp.issuer, SHARED_RESOURCE);
        c["sub"] = sub.into();
        self.key.token(&c)
    }

    /// `n` concurrent requests as `sub`, alternating between the two gates.
    async fn burst(&self, n: usize, sub: &str) -> Vec<u16> {
        let token = self.token(sub);
        burst(n, |i| self.gates[i % 2].resource(), |_| auth(&token)).await
    }
}

#[tokio::test]
async fn two_gates_sharing_redis_share_one_budget() {
    let redis = RedisServer::start().await;
    let r = replicas(&redis, "10/1h").await;
    let statuses = r.burst(30, "alice").await;
    assert_eq!(count(&statuses, 200), 10, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 20, "{statuses:?}");
    assert_eq!(r.upstream.count(), 10);
    assert_eq!(redis.keys().await, 1, "one key for alice, not per gate");
    // The verdict Redis's script recorded carries the same numbers as a local one.
    let token = bearer(&r.token("alice"));
    let answer = post(&r.gates[1].resource(), &[("authorization", &token)], "").await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.header("retry-after"), Some("360"));
    assert_eq!(answer.header("ratelimit"), Some("\"subject\";r=0;t=3600"));
}

#[tokio::test]
async fn killing_redis_falls_back_to_local_limits_and_a_restart_shares_again() {
    let mut redis = RedisServer::start().await;
    let r = replicas(&redis, "4/1h").await;
    let spent = r.burst(8, "alice").await;
    assert_eq!(count(&spent, 200), 4, "shared: {spent:?}");

    redis.kill();
    // Each gate now decides alone, from its own (fresh) local budget: four each.
    let local = r.burst(12, "alice").await;
    assert_eq!(count(&local, 200), 8, "per gate: {local:?}");
    assert_eq!(count(&local, 429), 4, "{local:?}");

    redis.restart().await;
    // Each gate reconnects on its own; a probe per gate, as a subject of its own, shows when.
    for (i, gate) in r.gates.iter().enumerate() {
        let mut reconnected = false;
        for attempt in 0..100 {
            let before = redis.keys().await;
            let probe = r.token(&format!("probe-{i}-{attempt}"));
            let answer = post(&gate.resource(), &[("authorization", &bearer(&probe))], "").await;
            assert_eq!(answer.status, 200);
            if redis.keys().await > before {
                reconnected = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(reconnected, "gate {i} never used the restarted Redis");
    }
    // Shared again: bob gets four in all, across both gates.
    let shared = r.burst(12, "bob").await;
    assert_eq!(count(&shared, 200), 4, "shared again: {shared:?}");
}

/// A "Redis" that completes the client's connection handshake (`+OK` to each command) and then
/// never answers a script: the slow-store case, past the connection set-up.
async fn silent_store() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/0", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]);
                    if text.contains("EVAL") {
                        continue;
                    }
                    // One `+OK` per command (each is a RESP array: a line starting with `*`).
                    let commands = text.split("\r\n").filter(|l| l.starts_with('*')).count();
                    if tcp.write_all(&b"+OK\r\n".repeat(commands)).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_redis_that_does_not_answer_in_time_leaves_the_decision_to_local_limits_within_the_bound()
{
    let (url, _store) = silent_store().await;
    let s = stack(&[
        ("RATE_LIMIT_SUBJECT", "2/1h"),
        ("RATE_LIMIT_REDIS_URL", &url),
        ("RATE_LIMIT_REDIS_TIMEOUT", "100ms"),
    ])
    .await;
    let token = s.token();
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(s.post_bearer(&token).await.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Three waits of 100 ms, with room for a loaded machine; an unbounded wait would hang here.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn with_redis_down_closed_refuses_with_503_and_open_lets_everything_through() {
    let url = format!("redis://{}/0", free_addr());
    let closed = stack(&[
        ("RATE_LIMIT_SUBJECT", "1/1h"),
        ("RATE_LIMIT_REDIS_URL", &url),
        ("RATE_LIMIT_REDIS_FAILURE", "closed"),
    ])
    .await;
    let answer = closed.post_bearer(&closed.token()).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.json()["error"], "temporarily_unavailable");
    assert_eq!(closed.upstream.count(), 0);

    let open = stack(&[
        ("RATE_LIMIT_SUBJECT", "1/1h"),
        ("RATE_LIMIT_REDIS_URL", &url),
        ("RATE_LIMIT_REDIS_FAILURE", "open"),
    ])
    .await;
    for _ in 0..3 {
        assert_eq!(open.post_bearer(&open.token()).await.status, 200);
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_mcp-gate");

#[tokio::test]
async fn a_limited_request_is_logged_as_rate_limited_with_its_limit_and_counted() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let metrics = free_addr();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", metrics.to_string())
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", format!("http://127.0.0.1:{port}/mcp"))
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .env("RATE_LIMIT_IP", "1/1h")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    wait_ready_on(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    assert_eq!(post(&url, &[], "").await.status, 401);
    assert_eq!(post(&url, &[], "").await.status, 429);

    let wanted = [
        "mcp_gate_rate_limit_decisions_total{level=\"ip\",decision=\"allowed\"} 1",
        "mcp_gate_rate_limit_decisions_total{level=\"ip\",decision=\"limited\"} 1",
        "mcp_gate_refusals_total{reason=\"rate_limited\"} 1",
    ];
    let mut scraped = String::new();
    for _ in 0..40 {
        scraped =
            String::from_utf8_lossy(&get(&format!("http://{metrics}/metrics"), &[]).await.body)
                .into_owned();
        if wanted.iter().all(|w| scraped.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut line = None;
    for _ in 0..40 {
        line = rx
            .try_iter()
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .find(|v| v["msg"] == "request" && v["status"] == 429);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    for w in wanted {
        assert!(scraped.contains(w), "{w} in\n{scraped}");
    }
    let line = line.expect("an access-log line for the 429");
    assert_eq!(line["reason"], "rate_limited", "{line}");
    assert_eq!(line["limit"], "ip", "{line}");
    assert_eq!(upstream.count(), 0);
}

#[test]
fn a_malformed_limit_stops_start_up_naming_the_variable() {
    let out = Command::new(BIN)
        .env_clear()
        .env("UPSTREAM_URL", "http://127.0.0.1:3000")
        .env("RESOURCE_URI", "https://mcp.example.com/mcp")
        .env("AUTHORIZATION_SERVER", "https://idp.example.com")
        .env("RATE_LIMIT_SUBJECT", "100 per minute")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RATE_LIMIT_SUBJECT="), "{stderr}");
}
