//! Every setting of the gate: its environment variable, flag, default and validation.
//!
//! Settings are read once, at start, into a typed [`Config`]; nothing reads the environment later.
//! Parsing works on a plain map of variables so tests never touch the process environment; the
//! binary builds that map from clap (flags override the environment). The names follow the Go
//! mcp-gate so the gate is a drop-in replacement.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::auth::keys::Alg;
use crate::auth::token::{ClaimRule, Policy, TokenType};

/// One configuration setting, as it appears in the environment, on the command line and in `--help`.
pub struct Setting {
    /// Environment variable name, e.g. `LISTEN_ADDR`.
    pub var: &'static str,
    /// Default value, shown in `--help`; `None` when there is none or it is derived from another setting.
    pub default: Option<&'static str>,
    /// One line for `--help`.
    pub help: &'static str,
}

const fn s(var: &'static str, default: Option<&'static str>, help: &'static str) -> Setting {
    Setting { var, default, help }
}

/// The allow-list used when `ALLOWED_ALGORITHMS` is unset: every asymmetric JWS algorithm in common use.
pub const DEFAULT_ALGORITHMS: &str = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA";

/// The table every other part of configuration is derived from (flags, help, defaults).
pub const SETTINGS: &[Setting] = &[
    s(
        "LISTEN_ADDR",
        Some("0.0.0.0:8080"),
        "Address and port to listen on",
    ),
    s(
        "UPSTREAM_URL",
        None,
        "Upstream MCP server base URL (required), e.g. http://127.0.0.1:3000",
    ),
    s(
        "RESOURCE_URI",
        None,
        "Public URL of the MCP endpoint (required), e.g. https://mcp.example.com/mcp",
    ),
    s(
        "AUTHORIZATION_SERVER",
        None,
        "Issuer URL(s) of the authorization server(s) (required; comma-separated)",
    ),
    s(
        "JWKS_URI",
        None,
        "JWKS URL, one per AUTHORIZATION_SERVER in the same order [default: discovered from each server's metadata]",
    ),
    s(
        "EXPECTED_ISSUER",
        None,
        "Exact `iss` of each AUTHORIZATION_SERVER's tokens, one per server in the same order [default: AUTHORIZATION_SERVER]",
    ),
    s(
        "EXPECTED_AUDIENCE",
        None,
        "Accepted `aud` values, comma-separated [default: RESOURCE_URI]",
    ),
    s(
        "REQUIRED_SCOPES",
        None,
        "Scopes every token must carry, comma- or space-separated",
    ),
    s(
        "SCOPES_SUPPORTED",
        None,
        "Scopes advertised in the metadata [default: REQUIRED_SCOPES]",
    ),
    s(
        "RESOURCE_NAME",
        None,
        "Human-readable name in the metadata (resource_name)",
    ),
    s(
        "RESOURCE_DOCUMENTATION",
        None,
        "Documentation URL in the metadata (resource_documentation)",
    ),
    s(
        "ALLOWED_ALGORITHMS",
        Some(DEFAULT_ALGORITHMS),
        "JWS algorithms accepted (none and HS* are always refused)",
    ),
    s(
        "ACCESS_TOKEN_TYPE",
        Some("any"),
        "`any` (at+jwt, application/at+jwt, JWT or no typ) or `at+jwt` (RFC 9068)",
    ),
    s(
        "REQUIRED_CLAIMS",
        None,
        "Claim rules, e.g. email_verified=true,realm_access.roles=mcp-user",
    ),
    s("CLOCK_SKEW", Some("60s"), "Leeway for exp, nbf and iat"),
    s(
        "JWKS_REFRESH_INTERVAL",
        Some("10m"),
        "Background JWKS refresh period",
    ),
    s(
        "JWKS_MIN_REFRESH_INTERVAL",
        Some("10s"),
        "Minimum gap between refetches triggered by unknown key ids",
    ),
    s(
        "JWKS_FETCH_TIMEOUT",
        Some("5s"),
        "Bound on each JWKS or metadata fetch (connect + response)",
    ),
    s(
        "FORWARD_TOKEN",
        Some("false"),
        "Forward the client's Authorization header to the upstream",
    ),
    s(
        "UPSTREAM_TIMEOUT",
        Some("30s"),
        "Time allowed for the upstream's response headers (then 504)",
    ),
    s(
        "SHUTDOWN_TIMEOUT",
        Some("10s"),
        "How long in-flight requests may finish after SIGTERM/SIGINT",
    ),
    s(
        "MAX_REQUEST_BODY",
        Some("4MiB"),
        "Largest request body forwarded (then 413)",
    ),
    s(
        "MAX_TOKEN_SIZE",
        Some("16KiB"),
        "Largest bearer token parsed (larger ones are refused unread)",
    ),
    s(
        "MAX_HEADER_SIZE",
        Some("64KiB"),
        "Largest request header block (then 431)",
    ),
    s(
        "HEADER_READ_TIMEOUT",
        Some("10s"),
        "Time a client has to send its request headers",
    ),
    s(
        "IDLE_TIMEOUT",
        Some("60s"),
        "Time an HTTP/2 client connection may stay open with no request in flight (HTTP/1.1 keep-alive waits are bounded by HEADER_READ_TIMEOUT)",
    ),
    s(
        "ALLOW_INSECURE_HTTP",
        Some("false"),
        "Allow http:// URLs for non-loopback authorization servers and JWKS",
    ),
    s("HEALTH_PATH", Some("/healthz"), "Liveness path (no auth)"),
    s(
        "READY_PATH",
        Some("/readyz"),
        "Readiness path (no auth; 503 until signing keys are loaded)",
    ),
    s(
        "METADATA_MAX_AGE",
        Some("1h"),
        "Cache-Control max-age of the protected resource metadata",
    ),
    s(
        "TLS_CERT_FILE",
        None,
        "PEM certificate chain: serve HTTPS directly (with TLS_KEY_FILE); re-read when it changes",
    ),
    s("TLS_KEY_FILE", None, "PEM private key for TLS_CERT_FILE"),
    s(
        "TLS_RELOAD_INTERVAL",
        Some("10s"),
        "How often the TLS files are checked for a renewed certificate",
    ),
    s(
        "METRICS_ADDR",
        None,
        "Address for Prometheus metrics at /metrics, e.g. 127.0.0.1:9090 [default: off]",
    ),
    s(
        "TOKEN_CACHE_SIZE",
        Some("10000"),
        "Verified tokens remembered to skip repeat signature checks; 0 disables",
    ),
    s(
        "CORS_ALLOWED_ORIGINS",
        None,
        "Browser origins allowed to call the MCP endpoint, comma-separated",
    ),
    s(
        "LOG_LEVEL",
        Some("info"),
        "Log level: error, warn, info, debug, trace",
    ),
    s("LOG_FORMAT", Some("json"), "Log format: json or pretty"),
    s(
        "MAX_CONNECTIONS",
        Some("10000"),
        "Most client connections served at once; further ones wait in the listen backlog",
    ),
    s(
        "TRUSTED_PROXIES",
        None,
        "Front proxies (CIDRs or addresses, comma-separated) whose X-Forwarded-* and Forwarded headers are believed [default: none]",
    ),
];

/// A setting that cannot be used; the message names the variable, the value and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {expected}")]
    Missing { var: &'static str, expected: String },
    #[error("{var}={value:?} is invalid: {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: String,
    },
}

fn invalid(var: &'static str, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// One authorization server whose access tokens the gate accepts, with its own signing keys.
#[derive(Debug, Clone, PartialEq)]
pub struct TrustedIssuer {
    /// The `AUTHORIZATION_SERVER` entry: whose metadata names the keys.
    pub server: String,
    /// The exact `iss` of its tokens (`EXPECTED_ISSUER`, by default `server`).
    pub issuer: String,
    /// `JWKS_URI` for this server, or `None` to discover it from the server's metadata.
    pub jwks_uri: Option<url::Url>,
}

/// The validated configuration of one gate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gate listens.
    pub listen_addr: SocketAddr,
    /// Upstream MCP server, e.g. `http://127.0.0.1:3000` or `http://svc/base`.
    pub upstream: url::Url,
    /// The resource identifier, byte for byte as configured (RFC 9728 `resource`).
    pub resource_uri: String,
    /// The parsed form of `resource_uri`.
    pub resource: url::Url,
    /// Authorization server issuer identifiers, as listed in the metadata.
    pub authorization_servers: Vec<String>,
    /// The servers whose tokens are accepted, one per `authorization_servers` entry, same order.
    pub issuers: Vec<TrustedIssuer>,
    /// What a token must satisfy; `policy.issuer` is the first issuer's, and each entry of
    /// `issuers` applies it with its own `iss`.
    pub policy: Policy,
    /// Advertised in the metadata.
    pub scopes_supported: Vec<String>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
    pub jwks_refresh_interval: Duration,
    pub jwks_min_refresh_interval: Duration,
    pub jwks_fetch_timeout: Duration,
    pub forward_token: bool,
    pub upstream_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_request_body: u64,
    pub max_header_size: usize,
    pub header_read_timeout: Duration,
    /// How long a client connection may have no request in flight before it is closed.
    pub idle_timeout: Duration,
    pub allow_insecure_http: bool,
    pub health_path: String,
    pub ready_path: String,
    pub metadata_max_age: Duration,
    /// Exact origins (scheme://host[:port]) browsers may call the MCP endpoint from.
    pub cors_allowed_origins: Vec<String>,
    /// Certificate and key files, when the gate terminates TLS itself.
    pub tls: Option<TlsFiles>,
    pub tls_reload_interval: Duration,
    /// Where Prometheus metrics are served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    /// Capacity of the verified-token cache (0 = off).
    pub token_cache_size: usize,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Client connections served at once; the accept loop waits for a free slot beyond that.
    pub max_connections: usize,
    /// Peers whose forwarded headers are believed (`TRUSTED_PROXIES`); empty trusts nobody.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// Reads settings out of a map of variables, applying the table's defaults; empty values count as unset.
struct Vars<'a>(&'a HashMap<String, String>);

impl<'a> Vars<'a> {
    fn get(&self, var: &'static str) -> Option<&'a str> {
        let explicit = self.0.get(var).map(|v| v.trim()).filter(|v| !v.is_empty());
        explicit.or_else(|| {
            SETTINGS
                .iter()
                .find(|s| s.var == var)
                .and_then(|s| s.default)
        })
    }

    fn required(&self, var: &'static str, expected: &str) -> Result<&'a str, ConfigError> {
        self.get(var).ok_or_else(|| ConfigError::Missing {
            var,
            expected: expected.to_string(),
        })
    }

    fn duration(&self, var: &'static str) -> Result<Duration, ConfigError> {
        let raw = self.required(var, "a duration such as 30s or 5m")?;
        humantime::parse_duration(raw)
            .map_err(|_| invalid(var, raw, "a duration such as 30s, 5m or 1h"))
    }

    fn bool(&self, var: &'static str) -> Result<bool, ConfigError> {
        let raw = self.required(var, "true or false")?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(invalid(var, raw, "true or false")),
        }
    }

    fn size(&self, var: &'static str) -> Result<u64, ConfigError> {
        let raw = self.required(var, "a size such as 4MiB")?;
        parse_size(raw).ok_or_else(|| {
            invalid(
                var,
                raw,
                "a size in bytes, or with a unit: 512KiB, 4MiB, 1MB",
            )
        })
    }

    fn list(&self, var: &'static str) -> Vec<String> {
        self.get(var).map(split_list).unwrap_or_default()
    }
}

/// Lists accept commas, spaces or both.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_size(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (num, unit) = raw.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// True for `localhost` and loopback addresses, where plain HTTP cannot be intercepted off-host.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses an absolute http(s) URL; `https` is demanded unless the host is loopback or insecure HTTP is allowed.
fn secure_url(var: &'static str, raw: &str, allow_insecure: bool) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw).map_err(|_| {
        let example = match var {
            "RESOURCE_URI" => "https://mcp.example.com/mcp",
            _ => "https://idp.example.com",
        };
        invalid(var, raw, format!("an absolute URL such as {example}"))
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure || is_loopback_host(&url) => Ok(url),
        "http" => Err(invalid(
            var,
            raw,
            "an https:// URL (plain http is only allowed for loopback hosts or with ALLOW_INSECURE_HTTP=true)",
        )),
        _ => Err(invalid(var, raw, "an http(s) URL")),
    }
}

/// Things that are probably wrong but do not certainly break clients; logged at start.
pub type Warnings = Vec<String>;

impl Config {
    /// Validates a map of settings (environment variable name → value).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<(Config, Warnings), ConfigError> {
        let v = Vars(vars);
        let mut warnings = Vec::new();

        let raw = v.required("LISTEN_ADDR", "host:port")?;
        let listen_addr = raw.parse().map_err(|_| {
            invalid(
                "LISTEN_ADDR",
                raw,
                "an IP address and port such as 0.0.0.0:8080",
            )
        })?;

        let allow_insecure_http = v.bool("ALLOW_INSECURE_HTTP")?;

        let raw = v.required(
            "UPSTREAM_URL",
            "the upstream MCP server's URL, e.g. http://127.0.0.1:3000",
        )?;
        let upstream = url::Url::parse(raw)
            .map_err(|_| invalid("UPSTREAM_URL", raw, "an absolute http(s) URL"))?;
        if !matches!(upstream.scheme(), "http" | "https") || upstream.host().is_none() {
            return Err(invalid("UPSTREAM_URL", raw, "an absolute http(s) URL"));
        }
        if upstream.query().is_some() || upstream.fragment().is_some() {
            return Err(invalid(
                "UPSTREAM_URL",
                raw,
                "a URL without query or fragment",
            ));
        }

        let resource_uri = v
            .required(
                "RESOURCE_URI",
                "the public URL clients use, e.g. https://mcp.example.com/mcp",
            )?
            .to_string();
        let resource = parse_resource(&resource_uri, allow_insecure_http)?;

        let raw = v.required(
            "AUTHORIZATION_SERVER",
            "the authorization server's issuer URL",
        )?;
        let authorization_servers = split_list(raw);
        if authorization_servers.is_empty() {
            return Err(invalid(
                "AUTHORIZATION_SERVER",
                raw,
                "at least one issuer URL",
            ));
        }
        for server in &authorization_servers {
            let url = secure_url("AUTHORIZATION_SERVER", server, allow_insecure_http)?;
            if url.fragment().is_some() || url.query().is_some() {
                return Err(invalid(
                    "AUTHORIZATION_SERVER",
                    server,
                    "an issuer URL without query or fragment",
                ));
            }
        }

        // JWKS_URI and EXPECTED_ISSUER pair up with AUTHORIZATION_SERVER entry by entry.
        let per_server = |var: &'static str| -> Result<Vec<String>, ConfigError> {
            let Some(raw) = v.get(var) else {
                return Ok(Vec::new());
            };
            let list = split_list(raw);
            if list.len() != authorization_servers.len() {
                return Err(invalid(
                    var,
                    raw,
                    format!(
                        "one entry per AUTHORIZATION_SERVER entry, in the same order ({} here, {} given)",
                        authorization_servers.len(),
                        list.len()
                    ),
                ));
            }
            Ok(list)
        };
        let jwks_uris = per_server("JWKS_URI")?
            .iter()
            .map(|raw| secure_url("JWKS_URI", raw, allow_insecure_http))
            .collect::<Result<Vec<_>, _>>()?;
        let expected_issuers = per_server("EXPECTED_ISSUER")?;
        let mut issuers: Vec<TrustedIssuer> = Vec::with_capacity(authorization_servers.len());
        for (i, server) in authorization_servers.iter().enumerate() {
            let issuer = expected_issuers.get(i).unwrap_or(server).clone();
            if issuers.iter().any(|t| t.issuer == issuer) {
                let var = if expected_issuers.is_empty() {
                    "AUTHORIZATION_SERVER"
                } else {
                    "EXPECTED_ISSUER"
                };
                return Err(invalid(
                    var,
                    &issuer,
                    "each issuer once (a token's `iss` must name exactly one server)",
                ));
            }
            if &issuer != server {
                warnings.push(format!(
                    "EXPECTED_ISSUER={issuer:?} differs from its AUTHORIZATION_SERVER={server:?}: tokens from that server are accepted only with iss={issuer:?}, and clients that check the server's metadata see the server's own issuer"
                ));
            }
            issuers.push(TrustedIssuer {
                server: server.clone(),
                issuer,
                jwks_uri: jwks_uris.get(i).cloned(),
            });
        }
        let issuer = issuers[0].issuer.clone();

        let audiences = match v.get("EXPECTED_AUDIENCE") {
            Some(raw) => split_list(raw),
            None => vec![resource_uri.clone()],
        };
        if !audiences.contains(&resource_uri) {
            warnings.push(format!(
                "EXPECTED_AUDIENCE does not contain RESOURCE_URI={resource_uri:?}: spec-following clients request tokens for the resource URI (RFC 8707), which the gate will refuse"
            ));
        }

        let raw = v.required("ALLOWED_ALGORITHMS", "a list of JWS algorithms")?;
        let mut algorithms = Vec::new();
        for name in split_list(raw) {
            let alg = Alg::from_name(&name).ok_or_else(|| {
                invalid(
                    "ALLOWED_ALGORITHMS",
                    &name,
                    format!("asymmetric JWS algorithms from: {DEFAULT_ALGORITHMS} (none and HMAC are never accepted)"),
                )
            })?;
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if algorithms.is_empty() {
            return Err(invalid("ALLOWED_ALGORITHMS", raw, "at least one algorithm"));
        }

        let raw = v.required("ACCESS_TOKEN_TYPE", "any or at+jwt")?;
        let token_type = match raw.to_ascii_lowercase().as_str() {
            "any" | "" => TokenType::Any,
            "at+jwt" | "application/at+jwt" => TokenType::AccessTokenJwt,
            _ => return Err(invalid("ACCESS_TOKEN_TYPE", raw, "`any` or `at+jwt`")),
        };

        let required_scopes = v.list("REQUIRED_SCOPES");
        for scope in &required_scopes {
            // RFC 6750 §3: scope tokens are %x21 / %x23-5B / %x5D-7E, so they can be quoted in a challenge.
            if !scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
            {
                return Err(invalid(
                    "REQUIRED_SCOPES",
                    scope,
                    "scope names of printable ASCII without \" or \\",
                ));
            }
        }
        let scopes_supported = match v.get("SCOPES_SUPPORTED") {
            Some(raw) => split_list(raw),
            None => required_scopes.clone(),
        };

        let claim_rules = match v.get("REQUIRED_CLAIMS") {
            Some(raw) => parse_claim_rules(raw)?,
            None => Vec::new(),
        };

        let clock_skew = v.duration("CLOCK_SKEW")?;
        if clock_skew > Duration::from_secs(600) {
            warnings.push(
                "CLOCK_SKEW is over 10 minutes: expired tokens stay usable that long".to_string(),
            );
        }
        let max_token_size = v.size("MAX_TOKEN_SIZE")?;

        let policy = Policy {
            issuer,
            audiences,
            algorithms,
            token_type,
            required_scopes,
            claim_rules,
            clock_skew_secs: clock_skew.as_secs(),
            max_token_size: usize::try_from(max_token_size).unwrap_or(usize::MAX),
        };

        let positive = |var: &'static str| -> Result<Duration, ConfigError> {
            let d = v.duration(var)?;
            if d.is_zero() {
                return Err(invalid(
                    var,
                    v.get(var).unwrap_or_default(),
                    "a duration above zero",
                ));
            }
            Ok(d)
        };

        let resource_documentation = v.get("RESOURCE_DOCUMENTATION").map(str::to_string);
        if let Some(doc) = &resource_documentation {
            url::Url::parse(doc)
                .map_err(|_| invalid("RESOURCE_DOCUMENTATION", doc, "an absolute URL"))?;
        }

        let path = |var: &'static str| -> Result<String, ConfigError> {
            let p = v.required(var, "a path such as /healthz")?;
            if !p.starts_with('/') || p.contains(['?', '#']) {
                return Err(invalid(var, p, "an absolute path such as /healthz"));
            }
            Ok(p.to_string())
        };

        let mut cors_allowed_origins = Vec::new();
        for origin in v.list("CORS_ALLOWED_ORIGINS") {
            let parsed = url::Url::parse(&origin).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https") && u.path() == "/" && !origin.ends_with('/')
            });
            if parsed.is_none() {
                return Err(invalid(
                    "CORS_ALLOWED_ORIGINS",
                    &origin,
                    "exact origins such as https://app.example.com (scheme://host[:port], no path)",
                ));
            }
            cors_allowed_origins.push(origin);
        }

        let log_format = match v.required("LOG_FORMAT", "json or pretty")? {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => return Err(invalid("LOG_FORMAT", other, "json or pretty")),
        };
        let log_level = v.required("LOG_LEVEL", "a level")?.to_ascii_lowercase();
        if !matches!(
            log_level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return Err(invalid(
                "LOG_LEVEL",
                &log_level,
                "error, warn, info, debug or trace",
            ));
        }

        let max_header_size = v.size("MAX_HEADER_SIZE")?;
        if !(8192..=16 << 20).contains(&max_header_size) {
            return Err(invalid(
                "MAX_HEADER_SIZE",
                v.get("MAX_HEADER_SIZE").unwrap_or_default(),
                "a size between 8KiB and 16MiB",
            ));
        }

        let config = Config {
            listen_addr,
            upstream,
            resource_uri,
            resource,
            authorization_servers,
            issuers,
            policy,
            scopes_supported,
            resource_name: v.get("RESOURCE_NAME").map(str::to_string),
            resource_documentation,
            jwks_refresh_interval: positive("JWKS_REFRESH_INTERVAL")?,
            jwks_min_refresh_interval: v.duration("JWKS_MIN_REFRESH_INTERVAL")?,
            jwks_fetch_timeout: positive("JWKS_FETCH_TIMEOUT")?,
            forward_token: v.bool("FORWARD_TOKEN")?,
            upstream_timeout: positive("UPSTREAM_TIMEOUT")?,
            shutdown_timeout: v.duration("SHUTDOWN_TIMEOUT")?,
            max_request_body: v.size("MAX_REQUEST_BODY")?,
            max_header_size: max_header_size as usize,
            header_read_timeout: positive("HEADER_READ_TIMEOUT")?,
            idle_timeout: positive("IDLE_TIMEOUT")?,
            allow_insecure_http,
            health_path: path("HEALTH_PATH")?,
            ready_path: path("READY_PATH")?,
            metadata_max_age: v.duration("METADATA_MAX_AGE")?,
            cors_allowed_origins,
            tls: tls_files(&v)?,
            tls_reload_interval: positive("TLS_RELOAD_INTERVAL")?,
            metrics_addr: match v.get("METRICS_ADDR") {
                Some(raw) => Some(raw.parse().map_err(|_| {
                    invalid(
                        "METRICS_ADDR",
                        raw,
                        "an IP address and port such as 127.0.0.1:9090",
                    )
                })?),
                None => None,
            },
            token_cache_size: {
                let raw = v.required("TOKEN_CACHE_SIZE", "a number of tokens")?;
                raw.parse().map_err(|_| {
                    invalid(
                        "TOKEN_CACHE_SIZE",
                        raw,
                        "a whole number of tokens (0 disables the cache)",
                    )
                })?
            },
            log_level,
            log_format,
            max_connections: {
                let raw = v.required("MAX_CONNECTIONS", "a number of connections")?;
                raw.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    invalid(
                        "MAX_CONNECTIONS",
                        raw,
                        "a whole number of connections above zero",
                    )
                })?
            },
            trusted_proxies: match v.get("TRUSTED_PROXIES") {
                Some(raw) => parse_trusted_proxies(raw)?,
                None => Vec::new(),
            },
        };
        Ok((config, warnings))
    }
}

/// `TRUSTED_PROXIES`: networks in CIDR notation (`10.0.0.0/8`, `fd00::/8`) or single addresses
/// (`127.0.0.1`, taken as /32 or /128), separated by commas or spaces. One bad entry refuses the
/// whole setting: a typo must not quietly trust nobody, or the wrong network.
fn parse_trusted_proxies(raw: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    split_list(raw)
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    invalid(
                        "TRUSTED_PROXIES",
                        raw,
                        format!(
                            "{entry:?} is not a CIDR or an IP address (e.g. 10.0.0.0/8,127.0.0.1/32)"
                        ),
                    )
                })
        })
        .collect()
}

/// The certificate and key files of a TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

fn tls_files(v: &Vars) -> Result<Option<TlsFiles>, ConfigError> {
    let readable = |var: &'static str, path: &str| -> Result<std::path::PathBuf, ConfigError> {
        std::fs::File::open(path)
            .map(|_| path.into())
            .map_err(|e| invalid(var, path, format!("a readable PEM file ({e})")))
    };
    match (v.get("TLS_CERT_FILE"), v.get("TLS_KEY_FILE")) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: readable("TLS_CERT_FILE", cert)?,
            key: readable("TLS_KEY_FILE", key)?,
        })),
        (Some(_), None) => Err(ConfigError::Missing {
            var: "TLS_KEY_FILE",
            expected: "the private key for TLS_CERT_FILE (set both or neither)".into(),
        }),
        (None, Some(_)) => Err(ConfigError::Missing {
            var: "TLS_CERT_FILE",
            expected: "the certificate chain for TLS_KEY_FILE (set both or neither)".into(),
        }),
    }
}

/// The resource identifier must be usable verbatim as an RFC 8707 `resource` and RFC 9728 `resource`.
fn parse_resource(raw: &str, allow_insecure: bool) -> Result<url::Url, ConfigError> {
    const VAR: &str = "RESOURCE_URI";
    let url = secure_url(VAR, raw, allow_insecure)?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(invalid(VAR, raw, "a URL without a fragment (RFC 8707 §2)"));
    }
    if url.path().len() > 1 && url.path().ends_with('/') {
        return Err(invalid(
            VAR,
            raw,
            "a URL without a trailing slash (clients compare it byte for byte), e.g. https://mcp.example.com/mcp",
        ));
    }
    // The url crate normalises (lower-cases the host, adds "/" to an empty path); clients compare the
    // string we publish with the URL they were given, so the configured string must already be canonical.
    let canonical = url.as_str();
    let same = canonical == raw || (url.path() == "/" && canonical.strip_suffix('/') == Some(raw));
    if !same {
        return Err(invalid(
            VAR,
            raw,
            format!(
                "a canonical URL (lower-case scheme and host, no default port), e.g. {canonical}"
            ),
        ));
    }
    if raw.ends_with('/') {
        return Err(invalid(
            VAR,
            raw,
            "a URL without a trailing slash, e.g. https://mcp.example.com",
        ));
    }
    Ok(url)
}

fn parse_claim_rules(raw: &str) -> Result<Vec<ClaimRule>, ConfigError> {
    let mut rules = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (path, value) = item.split_once('=').ok_or_else(|| {
            invalid(
                "REQUIRED_CLAIMS",
                item,
                "rules like claim=value or nested.claim=value, comma-separated",
            )
        })?;
        let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(invalid(
                "REQUIRED_CLAIMS",
                item,
                "a dotted claim path such as realm_access.roles",
            ));
        }
        rules.push(ClaimRule {
            path,
            value: value.trim().to_string(),
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(c.policy.issuer, "https://idp.example.com");
        assert_eq!(c.policy.audiences, vec!["https://mcp.example.com/mcp"]);
        assert_eq!(c.policy.algorithms.len(), 9);
        assert_eq!(c.policy.clock_skew_secs, 60);
        assert_eq!(c.policy.max_token_size, 16 * 1024);
        assert_eq!(c.max_request_body, 4 << 20);
        assert!(!c.forward_token);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.max_connections, 10_000);
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
        let issuers: Vec<_> = c.issuers.iter().map(|t| t.issuer.as_str()).collect();
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
        assert_eq!(c.issuers[1].issuer, "https://sts.example.net/t/");
        assert_eq!(
            c.issuers[1].jwks_uri.as_ref().map(url::Url::as_str),
            Some("https://b.example.com/keys")
        );
        assert_eq!(c.policy.issuer, "https://a.example.com");
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
        assert!(
            Config::from_vars(&vars(&[("AUTHORIZATION_SERVER", "http://127.0.0.1:9000")])).is_ok()
        );
        assert!(
            Config::from_vars(&vars(&[("AUTHORIZATION_SERVER", "http://localhost:9000")])).is_ok()
        );
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
    fn claim_rules_parse_dotted_paths() {
        let (c, _) = Config::from_vars(&vars(&[(
            "REQUIRED_CLAIMS",
            "email_verified=true, realm_access.roles=mcp-user",
        )]))
        .unwrap();
        assert_eq!(c.policy.claim_rules.len(), 2);
        assert_eq!(c.policy.claim_rules[1].path, vec!["realm_access", "roles"]);
        assert_eq!(c.policy.claim_rules[1].value, "mcp-user");
    }

    #[test]
    fn sizes_and_durations_read_like_people_write_them() {
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("MiB"), None);
        let (c, _) = Config::from_vars(&vars(&[("UPSTREAM_TIMEOUT", "1m30s")])).unwrap();
        assert_eq!(c.upstream_timeout, Duration::from_secs(90));
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses_and_a_bad_entry_stops_start_up() {
        let nets = |raw: &str| -> Vec<String> {
            parse_trusted_proxies(raw)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            nets("10.0.0.0/8,127.0.0.1/32"),
            ["10.0.0.0/8", "127.0.0.1/32"]
        );
        assert_eq!(nets("192.0.2.7 ::1"), ["192.0.2.7/32", "::1/128"]);
        assert_eq!(nets("10.1.2.3/8"), ["10.0.0.0/8"]);
        for bad in ["10.0.0.0/33", "10.0.0/8", "proxy.internal", "10.0.0.0/8,x"] {
            let e = parse_trusted_proxies(bad).unwrap_err().to_string();
            assert!(e.starts_with("TRUSTED_PROXIES="), "{bad}: {e}");
        }
        let (c, _) = Config::from_vars(&vars(&[])).unwrap();
        assert!(c.trusted_proxies.is_empty(), "trusts nobody by default");
        let e = Config::from_vars(&vars(&[("TRUSTED_PROXIES", "10.0.0.0/99")])).unwrap_err();
        assert!(e.to_string().contains("TRUSTED_PROXIES"), "{e}");
    }

    #[test]
    fn every_setting_is_documented_once() {
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.var).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
    }
}
