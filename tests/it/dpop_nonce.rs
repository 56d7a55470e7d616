//! DPoP server nonces (RFC 9449 §9, `DPOP_NONCE=true`): a proof without the gate's nonce, or with a
//! stale, forged or foreign one, gets 401 `use_dpop_nonce` and a fresh `DPoP-Nonce`; with it, the
//! request passes and the answer carries the next nonce. Nothing refused reaches the upstream.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcp_gate::auth::dpop_nonce::NonceKeys;
use serde_json::json;

use crate::dpop::{bound_token, challenges, post_dpop, Client, ALGS};
use crate::support::*;

const KEY: [u8; 32] = [7; 32];

fn key(bytes: [u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_proof_must_carry_a_fresh_nonce_of_the_gates_own_keys() {
    let s = stack(&[("DPOP_NONCE", "true"), ("DPOP_NONCE_KEYS", &key(KEY))]).await;
    let client = Client::new();
    let token = bound_token(&s, &client.jkt);
    let htu = s.gate.resource();
    let metadata = format!(
        "resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"",
        s.gate.addr
    );
    let use_nonce = format!(
        "DPoP algs=\"{ALGS}\", error=\"use_dpop_nonce\", error_description=\"Resend the DPoP proof with the nonce in DPoP-Nonce\", {metadata}"
    );

    // No nonce: told to use one, and given one.
    let a = post_dpop(&s, &token, &[&client.proof(&htu, &token)]).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        challenges(&a),
        [use_nonce.clone(), format!("Bearer {metadata}")]
    );
    assert_eq!(a.json()["error"], "use_dpop_nonce");
    let nonce = a.header("dpop-nonce").expect("a fresh nonce").to_string();

    // With it: through, and the answer carries the next one.
    let with = |n: &str| {
        let n = n.to_string();
        client.proof_with(&htu, &token, |_| {}, move |c| c["nonce"] = json!(n))
    };
    let a = post_dpop(&s, &token, &[&with(&nonce)]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(a.header("dpop-nonce").is_some_and(|n| n != nonce));
    assert_eq!(s.upstream.count(), 1);
    s.upstream.forget();

    let stale = NonceKeys::new(&[key(KEY)], 300).unwrap().issue(now() - 301);
    let foreign = NonceKeys::new(&[key([8; 32])], 300).unwrap().issue(now());
    let mut forged = nonce.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    for (case, n) in [
        ("stale nonce", stale),
        ("nonce from another key", foreign),
        ("forged nonce", forged),
        ("made-up nonce", "nonce-1".to_string()),
    ] {
        let a = post_dpop(&s, &token, &[&with(&n)]).await;
        assert_eq!(a.status, 401, "{case}");
        assert_eq!(challenges(&a)[0], use_nonce, "{case}");
        assert!(a.header("dpop-nonce").is_some(), "{case}");
        assert_eq!(s.upstream.count(), 0, "{case}");
    }
}

#[tokio::test]
async fn replicas_sharing_the_keys_accept_each_others_nonces_and_rotation_keeps_old_ones() {
    let old = key(KEY);
    let new = key([9; 32]);
    let a_gate = stack(&[("DPOP_NONCE", "true"), ("DPOP_NONCE_KEYS", &old)]).await;
    let rotated = format!("{new},{old}");
    let b_gate = stack(&[("DPOP_NONCE", "true"), ("DPOP_NONCE_KEYS", &rotated)]).await;
    let client = Client::new();
    let token_a = bound_token(&a_gate, &client.jkt);
    let first = post_dpop(
        &a_gate,
        &token_a,
        &[&client.proof(&a_gate.gate.resource(), &token_a)],
    )
    .await;
    let nonce_from_a = first.header("dpop-nonce").unwrap().to_string();

    // b opens a's nonce (old key still listed) for its own request.
    let token_b = bound_token(&b_gate, &client.jkt);
    let htu_b = b_gate.gate.resource();
    let n = nonce_from_a.clone();
    let proof = client.proof_with(&htu_b, &token_b, |_| {}, move |c| c["nonce"] = json!(n));
    let answer = post_dpop(&b_gate, &token_b, &[&proof]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    // a cannot open b's nonce: it is sealed with the new key.
    let nonce_from_b = answer.header("dpop-nonce").unwrap().to_string();
    let htu_a = a_gate.gate.resource();
    let proof = client.proof_with(
        &htu_a,
        &token_a,
        |_| {},
        move |c| c["nonce"] = json!(nonce_from_b),
    );
    assert_eq!(post_dpop(&a_gate, &token_a, &[&proof]).await.status, 401);
}
