//! Properties of the pure decision code, checked on many generated inputs: a valid token changed in
//! any single byte is refused; the validator and the bearer parser never panic, whatever the input;
//! and a genuinely signed token is accepted only when its claims meet the policy (an oracle written
//! independently of the validator).

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use mcp_gate::auth::bearer::extract;
use mcp_gate::auth::keys::KeySet;
use mcp_gate::auth::token::{verify, Policy};
use mcp_gate::test_support::{default_policy, one_key_per_family, TestKey};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "https://mcp.example.com/mcp";
const NOW: u64 = 1_800_000_000;

/// One key per family and the key set publishing them (generated once per test binary).
fn keys() -> &'static (Vec<TestKey>, KeySet) {
    static KEYS: OnceLock<(Vec<TestKey>, KeySet)> = OnceLock::new();
    KEYS.get_or_init(one_key_per_family)
}

fn policy() -> Policy {
    default_policy(ISS, AUD)
}

fn valid_claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "client_id": "c1", "exp": NOW + 300,
           "iat": NOW, "scope": "mcp:tools"})
}

/// A valid token from each key.
fn valid_tokens() -> &'static Vec<String> {
    static TOKENS: OnceLock<Vec<String>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let tokens: Vec<String> = keys().0.iter().map(|k| k.token(&valid_claims())).collect();
        for t in &tokens {
            assert!(
                verify(t, &keys().1, &policy(), NOW).is_ok(),
                "control token"
            );
        }
        tokens
    })
}

fn check(token: &str) -> Result<mcp_gate::auth::Verified, mcp_gate::auth::Refusal> {
    verify(token, &keys().1, &policy(), NOW)
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `token` with the byte at `index` replaced; bytes that are not UTF-8 become U+FFFD, as a lossy
/// HTTP stack would pass them on (they are refused even earlier, by the bearer parser).
fn with_byte(token: &str, index: usize, byte: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    bytes[index] = byte;
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn every_position_of_a_valid_token_changed_to_other_bytes_is_refused() {
    // Exhaustive over positions, for every key family; three replacement bytes per position: the
    // neighbours in the base64url alphabet (the subtle ones) and one that is out of it.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for token in valid_tokens() {
        for (i, &original) in token.as_bytes().iter().enumerate() {
            let neighbours = match alphabet.iter().position(|c| *c == original) {
                Some(p) => [alphabet[(p + 1) % 64], alphabet[(p + 63) % 64], b'.'],
                None => [b'A', b'_', b'x'],
            };
            for byte in neighbours.into_iter().filter(|b| *b != original) {
                let changed = with_byte(token, i, byte);
                assert!(
                    check(&changed).is_err(),
                    "byte {i} {:?} -> {:?} accepted",
                    original as char,
                    byte as char
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_single_byte_change_to_a_valid_token_is_refused(
        which in 0usize..4,
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let token = &valid_tokens()[which];
        let i = position.index(token.len());
        prop_assume!(token.as_bytes()[i] != byte);
        prop_assert!(check(&with_byte(token, i, byte)).is_err());
    }

    #[test]
    fn arbitrary_strings_are_refused_without_panic(token in any::<String>()) {
        prop_assert!(check(&token).is_err());
    }

    #[test]
    fn token_shaped_strings_are_refused_without_panic(
        token in "[A-Za-z0-9_=+/~-]{0,60}(\\.[A-Za-z0-9_=+/~-]{0,400}){0,5}"
    ) {
        prop_assert!(check(&token).is_err());
    }

    #[test]
    fn arbitrary_bytes_as_header_and_payload_are_refused_without_panic(
        header in prop::collection::vec(any::<u8>(), 0..300),
        payload in prop::collection::vec(any::<u8>(), 0..600),
        signature in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(check(&token).is_err());
    }

    #[test]
    fn genuinely_signed_arbitrary_bytes_never_panic_and_pass_only_as_valid_json_claims(
        header in prop_oneof![
            Just(br#"{"alg":"EdDSA","kid":"d1"}"#.to_vec()),
            Just(br#"{"alg":"EdDSA"}"#.to_vec()),
            prop::collection::vec(any::<u8>(), 0..100),
        ],
        payload in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let input = format!("{}.{}", b64(&header), b64(&payload));
        let signature = keys().0[3].raw_signature("EdDSA", input.as_bytes());
        let token = format!("{input}.{}", b64(signature));
        if check(&token).is_ok() {
            let claims: Value = serde_json::from_slice(&payload).unwrap();
            prop_assert_eq!(&claims["iss"], ISS);
        }
    }

    #[test]
    fn a_signed_token_is_accepted_exactly_when_its_claims_meet_the_policy(
        claims in claims_strategy(),
        typ in prop_oneof![Just(None), Just(Some("at+jwt")), Just(Some("JWT")), Just(Some("jose")), Just(Some(""))],
    ) {
        let mut header = json!({"alg": "EdDSA", "kid": "d1"});
        if let Some(t) = typ {
            header["typ"] = json!(t);
        }
        let payload = Value::Object(claims.clone()).to_string();
        let token = keys().0[3].sign(&header.to_string(), &payload);
        let expected = oracle(&claims) && typ != Some("jose") && typ != Some("");
        prop_assert_eq!(check(&token).is_ok(), expected, "{}", payload);
    }

    #[test]
    fn the_bearer_parser_never_panics_and_returns_only_b64tokens(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..3),
        query in prop::option::of(any::<String>()),
    ) {
        let mut headers = HeaderMap::new();
        for v in &values {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                headers.append(AUTHORIZATION, v);
            }
        }
        if let Ok(token) = extract(&headers, query.as_deref()) {
            prop_assert_eq!(headers.get_all(AUTHORIZATION).iter().count(), 1);
            prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)));
        }
    }
}

/// Claims where each registered claim is either valid, invalid in a telling way, or absent.
fn claims_strategy() -> impl Strategy<Value = Map<String, Value>> {
    let pick = |choices: Vec<Option<Value>>| prop::sample::select(choices);
    (
        pick(vec![
            Some(json!(ISS)),
            Some(json!(format!("{ISS}/"))),
            Some(json!([ISS])),
            None,
        ]),
        pick(vec![
            Some(json!(AUD)),
            Some(json!([AUD, "other"])),
            Some(json!(["other"])),
            Some(json!(format!("{AUD}/"))),
            Some(json!(7)),
            Some(json!([AUD, 7])),
            None,
        ]),
        pick(vec![
            Some(json!(NOW + 300)),
            Some(json!(NOW - 59)),
            Some(json!(NOW - 60)),
            Some(json!((NOW + 300) as f64 + 0.5)),
            Some(json!((NOW + 300).to_string())),
            Some(json!(-1)),
            None,
        ]),
        pick(vec![
            Some(json!(NOW + 60)),
            Some(json!(NOW + 61)),
            Some(json!("0")),
            None,
        ]),
        pick(vec![
            Some(json!(NOW)),
            Some(json!(NOW + 61)),
            Some(json!(true)),
            None,
        ]),
        pick(vec![Some(json!("alice")), Some(json!(1)), None]),
        pick(vec![Some(json!("c1")), Some(json!(["c1"])), None]),
    )
        .prop_map(|(iss, aud, exp, nbf, iat, sub, client_id)| {
            let mut m = Map::new();
            for (name, value) in [
                ("iss", iss),
                ("aud", aud),
                ("exp", exp),
                ("nbf", nbf),
                ("iat", iat),
                ("sub", sub),
                ("client_id", client_id),
            ] {
                if let Some(v) = value {
                    m.insert(name.into(), v);
                }
            }
            m
        })
}

/// The policy of [`policy()`] restated plainly, for the claims [`claims_strategy`] produces.
fn oracle(c: &Map<String, Value>) -> bool {
    let skew = 60.0;
    let now = NOW as f64;
    let iss_ok = c.get("iss") == Some(&json!(ISS));
    let aud_ok = match c.get("aud") {
        Some(Value::String(a)) => a == AUD,
        Some(Value::Array(list)) => {
            list.iter().all(Value::is_string) && list.iter().any(|a| a == AUD)
        }
        _ => false,
    };
    let time = |name: &str| match c.get(name) {
        None => Some(None),
        Some(Value::Number(n)) => n.as_f64().filter(|f| *f >= 0.0).map(Some),
        Some(_) => None,
    };
    let exp_ok = matches!(time("exp"), Some(Some(exp)) if now < exp + skew);
    let nbf_ok = matches!(time("nbf"), Some(None))
        || matches!(time("nbf"), Some(Some(t)) if t <= now + skew);
    let iat_ok = matches!(time("iat"), Some(None))
        || matches!(time("iat"), Some(Some(t)) if t <= now + skew);
    let strings_ok = ["sub", "client_id"]
        .iter()
        .all(|n| matches!(c.get(*n), None | Some(Value::String(_))));
    iss_ok && aud_ok && exp_ok && nbf_ok && iat_ok && strings_ok
}
