//! The token decision: a pure function of (token, key set, policy, now) with no I/O and no clock.
//!
//! Implements the resource-server checks of RFC 9068 §4 on a compact JWS (RFC 7515 §7.1): algorithm
//! allow-list and key binding (RFC 8725 §3.1–3.2), `crit` (RFC 7515 §4.1.11), `typ` (RFC 9068 §2.1,
//! RFC 8725 §3.11), `iss` (§3.8), `aud` (§3.9, RFC 8707), `exp`/`nbf`/`iat` (RFC 7519 §4.1), scopes
//! (RFC 9068 §2.2.3) and the configured claim rules. Header parameters that point at keys (`jku`,
//! `x5u`, `x5c`, `jwk`) are never read: keys come only from the authorization server's JWKS.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use base64::Engine;
use serde_json::{Map, Value};

use super::keys::{Alg, Candidates, KeySet};
use super::refusal::Refusal;
use super::strict_json;

/// Which `typ` header values are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// `at+jwt`, `application/at+jwt`, `JWT` or none: what Keycloak, Entra and others actually emit.
    Any,
    /// Only `at+jwt` / `application/at+jwt` (RFC 9068 §4, strict).
    AccessTokenJwt,
}

/// A `REQUIRED_CLAIMS` rule; its grammar and matching live in [`super::claims`], shared with the
/// MCP authorization rules.
pub use super::claims::ClaimRule;

/// What a token must satisfy; built once from configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Exact `iss`.
    pub issuer: String,
    /// `aud` must contain one of these.
    pub audiences: Vec<String>,
    /// Accepted `alg` values.
    pub algorithms: Vec<Alg>,
    pub token_type: TokenType,
    /// All must be granted.
    pub required_scopes: Vec<String>,
    pub claim_rules: Vec<ClaimRule>,
    /// Leeway for `exp`, `nbf` and `iat`.
    pub clock_skew_secs: u64,
    /// Tokens longer than this are refused before any parsing.
    pub max_token_size: usize,
}

/// The identity of an accepted token, for logs and policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// `sub`, when present.
    pub sub: Option<String>,
    /// `client_id`, or `azp` for IdPs that use that instead.
    pub client_id: Option<String>,
    /// `exp`, seconds since the epoch (rounded down).
    pub exp: u64,
    /// The configured issuer whose keys and policy accepted it, for the access log. Left `None` by
    /// the pure check (its caller knows the policy it passed); set by `auth::Authenticator`.
    pub issuer: Option<std::sync::Arc<str>>,
    /// The whole verified claims set, for the MCP authorization rules (`policy::decide::Caller`).
    /// Shared, not copied: the verified-token cache hands out the same map on every hit.
    pub claims: Arc<Map<String, Value>>,
    /// Which path decided: `jwt` (a signature checked now), `introspection` (the endpoint asked
    /// now) or `cache` (an earlier outcome reused), for the access log.
    pub decided_by: &'static str,
    /// How long the introspection call took, when one was made for this request.
    pub introspection: Option<std::time::Duration>,
    /// What `cnf` binds the token to (RFC 9449 §6.1); `None` for a plain Bearer token. Read by
    /// [`super::binding::demand`] on every request, cached or not.
    pub binding: Option<super::binding::Binding>,
}

/// What a successful check learned, kept by the verified-token cache so that a later use of the
/// same token can be re-decided without the signature check but with every other rule.
#[derive(Debug)]
pub struct Facts {
    alg: Alg,
    typ: Option<String>,
    claims: Arc<Map<String, Value>>,
    /// Fingerprint of the key that verified the signature.
    pub key: u64,
    /// `exp`, seconds since the epoch (rounded down).
    pub exp: u64,
}

/// The largest signature any allowed algorithm produces (RSA-8192).
const MAX_SIGNATURE: usize = 1024;

/// Decides whether `token` is acceptable now. `now` is seconds since the Unix epoch.
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: u64) -> Result<Verified, Refusal> {
    verify_with_facts(token, keys, policy, now).map(|(verified, _)| verified)
}

/// Re-decides a token whose signature was verified before (see [`Facts`]): every rule but the
/// signature is applied again with today's policy and clock, and the signing key must still be in
/// the key set. Exactly as strict as [`verify`] for a token that verified once.
pub fn recheck(
    facts: &Facts,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<Verified, Refusal> {
    if !policy.algorithms.contains(&facts.alg) {
        return Err(Refusal::UnsupportedAlgorithm);
    }
    let typ = facts.typ.as_ref().map(|t| Value::String(t.clone()));
    check_type(typ.as_ref(), policy.token_type)?;
    if !keys.holds(facts.key) {
        return Err(Refusal::UnknownKid);
    }
    check_claims(&facts.claims, policy, now)
}

/// [`verify`], also returning what a cache needs to [`recheck`] the token later.
pub fn verify_with_facts(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<(Verified, Facts), Refusal> {
    if token.len() > policy.max_token_size {
        return Err(Refusal::TokenTooLarge);
    }
    let (header_b64, payload_b64, signature_b64) = split(token)?;

    let header = decode_object(header_b64)?;
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name)
            .filter(|a| policy.algorithms.contains(a))
            .ok_or(Refusal::UnsupportedAlgorithm)?,
        _ => return Err(Refusal::UnsupportedAlgorithm),
    };
    // The gate implements no JWS extension, so any `crit` (even an empty one, which RFC 7515 forbids)
    // names something it cannot honour.
    if header.contains_key("crit") {
        return Err(Refusal::UnknownCritical);
    }
    check_type(header.get("typ"), policy.token_type)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(Refusal::MalformedToken),
    };

    let candidates = match keys.candidates(kid, alg) {
        Candidates::Keys(v) => v,
        Candidates::UnknownKid => return Err(Refusal::UnknownKid),
        Candidates::Ambiguous => return Err(Refusal::AmbiguousKey),
    };
    let mut signature = [0u8; MAX_SIGNATURE];
    let len = URL_SAFE_NO_PAD
        .decode_slice(signature_b64, &mut signature)
        .map_err(|_| Refusal::BadSignature)?;
    let signing_input = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    let signer = candidates
        .iter()
        .find(|key| {
            key.verifier(alg)
                .is_some_and(|v| v.verify_sig(signing_input, &signature[..len]).is_ok())
        })
        .ok_or(Refusal::BadSignature)?;

    let claims = Arc::new(decode_object(payload_b64)?);
    let verified = check_claims(&claims, policy, now)?;
    let typ = match header.get("typ") {
        Some(Value::String(t)) => Some(t.clone()),
        _ => None,
    };
    let facts = Facts {
        alg,
        typ,
        claims,
        key: signer.fingerprint,
        exp: verified.exp,
    };
    Ok((verified, facts))
}

/// The `iss` a token claims, read before its signature is checked and trusted for one thing only:
/// choosing which authorization server's keys and policy decide it when several are configured.
/// The full check that follows requires that same `iss`, so a lie here can only lead to a refusal.
pub fn claimed_issuer(token: &str) -> Result<String, Refusal> {
    let (_, payload_b64, _) = split(token)?;
    match decode_object(payload_b64)?.remove("iss") {
        Some(Value::String(iss)) => Ok(iss),
        _ => Err(Refusal::BadIssuer),
    }
}

/// A decoded JOSE header or claims set.
pub(crate) type JsonObject = Map<String, Value>;

/// A token's header and claims, decoded exactly as [`verify`] decodes them (canonical base64url, JSON
/// objects without duplicate member names, RFC 7515 §5.2) but NOT verified: for explaining a refusal
/// (`mcp-gate check --token`), never for deciding.
pub(crate) fn decode_unverified(token: &str) -> Result<(JsonObject, JsonObject), Refusal> {
    let (header_b64, payload_b64, _) = split(token)?;
    Ok((decode_object(header_b64)?, decode_object(payload_b64)?))
}

/// Every scope the claims grant, read as the required-scope rule of [`verify`] reads them: `scope`
/// (RFC 9068 §2.2.3, space-separated) and `scp` (a string or an array, as Entra and Okta send it);
/// any other type is malformed.
pub(crate) fn granted_scopes(claims: &Map<String, Value>) -> Result<Vec<&str>, Refusal> {
    let mut granted = Vec::new();
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => granted.extend(s.split_ascii_whitespace()),
        Some(_) => return Err(Refusal::MalformedClaims),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::String(s)) => granted.extend(s.split_ascii_whitespace()),
        Some(Value::Array(items)) => granted.extend(items.iter().filter_map(Value::as_str)),
        Some(_) => return Err(Refusal::MalformedClaims),
    }
    Ok(granted)
}

/// Splits a compact JWS into its three segments; five segments is a JWE.
fn split(token: &str) -> Result<(&str, &str, &str), Refusal> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() => Ok((h, p, s)),
        (Some(_), Some(_), Some(_), Some(_)) if token.split('.').count() == 5 => {
            Err(Refusal::EncryptedToken)
        }
        _ => Err(Refusal::MalformedToken),
    }
}

/// base64url without padding (canonical: stray bits are refused) → JSON object without duplicate names.
fn decode_object(segment: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Refusal::MalformedToken)?;
    match strict_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::MalformedToken),
    }
}

fn check_type(typ: Option<&Value>, rule: TokenType) -> Result<(), Refusal> {
    let typ = match typ {
        None => {
            return if rule == TokenType::Any {
                Ok(())
            } else {
                Err(Refusal::BadType)
            }
        }
        Some(Value::String(t)) => t,
        Some(_) => return Err(Refusal::MalformedToken),
    };
    // Media type names compare case-insensitively (RFC 7515 §4.1.9).
    let at_jwt =
        typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt");
    let plain_jwt = typ.eq_ignore_ascii_case("JWT");
    match rule {
        _ if at_jwt => Ok(()),
        TokenType::Any if plain_jwt => Ok(()),
        _ => Err(Refusal::BadType),
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number, possibly fractional; anything else is malformed.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f)),
            _ => Err(Refusal::MalformedClaims),
        },
        Some(_) => Err(Refusal::MalformedClaims),
    }
}

/// Every rule but the signature's, over a claims set that is already trusted (a verified JWS's
/// payload, or an introspection response from the issuer).
pub(crate) fn check_claims(
    claims: &Arc<Map<String, Value>>,
    policy: &Policy,
    now: u64,
) -> Result<Verified, Refusal> {
    match claims.get("iss") {
        Some(Value::String(iss)) if *iss == policy.issuer => {}
        _ => return Err(Refusal::BadIssuer),
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => policy.audiences.contains(aud),
        Some(Value::Array(auds)) => {
            let mut any = false;
            for aud in auds {
                match aud {
                    Value::String(a) => any |= policy.audiences.contains(a),
                    _ => return Err(Refusal::MalformedClaims),
                }
            }
            any
        }
        None => false,
        Some(_) => return Err(Refusal::MalformedClaims),
    };
    if !audience_ok {
        return Err(Refusal::BadAudience);
    }

    let now = now as f64;
    let skew = policy.clock_skew_secs as f64;
    let exp = numeric_date(claims, "exp")?.ok_or(Refusal::MissingExpiry)?;
    if now >= exp + skew {
        return Err(Refusal::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if nbf > now + skew {
            return Err(Refusal::NotYetValid);
        }
    }
    if let Some(iat) = numeric_date(claims, "iat")? {
        if iat > now + skew {
            return Err(Refusal::IssuedInFuture);
        }
    }

    let sub = optional_string(claims, "sub")?;
    let client_id = match optional_string(claims, "client_id")? {
        Some(id) => Some(id),
        None => optional_string(claims, "azp")?,
    };

    if !policy.required_scopes.is_empty() {
        let granted =
            super::claims::GrantedScopes::read(claims).map_err(|_| Refusal::MalformedClaims)?;
        if !policy.required_scopes.iter().all(|s| granted.contains(s)) {
            return Err(Refusal::InsufficientScope);
        }
    }

    if !policy.claim_rules.iter().all(|rule| rule.holds(claims)) {
        return Err(Refusal::ClaimRuleFailed);
    }

    let binding = super::binding::from_claims(claims)?;

    Ok(Verified {
        sub,
        client_id,
        exp: exp as u64,
        issuer: None,
        claims: claims.clone(),
        decided_by: "jwt",
        introspection: None,
        binding,
    })
}

fn optional_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Refusal::MalformedClaims),
    }
}

#[cfg(test)]
mod tests;
