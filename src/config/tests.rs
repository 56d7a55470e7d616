//! Tests of [`super`]: the rules it implements, one table or case each.

use super::*;
use crate::auth::keys::Alg;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = [
        ("UPSTREAM_URL", "http://127.0.0.1:3000"),
        ("RESOURCE_URI", "https://mcp.example.com/mcp"),
        ("AUTHORIZATION_SERVER", "https://idp.example.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in pairs {
        m.insert(k.to_string(), v.to_string());
    }
    m
}

fn err(pairs: &[(&str, &str)]) -> String {
    Config::from_vars(&vars(pairs)).unwrap_err().to_string()
}

#[test]
fn defaults_apply_and_derive_from_other_settings() {
    let (c, warnings) = Config::from_vars(&vars(&[])).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8080");
    assert_eq!(c.issuers[0].policy.issuer, "https://idp.example.com");
    assert_eq!(c.policy.audiences, vec!["https://mcp.example.com/mcp"]);
    assert_eq!(c.policy.algorithms.len(), 9);
    assert_eq!(c.policy.clock_skew_secs, 60);
    assert_eq!(c.max_token_size, 16 * 1024);
    assert_eq!(c.issuers[0].policy.max_token_size, 16 * 1024);
    assert_eq!(c.max_request_body, 4 << 20);
    assert!(!c.forward_token);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.max_connections, 10_000);
    assert_eq!(c.max_connections_per_ip, Some(1000));
    assert_eq!(c.send_timeout, Duration::from_secs(30));
}

#[test]
fn metadata_lists_the_scopes_the_rules_require_and_challenges_name_the_base_scopes() {
    let (c, _) = Config::from_vars(&vars(&[
        ("REQUIRED_SCOPES", "mcp:tools"),
        (
            "TOOL_SCOPES",
            "delete_*=mcp:admin;export_*=mcp:tools mcp:export",
        ),
    ]))
    .unwrap();
    assert_eq!(c.scopes_supported, ["mcp:tools", "mcp:admin", "mcp:export"]);
    assert_eq!(c.challenge_scopes, ["mcp:tools"]);
    assert_eq!(c.mcp_policy.rules.base_scopes, ["mcp:tools"]);
}

#[test]
fn upstream_timeout_default_is_not_shorter_than_mcp_clients_wait() {
    // A tools/call answered with plain JSON gets its headers when the tool ends; the
    // TypeScript SDK waits 60 s for it and the Python SDK's read timeout is 5 minutes.
    let (c, _) = Config::from_vars(&vars(&[])).unwrap();
    assert_eq!(c.upstream_timeout, Duration::from_secs(300));
}

#[test]
fn each_required_variable_is_named_when_missing() {
    for var in ["UPSTREAM_URL", "RESOURCE_URI", "AUTHORIZATION_SERVER"] {
        let mut m = vars(&[]);
        m.remove(var);
        let e = Config::from_vars(&m).unwrap_err().to_string();
        assert!(e.starts_with(var), "{e}");
    }
}

#[test]
fn empty_values_count_as_unset() {
    let (c, _) = Config::from_vars(&vars(&[("JWKS_URI", ""), ("CLOCK_SKEW", " ")])).unwrap();
    assert!(c.issuers[0].jwks_uri.is_none());
    assert_eq!(c.policy.clock_skew_secs, 60);
}

#[test]
fn each_authorization_server_is_an_issuer_with_its_own_keys() {
    let (c, warnings) = Config::from_vars(&vars(&[(
        "AUTHORIZATION_SERVER",
        "https://a.example.com, https://b.example.com/realms/x",
    )]))
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let issuers: Vec<_> = c.issuers.iter().map(|t| t.issuer()).collect();
    assert_eq!(
        issuers,
        ["https://a.example.com", "https://b.example.com/realms/x"]
    );
    assert!(c.issuers.iter().all(|t| t.jwks_uri.is_none()));

    // EXPECTED_ISSUER and JWKS_URI pair up with the servers in order.
    let (c, warnings) = Config::from_vars(&vars(&[
        (
            "AUTHORIZATION_SERVER",
            "https://a.example.com https://b.example.com",
        ),
        (
            "EXPECTED_ISSUER",
            "https://a.example.com,https://sts.example.net/t/",
        ),
        (
            "JWKS_URI",
            "https://a.example.com/keys,https://b.example.com/keys",
        ),
    ]))
    .unwrap();
    assert_eq!(c.issuers[1].server, "https://b.example.com");
    assert_eq!(c.issuers[1].issuer(), "https://sts.example.net/t/");
    assert_eq!(
        c.issuers[1].jwks_uri.as_ref().map(url::Url::as_str),
        Some("https://b.example.com/keys")
    );
    // Each issuer's policy carries its own `iss`; nothing is shared but the rules.
    assert_eq!(c.issuers[0].policy.issuer, "https://a.example.com");
    assert_eq!(c.issuers[1].policy.issuer, "https://sts.example.net/t/");
    assert_eq!(c.issuers[1].policy.audiences, c.policy.audiences);
    // An issuer that is not its server's URL is legitimate (Entra v1 tokens) but worth a word.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("https://sts.example.net/t/"),
        "{warnings:?}"
    );
}

#[test]
fn per_server_lists_must_match_the_servers() {
    let two = (
        "AUTHORIZATION_SERVER",
        "https://a.example.com,https://b.example.com",
    );
    for (var, value) in [
        ("EXPECTED_ISSUER", "https://a.example.com"),
        ("JWKS_URI", "https://a.example.com/keys"),
        ("JWKS_URI", "https://a/k https://b/k https://c/k"),
    ] {
        let e = err(&[two, (var, value)]);
        assert!(e.starts_with(&format!("{var}=")), "{e}");
        assert!(
            e.contains("one entry per AUTHORIZATION_SERVER entry"),
            "{e}"
        );
        assert!(e.contains("2 here"), "{e}");
    }
    // Two servers with one issuer: a token's `iss` would not say whose keys to use.
    let e = err(&[(
        "AUTHORIZATION_SERVER",
        "https://a.example.com https://a.example.com",
    )]);
    assert!(e.starts_with("AUTHORIZATION_SERVER="), "{e}");
    let e = err(&[
        two,
        (
            "EXPECTED_ISSUER",
            "https://x.example.com https://x.example.com",
        ),
    ]);
    assert!(e.starts_with("EXPECTED_ISSUER="), "{e}");
    let e = err(&[("AUTHORIZATION_SERVER", " , ")]);
    assert!(e.starts_with("AUTHORIZATION_SERVER="), "{e}");
}

#[test]
fn malformed_values_name_the_variable_and_the_value() {
    let cases = [
        ("LISTEN_ADDR", "localhost"),
        ("CLOCK_SKEW", "sixty"),
        ("FORWARD_TOKEN", "maybe"),
        ("MAX_REQUEST_BODY", "4 parsecs"),
        ("ALLOWED_ALGORITHMS", "HS256"),
        ("ALLOWED_ALGORITHMS", "none"),
        ("ACCESS_TOKEN_TYPE", "jwt-ish"),
        ("REQUIRED_CLAIMS", "no_equals_sign"),
        ("LOG_FORMAT", "xml"),
        ("UPSTREAM_URL", "ftp://x"),
        ("JWKS_URI", "not a url"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com/path"),
        ("REQUIRED_SCOPES", "café"),
        ("UPSTREAM_TIMEOUT", "0s"),
        ("MAX_CONNECTIONS", "0"),
        ("MAX_CONNECTIONS", "lots"),
        ("MAX_CONNECTIONS_PER_IP", "-1"),
        ("SEND_TIMEOUT", "0s"),
        ("SEND_TIMEOUT", "forever"),
        ("CLAIM_HEADERS", "sub=Authorization"),
        ("CLAIM_HEADERS", "sub"),
        ("IDENTITY_HEADERS_STRIP", "*"),
        ("TOKEN_VALIDATION", "opaque"),
    ];
    for (var, value) in cases {
        let e = err(&[(var, value)]);
        assert!(e.starts_with(&format!("{var}=")), "{var}: {e}");
        assert!(e.contains(value), "{var}: {e}");
    }
}

#[test]
fn resource_uri_that_clients_would_not_match_is_an_error() {
    for bad in [
        "https://mcp.example.com/mcp/",
        "https://mcp.example.com/",
        "https://mcp.example.com/mcp#frag",
        "https://MCP.example.com/mcp",
        "https://mcp.example.com:443/mcp",
        "mcp.example.com/mcp",
        "http://mcp.example.com/mcp",
    ] {
        let e = err(&[("RESOURCE_URI", bad)]);
        assert!(e.starts_with("RESOURCE_URI="), "{bad}: {e}");
    }
    // The example in the message is a resource, not an IdP.
    let e = err(&[("RESOURCE_URI", "mcp.example.com/mcp")]);
    assert!(e.contains("such as https://mcp.example.com/mcp"), "{e}");
    for good in [
        "https://mcp.example.com",
        "https://mcp.example.com/mcp",
        "http://127.0.0.1:8080/mcp",
    ] {
        let (c, _) = Config::from_vars(&vars(&[
            ("RESOURCE_URI", good),
            ("EXPECTED_AUDIENCE", good),
        ]))
        .unwrap();
        assert_eq!(c.resource_uri, good);
    }
}

#[test]
fn plain_http_identity_provider_needs_loopback_or_explicit_opt_in() {
    let e = err(&[("AUTHORIZATION_SERVER", "http://idp.example.com")]);
    assert!(e.starts_with("AUTHORIZATION_SERVER="), "{e}");
    let e = err(&[("JWKS_URI", "http://idp.example.com/jwks")]);
    assert!(e.starts_with("JWKS_URI="), "{e}");
    assert!(Config::from_vars(&vars(&[("AUTHORIZATION_SERVER", "http://127.0.0.1:9000")])).is_ok());
    assert!(Config::from_vars(&vars(&[("AUTHORIZATION_SERVER", "http://localhost:9000")])).is_ok());
    assert!(Config::from_vars(&vars(&[
        ("AUTHORIZATION_SERVER", "http://idp.internal"),
        ("ALLOW_INSECURE_HTTP", "true")
    ]))
    .is_ok());
}

#[test]
fn likely_mistakes_are_warnings_not_errors() {
    let (_, w) =
        Config::from_vars(&vars(&[("EXPECTED_AUDIENCE", "api://something-else")])).unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("EXPECTED_AUDIENCE"));
}

#[test]
fn lists_accept_commas_spaces_or_both() {
    let (c, _) = Config::from_vars(&vars(&[("REQUIRED_SCOPES", "a, b  c,,d")])).unwrap();
    assert_eq!(c.policy.required_scopes, vec!["a", "b", "c", "d"]);
    assert_eq!(c.scopes_supported, c.policy.required_scopes);
    let (c, _) = Config::from_vars(&vars(&[("ALLOWED_ALGORITHMS", "ES256,EdDSA")])).unwrap();
    assert_eq!(c.policy.algorithms, vec![Alg::ES256, Alg::EdDSA]);
}

#[test]
fn introspection_is_off_by_default_and_needs_credentials_and_one_server() {
    let (c, _) = Config::from_vars(&vars(&[])).unwrap();
    assert!(c.introspection.is_none());
    let creds = [
        ("TOKEN_VALIDATION", "auto"),
        ("INTROSPECTION_CLIENT_ID", "gate"),
        ("INTROSPECTION_CLIENT_SECRET", "s3cret"),
    ];
    let (c, _) = Config::from_vars(&vars(&creds)).unwrap();
    let i = c.introspection.unwrap();
    assert_eq!(i.cache_max_age, Duration::from_secs(60));
    assert!(
        !format!("{i:?}").contains("s3cret"),
        "the secret is never printed"
    );
    let e = err(&[("TOKEN_VALIDATION", "introspect")]);
    assert!(e.starts_with("INTROSPECTION_CLIENT_ID"), "{e}");
    let mut two = creds.to_vec();
    two.push((
        "AUTHORIZATION_SERVER",
        "https://a.example.com https://b.example.com",
    ));
    assert!(err(&two).starts_with("TOKEN_VALIDATION="));
    let mut post = creds.to_vec();
    post.push(("INTROSPECTION_AUTH_METHOD", "private_key_jwt"));
    assert!(err(&post).starts_with("INTROSPECTION_AUTH_METHOD="));
}

#[test]
fn durations_read_like_people_write_them() {
    let (c, _) = Config::from_vars(&vars(&[("UPSTREAM_TIMEOUT", "1m30s")])).unwrap();
    assert_eq!(c.upstream_timeout, Duration::from_secs(90));
}
