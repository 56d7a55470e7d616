//! Every refusal, with its status and `WWW-Authenticate` challenge (RFC 6750 §3): 401 without a token
//! (no error code) or with a bad one (`invalid_token`), 400 for a malformed request, 403 for a
//! missing scope, named as clients must request it, or a failed claim rule.

use crate::support::*;
use http::Method;
use serde_json::json;

#[tokio::test]
async fn request_without_token_gets_401_with_a_single_challenge_no_error_code_and_never_reaches_upstream(
) {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools mcp:read")]).await;
    for method in [Method::POST, Method::GET, Method::DELETE, Method::PUT] {
        let a = send(method.clone(), &s.gate.resource(), &[], "{}").await;
        assert_eq!(a.status, 401, "{method}");
        let challenges: Vec<_> = a.headers.get_all("www-authenticate").iter().collect();
        assert_eq!(challenges.len(), 1);
        let expected = format!(
            "Bearer resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools mcp:read\"",
            s.gate.addr
        );
        assert_eq!(challenges[0], expected.as_str());
        assert_eq!(a.header("content-type"), Some("application/json"));
        // The body agrees with the challenge: no error code without a token (RFC 6750 §3.1).
        let body = a.json();
        assert!(body.get("error").is_none(), "{method}: {body}");
        assert_eq!(body["error_description"], "An access token is required");
    }
    // The advertised metadata URL answers.
    let a = post(&s.gate.resource(), &[], "{}").await;
    let url = a
        .header("www-authenticate")
        .unwrap()
        .split('"')
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(get(&url, &[]).await.status, 200);
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn bad_tokens_get_401_invalid_token_and_never_reach_upstream() {
    let s = stack(&[]).await;
    let other_key = TestKey::rsa("k1", 2048);
    let cases: Vec<(&str, String)> = vec![
        ("expired", s.token_with(|c| c["exp"] = json!(now() - 3600))),
        (
            "not yet valid",
            s.token_with(|c| c["nbf"] = json!(now() + 3600)),
        ),
        (
            "wrong audience",
            s.token_with(|c| c["aud"] = json!("http://elsewhere/mcp")),
        ),
        (
            "audience with trailing slash",
            s.token_with(|c| c["aud"] = json!(format!("{}/", s.gate.resource()))),
        ),
        (
            "wrong issuer",
            s.token_with(|c| c["iss"] = json!("http://evil.example")),
        ),
        (
            "no exp",
            s.token_with(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }),
        ),
        (
            "forged signature",
            other_key.token(&claims(&s.idp.issuer, &s.gate.resource())),
        ),
        ("not a jwt", "abc.def.ghi".to_string()),
        ("opaque", "2YotnFZFEjr1zCsicMWpAA".to_string()),
    ];
    for (name, token) in cases {
        let a = s.post_bearer(&token).await;
        assert_eq!(a.status, 401, "{name}");
        let challenge = a.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{name}: {challenge}"
        );
        assert!(challenge.contains("resource_metadata=\""), "{name}");
        assert!(
            !challenge.contains("k1"),
            "{name}: no key ids in descriptions"
        );
        assert_eq!(a.json()["error"], "invalid_token", "{name}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn malformed_requests_get_400_invalid_request() {
    let s = stack(&[]).await;
    let token = s.token();
    let a = post(&s.gate.url(&format!("/mcp?access_token={token}")), &[], "").await;
    assert_eq!(a.status, 400);
    assert!(a
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_request\""));
    let a = post(
        &s.gate.url("/mcp?access_token=x"),
        &[("authorization", &bearer(&token))],
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    let a = post(&s.gate.resource(), &[("authorization", "Bearer a b")], "").await;
    assert_eq!(a.status, 400);
    let a = post(
        &s.gate.resource(),
        &[
            ("authorization", &bearer(&token)),
            ("authorization", &bearer(&token)),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 400);
    // The scheme is case-insensitive.
    let a = post(
        &s.gate.resource(),
        &[("authorization", &format!("bEaReR {token}"))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn missing_scope_gets_403_naming_all_required_scopes() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools mcp:admin")]).await;
    let token = s.token();
    let a = s.post_bearer(&token).await;
    assert_eq!(a.status, 403);
    let challenge = a.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"mcp:tools mcp:admin\""),
        "{challenge}"
    );
    assert!(challenge.contains("resource_metadata=\""), "{challenge}");
    let token = s.token_with(|c| c["scope"] = json!("mcp:admin mcp:tools"));
    assert_eq!(s.post_bearer(&token).await.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

/// Entra ID as README's setup configures it: tokens carry the short scope name in `scp`, clients
/// must request the full name under the Application ID URI.
#[tokio::test]
async fn challenges_name_scopes_as_clients_request_them_when_the_token_carries_short_names() {
    const FULL: &str = "https://mcp.example.com/mcp/mcp.tools";
    let s = stack(&[("REQUIRED_SCOPES", "mcp.tools"), ("SCOPES_SUPPORTED", FULL)]).await;
    let scope_of = |a: &Answer| {
        let challenge = a.header("www-authenticate").unwrap_or_default().to_string();
        challenge
            .split("scope=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no scope in {challenge:?}"))
    };
    let missing = post(&s.gate.resource(), &[], "{}").await;
    assert_eq!(missing.status, 401);
    assert_eq!(scope_of(&missing), FULL);
    let without_scope = s.post_bearer(&s.token()).await;
    assert_eq!(without_scope.status, 403);
    assert_eq!(scope_of(&without_scope), FULL);
    // The token itself still needs only the short name, as Entra writes it.
    let entra = s.token_with(|c| c["scp"] = json!("mcp.tools"));
    assert_eq!(s.post_bearer(&entra).await.status, 200);
    let doc = get(
        &s.gate.url("/.well-known/oauth-protected-resource/mcp"),
        &[],
    )
    .await;
    assert_eq!(doc.json()["scopes_supported"], json!([FULL]));
}

#[tokio::test]
async fn failed_claim_rule_gets_403() {
    let s = stack(&[(
        "REQUIRED_CLAIMS",
        "email_verified=true,realm_access.roles=mcp-user",
    )])
    .await;
    let without = s.token_with(|c| c["email_verified"] = json!(true));
    assert_eq!(s.post_bearer(&without).await.status, 403);
    let with = s.token_with(|c| {
        c["email_verified"] = json!(true);
        c["realm_access"] = json!({"roles": ["x", "mcp-user"]});
    });
    assert_eq!(s.post_bearer(&with).await.status, 200);
}
