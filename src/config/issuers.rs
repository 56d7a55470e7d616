//! The trusted authorization servers: `AUTHORIZATION_SERVER`, paired entry by entry with
//! `JWKS_URI` and `EXPECTED_ISSUER`, each completed into its own [`Policy`].
//!
//! Several servers are independent (RFC 9728 §2 `authorization_servers`): a token's `iss` picks
//! exactly one, whose keys and policy decide it, so two servers may never share an issuer.

use super::parse::{secure_url, split_list};
use super::policy::TokenRules;
use super::vars::{Var, Vars};
use super::{invalid, ConfigError, Warnings};
use crate::auth::Policy;

/// One authorization server whose access tokens the gate accepts, with its own signing keys and
/// its own complete policy.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The `AUTHORIZATION_SERVER` entry: whose metadata names the keys.
    pub server: String,
    /// `JWKS_URI` for this server, or `None` to discover it from the server's metadata.
    pub jwks_uri: Option<url::Url>,
    /// What its tokens must satisfy; `policy.issuer` is the exact `iss` of its tokens
    /// (`EXPECTED_ISSUER`, by default `server`).
    pub policy: Policy,
}

impl TrustedIssuer {
    /// The exact `iss` of this server's tokens.
    pub fn issuer(&self) -> &str {
        &self.policy.issuer
    }
}

/// Reads the servers and pairs each with its JWKS URI and issuer, in order.
pub(super) fn trusted_issuers(
    v: &Vars,
    allow_insecure: bool,
    rules: &TokenRules,
    max_token_size: usize,
    warnings: &mut Warnings,
) -> Result<Vec<TrustedIssuer>, ConfigError> {
    let servers = servers(v, allow_insecure)?;
    let jwks_uris = per_server(v, Var::JWKS_URI, servers.len())?
        .iter()
        .map(|raw| secure_url(Var::JWKS_URI, raw, allow_insecure))
        .collect::<Result<Vec<_>, _>>()?;
    let expected_issuers = per_server(v, Var::EXPECTED_ISSUER, servers.len())?;
    let mut issuers: Vec<TrustedIssuer> = Vec::with_capacity(servers.len());
    for (i, server) in servers.into_iter().enumerate() {
        let issuer = expected_issuers.get(i).unwrap_or(&server).clone();
        if issuers.iter().any(|t| t.issuer() == issuer) {
            let var = if expected_issuers.is_empty() {
                Var::AUTHORIZATION_SERVER
            } else {
                Var::EXPECTED_ISSUER
            };
            return Err(invalid(
                var,
                &issuer,
                "each issuer once (a token's `iss` must name exactly one server)",
            ));
        }
        if issuer != server {
            warnings.push(format!(
                "EXPECTED_ISSUER={issuer:?} differs from its AUTHORIZATION_SERVER={server:?}: tokens from that server are accepted only with iss={issuer:?}, and clients that check the server's metadata see the server's own issuer"
            ));
        }
        issuers.push(TrustedIssuer {
            server,
            jwks_uri: jwks_uris.get(i).cloned(),
            policy: rules.for_issuer(&issuer, max_token_size),
        });
    }
    Ok(issuers)
}

/// `AUTHORIZATION_SERVER`: at least one issuer URL, https unless loopback, no query or fragment
/// (RFC 8414 §2).
fn servers(v: &Vars, allow_insecure: bool) -> Result<Vec<String>, ConfigError> {
    const VAR: Var = Var::AUTHORIZATION_SERVER;
    let raw = v.required(VAR, "the authorization server's issuer URL")?;
    let servers = split_list(raw);
    if servers.is_empty() {
        return Err(invalid(VAR, raw, "at least one issuer URL"));
    }
    for server in &servers {
        let url = secure_url(VAR, server, allow_insecure)?;
        if url.fragment().is_some() || url.query().is_some() {
            return Err(invalid(
                VAR,
                server,
                "an issuer URL without query or fragment",
            ));
        }
    }
    Ok(servers)
}

/// A list that pairs up with `AUTHORIZATION_SERVER` entry by entry; empty when unset.
fn per_server(v: &Vars, var: Var, servers: usize) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = v.get(var) else {
        return Ok(Vec::new());
    };
    let list = split_list(raw);
    if list.len() != servers {
        return Err(invalid(
            var,
            raw,
            format!(
                "one entry per AUTHORIZATION_SERVER entry, in the same order ({servers} here, {} given)",
                list.len()
            ),
        ));
    }
    Ok(list)
}
