//! Every setting of the gate: its environment variable, flag, default and validation.
//!
//! Settings are read once, at start, into a typed [`Config`]; nothing reads the environment later.
//! Parsing works on a plain map of variables so tests never touch the process environment; the
//! binary builds that map from clap (flags override the environment). The names follow the Go
//! mcp-gate so the gate is a drop-in replacement.
//!
//! - [`vars`] — the variable names as typed constants, and the reader that applies defaults.
//! - [`settings`] — the table of every setting (name, default, `--help` line).
//! - [`parse`] — value parsers: lists, sizes, the resource and upstream URLs.
//! - [`issuers`] — `AUTHORIZATION_SERVER` paired with `JWKS_URI` and `EXPECTED_ISSUER`.
//! - [`policy`] — the token rules every issuer's policy shares.
//! - [`mcp_policy`] — `POLICY_FILE` / `TOOL_SCOPES`: the MCP authorization rules (issue #10).
//! - [`limits`] — sizes and counts; [`service`] — TLS, paths, CORS, logging.
//! - [`rate_limit`] — `RATE_LIMIT_*`: the quotas per level and the optional Redis store.
//! - [`dpop`] — sender-constrained tokens (RFC 9449).
//! - [`exchange`] — `TOKEN_EXCHANGE_*`: a token for the upstream by RFC 8693 token exchange.
//! - [`otel`] — `OTEL_*`: OpenTelemetry trace export (off unless an endpoint is set).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

pub(crate) mod dpop;
pub(crate) mod exchange;
pub(crate) mod introspection;
pub(crate) mod issuers;
pub(crate) mod limits;
pub(crate) mod mcp_policy;
pub(crate) mod otel;
pub(crate) mod parse;
pub(crate) mod policy;
pub(crate) mod rate_limit;
pub(crate) mod service;
pub(crate) mod settings;
pub(crate) mod vars;

pub(crate) use dpop::DpopSettings;
pub(crate) use issuers::TrustedIssuer;
pub(crate) use mcp_policy::McpPolicy;
pub(crate) use parse::is_loopback_host;
pub(crate) use policy::TokenRules;
pub use service::{LogFormat, TlsFiles};
pub use settings::{Setting, SETTINGS};
pub use vars::Var;

use vars::Vars;

/// A setting that cannot be used; the message names the variable, the value and what is expected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {expected}")]
    Missing { var: Var, expected: String },
    #[error("{var}={value:?} is invalid: {expected}")]
    Invalid {
        var: Var,
        value: String,
        expected: String,
    },
    /// A `POLICY_FILE` or `TOOL_SCOPES` whose rules cannot be used (the message names the rule).
    #[error(transparent)]
    Policy(#[from] crate::policy::file::PolicyError),
}

fn invalid(var: Var, value: &str, expected: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// Things that are probably wrong but do not certainly break clients; logged at start.
pub type Warnings = Vec<String>;

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
    /// The servers whose tokens are accepted, one per `authorization_servers` entry, same order;
    /// each carries its own complete policy.
    pub issuers: Vec<TrustedIssuer>,
    /// The rules every issuer's policy shares (no `iss`: that is each issuer's own).
    pub policy: TokenRules,
    /// Advertised in the metadata.
    pub scopes_supported: Vec<String>,
    /// The required scopes as 401/403 challenges name them: the form clients request
    /// ([`policy::challenge_scopes`]), which may differ from the form tokens carry.
    pub challenge_scopes: Vec<String>,
    pub resource_name: Option<String>,
    pub resource_documentation: Option<String>,
    pub jwks_refresh_interval: Duration,
    pub jwks_min_refresh_interval: Duration,
    pub jwks_fetch_timeout: Duration,
    pub forward_token: bool,
    pub upstream_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_request_body: u64,
    /// Tokens longer than this are refused before anything else, whichever issuer they name.
    pub max_token_size: usize,
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
    /// Connections one client address may hold at once (`None` = no cap).
    pub max_connections_per_ip: Option<usize>,
    /// How long a response may have bytes ready that the client does not take.
    pub send_timeout: Duration,
    /// Peers whose forwarded headers are believed (`TRUSTED_PROXIES`); empty trusts nobody.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The MCP authorization rules (`POLICY_FILE` / `TOOL_SCOPES`, `FILTER_TOOLS_LIST`).
    pub mcp_policy: McpPolicy,
    /// `RATE_LIMIT_*`: every limit off unless set.
    pub rate_limit: crate::limits::Settings,
    /// `CLAIM_HEADERS` and `IDENTITY_HEADERS_STRIP`: what the upstream is told of the caller.
    pub identity_headers: crate::http::identity::IdentityHeaders,
    /// `TOKEN_VALIDATION` and `INTROSPECTION_*`; `None` when every token is a JWT checked locally.
    pub introspection: Option<crate::auth::introspection::IntrospectionSettings>,
    /// Sender-constrained (DPoP) tokens: proof algorithms, window, replay cache, DPOP_REQUIRED.
    pub dpop: DpopSettings,
    /// `TOKEN_EXCHANGE_*`; `None` when the upstream gets no token (or the caller's, FORWARD_TOKEN).
    pub exchange: Option<crate::auth::exchange::ExchangeSettings>,
    /// `OTEL_*`: where and how traces are exported; `None` when tracing is off.
    pub telemetry: Option<crate::telemetry::Settings>,
}

impl Config {
    /// Validates a map of settings (environment variable name → value).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<(Config, Warnings), ConfigError> {
        let v = Vars::new(vars);
        let mut warnings = Warnings::new();

        let listen_addr = v
            .socket_addr(Var::LISTEN_ADDR, "0.0.0.0:8080")?
            .ok_or_else(|| ConfigError::Missing {
                var: Var::LISTEN_ADDR,
                expected: "host:port".into(),
            })?;
        let allow_insecure_http = v.bool(Var::ALLOW_INSECURE_HTTP)?;
        let upstream = parse::upstream(&v)?;
        let resource_uri = v
            .required(
                Var::RESOURCE_URI,
                "the public URL clients use, e.g. https://mcp.example.com/mcp",
            )?
            .to_string();
        let resource = parse::resource(&resource_uri, allow_insecure_http)?;
        let max_token_size = limits::max_token_size(&v)?;
        let policy = policy::token_rules(&v, &resource_uri, &mut warnings)?;
        let issuers = issuers::trusted_issuers(
            &v,
            allow_insecure_http,
            &policy,
            max_token_size,
            &mut warnings,
        )?;
        let mut scopes_supported = match v.get(Var::SCOPES_SUPPORTED) {
            Some(_) => policy::scope_list(&v, Var::SCOPES_SUPPORTED)?,
            None => policy.required_scopes.clone(),
        };
        let challenge_scopes = policy::challenge_scopes(&policy.required_scopes, &scopes_supported);
        // Challenges name scopes as clients request them, so a step-up names the base scopes in
        // that form too.
        let mcp_policy = mcp_policy::mcp_policy(&v, &challenge_scopes)?;
        // Clients that register once ask for what the metadata lists: the scopes the rules can
        // require belong there (RFC 9728 §2), never offline_access (`scopes_used` leaves it out).
        for scope in crate::policy::decide::scopes_used(&mcp_policy.rules) {
            if !scopes_supported.contains(&scope) {
                scopes_supported.push(scope);
            }
        }

        let config = Config {
            listen_addr,
            upstream,
            resource_uri,
            resource,
            authorization_servers: issuers.iter().map(|t| t.server.clone()).collect(),
            introspection: introspection::introspection(&v, issuers.len(), allow_insecure_http)?,
            exchange: exchange::exchange(&v, issuers.len(), allow_insecure_http)?,
            issuers,
            challenge_scopes,
            policy,
            scopes_supported,
            resource_name: v.get(Var::RESOURCE_NAME).map(str::to_string),
            resource_documentation: service::resource_documentation(&v)?,
            jwks_refresh_interval: v.positive(Var::JWKS_REFRESH_INTERVAL)?,
            jwks_min_refresh_interval: v.duration(Var::JWKS_MIN_REFRESH_INTERVAL)?,
            jwks_fetch_timeout: v.positive(Var::JWKS_FETCH_TIMEOUT)?,
            forward_token: v.bool(Var::FORWARD_TOKEN)?,
            upstream_timeout: v.positive(Var::UPSTREAM_TIMEOUT)?,
            shutdown_timeout: v.duration(Var::SHUTDOWN_TIMEOUT)?,
            max_request_body: v.size(Var::MAX_REQUEST_BODY)?,
            max_token_size,
            max_header_size: limits::max_header_size(&v)?,
            header_read_timeout: v.positive(Var::HEADER_READ_TIMEOUT)?,
            idle_timeout: v.positive(Var::IDLE_TIMEOUT)?,
            allow_insecure_http,
            health_path: service::path(&v, Var::HEALTH_PATH)?,
            ready_path: service::path(&v, Var::READY_PATH)?,
            metadata_max_age: v.duration(Var::METADATA_MAX_AGE)?,
            cors_allowed_origins: service::cors_allowed_origins(&v)?,
            tls: service::tls_files(&v)?,
            tls_reload_interval: v.positive(Var::TLS_RELOAD_INTERVAL)?,
            metrics_addr: v.socket_addr(Var::METRICS_ADDR, "127.0.0.1:9090")?,
            token_cache_size: limits::token_cache_size(&v)?,
            log_level: service::log_level(&v)?,
            log_format: service::log_format(&v)?,
            max_connections: limits::max_connections(&v)?,
            max_connections_per_ip: limits::max_connections_per_ip(&v)?,
            send_timeout: v.positive(Var::SEND_TIMEOUT)?,
            trusted_proxies: parse::trusted_proxies(&v)?,
            mcp_policy,
            rate_limit: rate_limit::settings(&v)?,
            identity_headers: service::identity_headers(&v)?,
            dpop: dpop::dpop_settings(&v, &mut warnings)?,
            telemetry: otel::settings(&v)?,
        };
        Ok((config, warnings))
    }
}

#[cfg(test)]
mod tests;
