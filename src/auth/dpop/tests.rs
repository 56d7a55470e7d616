//! Tests of [`super`]: the rules it implements, one table or case each.

use super::*;
use crate::test_support::TestKey;
use serde_json::json;
use std::sync::OnceLock;

const NOW: u64 = 1_800_000_000;
const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";
const HTU: &str = "https://mcp.example.com/mcp";

fn es256() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::ec("p", "ES256"))
}

fn policy() -> ProofPolicy {
    ProofPolicy {
        algorithms: vec![Alg::ES256, Alg::ES384, Alg::EdDSA, Alg::PS256, Alg::RS256],
        iat_window_secs: 300,
    }
}

fn header(key: &TestKey) -> Value {
    json!({"typ": "dpop+jwt", "alg": key.alg, "jwk": key.jwk()})
}

fn claims() -> Value {
    json!({"jti": "j-1", "htm": "POST", "htu": HTU, "iat": NOW, "ath": access_token_hash(TOKEN)})
}

/// A proof by `key` with header and claims edited by the closures.
fn proof(key: &TestKey, h: impl FnOnce(&mut Value), c: impl FnOnce(&mut Value)) -> String {
    let (mut header, mut claims) = (header(key), claims());
    h(&mut header);
    c(&mut claims);
    key.sign(&header.to_string(), &claims.to_string())
}

fn jkt(key: &TestKey) -> String {
    thumbprint(key.jwk().as_object().unwrap()).unwrap()
}

fn run_for(proof: &str, key_jkt: &str, method: &str) -> Result<AcceptedProof, Refusal> {
    let htu = normalize_htu(HTU).unwrap();
    let target = ProofTarget {
        method,
        htu: &htu,
        access_token: TOKEN,
        jkt: key_jkt,
    };
    check(proof, &target, &policy(), NOW)
}

fn run(proof: &str) -> Result<AcceptedProof, Refusal> {
    run_for(proof, &jkt(es256()), "POST")
}

#[test]
fn a_proof_from_the_bound_key_for_this_request_is_accepted_with_every_default_algorithm() {
    for key in [
        TestKey::ec("a", "ES256"),
        TestKey::ec("b", "ES384"),
        TestKey::ed25519("c"),
        TestKey::rsa_alg("d", 2048, "PS256"),
        TestKey::rsa_alg("e", 2048, "RS256"),
    ] {
        let p = proof(&key, |_| {}, |_| {});
        assert_eq!(
            run_for(&p, &jkt(&key), "POST"),
            Ok(AcceptedProof {
                jkt: jkt(&key),
                jti: "j-1".into(),
                nonce: None,
            }),
            "{}",
            key.alg
        );
    }
}

#[test]
fn header_rules_refuse_with_their_own_reason() {
    let k = es256();
    let cases: Vec<(&str, String, Refusal)> = vec![
        (
            "typ JWT",
            proof(k, |h| h["typ"] = json!("JWT"), |_| {}),
            Refusal::DpopBadType,
        ),
        (
            "no typ",
            proof(
                k,
                |h| {
                    h.as_object_mut().unwrap().remove("typ");
                },
                |_| {},
            ),
            Refusal::DpopBadType,
        ),
        (
            "alg none",
            proof(k, |h| h["alg"] = json!("none"), |_| {}),
            Refusal::DpopUnsupportedAlgorithm,
        ),
        (
            "alg HS256",
            proof(k, |h| h["alg"] = json!("HS256"), |_| {}),
            Refusal::DpopUnsupportedAlgorithm,
        ),
        (
            "alg not allowed",
            proof(k, |h| h["alg"] = json!("RS512"), |_| {}),
            Refusal::DpopUnsupportedAlgorithm,
        ),
        (
            "no jwk",
            proof(
                k,
                |h| {
                    h.as_object_mut().unwrap().remove("jwk");
                },
                |_| {},
            ),
            Refusal::DpopBadKey,
        ),
        (
            "private jwk",
            proof(k, |h| h["jwk"]["d"] = json!("AAAA"), |_| {}),
            Refusal::DpopBadKey,
        ),
        (
            "symmetric jwk",
            proof(
                k,
                |h| h["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"}),
                |_| {},
            ),
            Refusal::DpopBadKey,
        ),
        (
            "jwk of another family",
            proof(k, |h| h["jwk"] = TestKey::ed25519("x").jwk(), |_| {}),
            Refusal::DpopBadKey,
        ),
        (
            "jwk of another key",
            proof(k, |h| h["jwk"] = TestKey::ec("o", "ES256").jwk(), |_| {}),
            Refusal::DpopBadSignature,
        ),
        (
            "crit",
            proof(k, |h| h["crit"] = json!(["exp"]), |_| {}),
            Refusal::DpopMalformedProof,
        ),
    ];
    for (case, p, want) in cases {
        assert_eq!(run(&p), Err(want), "{case}");
    }
    assert!(run(&proof(k, |h| h["typ"] = json!("DPoP+JWT"), |_| {})).is_ok());
}

#[test]
fn claim_rules_refuse_with_their_own_reason() {
    let k = es256();
    let cases: Vec<(&str, String, Refusal)> = vec![
        (
            "htm",
            proof(k, |_| {}, |c| c["htm"] = json!("GET")),
            Refusal::DpopWrongMethod,
        ),
        (
            "htm case",
            proof(k, |_| {}, |c| c["htm"] = json!("post")),
            Refusal::DpopWrongMethod,
        ),
        (
            "htu path",
            proof(
                k,
                |_| {},
                |c| c["htu"] = json!("https://mcp.example.com/other"),
            ),
            Refusal::DpopWrongUri,
        ),
        (
            "htu host",
            proof(
                k,
                |_| {},
                |c| c["htu"] = json!("https://evil.example.com/mcp"),
            ),
            Refusal::DpopWrongUri,
        ),
        (
            "htu scheme",
            proof(
                k,
                |_| {},
                |c| c["htu"] = json!("http://mcp.example.com/mcp"),
            ),
            Refusal::DpopWrongUri,
        ),
        (
            "htu relative",
            proof(k, |_| {}, |c| c["htu"] = json!("/mcp")),
            Refusal::DpopWrongUri,
        ),
        (
            "stale iat",
            proof(k, |_| {}, |c| c["iat"] = json!(NOW - 301)),
            Refusal::DpopStale,
        ),
        (
            "future iat",
            proof(k, |_| {}, |c| c["iat"] = json!(NOW + 301)),
            Refusal::DpopStale,
        ),
        (
            "iat string",
            proof(k, |_| {}, |c| c["iat"] = json!("1800000000")),
            Refusal::DpopMalformedProof,
        ),
        (
            "ath other token",
            proof(k, |_| {}, |c| c["ath"] = json!(access_token_hash("other"))),
            Refusal::DpopWrongAth,
        ),
        (
            "no ath",
            proof(
                k,
                |_| {},
                |c| {
                    c.as_object_mut().unwrap().remove("ath");
                },
            ),
            Refusal::DpopWrongAth,
        ),
        (
            "no jti",
            proof(
                k,
                |_| {},
                |c| {
                    c.as_object_mut().unwrap().remove("jti");
                },
            ),
            Refusal::DpopMalformedProof,
        ),
        (
            "long jti",
            proof(k, |_| {}, |c| c["jti"] = json!("j".repeat(MAX_JTI_LEN + 1))),
            Refusal::DpopMalformedProof,
        ),
        (
            "no htm",
            proof(
                k,
                |_| {},
                |c| {
                    c.as_object_mut().unwrap().remove("htm");
                },
            ),
            Refusal::DpopMalformedProof,
        ),
    ];
    for (case, p, want) in cases {
        assert_eq!(run(&p), Err(want), "{case}");
    }
    for (case, edit) in [
        ("iat 299 s old", json!(NOW - 299)),
        ("iat 299 s ahead", json!(NOW + 299)),
    ] {
        assert!(
            run(&proof(k, |_| {}, |c| c["iat"] = edit)).is_ok(),
            "{case}"
        );
    }
}

#[test]
fn htu_compares_after_rfc_3986_normalisation_without_query_or_fragment() {
    for htu in [
        "https://mcp.example.com/mcp?x=1",
        "https://mcp.example.com/mcp#f",
        "HTTPS://MCP.Example.COM:443/mcp",
        "https://mcp.example.com/%6Dcp",
        "https://mcp.example.com/a/../mcp",
    ] {
        let p = proof(es256(), |_| {}, |c| c["htu"] = json!(htu));
        assert!(run(&p).is_ok(), "{htu}");
    }
}

#[test]
fn the_proof_key_must_be_the_one_the_token_is_bound_to() {
    let p = proof(es256(), |_| {}, |_| {});
    let other = jkt(&TestKey::ec("o", "ES256"));
    assert_eq!(run_for(&p, &other, "POST"), Err(Refusal::DpopKeyMismatch));
}

#[test]
fn malformed_or_oversized_proofs_are_refused_unread() {
    for bad in ["", "a.b", "a.b.c.d", "..", "e30.e30.", "!!.e30.c2ln"] {
        assert_eq!(run(bad), Err(Refusal::DpopMalformedProof), "{bad:?}");
    }
    let big = format!("{}.e30.c2ln", "A".repeat(MAX_PROOF_SIZE));
    assert_eq!(run(&big), Err(Refusal::DpopProofTooLarge));
}

#[test]
fn changing_any_character_of_a_valid_proof_is_refused() {
    let p = proof(es256(), |_| {}, |_| {});
    assert!(run(&p).is_ok());
    for i in 0..p.len() {
        let mut bytes = p.clone().into_bytes();
        bytes[i] = match bytes[i] {
            b'A' => b'B',
            b'.' => b'A',
            _ => b'A',
        };
        let mutated = String::from_utf8(bytes).unwrap();
        assert!(run(&mutated).is_err(), "position {i}");
    }
}

#[test]
fn thumbprints_follow_rfc_7638() {
    // RFC 7638 §3.1's example key and thumbprint.
    let rfc = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
    assert_eq!(
        thumbprint(rfc.as_object().unwrap()).as_deref(),
        Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
    );
    let jwk = es256().jwk();
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    assert_eq!(
        jkt(es256()),
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    );
    assert_eq!(
        thumbprint(json!({"kty": "oct", "k": "x"}).as_object().unwrap()),
        None
    );
    assert_eq!(
        thumbprint(
            json!({"kty": "EC", "crv": "P-256", "x": "a"})
                .as_object()
                .unwrap()
        ),
        None
    );
}
