//! Several authorization servers in `AUTHORIZATION_SERVER`: each is an issuer with its own keys.

use std::time::Duration;

use crate::support::*;
use serde_json::json;

/// Two IdPs, both signing with a key named `k1` (so only the token's `iss` can tell their keys
/// apart), and a gate that trusts both.
async fn two_issuers(
    b_initially: JwksBehaviour,
) -> (TestIdp, TestKey, TestIdp, TestKey, TestUpstream, TestGate) {
    let key_a = TestKey::rsa("k1", 2048);
    let key_b = TestKey::ec("k1", "ES256");
    let idp_a = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key_a]))).await;
    let idp_b = TestIdp::start(b_initially).await;
    let upstream = TestUpstream::start().await;
    let servers = format!("{},{}", idp_a.issuer, idp_b.issuer);
    let gate = TestGate::start(&idp_a, &upstream, &[("AUTHORIZATION_SERVER", &servers)]).await;
    (idp_a, key_a, idp_b, key_b, upstream, gate)
}

async fn post_token(gate: &TestGate, token: &str) -> Answer {
    post(&gate.resource(), &[("authorization", &bearer(token))], "").await
}

#[tokio::test]
async fn each_issuers_tokens_are_checked_with_that_issuers_keys() {
    let (idp_a, key_a, idp_b, key_b, upstream, gate) = two_issuers(JwksBehaviour::Fail).await;
    idp_b.serve_keys(&[&key_b]);
    gate.wait_ready().await;

    let metadata = get(&gate.url("/.well-known/oauth-protected-resource/mcp"), &[]).await;
    assert_eq!(
        metadata.json()["authorization_servers"],
        json!([idp_a.issuer, idp_b.issuer])
    );

    let from_a = key_a.token(&claims(&idp_a.issuer, &gate.resource()));
    let from_b = key_b.token(&claims(&idp_b.issuer, &gate.resource()));
    assert_eq!(post_token(&gate, &from_a).await.status, 200);
    assert_eq!(post_token(&gate, &from_b).await.status, 200);
    assert_eq!(upstream.count(), 2);
    let fetches = (idp_a.jwks_fetches(), idp_b.jwks_fetches());

    // A token claiming one issuer but signed with the other's key (same kid) is refused: the
    // claimed `iss` picks the keys, and the other server's key is not among them.
    let a_by_b = key_b.token(&claims(&idp_a.issuer, &gate.resource()));
    let b_by_a = key_a.token(&claims(&idp_b.issuer, &gate.resource()));
    for forged in [&a_by_b, &b_by_a] {
        let answer = post_token(&gate, forged).await;
        assert_eq!(answer.status, 401);
        assert!(answer
            .header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\""));
    }

    // An issuer nobody configured, or none at all: refused before any key is looked up, so
    // neither IdP is asked for keys however often it is tried.
    let mut no_iss = claims(&idp_a.issuer, &gate.resource());
    no_iss.as_object_mut().unwrap().remove("iss");
    let mut near_miss = claims(&idp_a.issuer, &gate.resource());
    near_miss["iss"] = json!(format!("{}/", idp_a.issuer));
    for claims in [
        claims("https://evil.example.com", &gate.resource()),
        no_iss,
        near_miss,
    ] {
        for _ in 0..3 {
            assert_eq!(post_token(&gate, &key_a.token(&claims)).await.status, 401);
        }
    }
    assert_eq!(upstream.count(), 2, "no refused token reached the upstream");
    // The forged pair may each trigger one rate-limited refresh (a bad signature can mean a key
    // rotation), the unknown issuers none.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        idp_a.jwks_fetches() <= fetches.0 + 1,
        "{} fetches at A",
        idp_a.jwks_fetches()
    );
    assert!(
        idp_b.jwks_fetches() <= fetches.1 + 1,
        "{} fetches at B",
        idp_b.jwks_fetches()
    );
}

#[tokio::test]
async fn one_issuer_down_does_not_stop_the_other() {
    let (idp_a, key_a, idp_b, key_b, upstream, gate) = two_issuers(JwksBehaviour::Fail).await;

    // A's keys load; B's cannot, so the gate is not ready (some valid tokens would get 503)...
    let from_a = key_a.token(&claims(&idp_a.issuer, &gate.resource()));
    let mut ok = false;
    for _ in 0..100 {
        if post_token(&gate, &from_a).await.status == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "A's token was never accepted while B was down");
    assert_eq!(get(&gate.url("/readyz"), &[]).await.status, 503);

    // ...and B's tokens get 503 with Retry-After, never a pass.
    let from_b = key_b.token(&claims(&idp_b.issuer, &gate.resource()));
    let answer = post_token(&gate, &from_b).await;
    assert_eq!(answer.status, 503);
    assert!(answer.header("retry-after").is_some());
    assert_eq!(upstream.count(), 1);

    // B comes up: its next token is served without a restart, and the gate becomes ready.
    idp_b.serve_keys(&[&key_b]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post_token(&gate, &from_b).await.status, 200);
    gate.wait_ready().await;
    assert_eq!(post_token(&gate, &from_a).await.status, 200);
    assert_eq!(upstream.count(), 3);
}
