//! Key rotation and identity provider faults: a rotated or replaced key is picked up and a removed
//! one refused without a restart, an unknown-`kid` flood shares one rate-limited fetch, an IdP down
//! at start gives 503 until it recovers, and an IdP failing later leaves the last good keys in use.

use std::time::{Duration, Instant};

use crate::support::*;

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
