//! `TOKEN_EXCHANGE` and the `TOKEN_EXCHANGE_*` settings: whether the upstream receives a token the
//! authorization server issued for it by OAuth 2.0 Token Exchange (RFC 8693) instead of no token.
//!
//! The rules, each an exit-2 error naming the variable when broken:
//! - off by default; `TOKEN_EXCHANGE=true` with `FORWARD_TOKEN=true` is a contradiction (the caller's
//!   token or an exchanged one, not both);
//! - exactly one `AUTHORIZATION_SERVER`: the gate is a client of one server, with one set of
//!   credentials;
//! - at least one target: `TOKEN_EXCHANGE_AUDIENCE` and/or `TOKEN_EXCHANGE_RESOURCE` (without one the
//!   server would issue a token for whatever it defaults to, often the caller's own audience);
//!   resources are absolute URIs without a fragment (RFC 8693 §2.1);
//! - client credentials: `TOKEN_EXCHANGE_CLIENT_ID` + `TOKEN_EXCHANGE_CLIENT_SECRET`, or, when both
//!   are unset, the `INTROSPECTION_CLIENT_*` pair (and its `INTROSPECTION_AUTH_METHOD` unless
//!   `TOKEN_EXCHANGE_AUTH_METHOD` is set).

use super::parse::{secure_url, split_list};
use super::vars::{Var, Vars};
use super::{invalid, ConfigError};
use crate::auth::exchange::ExchangeSettings;
use crate::auth::introspection::{ClientAuth, Secret};

/// `None` unless `TOKEN_EXCHANGE=true`.
pub(super) fn exchange(
    v: &Vars,
    servers: usize,
    allow_insecure: bool,
) -> Result<Option<ExchangeSettings>, ConfigError> {
    if !v.bool(Var::TOKEN_EXCHANGE)? {
        return Ok(None);
    }
    if v.bool(Var::FORWARD_TOKEN)? {
        return Err(invalid(
            Var::TOKEN_EXCHANGE,
            "true",
            "false while FORWARD_TOKEN=true (the upstream gets the caller's token or an exchanged one, not both)",
        ));
    }
    if servers != 1 {
        return Err(invalid(
            Var::TOKEN_EXCHANGE,
            "true",
            "false when AUTHORIZATION_SERVER lists more than one server (the gate exchanges at one server, as one client)",
        ));
    }
    let endpoint = v
        .get(Var::TOKEN_EXCHANGE_ENDPOINT)
        .map(|raw| secure_url(Var::TOKEN_EXCHANGE_ENDPOINT, raw, allow_insecure))
        .transpose()?;
    let audiences = v
        .get(Var::TOKEN_EXCHANGE_AUDIENCE)
        .map(split_list)
        .unwrap_or_default();
    let resources = v
        .get(Var::TOKEN_EXCHANGE_RESOURCE)
        .map(split_list)
        .unwrap_or_default();
    for resource in &resources {
        let absolute = url::Url::parse(resource).is_ok_and(|u| u.fragment().is_none());
        if !absolute || resource.contains('#') {
            return Err(invalid(
                Var::TOKEN_EXCHANGE_RESOURCE,
                resource,
                "absolute URIs without a fragment (RFC 8693 §2.1), e.g. https://api.example.com",
            ));
        }
    }
    if audiences.is_empty() && resources.is_empty() {
        return Err(ConfigError::Missing {
            var: Var::TOKEN_EXCHANGE_AUDIENCE,
            expected: "the upstream's audience (or TOKEN_EXCHANGE_RESOURCE, its URI) when TOKEN_EXCHANGE=true".into(),
        });
    }
    let scope = v
        .get(Var::TOKEN_EXCHANGE_SCOPE)
        .map(|raw| split_list(raw).join(" "));
    let (client_id, client_secret, borrowed) = credentials(v)?;
    let method_var = match (v.get(Var::TOKEN_EXCHANGE_AUTH_METHOD), borrowed) {
        (None, true) => Var::INTROSPECTION_AUTH_METHOD,
        _ => Var::TOKEN_EXCHANGE_AUTH_METHOD,
    };
    let method = v.get(method_var).unwrap_or("client_secret_basic");
    let auth = match method {
        "client_secret_basic" => ClientAuth::Basic,
        "client_secret_post" => ClientAuth::Post,
        _ => {
            return Err(invalid(
                method_var,
                method,
                "client_secret_basic or client_secret_post",
            ))
        }
    };
    let cache_size = v.required(Var::TOKEN_EXCHANGE_CACHE_SIZE, "a count")?;
    let cache_size = cache_size
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            invalid(
                Var::TOKEN_EXCHANGE_CACHE_SIZE,
                cache_size,
                "a count above zero",
            )
        })?;
    Ok(Some(ExchangeSettings {
        endpoint,
        audiences,
        resources,
        scope,
        client_id,
        client_secret,
        auth,
        cache_size,
    }))
}

/// The gate's client id and secret at the token endpoint, and whether they are the introspection
/// client's.
fn credentials(v: &Vars) -> Result<(String, Secret, bool), ConfigError> {
    let (id_var, secret_var, borrowed) = match (
        v.get(Var::TOKEN_EXCHANGE_CLIENT_ID),
        v.get(Var::TOKEN_EXCHANGE_CLIENT_SECRET),
        v.get(Var::INTROSPECTION_CLIENT_ID),
    ) {
        (None, None, Some(_)) => (
            Var::INTROSPECTION_CLIENT_ID,
            Var::INTROSPECTION_CLIENT_SECRET,
            true,
        ),
        _ => (
            Var::TOKEN_EXCHANGE_CLIENT_ID,
            Var::TOKEN_EXCHANGE_CLIENT_SECRET,
            false,
        ),
    };
    let id = v.required(
        id_var,
        "the gate's client id at the authorization server (token exchange needs client authentication)",
    )?;
    let secret = v.required(
        secret_var,
        "the gate's client secret at the authorization server",
    )?;
    Ok((id.to_string(), Secret(secret.to_string()), borrowed))
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let mut m: HashMap<String, String> = [
            ("UPSTREAM_URL", "http://127.0.0.1:3000"),
            ("RESOURCE_URI", "https://mcp.example.com/mcp"),
            ("AUTHORIZATION_SERVER", "https://idp.example.com"),
            ("TOKEN_EXCHANGE", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            m.insert(k.to_string(), v.to_string());
        }
        Config::from_vars(&m)
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    const OK: [(&str, &str); 3] = [
        ("TOKEN_EXCHANGE_AUDIENCE", "https://api.example.com"),
        ("TOKEN_EXCHANGE_CLIENT_ID", "gate"),
        ("TOKEN_EXCHANGE_CLIENT_SECRET", "s3cret"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut v = OK.to_vec();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn exchange_is_off_by_default() {
        let c = config(&[("TOKEN_EXCHANGE", "false")]).unwrap();
        assert!(c.exchange.is_none());
    }

    #[test]
    fn a_complete_setting_is_parsed_with_its_defaults() {
        let c = config(&with(&[
            (
                "TOKEN_EXCHANGE_RESOURCE",
                "https://a.example.com/x, https://b.example.com",
            ),
            ("TOKEN_EXCHANGE_SCOPE", "read,write"),
        ]))
        .unwrap();
        let x = c.exchange.unwrap();
        assert_eq!(x.audiences, ["https://api.example.com"]);
        assert_eq!(
            x.resources,
            ["https://a.example.com/x", "https://b.example.com"]
        );
        assert_eq!(x.scope.as_deref(), Some("read write"));
        assert_eq!(x.client_id, "gate");
        assert_eq!(x.auth, super::ClientAuth::Basic);
        assert_eq!(x.cache_size, 10_000);
        assert!(x.endpoint.is_none());
    }

    #[test]
    fn the_introspection_client_is_borrowed_only_when_no_exchange_client_is_named() {
        let borrowed = config(&[
            ("TOKEN_EXCHANGE_AUDIENCE", "api"),
            ("INTROSPECTION_CLIENT_ID", "intro"),
            ("INTROSPECTION_CLIENT_SECRET", "s"),
            ("INTROSPECTION_AUTH_METHOD", "client_secret_post"),
        ])
        .unwrap()
        .exchange
        .unwrap();
        assert_eq!(borrowed.client_id, "intro");
        assert_eq!(borrowed.auth, super::ClientAuth::Post);
        let own = config(&with(&[
            ("INTROSPECTION_CLIENT_ID", "intro"),
            ("INTROSPECTION_CLIENT_SECRET", "s"),
            ("INTROSPECTION_AUTH_METHOD", "client_secret_post"),
        ]))
        .unwrap()
        .exchange
        .unwrap();
        assert_eq!(own.client_id, "gate");
        assert_eq!(own.auth, super::ClientAuth::Basic);
    }

    #[test]
    fn bad_or_missing_combinations_name_the_variable() {
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (with(&[("FORWARD_TOKEN", "true")]), "TOKEN_EXCHANGE="),
            (
                with(&[(
                    "AUTHORIZATION_SERVER",
                    "https://a.example.com,https://b.example.com",
                )]),
                "TOKEN_EXCHANGE=",
            ),
            (OK[1..].to_vec(), "TOKEN_EXCHANGE_AUDIENCE is required"),
            (vec![OK[0]], "TOKEN_EXCHANGE_CLIENT_ID is required"),
            (OK[..2].to_vec(), "TOKEN_EXCHANGE_CLIENT_SECRET is required"),
            (vec![OK[0], OK[2]], "TOKEN_EXCHANGE_CLIENT_ID is required"),
            (
                vec![OK[0], ("INTROSPECTION_CLIENT_ID", "intro")],
                "INTROSPECTION_CLIENT_SECRET is required",
            ),
            (
                with(&[("TOKEN_EXCHANGE_AUTH_METHOD", "private_key_jwt")]),
                "TOKEN_EXCHANGE_AUTH_METHOD=",
            ),
            (
                with(&[("TOKEN_EXCHANGE_RESOURCE", "api.example.com")]),
                "TOKEN_EXCHANGE_RESOURCE=",
            ),
            (
                with(&[("TOKEN_EXCHANGE_RESOURCE", "https://api.example.com/#x")]),
                "TOKEN_EXCHANGE_RESOURCE=",
            ),
            (
                with(&[("TOKEN_EXCHANGE_ENDPOINT", "http://idp.example.com/token")]),
                "TOKEN_EXCHANGE_ENDPOINT=",
            ),
            (
                with(&[("TOKEN_EXCHANGE_CACHE_SIZE", "0")]),
                "TOKEN_EXCHANGE_CACHE_SIZE=",
            ),
            (with(&[("TOKEN_EXCHANGE", "maybe")]), "TOKEN_EXCHANGE="),
        ];
        for (pairs, expected) in cases {
            let e = config(&pairs).unwrap_err();
            assert!(e.starts_with(expected), "{pairs:?}: {e}");
        }
    }
}
