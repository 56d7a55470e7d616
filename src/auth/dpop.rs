//! DPoP proofs (RFC 9449): checking the proof JWT a client sends in the `DPoP` header beside a
//! DPoP-bound access token. Pure: proof, request facts, policy and `now` in; the proof's key
//! thumbprint and `jti` (for the replay cache) or a [`Refusal`] out.
//!
//! Implements the checks of RFC 9449 §4.3 in order: one well-formed compact JWS (the header count is
//! the extractor's, [`super::bearer`]); `typ` `dpop+jwt`; an asymmetric `alg` from the allow-list;
//! a public `jwk` (any private member is a refusal) that verifies the signature; `htm`, `htu` (RFC
//! 3986 normalised, without query and fragment), `iat` within the window, `ath` (§4.2), and a
//! `jti`. The key binding (the token's `cnf.jkt` equals the RFC 7638 thumbprint of `jwk`, §6.1) is
//! checked by [`check`] too, so a proof can never be accepted apart from its token.

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

pub use super::dpop_htu::{expected_htu, normalize_htu};
use super::keys::{parse_one_jwk, Alg};
use super::refusal::Refusal;
use super::strict_json;

/// The algorithms accepted in proofs unless `DPOP_ALGORITHMS` says otherwise: what the DPoP clients
/// in the field sign with (RFC 9449 leaves the choice to the server, §7.1 `algs`).
pub const DEFAULT_ALGORITHMS: &str = "ES256,ES384,EdDSA,PS256,RS256";

/// The largest proof parsed. An RSA-8192 `jwk` and signature fit in ~3.5 KiB; anything larger is
/// refused unread.
pub const MAX_PROOF_SIZE: usize = 8 * 1024;

/// The longest `jti` kept: enough for any UUID or random string, short enough that the replay cache
/// stays small.
pub const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must satisfy; built once from configuration.
#[derive(Debug, Clone)]
pub struct ProofPolicy {
    /// Accepted proof `alg` values (asymmetric only: [`Alg`] has no HMAC or `none`).
    pub algorithms: Vec<Alg>,
    /// How far `iat` may be from `now`, either way (RFC 9449 §11.1).
    pub iat_window_secs: u64,
}

/// The request a proof must have been made for.
pub struct ProofTarget<'a> {
    /// The request method, e.g. `POST`.
    pub method: &'a str,
    /// The URI the client used, already [`normalize_htu`]-ed.
    pub htu: &'a str,
    /// The access token sent with the proof (its hash is `ath`).
    pub access_token: &'a str,
    /// The token's `cnf.jkt`: the thumbprint of the only key that may sign proofs for it.
    pub jkt: &'a str,
}

/// An accepted proof: what the replay cache needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedProof {
    /// The RFC 7638 thumbprint of the proof key (equal to the token's `cnf.jkt`).
    pub jkt: String,
    /// The proof's unique identifier.
    pub jti: String,
    /// The server nonce the proof carries (RFC 9449 §4.2), checked by the caller when nonces are on.
    pub nonce: Option<String>,
}

/// Checks `proof` for the request `target` at `now` (seconds since the Unix epoch).
pub fn check(
    proof: &str,
    target: &ProofTarget<'_>,
    policy: &ProofPolicy,
    now: u64,
) -> Result<AcceptedProof, Refusal> {
    if proof.len() > MAX_PROOF_SIZE {
        return Err(Refusal::DpopProofTooLarge);
    }
    let (header_b64, payload_b64, signature_b64) = split(proof)?;
    let header = decode_object(header_b64)?;
    match header.get("typ") {
        // Media type names compare case-insensitively (RFC 7515 §4.1.9).
        Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(Refusal::DpopBadType),
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name)
            .filter(|a| policy.algorithms.contains(a))
            .ok_or(Refusal::DpopUnsupportedAlgorithm)?,
        _ => return Err(Refusal::DpopUnsupportedAlgorithm),
    };
    if header.contains_key("crit") {
        return Err(Refusal::DpopMalformedProof);
    }
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        _ => return Err(Refusal::DpopBadKey),
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(Refusal::DpopBadKey);
    }
    let key = parse_one_jwk(&Value::Object(jwk.clone()), alg).map_err(|_| Refusal::DpopBadKey)?;
    let verifier = key.verifier(alg).ok_or(Refusal::DpopBadKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| Refusal::DpopBadSignature)?;
    let signing_input = &proof.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    verifier
        .verify_sig(signing_input, &signature)
        .map_err(|_| Refusal::DpopBadSignature)?;

    let claims = decode_object(payload_b64)?;
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
        _ => return Err(Refusal::DpopMalformedProof),
    };
    match claims.get("htm") {
        Some(Value::String(htm)) if htm == target.method => {}
        Some(Value::String(_)) => return Err(Refusal::DpopWrongMethod),
        _ => return Err(Refusal::DpopMalformedProof),
    }
    match claims.get("htu") {
        Some(Value::String(htu)) if normalize_htu(htu).as_deref() == Some(target.htu) => {}
        Some(Value::String(_)) => return Err(Refusal::DpopWrongUri),
        _ => return Err(Refusal::DpopMalformedProof),
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or(Refusal::DpopMalformedProof)?,
        _ => return Err(Refusal::DpopMalformedProof),
    };
    if (iat - now as f64).abs() > policy.iat_window_secs as f64 {
        return Err(Refusal::DpopStale);
    }
    match claims.get("ath") {
        Some(Value::String(ath)) if *ath == access_token_hash(target.access_token) => {}
        Some(Value::String(_)) | None => return Err(Refusal::DpopWrongAth),
        Some(_) => return Err(Refusal::DpopMalformedProof),
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(Refusal::DpopMalformedProof),
    };
    let jkt = thumbprint(jwk).ok_or(Refusal::DpopBadKey)?;
    if jkt != target.jkt {
        return Err(Refusal::DpopKeyMismatch);
    }
    Ok(AcceptedProof {
        jkt,
        jti: jti.clone(),
        nonce,
    })
}

/// `ath`: base64url(SHA-256(ASCII access token)) (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

/// The RFC 7638 JWK thumbprint: SHA-256 over the required members, in lexicographic order, without
/// whitespace (§3.2), base64url-encoded (RFC 9449 §6.1). `None` for a key type without a definition
/// or with a required member missing.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json escapes exactly as RFC 7638 §3.3 requires (JSON string, no extra whitespace).
        canonical.push_str(&Value::String((*name).to_string()).to_string());
        canonical.push(':');
        canonical.push_str(&Value::String(value.to_string()).to_string());
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())))
}

/// Splits a compact JWS into its three non-empty segments.
fn split(proof: &str) -> Result<(&str, &str, &str), Refusal> {
    let mut parts = proof.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => {
            Ok((h, p, s))
        }
        _ => Err(Refusal::DpopMalformedProof),
    }
}

/// Canonical base64url → JSON object without duplicate member names (RFC 7515 §5.2).
fn decode_object(segment: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Refusal::DpopMalformedProof)?;
    match strict_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::DpopMalformedProof),
    }
}

#[cfg(test)]
mod tests {
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
}
