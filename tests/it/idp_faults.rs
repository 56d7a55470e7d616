//! The identity provider misbehaving: garbage, oversized and stalled answers, key rotation with and
//! without overlap, floods of made-up key ids. The gate keeps its last good keys, bounds every wait by
//! the fetch timeout, never hammers the IdP, and says in its log when a refresh failed.
//!
//! The IdP behaving like real ones do (changing a key's `alg`, answering only after the gate
//! started, sending `Cache-Control: no-store`, rotating right after a scheduled refresh) is in
//! `real_idps`, against a bare JWKS endpoint whose answers the test sets.

mod real_idps;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

/// JWKS_FETCH_TIMEOUT in these tests.
const FETCH_TIMEOUT: Duration = Duration::from_secs(1);
/// The generous bound on any wait the fetch timeout governs (timeout + queueing + a loaded machine).
const WAIT_BOUND: Duration = Duration::from_millis(3500);

impl Stack {
    /// A token naming a `kid` the IdP never published (its signature is never even checked).
    fn unknown_kid_token(&self, kid: &str) -> String {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}).to_string();
        let payload = claims(&self.idp.issuer, &self.gate.resource()).to_string();
        use base64::Engine;
        let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(payload.as_bytes()),
            b64(&[7u8; 256])
        )
    }

    /// POSTs with `token`; returns the status and how long the gate took.
    async fn timed(&self, token: &str) -> (u16, Duration) {
        let started = Instant::now();
        let a = post(
            &self.gate.resource(),
            &[("authorization", &bearer(token))],
            "",
        )
        .await;
        (a.status, started.elapsed())
    }

    /// Waits until the IdP has seen at least one more JWKS request than `since`.
    async fn wait_for_fetch_after(&self, since: usize) {
        for _ in 0..500 {
            if self.idp.jwks_fetches() > since {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the gate never refetched the JWKS");
    }
}

#[tokio::test]
async fn idp_garbage_huge_and_stalled_answers_keep_the_last_good_keys_and_bound_every_wait() {
    let s = stack(&[
        ("JWKS_REFRESH_INTERVAL", "300ms"),
        ("JWKS_MIN_REFRESH_INTERVAL", "100ms"),
        ("JWKS_FETCH_TIMEOUT", "1s"),
    ])
    .await;
    let valid = s.token_from(&s.key);
    let ten_mb_json = format!(
        r#"{{"keys":[{}]}}"#,
        vec![s.key.jwk().to_string(); 30_000].join(",")
    );
    assert!(ten_mb_json.len() > 8 << 20);
    let faults: Vec<(&str, JwksBehaviour)> = vec![
        ("HTTP 500", JwksBehaviour::Fail),
        ("an HTML login page", JwksBehaviour::Garbage("<html>login</html>".into())),
        ("10 MB of garbage", JwksBehaviour::Garbage("\u{1}{[".repeat((10 << 20) / 3))),
        ("10 MB of valid-looking JWKS", JwksBehaviour::Garbage(ten_mb_json)),
        ("truncated JSON", JwksBehaviour::Garbage(r#"{"keys":[{"kty":"RSA""#.into())),
        ("JSON null", JwksBehaviour::Garbage("null".into())),
        ("no keys", JwksBehaviour::Garbage(r#"{"keys":[]}"#.into())),
        (
            "only a symmetric key",
            JwksBehaviour::Garbage(r#"{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]}"#.into()),
        ),
        (
            "a key that is not on its curve",
            JwksBehaviour::Garbage(
                r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#.into(),
            ),
        ),
        ("a connection that never answers", JwksBehaviour::Stall),
        ("a body that never ends", JwksBehaviour::StallBody),
    ];
    for (fault, behaviour) in faults {
        s.idp.set(behaviour);
        // At least one refresh has now run into the fault.
        s.wait_for_fetch_after(s.idp.jwks_fetches()).await;
        let (status, took) = s.timed(&valid).await;
        assert_eq!(status, 200, "{fault}: the last good key still verifies");
        assert!(took < WAIT_BOUND, "{fault}: a known key waited {took:?}");
        // An unknown kid makes the request ask for fresh keys: it waits at most the fetch timeout.
        let (status, took) = s.timed(&s.unknown_kid_token("rotated-away")).await;
        assert_eq!(status, 401, "{fault}");
        assert!(took < WAIT_BOUND, "{fault}: an unknown kid waited {took:?}");
        assert_eq!(
            get(&s.gate.url("/readyz"), &[]).await.status,
            200,
            "{fault}"
        );
    }
    // The IdP recovers with a new key: it is picked up without a restart.
    let next = TestKey::rsa("k2", 2048);
    s.idp.serve_keys(&[&s.key, &next]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.timed(&s.token_from(&next)).await.0, 200);
    assert_eq!(s.upstream.count(), 1 + 11);
}

#[tokio::test]
async fn an_idp_stalled_from_the_start_gives_503_within_the_fetch_timeout_to_every_request() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Stall).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &upstream, &[("JWKS_FETCH_TIMEOUT", "1s")]).await;
    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    let url = gate.resource();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (url, token) = (url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let a = post(&url, &[("authorization", &bearer(&token))], "").await;
            (
                a.status,
                a.header("retry-after").map(str::to_string),
                started.elapsed(),
            )
        }));
    }
    for t in tasks {
        let (status, retry_after, took) = t.await.unwrap();
        assert_eq!(status, 503);
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert!(
            took < WAIT_BOUND,
            "a request waited {took:?} on a stalled IdP"
        );
    }
    assert!(started.elapsed() < WAIT_BOUND * 2);
    assert_eq!(get(&gate.url("/readyz"), &[]).await.status, 503);
    assert_eq!(upstream.count(), 0);
    // The IdP comes back: the gate recovers without a restart.
    idp.serve_keys(&[&key]);
    let mut status = 0;
    for _ in 0..100 {
        status = post(&url, &[("authorization", &bearer(&token))], "")
            .await
            .status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
    assert!(FETCH_TIMEOUT < WAIT_BOUND);
}

#[tokio::test]
async fn rotation_with_overlap_accepts_both_keys_then_drops_the_retired_one() {
    let s = stack(&[
        ("JWKS_REFRESH_INTERVAL", "1s"),
        ("JWKS_MIN_REFRESH_INTERVAL", "500ms"),
    ])
    .await;
    let old = s.token_from(&s.key);
    assert_eq!(s.timed(&old).await.0, 200);
    // The IdP publishes the next key ahead of using it.
    let next = TestKey::rsa("k2", 2048);
    s.idp.serve_keys(&[&s.key, &next]);
    s.wait_for_fetch_after(s.idp.jwks_fetches()).await;
    let new = s.token_from(&next);
    assert_eq!(s.timed(&new).await.0, 200, "the new key is accepted");
    assert_eq!(
        s.timed(&old).await.0,
        200,
        "the old key still is, during the overlap"
    );
    // The old key is retired: once the gate has refreshed, its tokens are refused, even a token the
    // gate accepted (and remembered) before.
    s.idp.serve_keys(&[&next]);
    let fetches = s.idp.jwks_fetches();
    s.wait_for_fetch_after(fetches).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.timed(&old).await.0, 401, "the retired key is refused");
    assert_eq!(s.timed(&new).await.0, 200);
    assert_eq!(s.upstream.count(), 4);
}

#[tokio::test]
async fn abrupt_rotation_is_picked_up_by_one_shared_fetch_and_the_old_key_stops_at_once() {
    let s = stack(&[("JWKS_MIN_REFRESH_INTERVAL", "500ms")]).await;
    let old = s.token_from(&s.key);
    assert_eq!(s.timed(&old).await.0, 200);
    let next = TestKey::rsa("k2", 2048);
    s.idp.serve_keys(&[&next]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = s.idp.jwks_fetches();
    // Fifty clients arrive with the new key at once: one fetch serves them all.
    let new = s.token_from(&next);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (url, token) = (s.gate.resource(), new.clone());
        tasks.push(tokio::spawn(async move {
            post(&url, &[("authorization", &bearer(&token))], "")
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(s.idp.jwks_fetches() - before, 1, "single-flight refresh");
    assert_eq!(
        s.timed(&old).await.0,
        401,
        "the removed key is refused right away"
    );
    assert_eq!(s.upstream.count(), 51);
}

#[tokio::test]
async fn ten_thousand_unknown_kids_in_ten_seconds_cause_at_most_one_fetch_per_min_refresh_interval()
{
    const MIN_INTERVAL: Duration = Duration::from_secs(2);
    const WORKERS: usize = 50;
    const PER_WORKER: usize = 200;
    const SPAN: Duration = Duration::from_secs(10);
    let s = stack(&[("JWKS_MIN_REFRESH_INTERVAL", "2s")]).await;
    // Past the first interval, so the flood may trigger a fetch right away (the worst case).
    tokio::time::sleep(MIN_INTERVAL).await;
    let tokens: Vec<String> = (0..WORKERS * PER_WORKER)
        .map(|_| s.unknown_kid_token(&format!("kid-{:016x}", rand::random::<u64>())))
        .collect();
    let tokens = Arc::new(tokens);
    let refused = Arc::new(AtomicUsize::new(0));
    let before = s.idp.jwks_fetches();
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (tokens, refused, url) = (tokens.clone(), refused.clone(), s.gate.resource());
        workers.push(tokio::spawn(async move {
            // One client per worker: its connection is kept alive across the worker's requests.
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            let mut tick = tokio::time::interval(SPAN / PER_WORKER as u32);
            for i in 0..PER_WORKER {
                tick.tick().await;
                let request = http::Request::post(&url)
                    .header("authorization", bearer(&tokens[w * PER_WORKER + i]))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let response = client.request(request).await.unwrap();
                let status = response.status();
                let _ = response.into_body().collect().await;
                if status == 401 {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Meanwhile a client with a valid token keeps being served without waiting on the flood.
    let valid = s.token_from(&s.key);
    let mut slowest = Duration::ZERO;
    while !workers.iter().all(|w| w.is_finished()) {
        let (status, took) = s.timed(&valid).await;
        assert_eq!(status, 200);
        slowest = slowest.max(took);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let fetches = s.idp.jwks_fetches() - before;
    assert_eq!(refused.load(Ordering::Relaxed), WORKERS * PER_WORKER);
    let allowed = elapsed.as_secs_f64() / MIN_INTERVAL.as_secs_f64();
    let allowed = allowed.ceil() as usize + 1;
    assert!(
        fetches <= allowed,
        "{fetches} JWKS fetches for {} unknown kids in {elapsed:?} (at most {allowed})",
        WORKERS * PER_WORKER
    );
    assert!(slowest < WAIT_BOUND, "a valid token waited {slowest:?}");
}

/// Kills the child process on drop, so a failing assertion does not leave a gate running.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_logs_failed_refreshes_as_warnings() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_mcp-gate"))
            .env_clear()
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("UPSTREAM_URL", upstream.url())
            .env("RESOURCE_URI", &resource)
            .env("AUTHORIZATION_SERVER", &idp.issuer)
            .env("JWKS_REFRESH_INTERVAL", "300ms")
            .env("JWKS_MIN_REFRESH_INTERVAL", "100ms")
            .env("JWKS_FETCH_TIMEOUT", "1s")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rx = stdout_lines(&mut child.0);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready_on(port).await;

    idp.set(JwksBehaviour::Fail);
    // An unknown kid asks for a refresh on the request path too.
    let header = r#"{"alg":"RS256","kid":"unknown"}"#;
    let unknown = key.sign(header, &claims(&idp.issuer, &resource).to_string());
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        post(
            &format!("{base}/mcp"),
            &[("authorization", &bearer(&unknown))],
            ""
        )
        .await
        .status,
        401
    );
    let mut scheduled = None;
    let mut on_demand = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (scheduled.is_none() || on_demand.is_none()) && Instant::now() < deadline {
        // Never block the test's runtime: the IdP answering the gate runs on it.
        let Ok(line) = rx.try_recv() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        {
            let v: serde_json::Value = match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(_) => continue,
            };
            let text = line.to_string();
            if text.contains("JWKS refresh failed; keeping the last good keys") {
                scheduled = Some(v);
            } else if text.contains("on-demand JWKS refresh failed") {
                on_demand = Some(v);
            }
        }
    }
    let scheduled = scheduled.expect("a warning for the failed scheduled refresh");
    let on_demand = on_demand.expect("a warning for the failed on-demand refresh");
    for v in [&scheduled, &on_demand] {
        let text = v.to_string();
        assert!(text.to_ascii_lowercase().contains("warn"), "{text}");
        assert!(text.contains("HTTP 500"), "the cause is named: {text}");
    }
    // The gate kept serving with the last good keys all along.
    let token = key.token(&claims(&idp.issuer, &resource));
    assert_eq!(
        post(
            &format!("{base}/mcp"),
            &[("authorization", &bearer(&token))],
            ""
        )
        .await
        .status,
        200
    );
}
