//! Claim attacks on a validly signed token: time claims (RFC 7519 §4.1.4–§4.1.6), issuer and
//! audience variants (RFC 9068 §4, RFC 8707), and ID tokens or other types presented as access
//! tokens (RFC 9068 §2.1, RFC 8725 §3.11).

use serde_json::{json, Value};

use super::*;

#[tokio::test]
async fn time_claims_are_enforced_and_must_be_numbers() {
    let s = battery(&[]).await;
    let t = now();
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("expired an hour ago", json!(t - 3600), EXPIRED),
        ("expired beyond the skew", json!(t - 61), EXPIRED),
        ("expired, as a float", json!(t as f64 - 100.5), EXPIRED),
        ("exp 0", json!(0), EXPIRED),
        ("exp as a string", json!((t + 300).to_string()), INVALID),
        ("exp as an ISO date", json!("2100-01-01T00:00:00Z"), INVALID),
        ("exp negative", json!(-1), INVALID),
        ("exp negative float", json!(-0.5), INVALID),
        ("exp true", json!(true), INVALID),
        ("exp array", json!([t + 300]), INVALID),
        ("exp object", json!({"$date": t + 300}), INVALID),
        ("exp null", Value::Null, INVALID),
    ];
    for (case, exp, expect) in cases {
        let payload = s.claims_with(|c| {
            c.insert("exp".into(), exp.clone());
        });
        s.token_refused(
            case,
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            expect,
        )
        .await;
    }
    let missing = s.claims_with(|c| {
        c.remove("exp");
    });
    s.token_refused(
        "exp missing",
        &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &missing),
        INVALID,
    )
    .await;
    // Numbers too large for an f64 are not JSON numbers serde accepts: malformed, not "forever".
    let huge = s
        .claims_with(|c| {
            c.insert("exp".into(), json!(98765432109u64));
        })
        .replacen("98765432109", "1e400", 1);
    assert!(huge.contains("1e400"));
    s.token_refused(
        "exp 1e400",
        &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &huge),
        INVALID,
    )
    .await;
    for (case, claim, value, expect) in [
        ("nbf in an hour", "nbf", json!(t + 3600), NOT_YET_VALID),
        ("iat in an hour", "iat", json!(t + 3600), NOT_YET_VALID),
        ("nbf as a string", "nbf", json!("0"), INVALID),
        ("iat as a string", "iat", json!("0"), INVALID),
    ] {
        let payload = s.claims_with(|c| {
            c.insert(claim.into(), value.clone());
        });
        s.token_refused(
            case,
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            expect,
        )
        .await;
    }
}

/// RFC 7519 §2: a NumericDate may be fractional, and the IdP decides lifetimes. These are valid.
#[tokio::test]
async fn fractional_and_far_future_expiry_are_accepted_as_the_idp_signed_them() {
    let s = battery(&[]).await;
    let t = now();
    for exp in [json!(t as f64 + 300.25), json!(1e300), json!(u64::MAX)] {
        let payload = s.claims_with(|c| {
            c.insert("exp".into(), exp.clone());
        });
        let token = s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload);
        let a = post(
            &s.gate.resource(),
            &[("authorization", &bearer(&token))],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "exp={exp}");
    }
}

#[tokio::test]
async fn issuer_variants_are_refused() {
    let s = battery(&[]).await;
    let iss = s.idp.issuer.clone();
    let port = s.idp.addr.port();
    for value in [
        json!(format!("{iss}/")),
        json!(iss.to_uppercase()),
        json!(iss.replace("http://", "HTTP://")),
        json!(iss.replace("http://", "https://")),
        json!(format!("http://localhost:{port}")),
        json!(format!(" {iss}")),
        json!(format!("{iss}#")),
        json!(format!("{iss}/realms/other")),
        json!([iss]),
        json!(null),
        json!(""),
    ] {
        let payload = s.claims_with(|c| {
            c.insert("iss".into(), value.clone());
        });
        s.token_refused(
            &format!("iss {value}"),
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            BAD_ISSUER,
        )
        .await;
    }
    let payload = s.claims_with(|c| {
        c.remove("iss");
    });
    s.token_refused(
        "iss missing",
        &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
        BAD_ISSUER,
    )
    .await;
}

#[tokio::test]
async fn audience_variants_are_refused() {
    let s = battery(&[]).await;
    let resource = s.gate.resource();
    let cases: Vec<(Value, Expect)> = vec![
        (json!(format!("{resource}/")), BAD_AUDIENCE),
        (json!(resource.replace("http://", "HTTP://")), BAD_AUDIENCE),
        (json!(format!("{resource}?x=1")), BAD_AUDIENCE),
        (json!(resource.trim_end_matches("/mcp")), BAD_AUDIENCE),
        (json!(format!("{resource}/other")), BAD_AUDIENCE),
        (json!("https://other.example/mcp"), BAD_AUDIENCE),
        (
            json!(["https://a.example", format!("{resource}/")]),
            BAD_AUDIENCE,
        ),
        (json!([]), BAD_AUDIENCE),
        (json!(""), BAD_AUDIENCE),
        (Value::Null, BAD_AUDIENCE),
        (json!([[resource.clone()]]), INVALID),
        (json!({"aud": resource.clone()}), INVALID),
        (json!(1), INVALID),
    ];
    for (aud, expect) in cases {
        let payload = s.claims_with(|c| {
            if aud.is_null() {
                c.remove("aud");
            } else {
                c.insert("aud".into(), aud.clone());
            }
        });
        s.token_refused(
            &format!("aud {aud}"),
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            expect,
        )
        .await;
    }
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let s = battery(&[]).await;
    let t = now();
    let id_token = json!({"iss": s.idp.issuer, "aud": "client-1", "azp": "client-1", "sub": "alice",
                          "nonce": "n-0S6_WzA2Mj", "auth_time": t, "exp": t + 300, "iat": t});
    for header in [
        r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
        r#"{"alg":"RS256","kid":"k1"}"#,
    ] {
        let token = s.rsa.sign(header, &id_token.to_string());
        s.token_refused(&format!("ID token {header}"), &token, BAD_AUDIENCE)
            .await;
    }
}

#[tokio::test]
async fn only_at_jwt_passes_when_access_token_type_is_at_jwt() {
    let s = battery(&[("ACCESS_TOKEN_TYPE", "at+jwt")]).await;
    let payload = s.claims().to_string();
    for typ in [
        Some(r#""JWT""#),
        Some(r#""jwt""#),
        None,
        Some(r#""""#),
        Some(r#""JOSE""#),
        Some(r#""application/jwt""#),
        Some(r#""at+jwt; v=1""#),
        Some(r#""at+jwt ""#),
        Some(r#""application/at+jwt+x""#),
        Some(r#""id_token+jwt""#),
        Some(r#""logout+jwt""#),
        Some(r#""at_jwt""#),
        Some("null"),
        Some(r#"["at+jwt"]"#),
        Some("1"),
    ] {
        let header = match typ {
            Some(t) => format!(r#"{{"alg":"RS256","kid":"k1","typ":{t}}}"#),
            None => r#"{"alg":"RS256","kid":"k1"}"#.to_string(),
        };
        s.token_refused(
            &format!("typ {typ:?}"),
            &s.rsa.sign(&header, &payload),
            INVALID,
        )
        .await;
    }
    for ok in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        let header = format!(r#"{{"alg":"RS256","kid":"k1","typ":"{ok}"}}"#);
        let a = post(
            &s.gate.resource(),
            &[("authorization", &bearer(&s.rsa.sign(&header, &payload)))],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "{ok}");
    }
}
