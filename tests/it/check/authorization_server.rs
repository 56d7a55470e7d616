//! The authorization server the metadata lists: its metadata found by RFC 8414 §3 or OpenID
//! discovery, an `issuer` identical to the listed one, PKCE with S256 (RFC 7636), and a JWKS holding a
//! key the gate can verify with.

use super::*;

#[tokio::test]
async fn an_authorization_server_whose_issuer_differs_from_the_listed_one_fails() {
    let report = check_site(|d| {
        let issuer = format!("{}/as/", d.base);
        d.edit(AS_PATH, |doc| doc["issuer"] = json!(issuer))
    })
    .await;
    assert_fails(&report, &["as.metadata"], "as/\": a trailing slash");
}

#[tokio::test]
async fn an_authorization_server_found_only_by_openid_discovery_passes() {
    let report = check_site(|d| {
        let doc = d.pages.remove(AS_PATH).unwrap();
        d.pages
            .insert("/as/.well-known/openid-configuration".into(), doc);
    })
    .await;
    assert!(failing(&report).is_empty(), "\n{}", report.to_text());
    assert!(find(&report, "as.metadata")
        .message
        .contains("/as/.well-known/openid-configuration"));
}

#[tokio::test]
async fn an_authorization_server_without_metadata_fails() {
    let report = check_site(|d| {
        d.pages.remove(AS_PATH);
    })
    .await;
    assert_fails(
        &report,
        &["as.metadata"],
        "no authorization server metadata",
    );
}

#[tokio::test]
async fn an_authorization_server_without_s256_fails() {
    let report = check_site(|d| {
        d.edit(AS_PATH, |doc| {
            doc["code_challenge_methods_supported"] = json!(["plain"])
        })
    })
    .await;
    assert_fails(&report, &["as.pkce"], "without S256");
}

#[tokio::test]
async fn a_jwks_without_a_usable_key_fails() {
    let report = check_site(|d| {
        d.pages.get_mut("/as/jwks").unwrap().body =
            json!({"keys": [{"kty": "oct", "kid": "shared", "alg": "HS256", "k": "c2VjcmV0"}]})
                .to_string();
    })
    .await;
    assert_fails(&report, &["as.jwks"], "no usable signing key");
    assert!(find(&report, "as.jwks")
        .message
        .contains("kid shared (kty oct"));
}
