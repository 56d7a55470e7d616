//! `TOKEN_VALIDATION` and the `INTROSPECTION_*` settings: whether opaque tokens are decided by the
//! authorization server's introspection endpoint (RFC 7662), and how the gate authenticates there.

use super::parse::secure_url;
use super::vars::{Var, Vars};
use super::{invalid, ConfigError};
use crate::auth::introspection::{ClientAuth, IntrospectionSettings, Secret, Validation};

/// `None` under `TOKEN_VALIDATION=jwt` (the default): no token is ever introspected.
pub(super) fn introspection(
    v: &Vars,
    servers: usize,
    allow_insecure: bool,
) -> Result<Option<IntrospectionSettings>, ConfigError> {
    let raw = v.required(Var::TOKEN_VALIDATION, "jwt, introspect or auto")?;
    let validation = match raw.to_ascii_lowercase().as_str() {
        "jwt" => return Ok(None),
        "introspect" => Validation::Introspect,
        "auto" => Validation::Auto,
        _ => {
            return Err(invalid(
                Var::TOKEN_VALIDATION,
                raw,
                "jwt, introspect or auto",
            ))
        }
    };
    if servers != 1 {
        // An opaque token does not say which server issued it; asking each would leak it to all.
        return Err(invalid(
            Var::TOKEN_VALIDATION,
            raw,
            "jwt when AUTHORIZATION_SERVER lists more than one server (an opaque token cannot say whose it is)",
        ));
    }
    let endpoint = v
        .get(Var::INTROSPECTION_ENDPOINT)
        .map(|raw| secure_url(Var::INTROSPECTION_ENDPOINT, raw, allow_insecure))
        .transpose()?;
    let client_id = v
        .required(
            Var::INTROSPECTION_CLIENT_ID,
            "the gate's client id at the authorization server (RFC 7662 §2.1 requires client authentication)",
        )?
        .to_string();
    let client_secret = Secret(
        v.required(
            Var::INTROSPECTION_CLIENT_SECRET,
            "the gate's client secret at the authorization server",
        )?
        .to_string(),
    );
    let method = v.required(
        Var::INTROSPECTION_AUTH_METHOD,
        "client_secret_basic or client_secret_post",
    )?;
    let auth = match method {
        "client_secret_basic" => ClientAuth::Basic,
        "client_secret_post" => ClientAuth::Post,
        _ => {
            return Err(invalid(
                Var::INTROSPECTION_AUTH_METHOD,
                method,
                "client_secret_basic or client_secret_post",
            ))
        }
    };
    let cache_size = v.required(Var::INTROSPECTION_CACHE_SIZE, "a count")?;
    let cache_size = cache_size
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            invalid(
                Var::INTROSPECTION_CACHE_SIZE,
                cache_size,
                "a count above zero",
            )
        })?;
    Ok(Some(IntrospectionSettings {
        validation,
        endpoint,
        client_id,
        client_secret,
        auth,
        cache_max_age: v.duration(Var::INTROSPECTION_CACHE_MAX_AGE)?,
        cache_size,
    }))
}
