//! Tests of [`super`]: the rules it implements, one table or case each.

use super::*;
use crate::auth::keys::parse_jwks;
use crate::check::fixtures::{key, ISS, RESOURCE};
use crate::check::report::Status;
use crate::test_support::{jwks, TestKey};
use serde_json::json;

const NOW: u64 = 1_800_000_000;

fn ctx(scopes: &[&str], from_challenge: bool) -> TokenContext {
    let keys = parse_jwks(jwks(&[key()]).as_bytes(), &Alg::ALL).unwrap().0;
    TokenContext {
        resource: RESOURCE.into(),
        servers: vec![ServerKeys {
            issuer: ISS.into(),
            jwks_uri: format!("{ISS}/certs"),
            keys,
        }],
        required_scopes: scopes.iter().map(|s| s.to_string()).collect(),
        scopes_from_challenge: from_challenge,
    }
}

fn claims(change: impl FnOnce(&mut Value)) -> Value {
    let mut c = json!({"iss": ISS, "aud": RESOURCE, "sub": "alice", "exp": NOW + 300, "iat": NOW, "scope": "mcp:tools"});
    change(&mut c);
    c
}

#[test]
fn a_bound_token_is_explained_and_a_certificate_bound_one_fails() {
    let token = key().token(&claims(|c| c["cnf"] = json!({"jkt": "abc"})));
    let check = evaluate_token(&format!("DPoP {token}"), &ctx(&[], true), NOW);
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(check.message.contains("DPoP-bound"), "{check:?}");
    assert!(check
        .hint
        .as_deref()
        .unwrap()
        .contains("Authorization: DPoP"));
    let token = key().token(&claims(|c| c["cnf"] = json!({"x5t#S256": "abc"})));
    let check = evaluate_token(&token, &ctx(&[], true), NOW);
    assert_eq!(check.status, Status::Fail, "{check:?}");
    assert!(
        check.message.contains("certificate_bound_token"),
        "{check:?}"
    );
}

#[test]
fn a_good_token_passes_and_is_never_echoed() {
    let token = key().token(&claims(|_| {}));
    let check = evaluate_token(&token, &ctx(&["mcp:tools"], true), NOW);
    assert_eq!(check.status, Status::Ok, "{check:?}");
    assert!(check.message.contains("expires in 5m"), "{check:?}");
    let bearer = evaluate_token(&format!("Bearer {token}"), &ctx(&[], true), NOW);
    assert_eq!(bearer.status, Status::Ok, "{bearer:?}");
}

#[test]
fn each_refusal_is_explained_in_one_sentence() {
    let other = TestKey::rsa("k9", 2048);
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (
            key().token(&claims(|c| c["exp"] = json!(NOW - 7200))),
            vec![],
            "expired 2h ago",
        ),
        (
            key().token(&claims(|c| c["aud"] = json!(format!("{RESOURCE}/")))),
            vec![],
            "aud is \"https://mcp.example.com/mcp/\" (a trailing slash) but the resource is \"https://mcp.example.com/mcp\"",
        ),
        (
            key().token(&claims(|c| c["iss"] = json!("https://other.example.com"))),
            vec![],
            "iss is \"https://other.example.com\" but the authorization server is",
        ),
        (
            other.token(&claims(|_| {})),
            vec![],
            "kid \"k9\" is not in the JWKS at https://idp.example.com/realms/mcp/certs (which holds k1)",
        ),
        (
            key().token(&claims(|_| {})),
            vec!["mcp:tools", "mcp:admin"],
            "grants [mcp:tools] but the challenge's scope asks for [mcp:tools mcp:admin]: missing mcp:admin",
        ),
        (
            key().token(&claims(|c| c["nbf"] = json!(NOW + 3600))),
            vec![],
            "nbf is 1h in the future",
        ),
        ("opaque-token-value".into(), vec![], "not a signed JWT"),
    ];
    for (token, scopes, words) in cases {
        let check = evaluate_token(&token, &ctx(&scopes, true), NOW);
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.message.contains(words), "{words}: {check:?}");
        assert!(!check.message.contains(&token), "token echoed");
        assert!(!check.hint.as_deref().unwrap_or_default().contains(&token));
    }
    // A scope only advertised in scopes_supported may be optional: a warning, not a failure.
    let token = key().token(&claims(|c| c["scope"] = json!("other")));
    let check = evaluate_token(&token, &ctx(&["mcp:tools"], false), NOW);
    assert_eq!(check.status, Status::Warn, "{check:?}");
    // A forged signature under a known kid.
    let mut forged = key().token(&claims(|_| {}));
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    let check = evaluate_token(&forged, &ctx(&[], true), NOW);
    assert!(check.message.contains("bad_signature"), "{check:?}");
}

#[test]
fn no_keys_means_the_token_is_not_checked() {
    let mut c = ctx(&[], true);
    c.servers.clear();
    let check = evaluate_token(&key().token(&claims(|_| {})), &c, NOW);
    assert_eq!(check.status, Status::Warn);
}

#[test]
fn the_audience_hint_suggests_only_an_expected_audience_the_gate_can_match() {
    let r = RESOURCE;
    let accept = |a: &str| format!("EXPECTED_AUDIENCE={r},{a} on the gate");
    let cases: Vec<(Option<Value>, Option<String>)> = vec![
        (Some(json!("api://mcp")), Some(accept("api://mcp"))),
        (
            Some(json!(["api://mcp", "account"])),
            Some(accept("api://mcp")),
        ),
        (
            Some(json!(["openid profile", "account"])),
            Some(accept("account")),
        ),
        (Some(json!("openid profile mcp:tools")), None),
        (Some(json!("a,b")), None),
        (Some(json!(["openid profile"])), None),
        (Some(json!([])), None),
        (Some(json!("")), None),
        (None, None),
    ];
    for (aud, expected) in cases {
        let hint = audience_hint(r, aud.as_ref());
        match expected {
            Some(words) => assert!(hint.contains(&words), "{aud:?}: {hint}"),
            None => {
                assert!(!hint.contains("EXPECTED_AUDIENCE="), "{aud:?}: {hint}");
                assert!(
                    hint.contains(&format!(
                        "resource indicators (RFC 8707) at the IdP so that aud becomes {r}"
                    )),
                    "{aud:?}: {hint}"
                );
            }
        }
        assert!(!hint.contains("<aud>"), "{aud:?}: {hint}");
    }
}

#[test]
fn a_token_with_a_duplicated_claim_is_explained_without_either_value() {
    let payload = format!(
        r#"{{"iss":"{ISS}","aud":"https://evil.example/aud","aud":"{RESOURCE}","exp":{}}}"#,
        NOW + 300
    );
    let token = key().sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload);
    let check = evaluate_token(&token, &ctx(&[], true), NOW);
    assert_eq!(check.status, Status::Fail, "{check:?}");
    assert!(check.message.contains("malformed_token"), "{check:?}");
    assert!(!check.message.contains("evil"), "{check:?}");
}
