//! What every accepted token must satisfy, whoever issued it: audiences, algorithms, `typ`, scopes,
//! claim rules and clock skew — the parts of an [`auth::Policy`](crate::auth::Policy) that are not
//! the issuer's.
//!
//! Implements the configuration side of RFC 9068 §4 (`aud`, `typ`), RFC 8725 §3.1 (an algorithm
//! allow-list without `none` or HMAC) and RFC 6750 §3 (scope tokens that can be quoted in a challenge).

use super::vars::{Var, Vars};
use super::{invalid, ConfigError, Warnings};
use crate::auth::keys::Alg;
use crate::auth::token::{ClaimRule, Policy, TokenType};

/// The allow-list used when `ALLOWED_ALGORITHMS` is unset: every asymmetric JWS algorithm in common use.
pub const DEFAULT_ALGORITHMS: &str = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA";

/// The rules shared by every trusted issuer; [`TokenRules::for_issuer`] completes them into that
/// issuer's [`Policy`].
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRules {
    /// Accepted `aud` values (`EXPECTED_AUDIENCE`, by default `RESOURCE_URI`).
    pub audiences: Vec<String>,
    /// Accepted JWS algorithms, never `none` or HMAC.
    pub algorithms: Vec<Alg>,
    pub token_type: TokenType,
    /// Scopes every token must carry, as the token carries them.
    pub required_scopes: Vec<String>,
    pub claim_rules: Vec<ClaimRule>,
    pub clock_skew_secs: u64,
}

impl TokenRules {
    /// The complete policy of one issuer: these rules, its `iss`, and the gate-wide token size bound.
    pub fn for_issuer(&self, issuer: &str, max_token_size: usize) -> Policy {
        Policy {
            issuer: issuer.to_string(),
            audiences: self.audiences.clone(),
            algorithms: self.algorithms.clone(),
            token_type: self.token_type,
            required_scopes: self.required_scopes.clone(),
            claim_rules: self.claim_rules.clone(),
            clock_skew_secs: self.clock_skew_secs,
            max_token_size,
        }
    }
}

/// Reads the token rules; `resource_uri` is the default audience.
pub(super) fn token_rules(
    v: &Vars,
    resource_uri: &str,
    warnings: &mut Warnings,
) -> Result<TokenRules, ConfigError> {
    let clock_skew = v.duration(Var::CLOCK_SKEW)?;
    if clock_skew > std::time::Duration::from_secs(600) {
        warnings.push(
            "CLOCK_SKEW is over 10 minutes: expired tokens stay usable that long".to_string(),
        );
    }
    Ok(TokenRules {
        audiences: audiences(v, resource_uri, warnings),
        algorithms: algorithms(v)?,
        token_type: token_type(v)?,
        required_scopes: scope_list(v, Var::REQUIRED_SCOPES)?,
        claim_rules: match v.get(Var::REQUIRED_CLAIMS) {
            Some(raw) => claim_rules(raw)?,
            None => Vec::new(),
        },
        clock_skew_secs: clock_skew.as_secs(),
    })
}

fn audiences(v: &Vars, resource_uri: &str, warnings: &mut Warnings) -> Vec<String> {
    let audiences = match v.get(Var::EXPECTED_AUDIENCE) {
        Some(raw) => super::parse::split_list(raw),
        None => vec![resource_uri.to_string()],
    };
    if !audiences.iter().any(|a| a == resource_uri) {
        warnings.push(format!(
            "EXPECTED_AUDIENCE does not contain RESOURCE_URI={resource_uri:?}: spec-following clients request tokens for the resource URI (RFC 8707), which the gate will refuse"
        ));
    }
    audiences
}

fn algorithms(v: &Vars) -> Result<Vec<Alg>, ConfigError> {
    algorithm_list(v, Var::ALLOWED_ALGORITHMS)
}

/// A list of asymmetric JWS algorithms (`ALLOWED_ALGORITHMS`, `DPOP_ALGORITHMS`): each known,
/// none repeated, at least one; `none` and HMAC are not algorithms here.
pub(super) fn algorithm_list(v: &Vars, var: Var) -> Result<Vec<Alg>, ConfigError> {
    let raw = v.required(var, "a list of JWS algorithms")?;
    let mut algorithms = Vec::new();
    for name in super::parse::split_list(raw) {
        let alg = Alg::from_name(&name).ok_or_else(|| {
            invalid(
                var,
                &name,
                format!("asymmetric JWS algorithms from: {DEFAULT_ALGORITHMS} (none and HMAC are never accepted)"),
            )
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    if algorithms.is_empty() {
        return Err(invalid(var, raw, "at least one algorithm"));
    }
    Ok(algorithms)
}

fn token_type(v: &Vars) -> Result<TokenType, ConfigError> {
    const VAR: Var = Var::ACCESS_TOKEN_TYPE;
    let raw = v.required(VAR, "any or at+jwt")?;
    match raw.to_ascii_lowercase().as_str() {
        "any" | "" => Ok(TokenType::Any),
        "at+jwt" | "application/at+jwt" => Ok(TokenType::AccessTokenJwt),
        _ => Err(invalid(VAR, raw, "`any` or `at+jwt`")),
    }
}

/// A list of scope tokens: RFC 6750 §3 allows %x21 / %x23-5B / %x5D-7E, so each can be quoted in a
/// challenge.
pub(super) fn scope_list(v: &Vars, var: Var) -> Result<Vec<String>, ConfigError> {
    let scopes = v.list(var);
    for scope in &scopes {
        if !scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
        {
            return Err(invalid(
                var,
                scope,
                "scope names of printable ASCII without \" or \\",
            ));
        }
    }
    Ok(scopes)
}

/// The scopes a challenge names (RFC 6750 §3 `scope`), in the form clients must request them.
///
/// A token may carry a scope under a shorter name than the one clients request: Entra ID issues
/// `scp: "mcp.tools"` for a request of `https://mcp.example.com/mcp/mcp.tools`. Spec-following
/// clients request exactly what the challenge names (MCP authorization, SEP-835), so each required
/// scope that is not itself in `supported` is named by the `supported` entry that ends in
/// `/<scope>`, when there is one; otherwise as it is.
pub fn challenge_scopes(required: &[String], supported: &[String]) -> Vec<String> {
    required
        .iter()
        .map(|scope| {
            if supported.contains(scope) {
                return scope.clone();
            }
            supported
                .iter()
                .find(|full| {
                    full.strip_suffix(scope.as_str())
                        .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('/'))
                })
                .unwrap_or(scope)
                .clone()
        })
        .collect()
}

/// `REQUIRED_CLAIMS`: `claim=value` or `nested.claim=value` rules, comma-separated.
fn claim_rules(raw: &str) -> Result<Vec<ClaimRule>, ConfigError> {
    ClaimRule::parse_list(raw).map_err(|e| invalid(Var::REQUIRED_CLAIMS, &e.item, e.expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_rules_parse_dotted_paths() {
        let rules = claim_rules("email_verified=true, realm_access.roles=mcp-user").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[1].path, vec!["realm_access", "roles"]);
        assert_eq!(rules[1].value, "mcp-user");
        for bad in ["no_equals_sign", "a..b=c", ".a=b"] {
            let e = claim_rules(bad).unwrap_err().to_string();
            assert!(e.starts_with("REQUIRED_CLAIMS="), "{bad}: {e}");
        }
    }

    #[test]
    fn challenge_names_each_required_scope_as_clients_request_it() {
        let list = |s: &str| super::super::parse::split_list(s);
        let entra = "https://mcp.example.com/mcp/mcp.tools";
        for (required, supported, expected) in [
            // Entra: short in the token, full under the Application ID URI in the request.
            ("mcp.tools", entra, vec![entra]),
            ("mcp.tools mcp.read", entra, vec![entra, "mcp.read"]),
            // The same name on both sides (Keycloak, Okta, Auth0): unchanged.
            ("mcp:tools", "mcp:tools mcp:read", vec!["mcp:tools"]),
            ("mcp:tools", "", vec!["mcp:tools"]),
            // A listed short name wins over a longer entry that also ends in it.
            (
                "mcp.tools",
                "api://x/mcp.tools mcp.tools",
                vec!["mcp.tools"],
            ),
            // Only a whole path segment matches.
            ("tools", "https://x/mcp.tools", vec!["tools"]),
            ("tools", "/tools", vec!["tools"]),
            ("", "", vec![]),
        ] {
            assert_eq!(
                challenge_scopes(&list(required), &list(supported)),
                expected,
                "{required} / {supported}"
            );
        }
    }

    #[test]
    fn an_issuers_policy_is_the_shared_rules_with_its_own_iss() {
        let rules = TokenRules {
            audiences: vec!["https://mcp.example.com/mcp".into()],
            algorithms: vec![Alg::ES256],
            token_type: TokenType::AccessTokenJwt,
            required_scopes: vec!["mcp:tools".into()],
            claim_rules: Vec::new(),
            clock_skew_secs: 5,
        };
        let a = rules.for_issuer("https://a.example.com", 100);
        let b = rules.for_issuer("https://b.example.com", 100);
        assert_eq!(a.issuer, "https://a.example.com");
        assert_eq!(b.issuer, "https://b.example.com");
        assert_eq!(a.audiences, rules.audiences);
        assert_eq!(a.algorithms, rules.algorithms);
        assert_eq!(a.required_scopes, rules.required_scopes);
        assert_eq!(a.clock_skew_secs, 5);
        assert_eq!(a.max_token_size, 100);
    }
}
