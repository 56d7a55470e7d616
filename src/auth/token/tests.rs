//! Tests of [`super`]: the rules it implements, one table or case each.

use super::*;
use crate::auth::keys::parse_jwks;
use crate::test_support::TestKey;
use serde_json::json;
use std::sync::OnceLock;

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://idp.example.com";
const AUD: &str = "https://mcp.example.com/mcp";

fn rsa() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::rsa("rsa-1", 2048))
}

fn policy() -> Policy {
    crate::test_support::default_policy(ISS, AUD)
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "alice", "client_id": "c1", "exp": NOW + 300, "iat": NOW, "scope": "mcp:tools"})
}

fn keyset(keys: &[&TestKey]) -> KeySet {
    parse_jwks(crate::test_support::jwks(keys).as_bytes(), &Alg::ALL)
        .unwrap()
        .0
}

fn check(token: &str) -> Result<Verified, Refusal> {
    check_with(token, &policy())
}

fn check_with(token: &str, policy: &Policy) -> Result<Verified, Refusal> {
    verify(token, &keyset(&[rsa()]), policy, NOW)
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    if value.is_null() {
        base.as_object_mut().unwrap().remove(key);
    } else {
        base[key] = value;
    }
    base
}

#[test]
fn claimed_issuer_reads_iss_without_trusting_it() {
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let unsigned = |payload: &str| format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(payload));
    assert_eq!(claimed_issuer(&rsa().token(&claims())), Ok(ISS.to_string()));
    // Read only: a token that would fail every other rule still names its issuer.
    assert_eq!(claimed_issuer(&unsigned(r#"{"iss":"x"}"#)), Ok("x".into()));
    for (payload, refusal) in [
        (r#"{"sub":"a"}"#, Refusal::BadIssuer),
        (r#"{"iss":["x"]}"#, Refusal::BadIssuer),
        (r#"{"iss":null}"#, Refusal::BadIssuer),
        // Two `iss` members could name one server here and another in the full check.
        (r#"{"iss":"a","iss":"b"}"#, Refusal::MalformedToken),
        (r#"["iss"]"#, Refusal::MalformedToken),
    ] {
        assert_eq!(
            claimed_issuer(&unsigned(payload)),
            Err(refusal),
            "{payload}"
        );
    }
    assert_eq!(claimed_issuer("a.b"), Err(Refusal::MalformedToken));
    assert_eq!(claimed_issuer("a.b.c.d.e"), Err(Refusal::EncryptedToken));
}

#[test]
fn a_valid_token_is_accepted_with_its_identity() {
    let v = check(&rsa().token(&claims())).unwrap();
    assert_eq!(v.sub.as_deref(), Some("alice"));
    assert_eq!(v.client_id.as_deref(), Some("c1"));
    assert_eq!(v.exp, NOW + 300);
}

#[test]
fn every_supported_algorithm_verifies_with_its_own_key_type() {
    let keys = [
        TestKey::rsa_alg("k-ps256", 2048, "PS256"),
        TestKey::ec("k-es256", "ES256"),
        TestKey::ec("k-es384", "ES384"),
        TestKey::ed25519("k-eddsa"),
    ];
    let refs: Vec<&TestKey> = keys.iter().collect();
    let set = keyset(&refs);
    for key in &keys {
        let token = key.token(&claims());
        assert!(verify(&token, &set, &policy(), NOW).is_ok(), "{}", key.alg);
    }
    for alg in ["RS384", "RS512", "PS384", "PS512"] {
        let token = rsa().token_as(alg, &claims());
        assert!(check(&token).is_ok(), "{alg}");
    }
}

#[test]
fn time_claims_are_checked_on_both_sides_of_each_boundary() {
    let skew = 60;
    let cases: &[(&str, u64, Result<(), Refusal>)] = &[
        ("exp", NOW - skew + 1, Ok(())),
        ("exp", NOW - skew, Err(Refusal::Expired)),
        ("exp", NOW - 3600, Err(Refusal::Expired)),
        ("nbf", NOW + skew, Ok(())),
        ("nbf", NOW + skew + 1, Err(Refusal::NotYetValid)),
        ("iat", NOW + skew, Ok(())),
        ("iat", NOW + skew + 1, Err(Refusal::IssuedInFuture)),
    ];
    for (claim, value, expected) in cases {
        let token = rsa().token(&with(claims(), claim, json!(value)));
        assert_eq!(check(&token).map(|_| ()), *expected, "{claim}={value}");
    }
}

#[test]
fn clock_skew_is_configurable() {
    let token = rsa().token(&with(claims(), "exp", json!(NOW - 5)));
    assert!(check(&token).is_ok());
    let strict = Policy {
        clock_skew_secs: 0,
        ..policy()
    };
    assert_eq!(check_with(&token, &strict), Err(Refusal::Expired));
}

#[test]
fn exp_is_required_and_must_be_a_number() {
    let cases = [
        (Value::Null, Refusal::MissingExpiry),
        (json!("1900000000"), Refusal::MalformedClaims),
        (json!(-1), Refusal::MalformedClaims),
        (json!([NOW + 300]), Refusal::MalformedClaims),
        (json!(true), Refusal::MalformedClaims),
    ];
    for (exp, expected) in cases {
        let token = rsa().token(&with(claims(), "exp", exp.clone()));
        assert_eq!(check(&token), Err(expected), "exp={exp}");
    }
    // Fractional and very large NumericDates are numbers like any other.
    assert!(check(&rsa().token(&with(claims(), "exp", json!(NOW as f64 + 0.5)))).is_ok());
    assert!(check(&rsa().token(&with(claims(), "exp", json!(1e300)))).is_ok());
}

#[test]
fn issuer_must_match_exactly() {
    for iss in [
        json!("https://idp.example.com/"),
        json!("https://IDP.example.com"),
        json!("https://evil.example"),
        Value::Null,
        json!(1),
    ] {
        let token = rsa().token(&with(claims(), "iss", iss.clone()));
        assert_eq!(check(&token), Err(Refusal::BadIssuer), "iss={iss}");
    }
}

#[test]
fn audience_must_contain_an_expected_value() {
    let ok = [json!(AUD), json!([AUD]), json!(["other", AUD])];
    for aud in ok {
        assert!(
            check(&rsa().token(&with(claims(), "aud", aud.clone()))).is_ok(),
            "aud={aud}"
        );
    }
    let bad = [
        (json!("https://mcp.example.com/mcp/"), Refusal::BadAudience),
        (json!("https://mcp.example.com"), Refusal::BadAudience),
        (json!(["a", "b"]), Refusal::BadAudience),
        (json!([]), Refusal::BadAudience),
        (Value::Null, Refusal::BadAudience),
        (json!(7), Refusal::MalformedClaims),
        (json!([AUD, 7]), Refusal::MalformedClaims),
    ];
    for (aud, expected) in bad {
        assert_eq!(
            check(&rsa().token(&with(claims(), "aud", aud.clone()))),
            Err(expected),
            "aud={aud}"
        );
    }
    let several = Policy {
        audiences: vec!["api://x".into(), AUD.into()],
        ..policy()
    };
    assert!(check_with(
        &rsa().token(&with(claims(), "aud", json!("api://x"))),
        &several
    )
    .is_ok());
}

#[test]
fn an_id_token_is_not_an_access_token() {
    let id_token = json!({"iss": ISS, "aud": "client-123", "sub": "alice", "nonce": "n", "exp": NOW + 300, "iat": NOW});
    let token = rsa().sign(
        r#"{"alg":"RS256","typ":"JWT","kid":"rsa-1"}"#,
        &id_token.to_string(),
    );
    assert_eq!(check(&token), Err(Refusal::BadAudience));
}

#[test]
fn token_type_follows_the_configured_rule() {
    let strict = Policy {
        token_type: TokenType::AccessTokenJwt,
        ..policy()
    };
    let cases: &[(Option<&str>, bool, bool)] = &[
        // (typ, accepted by default, accepted when at+jwt is required)
        (Some("at+jwt"), true, true),
        (Some("application/at+jwt"), true, true),
        (Some("AT+JWT"), true, true),
        (Some("JWT"), true, false),
        (Some("jwt"), true, false),
        (None, true, false),
        (Some("JOSE"), false, false),
        (Some("id_token+jwt"), false, false),
        (Some(""), false, false),
    ];
    for (typ, by_default, when_strict) in cases {
        let header = match typ {
            Some(t) => format!(r#"{{"alg":"RS256","kid":"rsa-1","typ":"{t}"}}"#),
            None => r#"{"alg":"RS256","kid":"rsa-1"}"#.to_string(),
        };
        let token = rsa().sign(&header, &claims().to_string());
        assert_eq!(check(&token).is_ok(), *by_default, "{typ:?} default");
        let strict_result = check_with(&token, &strict);
        assert_eq!(strict_result.is_ok(), *when_strict, "{typ:?} strict");
        if !when_strict {
            assert_eq!(strict_result, Err(Refusal::BadType));
        }
    }
}

#[test]
fn algorithms_outside_the_allow_list_are_refused() {
    for alg in [
        "none", "None", "NONE", "", "HS256", "HS384", "HS512", "rs256", "ES512",
    ] {
        let token = rsa().sign(
            &format!(r#"{{"alg":"{alg}","kid":"rsa-1"}}"#),
            &claims().to_string(),
        );
        assert_eq!(check(&token), Err(Refusal::UnsupportedAlgorithm), "{alg}");
    }
    let no_alg = rsa().sign(r#"{"kid":"rsa-1"}"#, &claims().to_string());
    assert_eq!(check(&no_alg), Err(Refusal::UnsupportedAlgorithm));
    let only_es = Policy {
        algorithms: vec![Alg::ES256],
        ..policy()
    };
    assert_eq!(
        check_with(&rsa().token(&claims()), &only_es),
        Err(Refusal::UnsupportedAlgorithm)
    );
}

#[test]
fn unsigned_and_hmac_tokens_never_pass() {
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
    assert_eq!(check(&none), Err(Refusal::UnsupportedAlgorithm));
    // HS256 keyed with the RSA public key's bytes (the classic key-confusion attack).
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"rsa-1"}"#);
    let input = format!("{header}.{payload}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &rsa().public_der());
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(check(&hs), Err(Refusal::UnsupportedAlgorithm));
}

#[test]
fn key_is_chosen_by_kid_and_bound_to_its_algorithm() {
    // Signed by the right key but naming the wrong algorithm family.
    let ec = TestKey::ec("ec-1", "ES256");
    let set = keyset(&[rsa(), &ec]);
    let rsa_as_es = rsa().sign(r#"{"alg":"ES256","kid":"rsa-1"}"#, &claims().to_string());
    assert_eq!(
        verify(&rsa_as_es, &set, &policy(), NOW),
        Err(Refusal::UnknownKid)
    );
    let unknown = rsa().sign(r#"{"alg":"RS256","kid":"nope"}"#, &claims().to_string());
    assert_eq!(
        verify(&unknown, &set, &policy(), NOW),
        Err(Refusal::UnknownKid)
    );
    // A known kid, signed by another key.
    let other = TestKey::rsa("rsa-1", 2048);
    assert_eq!(
        verify(&other.token(&claims()), &set, &policy(), NOW),
        Err(Refusal::BadSignature)
    );
    // No kid: only when exactly one key fits the algorithm.
    let no_kid = rsa().sign(r#"{"alg":"RS256"}"#, &claims().to_string());
    assert!(verify(&no_kid, &set, &policy(), NOW).is_ok());
    let two_rsa = TestKey::rsa("rsa-2", 2048);
    let set2 = keyset(&[rsa(), &two_rsa]);
    assert_eq!(
        verify(&no_kid, &set2, &policy(), NOW),
        Err(Refusal::AmbiguousKey)
    );
    for kid in [json!(5), json!(["rsa-1"]), json!(null)] {
        let t = rsa().sign(
            &format!(r#"{{"alg":"RS256","kid":{kid}}}"#),
            &claims().to_string(),
        );
        assert_eq!(
            verify(&t, &set, &policy(), NOW),
            Err(Refusal::MalformedToken),
            "kid={kid}"
        );
    }
}

#[test]
fn key_pointing_headers_are_ignored() {
    let attacker = TestKey::rsa("rsa-1", 2048);
    let jwk = attacker.jwk();
    for extra in [
        r#""jku":"https://evil.example/jwks""#.to_string(),
        r#""x5u":"https://evil.example/cert""#.to_string(),
        r#""x5c":["MIIB"]"#.to_string(),
        format!(r#""jwk":{jwk}"#),
    ] {
        let t = attacker.sign(
            &format!(r#"{{"alg":"RS256","kid":"rsa-1",{extra}}}"#),
            &claims().to_string(),
        );
        assert_eq!(check(&t), Err(Refusal::BadSignature), "{extra}");
    }
}

#[test]
fn any_crit_header_is_refused() {
    for crit in [r#"["exp"]"#, r#"["b64"]"#, "[]", r#""x""#] {
        let t = rsa().sign(
            &format!(r#"{{"alg":"RS256","kid":"rsa-1","crit":{crit}}}"#),
            &claims().to_string(),
        );
        assert_eq!(check(&t), Err(Refusal::UnknownCritical), "{crit}");
    }
}

#[test]
fn malformed_tokens_are_refused_with_invalid_token() {
    let good = rsa().token(&claims());
    let (h, rest) = good.split_once('.').unwrap();
    let cases = [
        ("", Refusal::MalformedToken),
        ("a.b", Refusal::MalformedToken),
        ("a.b.c.d", Refusal::MalformedToken),
        ("a.b.c.d.e", Refusal::EncryptedToken),
        (".b.c", Refusal::MalformedToken),
        ("..", Refusal::MalformedToken),
    ];
    for (t, expected) in cases {
        assert_eq!(check(t), Err(expected), "{t:?}");
    }
    for bad_header in [
        format!("{h}="),
        format!("{h} "),
        h.replace('-', "+"),
        "bm90IGpzb24".into(),
        "WzFd".into(),
    ] {
        let t = format!("{bad_header}.{rest}");
        if t != good {
            assert!(check(&t).is_err(), "{bad_header}");
        }
    }
    let dup = rsa().sign(
        r#"{"alg":"RS256","kid":"rsa-1","alg":"RS256"}"#,
        &claims().to_string(),
    );
    assert_eq!(check(&dup), Err(Refusal::MalformedToken));
}

#[test]
fn duplicate_claims_are_refused_in_either_order() {
    for (first, second) in [(AUD, "https://evil.example"), ("https://evil.example", AUD)] {
        let payload = format!(
            r#"{{"iss":"{ISS}","aud":"{first}","aud":"{second}","exp":{}}}"#,
            NOW + 300
        );
        let t = rsa().sign(r#"{"alg":"RS256","kid":"rsa-1"}"#, &payload);
        assert_eq!(check(&t), Err(Refusal::MalformedToken), "{payload}");
    }
}

#[test]
fn non_object_payloads_are_refused() {
    for payload in ["[]", "\"x\"", "42", "null", "not json", ""] {
        let t = rsa().sign(r#"{"alg":"RS256","kid":"rsa-1"}"#, payload);
        assert_eq!(check(&t), Err(Refusal::MalformedToken), "{payload:?}");
    }
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let small = Policy {
        max_token_size: 100,
        ..policy()
    };
    assert_eq!(
        check_with(&rsa().token(&claims()), &small),
        Err(Refusal::TokenTooLarge)
    );
    assert_eq!(check(&"a".repeat(1 << 20)), Err(Refusal::TokenTooLarge));
}

mod claims;
