//! The claim rules of [`super::super`]: scopes, claim conditions, `client_id`, and the bit-flip
//! and strict-decoding rules the token explainer relies on too.

use super::*;

#[test]
fn required_scopes_come_from_scope_or_scp() {
    let p = Policy {
        required_scopes: vec!["mcp:tools".into(), "mcp:read".into()],
        ..policy()
    };
    let grants: &[(Value, Value, bool)] = &[
        (json!("mcp:tools mcp:read"), Value::Null, true),
        (json!("mcp:read  mcp:tools openid"), Value::Null, true),
        (json!("mcp:tools"), Value::Null, false),
        (Value::Null, json!(["mcp:read", "mcp:tools"]), true),
        (Value::Null, json!("mcp:read mcp:tools"), true),
        (json!("mcp:tools"), json!(["mcp:read"]), true),
        (Value::Null, Value::Null, false),
        (json!("mcp:tools:x mcp:readonly"), Value::Null, false),
    ];
    for (scope, scp, ok) in grants {
        let c = with(with(claims(), "scope", scope.clone()), "scp", scp.clone());
        let result = check_with(&rsa().token(&c), &p);
        if *ok {
            assert!(result.is_ok(), "scope={scope} scp={scp}");
        } else {
            assert_eq!(
                result,
                Err(Refusal::InsufficientScope),
                "scope={scope} scp={scp}"
            );
        }
    }
    let c = with(claims(), "scope", json!(["mcp:tools"]));
    assert_eq!(
        check_with(&rsa().token(&c), &p),
        Err(Refusal::MalformedClaims)
    );
}

#[test]
fn claim_rules_follow_dotted_paths_and_arrays() {
    let rules = |spec: &[(&str, &str)]| Policy {
        claim_rules: spec
            .iter()
            .map(|(p, v)| ClaimRule {
                path: p.split('.').map(str::to_string).collect(),
                value: v.to_string(),
            })
            .collect(),
        ..policy()
    };
    let c = with(
        with(claims(), "email_verified", json!(true)),
        "realm_access",
        json!({"roles": ["mcp-user", "other"], "level": 3}),
    );
    let token = rsa().token(&c);
    let cases: &[(&[(&str, &str)], bool)] = &[
        (&[("email_verified", "true")], true),
        (&[("email_verified", "false")], false),
        (&[("realm_access.roles", "mcp-user")], true),
        (&[("realm_access.roles", "admin")], false),
        (&[("realm_access.level", "3")], true),
        (&[("realm_access.missing", "x")], false),
        (&[("sub", "alice"), ("realm_access.roles", "other")], true),
        (&[("sub", "alice"), ("realm_access.roles", "nope")], false),
        (&[("realm_access", "x")], false),
    ];
    for (spec, ok) in cases {
        let result = check_with(&token, &rules(spec));
        if *ok {
            assert!(result.is_ok(), "{spec:?}");
        } else {
            assert_eq!(result, Err(Refusal::ClaimRuleFailed), "{spec:?}");
        }
    }
}

#[test]
fn client_id_falls_back_to_azp() {
    let c = with(
        with(claims(), "client_id", Value::Null),
        "azp",
        json!("web-app"),
    );
    assert_eq!(
        check(&rsa().token(&c)).unwrap().client_id.as_deref(),
        Some("web-app")
    );
}

#[test]
fn every_single_bit_flip_is_refused() {
    let token = rsa().token(&claims());
    let bytes = token.as_bytes();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            if let Ok(t) = std::str::from_utf8(&b) {
                assert!(check(t).is_err(), "flip byte {i} bit {bit}");
            }
        }
    }
}

#[test]
fn granted_scopes_reads_scope_and_scp_as_the_required_scope_rule_does() {
    let wanted = ["mcp:tools", "mcp:read"];
    let p = Policy {
        required_scopes: wanted.iter().map(|s| s.to_string()).collect(),
        ..policy()
    };
    let grants: &[(Value, Value)] = &[
        (json!("mcp:tools mcp:read"), Value::Null),
        (json!("mcp:read  mcp:tools openid"), Value::Null),
        (json!("mcp:tools"), Value::Null),
        (Value::Null, json!(["mcp:read", "mcp:tools", 7])),
        (Value::Null, json!("mcp:read mcp:tools")),
        (json!("mcp:tools"), json!(["mcp:read"])),
        (Value::Null, Value::Null),
        (json!("mcp:tools:x mcp:readonly"), Value::Null),
        (json!(["mcp:tools"]), Value::Null),
        (Value::Null, json!(7)),
    ];
    for (scope, scp) in grants {
        let c = with(with(claims(), "scope", scope.clone()), "scp", scp.clone());
        let verified = check_with(&rsa().token(&c), &p);
        let Value::Object(map) = c else {
            unreachable!()
        };
        match granted_scopes(&map) {
            Ok(granted) => assert_eq!(
                verified.is_ok(),
                wanted.iter().all(|w| granted.contains(w)),
                "scope={scope} scp={scp}"
            ),
            Err(r) => assert_eq!(verified, Err(r), "scope={scope} scp={scp}"),
        }
    }
}

#[test]
fn decode_unverified_is_as_strict_as_verify() {
    let good = rsa().token(&claims());
    let (header, claims_read) = decode_unverified(&good).unwrap();
    assert_eq!(header["kid"], json!("rsa-1"));
    assert_eq!(claims_read["sub"], claims()["sub"]);
    let (h, _, s) = split(&good).unwrap();
    let duplicate = URL_SAFE_NO_PAD.encode(br#"{"aud":"a","aud":"b"}"#);
    for bad in ["opaque", "a.b", &format!("{h}.{duplicate}.{s}")] {
        assert_eq!(
            decode_unverified(bad),
            Err(Refusal::MalformedToken),
            "{bad}"
        );
    }
}
