//! The token explainer of `check --token`: runs the token through the gate's own validator
//! ([`token::verify`], RFC 9068 §4) with a policy built from what was discovered, and says in one
//! sentence which rule it would be refused for and how to fix it. The token is never printed.

use std::time::Duration;

use serde_json::{Map, Value};

use super::report::Check;
use super::url_diff::describe_difference;
use crate::auth::keys::{Alg, KeySet};
use crate::auth::token::{self, Policy, TokenType};
use crate::auth::Refusal;

/// The keys of one listed authorization server, as fetched.
pub struct ServerKeys {
    pub issuer: String,
    pub jwks_uri: String,
    pub keys: KeySet,
}

/// What a token is checked against: everything here was discovered, nothing configured.
pub struct TokenContext {
    /// The audience clients request: the metadata's `resource`, else the URL checked.
    pub resource: String,
    /// Listed authorization servers whose keys could be fetched.
    pub servers: Vec<ServerKeys>,
    /// Scopes a token must carry.
    pub required_scopes: Vec<String>,
    /// Whether `required_scopes` came from the challenge's `scope` (what the server demands) rather
    /// than from `scopes_supported` (what it offers).
    pub scopes_from_challenge: bool,
}

/// A token's header and claims, decoded by the gate's own strict decoder
/// ([`token::decode_unverified`]) without verification, only to explain a refusal. A token that does
/// not decode (opaque, duplicate members) is explained from its refusal alone.
struct Peeked {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

fn peek(token: &str) -> Peeked {
    let (header, claims) = token::decode_unverified(token).unwrap_or_default();
    Peeked { header, claims }
}

impl Peeked {
    fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    fn time(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(Value::as_f64)
    }

    /// What the gate's scope rule counts as granted ([`token::granted_scopes`]).
    fn granted_scopes(&self) -> Vec<&str> {
        token::granted_scopes(&self.claims).unwrap_or_default()
    }
}

fn ago(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0) as u64)).to_string()
}

/// Runs `token` through [`token::verify`] with a policy built from what was discovered, and says in
/// one sentence which rule the gate would refuse it for. The token itself never appears in the result.
pub fn evaluate_token(token: &str, ctx: &TokenContext, now: u64) -> Check {
    const ID: &str = "token";
    let token = token.trim();
    let token = match (token.get(..7), token.get(..5)) {
        (Some(prefix), _) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        (_, Some(prefix)) if prefix.eq_ignore_ascii_case("dpop ") => token[5..].trim_start(),
        _ => token,
    };
    let peeked = peek(token);
    let iss = peeked.claim_str("iss");
    let Some(server) = ctx
        .servers
        .iter()
        .find(|s| Some(s.issuer.as_str()) == iss)
        .or_else(|| ctx.servers.first())
    else {
        return Check::warn(
            ID,
            "the token was not checked: no authorization server's signing keys could be fetched",
            "Fix the authorization server checks above first.",
        );
    };
    let policy = Policy {
        issuer: server.issuer.clone(),
        audiences: vec![ctx.resource.clone()],
        algorithms: Alg::ALL.to_vec(),
        token_type: TokenType::Any,
        required_scopes: ctx.required_scopes.clone(),
        claim_rules: Vec::new(),
        clock_skew_secs: 60,
        max_token_size: 16 * 1024,
    };
    let refusal = match token::verify(token, &server.keys, &policy, now) {
        Ok(verified) => {
            let left = (verified.exp as f64) - now as f64;
            match verified.binding {
                None => {}
                Some(crate::auth::binding::Binding::Dpop(_)) => {
                    // Passing, with the one thing a client must know to use it.
                    let mut check = Check::ok(
                        ID,
                        format!(
                            "the token passes the gate's checks and is DPoP-bound (cnf.jkt, RFC 9449); it expires in {}",
                            ago(left)
                        ),
                    );
                    check.hint = Some(
                        "Present it as `Authorization: DPoP <token>` with a fresh `DPoP` proof signed by the bound key on every request; sent as Bearer it is refused."
                            .into(),
                    );
                    return check;
                }
                Some(crate::auth::binding::Binding::Unverifiable) => {
                    return Check::fail(
                        ID,
                        "the gate would refuse the token (certificate_bound_token): it is bound to a client certificate or key (cnf) the gate does not verify",
                        "Issue DPoP-bound (cnf.jkt) or unbound tokens for this resource: the gate does not check client certificates (RFC 8705).",
                    );
                }
            }
            return Check::ok(
                ID,
                format!(
                    "the token passes the gate's checks (signature, iss, aud, exp{}); it expires in {}",
                    if policy.required_scopes.is_empty() { "" } else { ", scope" },
                    ago(left)
                ),
            );
        }
        Err(r) => r,
    };
    let (message, hint) = explain(refusal, &peeked, &policy, server, ctx, now);
    let message = format!(
        "the gate would refuse the token ({}): {message}",
        refusal.reason()
    );
    if refusal == Refusal::InsufficientScope && !ctx.scopes_from_challenge {
        return Check::warn(ID, message, hint);
    }
    Check::fail(ID, message, hint)
}

fn explain(
    refusal: Refusal,
    t: &Peeked,
    policy: &Policy,
    server: &ServerKeys,
    ctx: &TokenContext,
    now: u64,
) -> (String, String) {
    let now = now as f64;
    let kids = || {
        let kids: Vec<&str> = server
            .keys
            .keys
            .iter()
            .filter_map(|k| k.kid.as_deref())
            .collect();
        kids.join(", ")
    };
    match refusal {
        Refusal::Expired => (
            format!(
                "it expired {} ago",
                ago(now - t.time("exp").unwrap_or(now))
            ),
            "Get a fresh token. A client that keeps sending expired tokens is not refreshing them: check that the IdP issues it refresh tokens. Right after login, suspect a wrong clock on the IdP or this machine.".into(),
        ),
        Refusal::NotYetValid | Refusal::IssuedInFuture => {
            let claim = if refusal == Refusal::NotYetValid { "nbf" } else { "iat" };
            (
                format!(
                    "its {claim} is {} in the future",
                    ago(t.time(claim).unwrap_or(now) - now)
                ),
                "A clock is wrong, the IdP's or this machine's: fix NTP. The gate allows CLOCK_SKEW (60s by default).".into(),
            )
        }
        Refusal::MissingExpiry => (
            "it has no exp".into(),
            "Access tokens must expire (RFC 9068 §2.2): configure an access token lifetime on the IdP.".into(),
        ),
        Refusal::BadAudience => {
            let aud = match t.claims.get("aud") {
                Some(Value::String(a)) => {
                    let diff = describe_difference(&ctx.resource, a);
                    format!("{a:?} ({})", diff.join(", "))
                }
                Some(other) => other.to_string(),
                None => "missing".into(),
            };
            (
                format!("aud is {aud} but the resource is {:?}", ctx.resource),
                audience_hint(&ctx.resource, t.claims.get("aud")),
            )
        }
        Refusal::BadIssuer => {
            let iss = t.claim_str("iss").unwrap_or("missing");
            (
                format!(
                    "iss is {iss:?} but the authorization server is {:?} ({})",
                    policy.issuer,
                    describe_difference(&policy.issuer, iss).join(", ")
                ),
                "The token comes from another issuer than the one the metadata lists: another realm or tenant, or the IdP's public URL differs from the one configured (trailing slash, Entra v1 vs v2). List the issuer that signs the tokens (mcp-gate: AUTHORIZATION_SERVER / EXPECTED_ISSUER).".into(),
            )
        }
        Refusal::UnknownKid => (
            format!(
                "its kid {:?} is not in the JWKS at {} (which holds {})",
                t.header_str("kid").unwrap_or("-"),
                server.jwks_uri,
                kids()
            ),
            "The token was signed by another server (another realm, tenant or environment) than the one listed, or with a key the IdP no longer publishes.".into(),
        ),
        Refusal::AmbiguousKey => (
            format!(
                "it has no kid and the JWKS at {} holds several keys that fit {}",
                server.jwks_uri,
                t.header_str("alg").unwrap_or("its algorithm")
            ),
            "Configure the IdP to put kid in token headers.".into(),
        ),
        Refusal::BadSignature => (
            format!(
                "its signature does not verify with the key {:?} from {}",
                t.header_str("kid").unwrap_or("-"),
                server.jwks_uri
            ),
            "The token was altered, or signed by a server that reuses the key id with another key: check that it comes from the listed issuer.".into(),
        ),
        Refusal::UnsupportedAlgorithm => (
            format!(
                "its alg {:?} is not accepted",
                t.header_str("alg").unwrap_or("missing")
            ),
            "Only asymmetric signatures are accepted (RS*, PS*, ES256/384, EdDSA); none and HMAC (HS*) never are. Give the IdP an RSA or EC signing key.".into(),
        ),
        Refusal::MalformedToken => (
            "it is not a signed JWT".into(),
            "The gate can only check JWT access tokens. An opaque token usually means no API or audience was selected (Auth0) or no resource was sent.".into(),
        ),
        Refusal::EncryptedToken => (
            "it is encrypted (JWE)".into(),
            "The gate checks signed tokens only: turn access token encryption off for this client or API.".into(),
        ),
        Refusal::BadType => (
            format!(
                "its typ {:?} is not an access token type",
                t.header_str("typ").unwrap_or("-")
            ),
            "This may be an ID token or another kind of JWT: send the access token.".into(),
        ),
        Refusal::UnknownCritical => (
            "it has a crit header the gate does not understand".into(),
            "Turn off the JWS extension the IdP marks as critical.".into(),
        ),
        Refusal::MalformedClaims => (
            "a registered claim has the wrong type (e.g. exp as a string, aud as a number)".into(),
            "Check the IdP's claim mappers.".into(),
        ),
        Refusal::InsufficientScope => {
            let granted = t.granted_scopes();
            let missing: Vec<&str> = policy
                .required_scopes
                .iter()
                .filter(|s| !granted.contains(&s.as_str()))
                .map(String::as_str)
                .collect();
            let source = if ctx.scopes_from_challenge {
                "the challenge's scope"
            } else {
                "scopes_supported"
            };
            (
                format!(
                    "it grants [{}] but {source} asks for [{}]: missing {}",
                    granted.join(" "),
                    policy.required_scopes.join(" "),
                    missing.join(", ")
                ),
                "The IdP must grant these scopes to the client: e.g. a default client scope in Keycloak, an access policy rule in Okta.".into(),
            )
        }
        Refusal::TokenTooLarge => (
            format!("it is longer than {} bytes", policy.max_token_size),
            "Raise MAX_TOKEN_SIZE on the gate, or trim the claims the IdP puts into access tokens.".into(),
        ),
        other => (other.description().to_string(), String::new()),
    }
}

/// How the IdP puts the resource into `aud`, vendor by vendor.
const AUDIENCE_AT_THE_IDP: &str = "Keycloak needs an audience mapper, Auth0 the Resource Parameter Compatibility Profile, Okta the authorization server's audience";

/// The advice for a token whose `aud` (RFC 7519 §4.1.3) lacks the resource, by the shape of `aud`.
///
/// `EXPECTED_AUDIENCE` is only suggested with a value the gate can match: its list parser splits on
/// commas and whitespace, so an `aud` holding either can never equal a configured audience. A
/// space-separated `aud` is the mark of an IdP that puts the requested scopes there because it does
/// not apply resource indicators; the one fix is RFC 8707 at the IdP, so that `aud` becomes the
/// resource.
pub fn audience_hint(resource: &str, aud: Option<&Value>) -> String {
    let matchable = |a: &str| !a.is_empty() && !a.contains(|c: char| c == ',' || c.is_whitespace());
    let accept = |a: &str, any_one: &str| {
        format!(
            "Clients ask for tokens for the metadata's resource (RFC 8707), and the IdP must put it in aud: {AUDIENCE_AT_THE_IDP}. Or make the gate accept what the IdP sends with EXPECTED_AUDIENCE={resource},{a} on the gate{any_one}."
        )
    };
    let indicators = |what: String| {
        format!(
            "{what} Enable resource indicators (RFC 8707) at the IdP so that aud becomes {resource}: {AUDIENCE_AT_THE_IDP}. EXPECTED_AUDIENCE cannot help: the gate splits its list on commas and spaces, so it never matches such an aud."
        )
    };
    match aud {
        Some(Value::String(a)) if matchable(a) => accept(a, ""),
        Some(Value::String(a)) if a.trim().is_empty() => {
            indicators("aud is empty: the IdP named no resource.".into())
        }
        Some(Value::String(a)) => indicators(format!(
            "aud {a:?} is a space-separated list, most likely the requested scopes: the IdP does not apply resource indicators."
        )),
        Some(Value::Array(items)) => {
            match items.iter().filter_map(Value::as_str).find(|a| matchable(a)) {
                Some(a) => accept(a, " (one of the token's audiences is enough)"),
                None => indicators(
                    "No member of aud is a single audience the gate could be configured with."
                        .into(),
                ),
            }
        }
        _ => indicators("The token has no aud: the IdP named no resource.".into()),
    }
}

#[cfg(test)]
mod tests;
