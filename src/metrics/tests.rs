use super::*;

#[test]
fn rendered_text_names_every_metric_with_bounded_labels() {
    let m = Metrics::new();
    m.request(200, Outcome::Allowed, Duration::from_millis(3));
    m.request(401, Outcome::Refused, Duration::from_micros(80));
    m.refusal("expired");
    m.issuer_configured("https://a");
    m.issuer_configured("https://b");
    m.jwks_fetch("https://a", true, Some(2));
    m.jwks_fetch("https://b", false, None);
    m.cache_hit();
    let text = m.render();
    for needle in [
        "mcp_gate_requests_total{status=\"200\",outcome=\"allowed\"} 1",
        "mcp_gate_requests_total{status=\"401\",outcome=\"refused\"} 1",
        "mcp_gate_refusals_total{reason=\"expired\"} 1",
        "mcp_gate_jwks_fetches_total{issuer=\"https://a\",result=\"ok\"} 1",
        "mcp_gate_jwks_fetches_total{issuer=\"https://b\",result=\"error\"} 1",
        "mcp_gate_signing_keys{issuer=\"https://a\"} 2",
        "mcp_gate_token_cache_hits_total 1",
        "mcp_gate_request_duration_seconds_bucket",
        "mcp_gate_key_set_age_seconds{issuer=\"https://a\"} 0",
        // Never loaded: -1, so an alert on the age catches an issuer that never came up.
        "mcp_gate_key_set_age_seconds{issuer=\"https://b\"} -1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}
