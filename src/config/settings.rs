//! The table of every setting: its variable, its default and its one line of `--help`.
//!
//! The binary builds its command-line flags from [`SETTINGS`], and [`super::vars::Vars`] takes
//! defaults from it, so a setting's default is written in exactly one place.

use super::policy::DEFAULT_ALGORITHMS;
use super::vars::Var;

/// One configuration setting, as it appears in the environment, on the command line and in `--help`.
pub struct Setting {
    /// Environment variable name, e.g. `LISTEN_ADDR`.
    pub var: Var,
    /// Default value, shown in `--help`; `None` when there is none or it is derived from another setting.
    pub default: Option<&'static str>,
    /// One line for `--help`.
    pub help: &'static str,
}

const fn s(var: Var, default: Option<&'static str>, help: &'static str) -> Setting {
    Setting { var, default, help }
}

/// The table every other part of configuration is derived from (flags, help, defaults).
pub const SETTINGS: &[Setting] = &[
    s(Var::LISTEN_ADDR,
        Some("0.0.0.0:8080"),
        "Address and port to listen on",
    ),
    s(Var::UPSTREAM_URL,
        None,
        "Upstream MCP server base URL (required), e.g. http://127.0.0.1:3000",
    ),
    s(Var::RESOURCE_URI,
        None,
        "Public URL of the MCP endpoint (required), e.g. https://mcp.example.com/mcp",
    ),
    s(Var::AUTHORIZATION_SERVER,
        None,
        "Issuer URL(s) of the authorization server(s) (required; comma-separated)",
    ),
    s(Var::JWKS_URI,
        None,
        "JWKS URL, one per AUTHORIZATION_SERVER in the same order [default: discovered from each server's metadata]",
    ),
    s(Var::EXPECTED_ISSUER,
        None,
        "Exact `iss` of each AUTHORIZATION_SERVER's tokens, one per server in the same order [default: AUTHORIZATION_SERVER]",
    ),
    s(Var::EXPECTED_AUDIENCE,
        None,
        "Accepted `aud` values, comma-separated [default: RESOURCE_URI]",
    ),
    s(Var::REQUIRED_SCOPES,
        None,
        "Scopes every token must carry, comma- or space-separated",
    ),
    s(Var::SCOPES_SUPPORTED,
        None,
        "Scopes advertised in the metadata [default: REQUIRED_SCOPES]",
    ),
    s(Var::RESOURCE_NAME,
        None,
        "Human-readable name in the metadata (resource_name)",
    ),
    s(Var::RESOURCE_DOCUMENTATION,
        None,
        "Documentation URL in the metadata (resource_documentation)",
    ),
    s(Var::ALLOWED_ALGORITHMS,
        Some(DEFAULT_ALGORITHMS),
        "JWS algorithms accepted (none and HS* are always refused)",
    ),
    s(Var::ACCESS_TOKEN_TYPE,
        Some("any"),
        "`any` (at+jwt, application/at+jwt, JWT or no typ) or `at+jwt` (RFC 9068)",
    ),
    s(Var::REQUIRED_CLAIMS,
        None,
        "Claim rules, e.g. email_verified=true,realm_access.roles=mcp-user",
    ),
    s(Var::CLOCK_SKEW, Some("60s"), "Leeway for exp, nbf and iat"),
    s(Var::JWKS_REFRESH_INTERVAL,
        Some("10m"),
        "Background JWKS refresh period",
    ),
    s(Var::JWKS_MIN_REFRESH_INTERVAL,
        Some("10s"),
        "Minimum gap between refetches triggered by unknown key ids",
    ),
    s(Var::JWKS_FETCH_TIMEOUT,
        Some("5s"),
        "Bound on each JWKS or metadata fetch (connect + response)",
    ),
    s(Var::FORWARD_TOKEN,
        Some("false"),
        "Forward the client's Authorization header to the upstream",
    ),
    s(Var::UPSTREAM_TIMEOUT,
        Some("5m"),
        "Time allowed for the upstream's response headers (then 504). A tools/call answered with plain JSON sends its headers only when the tool finishes, so this is not shorter than MCP clients wait: TypeScript SDK 60 s per request, Python SDK 5 min read timeout",
    ),
    s(Var::SHUTDOWN_TIMEOUT,
        Some("10s"),
        "How long in-flight requests may finish after SIGTERM/SIGINT",
    ),
    s(Var::MAX_REQUEST_BODY,
        Some("4MiB"),
        "Largest request body forwarded (then 413)",
    ),
    s(Var::MAX_TOKEN_SIZE,
        Some("16KiB"),
        "Largest bearer token parsed (larger ones are refused unread)",
    ),
    s(Var::MAX_HEADER_SIZE,
        Some("64KiB"),
        "Largest request header block (then 431)",
    ),
    s(Var::HEADER_READ_TIMEOUT,
        Some("10s"),
        "Time a client has to send its request headers",
    ),
    s(Var::IDLE_TIMEOUT,
        Some("60s"),
        "Time an HTTP/2 client connection may stay open with no request in flight (HTTP/1.1 keep-alive waits are bounded by HEADER_READ_TIMEOUT)",
    ),
    s(Var::ALLOW_INSECURE_HTTP,
        Some("false"),
        "Allow http:// URLs for non-loopback authorization servers and JWKS",
    ),
    s(Var::HEALTH_PATH, Some("/healthz"), "Liveness path (no auth)"),
    s(Var::READY_PATH,
        Some("/readyz"),
        "Readiness path (no auth; 503 until signing keys are loaded)",
    ),
    s(Var::METADATA_MAX_AGE,
        Some("1h"),
        "Cache-Control max-age of the protected resource metadata",
    ),
    s(Var::TLS_CERT_FILE,
        None,
        "PEM certificate chain: serve HTTPS directly (with TLS_KEY_FILE); re-read when it changes",
    ),
    s(Var::TLS_KEY_FILE, None, "PEM private key for TLS_CERT_FILE"),
    s(Var::TLS_RELOAD_INTERVAL,
        Some("10s"),
        "How often the TLS files are checked for a renewed certificate",
    ),
    s(Var::METRICS_ADDR,
        None,
        "Address for Prometheus metrics at /metrics, e.g. 127.0.0.1:9090 [default: off]",
    ),
    s(Var::TOKEN_CACHE_SIZE,
        Some("10000"),
        "Verified tokens remembered to skip repeat signature checks; 0 disables",
    ),
    s(Var::CORS_ALLOWED_ORIGINS,
        None,
        "Browser origins allowed to call the MCP endpoint, comma-separated",
    ),
    s(Var::LOG_LEVEL,
        Some("info"),
        "Log level: error, warn, info, debug, trace",
    ),
    s(Var::LOG_FORMAT, Some("json"), "Log format: json or pretty"),
    s(Var::MAX_CONNECTIONS,
        Some("10000"),
        "Most client connections served at once; further ones wait in the listen backlog",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_has_exactly_one_setting() {
        for var in Var::ALL {
            let n = SETTINGS.iter().filter(|s| s.var == *var).count();
            assert_eq!(n, 1, "{var}");
        }
        assert_eq!(SETTINGS.len(), Var::ALL.len());
    }
}
