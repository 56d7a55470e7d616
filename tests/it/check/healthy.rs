//! A healthy deployment passes every check: the real gate in front of a real identity provider
//! (with only the warnings loopback HTTP earns), and the fake deployment every other test breaks
//! one thing of.

use super::*;

#[tokio::test]
async fn a_healthy_gate_passes_every_check_with_only_loopback_warnings() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let report = run(&s.gate.resource(), None).await;
    assert!(failing(&report).is_empty(), "\n{}", report.to_text());
    let warnings: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .map(|c| c.id)
        .collect();
    assert_eq!(
        warnings,
        ["transport", "as.https"],
        "\n{}",
        report.to_text()
    );
    for id in [
        "endpoint",
        "challenge.bearer",
        "challenge.syntax",
        "challenge.resource_metadata",
        "endpoint.body",
        "metadata.path",
        "metadata.root",
        "metadata.agree",
        "metadata.resource",
        "metadata.authorization_servers",
        "as.metadata",
        "as.grant_types",
        "as.pkce",
        "as.registration",
        "as.jwks",
        "redirects",
    ] {
        assert_eq!(find(&report, id).status, Status::Ok, "{id}");
    }
    assert!(find(&report, "metadata.path")
        .message
        .contains("the challenge's resource_metadata"));
}

#[tokio::test]
async fn the_healthy_test_deployment_passes() {
    let s = site(|_| {}).await;
    let report = run(&s.deployment.url(), None).await;
    assert!(failing(&report).is_empty(), "\n{}", report.to_text());
    let token = signing_key().token(&json!({"iss": format!("{}/as", s.deployment.base),
        "aud": s.deployment.url(), "exp": now() + 60, "scope": "mcp:tools"}));
    let report = run(&s.deployment.url(), Some(&token)).await;
    assert_eq!(
        find(&report, "token").status,
        Status::Ok,
        "\n{}",
        report.to_text()
    );
}
