//! The names of the settings as typed constants, and [`Vars`], which reads them from a map.
//!
//! Each environment variable name is written exactly once, in the `vars!` list below; the settings
//! table, the parsers and the error messages all use the constant ([`Var::UPSTREAM_URL`]), so a
//! misspelt name is a compile error instead of a setting that is silently never read.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::parse::{parse_size, split_list};
use super::settings::SETTINGS;
use super::{invalid, ConfigError};

/// The environment variable of one setting. Only the constants below exist: the field is private,
/// so no other code can make up a name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Var(&'static str);

/// Declares one constant per name, spelt as the variable (so constant and string cannot diverge),
/// and [`Var::ALL`], which the settings table is checked against.
macro_rules! vars {
    ($($name:ident),* $(,)?) => {
        impl Var {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Var = Var(stringify!($name));
            )*
            /// Every variable, in the order they are declared.
            pub const ALL: &'static [Var] = &[$(Var::$name),*];
        }
    };
}

vars!(
    LISTEN_ADDR,
    UPSTREAM_URL,
    RESOURCE_URI,
    AUTHORIZATION_SERVER,
    JWKS_URI,
    EXPECTED_ISSUER,
    EXPECTED_AUDIENCE,
    REQUIRED_SCOPES,
    SCOPES_SUPPORTED,
    RESOURCE_NAME,
    RESOURCE_DOCUMENTATION,
    ALLOWED_ALGORITHMS,
    ACCESS_TOKEN_TYPE,
    REQUIRED_CLAIMS,
    CLOCK_SKEW,
    JWKS_REFRESH_INTERVAL,
    JWKS_MIN_REFRESH_INTERVAL,
    JWKS_FETCH_TIMEOUT,
    FORWARD_TOKEN,
    UPSTREAM_TIMEOUT,
    SHUTDOWN_TIMEOUT,
    MAX_REQUEST_BODY,
    MAX_TOKEN_SIZE,
    MAX_HEADER_SIZE,
    HEADER_READ_TIMEOUT,
    IDLE_TIMEOUT,
    ALLOW_INSECURE_HTTP,
    HEALTH_PATH,
    READY_PATH,
    METADATA_MAX_AGE,
    TLS_CERT_FILE,
    TLS_KEY_FILE,
    TLS_RELOAD_INTERVAL,
    METRICS_ADDR,
    TOKEN_CACHE_SIZE,
    CORS_ALLOWED_ORIGINS,
    LOG_LEVEL,
    LOG_FORMAT,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_IP,
    SEND_TIMEOUT,
    TRUSTED_PROXIES,
    POLICY_FILE,
    TOOL_SCOPES,
    FILTER_TOOLS_LIST,
    POLICY_RELOAD_INTERVAL,
    RATE_LIMIT_IP,
    RATE_LIMIT_SUBJECT,
    RATE_LIMIT_REDIS_URL,
    RATE_LIMIT_REDIS_TIMEOUT,
    RATE_LIMIT_REDIS_FAILURE,
    CLAIM_HEADERS,
    IDENTITY_HEADERS_STRIP,
    TOKEN_VALIDATION,
    INTROSPECTION_ENDPOINT,
    INTROSPECTION_CLIENT_ID,
    INTROSPECTION_CLIENT_SECRET,
    INTROSPECTION_AUTH_METHOD,
    INTROSPECTION_CACHE_MAX_AGE,
    INTROSPECTION_CACHE_SIZE,
    DPOP_ALGORITHMS,
    DPOP_IAT_WINDOW,
    DPOP_REQUIRED,
    DPOP_REPLAY_CACHE_SIZE,
    DPOP_NONCE,
    DPOP_NONCE_KEYS,
    DPOP_REPLAY_STORE,
    DPOP_REPLAY_REDIS_FAILURE,
    RATE_LIMIT_TOOL,
    TOKEN_EXCHANGE,
    TOKEN_EXCHANGE_ENDPOINT,
    TOKEN_EXCHANGE_AUDIENCE,
    TOKEN_EXCHANGE_RESOURCE,
    TOKEN_EXCHANGE_SCOPE,
    TOKEN_EXCHANGE_CLIENT_ID,
    TOKEN_EXCHANGE_CLIENT_SECRET,
    TOKEN_EXCHANGE_AUTH_METHOD,
    TOKEN_EXCHANGE_CACHE_SIZE,
    OTEL_SDK_DISABLED,
    OTEL_TRACES_EXPORTER,
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_EXPORTER_OTLP_HEADERS,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_SERVICE_NAME,
    OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
    OTEL_BSP_SCHEDULE_DELAY,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    TRACE_RECORD_SUBJECT,
);

impl Var {
    /// The variable's name, e.g. `LISTEN_ADDR` (also the clap argument id).
    pub const fn name(self) -> &'static str {
        self.0
    }
}

/// A variable name is a string wherever one is read (flag names, `--help`, test helpers).
impl std::ops::Deref for Var {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Reads settings out of a map of variables, applying the table's defaults; empty values count as unset.
pub(super) struct Vars<'a>(&'a HashMap<String, String>);

impl<'a> Vars<'a> {
    pub(super) fn new(map: &'a HashMap<String, String>) -> Vars<'a> {
        Vars(map)
    }

    /// The value, trimmed, or the table's default; `None` when neither is set.
    pub(super) fn get(&self, var: Var) -> Option<&'a str> {
        let explicit = self
            .0
            .get(var.name())
            .map(|v| v.trim())
            .filter(|v| !v.is_empty());
        explicit.or_else(|| {
            SETTINGS
                .iter()
                .find(|s| s.var == var)
                .and_then(|s| s.default)
        })
    }

    pub(super) fn required(&self, var: Var, expected: &str) -> Result<&'a str, ConfigError> {
        self.get(var).ok_or_else(|| ConfigError::Missing {
            var,
            expected: expected.to_string(),
        })
    }

    pub(super) fn duration(&self, var: Var) -> Result<Duration, ConfigError> {
        let raw = self.required(var, "a duration such as 30s or 5m")?;
        humantime::parse_duration(raw)
            .map_err(|_| invalid(var, raw, "a duration such as 30s, 5m or 1h"))
    }

    /// A duration that must not be zero (a zero timeout or interval would fire at once, forever).
    pub(super) fn positive(&self, var: Var) -> Result<Duration, ConfigError> {
        let d = self.duration(var)?;
        if d.is_zero() {
            return Err(invalid(
                var,
                self.get(var).unwrap_or_default(),
                "a duration above zero",
            ));
        }
        Ok(d)
    }

    pub(super) fn bool(&self, var: Var) -> Result<bool, ConfigError> {
        let raw = self.required(var, "true or false")?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(invalid(var, raw, "true or false")),
        }
    }

    pub(super) fn size(&self, var: Var) -> Result<u64, ConfigError> {
        let raw = self.required(var, "a size such as 4MiB")?;
        parse_size(raw).ok_or_else(|| {
            invalid(
                var,
                raw,
                "a size in bytes, or with a unit: 512KiB, 4MiB, 1MB",
            )
        })
    }

    pub(super) fn list(&self, var: Var) -> Vec<String> {
        self.get(var).map(split_list).unwrap_or_default()
    }

    /// An optional `IP:port` address.
    pub(super) fn socket_addr(
        &self,
        var: Var,
        example: &str,
    ) -> Result<Option<std::net::SocketAddr>, ConfigError> {
        let Some(raw) = self.get(var) else {
            return Ok(None);
        };
        raw.parse().map(Some).map_err(|_| {
            invalid(
                var,
                raw,
                format!("an IP address and port such as {example}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_is_spelt_as_its_variable() {
        assert_eq!(Var::UPSTREAM_URL.name(), "UPSTREAM_URL");
        assert_eq!(Var::LOG_FORMAT.to_string(), "LOG_FORMAT");
        assert_eq!(format!("{:?}", Var::LOG_FORMAT), "LOG_FORMAT");
    }

    #[test]
    fn empty_or_blank_values_fall_back_to_the_default() {
        let map: HashMap<String, String> = [("CLOCK_SKEW", " "), ("JWKS_URI", "")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let v = Vars::new(&map);
        assert_eq!(v.get(Var::CLOCK_SKEW), Some("60s"));
        assert_eq!(v.get(Var::JWKS_URI), None);
    }
}
