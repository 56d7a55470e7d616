//! Which key a token is checked with: only a published key, chosen by `kid` and `alg`, never one the
//! token points at (RFC 8725 §3.10: `jku`, `jwk`, `x5u`, `x5c`) and never another key's signature
//! under a known `kid`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_known_kid_with_another_keys_signature_is_refused() {
    let s = battery(&[]).await;
    let c = s.claims();
    let impostors = [
        TestKey::rsa("k1", 2048),
        TestKey::ec("e1", "ES256"),
        TestKey::ec("e2", "ES384"),
        TestKey::ed25519("d1"),
    ];
    for key in &impostors {
        s.token_refused(
            &format!("impostor {} {}", key.kid, key.alg),
            &key.token(&c),
            INVALID,
        )
        .await;
    }
    // A genuine signature transplanted onto other claims.
    let genuine = s.rsa.token(&c);
    let mut greedy = c.clone();
    greedy["scope"] = json!("mcp:tools admin");
    let transplanted = with_signature(&s.rsa.token(&greedy), &signature_of(&genuine));
    s.token_refused("transplanted signature", &transplanted, INVALID)
        .await;
    // A genuine ES256 signature presented under the RSA kid and the other way round.
    let es = s.ec.token(&c);
    let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#;
    let moved = forge(header, &c.to_string(), &signature_of(&es));
    s.token_refused("EC signature under the RSA kid", &moved, INVALID)
        .await;
}

#[tokio::test]
async fn hostile_kid_values_are_refused() {
    let s = battery(&[]).await;
    let payload = s.claims().to_string();
    let long = "k".repeat(10 * 1024);
    let kids = [
        json!("../../../../etc/passwd"),
        json!("..%2F..%2Fjwks"),
        json!("/dev/zero"),
        json!("k1' OR '1'='1"),
        json!("k1\"; DROP TABLE keys; --"),
        json!("k1\u{0}"),
        json!("k1 "),
        json!("K1"),
        json!("k1\n"),
        json!("кл1"),
        json!(long),
        json!(""),
    ];
    for kid in &kids {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}).to_string();
        let token = s.rsa.sign(&header, &payload);
        let shown: String = kid.to_string().chars().take(40).collect();
        s.token_refused(&format!("kid {shown}"), &token, INVALID)
            .await;
    }
    for kid in ["1", "true", "null", r#"["k1"]"#, r#"{"kid":"k1"}"#, "1e3"] {
        let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":{kid}}}"#);
        let token = s.rsa.sign(&header, &payload);
        s.token_refused(&format!("kid {kid}"), &token, INVALID)
            .await;
    }
}

#[tokio::test]
async fn duplicate_kids_in_the_jwks_admit_only_the_published_keys() {
    // Two different keys under one kid (an IdP mid-rotation that reused the id). Both are the IdP's
    // own keys, so tokens from either verify; a third key claiming the kid does not.
    let a = TestKey::rsa("dup", 2048);
    let b = TestKey::rsa("dup", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&a, &b]))).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &upstream, &[]).await;
    gate.wait_ready().await;
    let c = claims(&idp.issuer, &gate.resource());
    for (key, status) in [(&a, 200), (&b, 200), (&TestKey::rsa("dup", 2048), 401)] {
        let answer = post(
            &gate.resource(),
            &[("authorization", &bearer(&key.token(&c)))],
            "",
        )
        .await;
        assert_eq!(answer.status, status);
    }
    assert_eq!(
        upstream.count(),
        2,
        "only the two published keys got through"
    );
    // Without a kid, two fitting keys is ambiguous: refused rather than guessed.
    let no_kid = a.sign(r#"{"alg":"RS256","typ":"at+jwt"}"#, &c.to_string());
    let answer = post(&gate.resource(), &[("authorization", &bearer(&no_kid))], "").await;
    assert_eq!(answer.status, 401);
    assert_eq!(upstream.count(), 2);
}

#[tokio::test]
async fn key_pointing_headers_never_supply_the_key() {
    let s = battery(&[]).await;
    let attacker = TestKey::rsa("attacker", 2048);
    let attacker_ec = TestKey::ec("attacker-ec", "ES256");
    let payload = s.claims().to_string();
    let spki_like = STANDARD.encode(attacker.public_der());
    let pointers = [
        r#""jku":"https://attacker.example/jwks.json""#.to_string(),
        format!(r#""jku":"{}/jwks""#, s.idp.issuer),
        r#""x5u":"https://attacker.example/cert.pem""#.to_string(),
        format!(r#""x5c":["{spki_like}"]"#),
        format!(r#""jwk":{}"#, attacker.jwk()),
        format!(r#""jwk":{}"#, attacker_ec.jwk()),
    ];
    for pointer in &pointers {
        for (key, alg, kid) in [
            (&attacker, "RS256", Some("attacker")),
            (&attacker, "RS256", Some("k1")),
            (&attacker, "RS256", None),
            (&attacker_ec, "ES256", Some("attacker-ec")),
            (&attacker_ec, "ES256", Some("e1")),
        ] {
            let kid = kid.map(|k| format!(r#","kid":"{k}""#)).unwrap_or_default();
            let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt"{kid},{pointer}}}"#);
            let token = key.sign(&header, &payload);
            let shown: String = header.chars().take(120).collect();
            s.token_refused(&shown, &token, INVALID).await;
        }
    }
}
