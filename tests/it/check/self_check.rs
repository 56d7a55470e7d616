//! The gate's start-up self-check: the same checks run against its own configuration, passing a
//! sound one and naming what is wrong with a bad one.

use super::*;

fn gate_config(idp: &TestIdp, extra: &[(&str, &str)]) -> mcp_gate::Config {
    let mut vars: HashMap<String, String> = [
        ("UPSTREAM_URL", "http://127.0.0.1:9"),
        ("RESOURCE_URI", "http://127.0.0.1:8080/mcp"),
        ("JWKS_FETCH_TIMEOUT", "2s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.insert("AUTHORIZATION_SERVER".into(), idp.issuer.clone());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    mcp_gate::Config::from_vars(&vars).unwrap().0
}

fn status_of(checks: &[Check], id: &str) -> Option<Status> {
    checks.iter().find(|c| c.id == id).map(|c| c.status)
}

#[tokio::test]
async fn the_self_check_passes_a_sound_configuration_and_names_a_wrong_one() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;

    let checks = check::self_check(&gate_config(&idp, &[])).await;
    let bad: Vec<&Check> = checks.iter().filter(|c| c.status == Status::Fail).collect();
    assert!(bad.is_empty(), "{bad:?}");

    let slashed = format!("{}/", idp.issuer);
    let checks = check::self_check(&gate_config(
        &idp,
        &[
            ("AUTHORIZATION_SERVER", &slashed),
            ("EXPECTED_AUDIENCE", "http://127.0.0.1:8080/mcp/"),
        ],
    ))
    .await;
    assert_eq!(
        status_of(&checks, "as.metadata"),
        Some(Status::Fail),
        "{checks:?}"
    );
    assert_eq!(
        status_of(&checks, "config.audience"),
        Some(Status::Warn),
        "{checks:?}"
    );

    // JWKS_URI is checked even when the issuer publishes no metadata.
    let nowhere = format!("{}/nowhere", idp.issuer);
    let jwks_uri = format!("{}/jwks", idp.issuer);
    let checks = check::self_check(&gate_config(
        &idp,
        &[("AUTHORIZATION_SERVER", &nowhere), ("JWKS_URI", &jwks_uri)],
    ))
    .await;
    assert_eq!(status_of(&checks, "as.metadata"), Some(Status::Fail));
    assert_eq!(
        status_of(&checks, "as.jwks"),
        Some(Status::Ok),
        "{checks:?}"
    );

    idp.set(JwksBehaviour::Fail);
    let checks = check::self_check(&gate_config(&idp, &[])).await;
    let jwks = checks.iter().find(|c| c.id == "as.jwks").unwrap();
    assert_eq!(jwks.status, Status::Fail);
    assert!(jwks.message.contains("answers 500"), "{jwks:?}");
}
