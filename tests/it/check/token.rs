//! A token given with `--token`, judged as the gate would judge it: a valid one passes, each bad one
//! fails for its own rule and is never printed, and the advice for a wrong `aud` is one the gate can
//! follow.

use super::*;

#[tokio::test]
async fn a_valid_token_passes_and_each_bad_token_is_refused_for_its_rule() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let url = s.gate.resource();
    let good = s.token_with(|_| {});
    let report = run(&url, Some(&good)).await;
    assert_eq!(
        find(&report, "token").status,
        Status::Ok,
        "\n{}",
        report.to_text()
    );
    assert!(!report.to_text().contains(&good) && !report.to_json().contains(&good));

    let other_key = TestKey::rsa("k9", 2048);
    let cases = [
        (
            s.token_with(|c| c["exp"] = json!(now() - 7200)),
            "(expired): it expired 2h".to_string(),
        ),
        (
            s.token_with(|c| c["aud"] = json!("https://mcp.example.com/mcp")),
            format!("bad_audience): aud is \"https://mcp.example.com/mcp\" (scheme (https instead of http), host (mcp.example.com instead of 127.0.0.1), no port (expected :{}))", s.gate.addr.port()),
        ),
        (
            s.token_with(|c| c["iss"] = json!(format!("{}/", s.idp.issuer))),
            format!("bad_issuer): iss is \"{}/\" but the authorization server is \"{}\" (a trailing slash)", s.idp.issuer, s.idp.issuer),
        ),
        (
            other_key.token(&claims(&s.idp.issuer, &url)),
            "unknown_kid): its kid \"k9\" is not in the JWKS".to_string(),
        ),
        (
            s.token_with(|c| c["scope"] = json!("profile email")),
            "insufficient_scope): it grants [profile email] but the challenge's scope asks for [mcp:tools]: missing mcp:tools".to_string(),
        ),
    ];
    for (token, words) in cases {
        let report = run(&url, Some(&token)).await;
        assert_fails(&report, &["token"], &words);
        let text = report.to_text();
        let json = report.to_json();
        assert!(
            !text.contains(&token) && !json.contains(&token),
            "token printed"
        );
    }
}

/// Issue #14 point 16: the `EXPECTED_AUDIENCE` advice must be one the gate can honour. A space-
/// separated `aud` (an IdP without resource indicators putting scopes there) is split by the gate's
/// list parser and can never match, so the only fix is RFC 8707 at the IdP; an array `aud` names one
/// of its members, never a placeholder.
#[tokio::test]
async fn the_audience_hint_is_advice_the_gate_can_follow_for_every_shape_of_aud() {
    let s = site(|_| {}).await;
    let url = s.deployment.url();
    let token_for = |aud: Value| {
        signing_key().token(&json!({"iss": format!("{}/as", s.deployment.base),
            "aud": aud, "exp": now() + 60, "scope": "mcp:tools"}))
    };
    let hint_for = |report: &Report| {
        assert_fails(report, &["token"], "bad_audience");
        find(report, "token").hint.clone().unwrap()
    };

    let scopes = run(&url, Some(&token_for(json!("openid profile mcp:tools")))).await;
    let hint = hint_for(&scopes);
    assert!(!hint.contains("EXPECTED_AUDIENCE="), "{hint}");
    assert!(hint.contains("resource indicators (RFC 8707)"), "{hint}");

    let array = run(&url, Some(&token_for(json!(["api://mcp", "account"])))).await;
    let hint = hint_for(&array);
    assert!(
        hint.contains(&format!("EXPECTED_AUDIENCE={url},api://mcp ")),
        "{hint}"
    );
    assert!(!hint.contains("<aud>"), "{hint}");

    let one = run(&url, Some(&token_for(json!("api://mcp")))).await;
    let hint = hint_for(&one);
    assert!(
        hint.contains(&format!("EXPECTED_AUDIENCE={url},api://mcp ")),
        "{hint}"
    );
}
