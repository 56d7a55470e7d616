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
mod tests {
    use super::*;
    use crate::auth::keys::parse_jwks;
    use crate::test_support::TestKey;
    use serde_json::json;
    use std::sync::OnceLock;

    const NOW: u64 = 1_800_000_000;
    const ISS: &str = "https://idp.example.com";
    const AUD: &str = "https://mcp.example.com/mcp";

    fn rsa() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(|| TestKey::rsa("rsa-1", 2048))
    }

    fn policy() -> Policy {
        crate::test_support::default_policy(ISS, AUD)
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": AUD, "sub": "alice", "client_id": "c1", "exp": NOW + 300, "iat": NOW, "scope": "mcp:tools"})
    }

    fn keyset(keys: &[&TestKey]) -> KeySet {
        parse_jwks(crate::test_support::jwks(keys).as_bytes(), &Alg::ALL)
            .unwrap()
            .0
    }

    fn check(token: &str) -> Result<Verified, Refusal> {
        check_with(token, &policy())
    }

    fn check_with(token: &str, policy: &Policy) -> Result<Verified, Refusal> {
        verify(token, &keyset(&[rsa()]), policy, NOW)
    }

    fn with(mut base: Value, key: &str, value: Value) -> Value {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(key);
        } else {
            base[key] = value;
        }
        base
    }

    #[test]
    fn claimed_issuer_reads_iss_without_trusting_it() {
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let unsigned =
            |payload: &str| format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64(payload));
        assert_eq!(claimed_issuer(&rsa().token(&claims())), Ok(ISS.to_string()));
        // Read only: a token that would fail every other rule still names its issuer.
        assert_eq!(claimed_issuer(&unsigned(r#"{"iss":"x"}"#)), Ok("x".into()));
        for (payload, refusal) in [
            (r#"{"sub":"a"}"#, Refusal::BadIssuer),
            (r#"{"iss":["x"]}"#, Refusal::BadIssuer),
            (r#"{"iss":null}"#, Refusal::BadIssuer),
            // Two `iss` members could name one server here and another in the full check.
            (r#"{"iss":"a","iss":"b"}"#, Refusal::MalformedToken),
            (r#"["iss"]"#, Refusal::MalformedToken),
        ] {
            assert_eq!(
                claimed_issuer(&unsigned(payload)),
                Err(refusal),
                "{payload}"
            );
        }
        assert_eq!(claimed_issuer("a.b"), Err(Refusal::MalformedToken));
        assert_eq!(claimed_issuer("a.b.c.d.e"), Err(Refusal::EncryptedToken));
    }

    #[test]
    fn a_valid_token_is_accepted_with_its_identity() {
        let v = check(&rsa().token(&claims())).unwrap();
        assert_eq!(v.sub.as_deref(), Some("alice"));
        assert_eq!(v.client_id.as_deref(), Some("c1"));
        assert_eq!(v.exp, NOW + 300);
    }

    #[test]
    fn every_supported_algorithm_verifies_with_its_own_key_type() {
        let keys = [
            TestKey::rsa_alg("k-ps256", 2048, "PS256"),
            TestKey::ec("k-es256", "ES256"),
            TestKey::ec("k-es384", "ES384"),
            TestKey::ed25519("k-eddsa"),
        ];
        let refs: Vec<&TestKey> = keys.iter().collect();
        let set = keyset(&refs);
        for key in &keys {
            let token = key.token(&claims());
            assert!(verify(&token, &set, &policy(), NOW).is_ok(), "{}", key.alg);
        }
        for alg in ["RS384", "RS512", "PS384", "PS512"] {
            let token = rsa().token_as(alg, &claims());
            assert!(check(&token).is_ok(), "{alg}");
        }
    }

    #[test]
    fn time_claims_are_checked_on_both_sides_of_each_boundary() {
        let skew = 60;
        let cases: &[(&str, u64, Result<(), Refusal>)] = &[
            ("exp", NOW - skew + 1, Ok(())),
            ("exp", NOW - skew, Err(Refusal::Expired)),
            ("exp", NOW - 3600, Err(Refusal::Expired)),
            ("nbf", NOW + skew, Ok(())),
            ("nbf", NOW + skew + 1, Err(Refusal::NotYetValid)),
            ("iat", NOW + skew, Ok(())),
            ("iat", NOW + skew + 1, Err(Refusal::IssuedInFuture)),
        ];
        for (claim, value, expected) in cases {
            let token = rsa().token(&with(claims(), claim, json!(value)));
            assert_eq!(check(&token).map(|_| ()), *expected, "{claim}={value}");
        }
    }

    #[test]
    fn clock_skew_is_configurable() {
        let token = rsa().token(&with(claims(), "exp", json!(NOW - 5)));
        assert!(check(&token).is_ok());
        let strict = Policy {
            clock_skew_secs: 0,
            ..policy()
        };
        assert_eq!(check_with(&token, &strict), Err(Refusal::Expired));
    }

    #[test]
    fn exp_is_required_and_must_be_a_number() {
        let cases = [
            (Value::Null, Refusal::MissingExpiry),
            (json!("1900000000"), Refusal::MalformedClaims),
            (json!(-1), Refusal::MalformedClaims),
            (json!([NOW + 300]), Refusal::MalformedClaims),
            (json!(true), Refusal::MalformedClaims),
        ];
        for (exp, expected) in cases {
            let token = rsa().token(&with(claims(), "exp", exp.clone()));
            assert_eq!(check(&token), Err(expected), "exp={exp}");
        }
        // Fractional and very large NumericDates are numbers like any other.
        assert!(check(&rsa().token(&with(claims(), "exp", json!(NOW as f64 + 0.5)))).is_ok());
        assert!(check(&rsa().token(&with(claims(), "exp", json!(1e300)))).is_ok());
    }

    #[test]
    fn issuer_must_match_exactly() {
        for iss in [
            json!("https://idp.example.com/"),
            json!("https://IDP.example.com"),
            json!("https://evil.example"),
            Value::Null,
            json!(1),
        ] {
            let token = rsa().token(&with(claims(), "iss", iss.clone()));
            assert_eq!(check(&token), Err(Refusal::BadIssuer), "iss={iss}");
        }
    }

    #[test]
    fn audience_must_contain_an_expected_value() {
        let ok = [json!(AUD), json!([AUD]), json!(["other", AUD])];
        for aud in ok {
            assert!(
                check(&rsa().token(&with(claims(), "aud", aud.clone()))).is_ok(),
                "aud={aud}"
            );
        }
        let bad = [
            (json!("https://mcp.example.com/mcp/"), Refusal::BadAudience),
            (json!("https://mcp.example.com"), Refusal::BadAudience),
            (json!(["a", "b"]), Refusal::BadAudience),
            (json!([]), Refusal::BadAudience),
            (Value::Null, Refusal::BadAudience),
            (json!(7), Refusal::MalformedClaims),
            (json!([AUD, 7]), Refusal::MalformedClaims),
        ];
        for (aud, expected) in bad {
            assert_eq!(
                check(&rsa().token(&with(claims(), "aud", aud.clone()))),
                Err(expected),
                "aud={aud}"
            );
        }
        let several = Policy {
            audiences: vec!["api://x".into(), AUD.into()],
            ..policy()
        };
        assert!(check_with(
            &rsa().token(&with(claims(), "aud", json!("api://x"))),
            &several
        )
        .is_ok());
    }

    #[test]
    fn an_id_token_is_not_an_access_token() {
        let id_token = json!({"iss": ISS, "aud": "client-123", "sub": "alice", "nonce": "n", "exp": NOW + 300, "iat": NOW});
        let token = rsa().sign(
            r#"{"alg":"RS256","typ":"JWT","kid":"rsa-1"}"#,
            &id_token.to_string(),
        );
        assert_eq!(check(&token), Err(Refusal::BadAudience));
    }

    #[test]
    fn token_type_follows_the_configured_rule() {
        let strict = Policy {
            token_type: TokenType::AccessTokenJwt,
            ..policy()
        };
        let cases: &[(Option<&str>, bool, bool)] = &[
            // (typ, accepted by default, accepted when at+jwt is required)
            (Some("at+jwt"), true, true),
            (Some("application/at+jwt"), true, true),
            (Some("AT+JWT"), true, true),
            (Some("JWT"), true, false),
            (Some("jwt"), true, false),
            (None, true, false),
            (Some("JOSE"), false, false),
            (Some("id_token+jwt"), false, false),
            (Some(""), false, false),
        ];
        for (typ, by_default, when_strict) in cases {
            let header = match typ {
                Some(t) => format!(r#"{{"alg":"RS256","kid":"rsa-1","typ":"{t}"}}"#),
                None => r#"{"alg":"RS256","kid":"rsa-1"}"#.to_string(),
            };
            let token = rsa().sign(&header, &claims().to_string());
            assert_eq!(check(&token).is_ok(), *by_default, "{typ:?} default");
            let strict_result = check_with(&token, &strict);
            assert_eq!(strict_result.is_ok(), *when_strict, "{typ:?} strict");
            if !when_strict {
                assert_eq!(strict_result, Err(Refusal::BadType));
            }
        }
    }

    #[test]
    fn algorithms_outside_the_allow_list_are_refused() {
        for alg in [
            "none", "None", "NONE", "", "HS256", "HS384", "HS512", "rs256", "ES512",
        ] {
            let token = rsa().sign(
                &format!(r#"{{"alg":"{alg}","kid":"rsa-1"}}"#),
                &claims().to_string(),
            );
            assert_eq!(check(&token), Err(Refusal::UnsupportedAlgorithm), "{alg}");
        }
        let no_alg = rsa().sign(r#"{"kid":"rsa-1"}"#, &claims().to_string());
        assert_eq!(check(&no_alg), Err(Refusal::UnsupportedAlgorithm));
        let only_es = Policy {
            algorithms: vec![Alg::ES256],
            ..policy()
        };
        assert_eq!(
            check_with(&rsa().token(&claims()), &only_es),
            Err(Refusal::UnsupportedAlgorithm)
        );
    }

    #[test]
    fn unsigned_and_hmac_tokens_never_pass() {
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert_eq!(check(&none), Err(Refusal::UnsupportedAlgorithm));
        // HS256 keyed with the RSA public key's bytes (the classic key-confusion attack).
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"rsa-1"}"#);
        let input = format!("{header}.{payload}");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &rsa().public_der());
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert_eq!(check(&hs), Err(Refusal::UnsupportedAlgorithm));
    }

    #[test]
    fn key_is_chosen_by_kid_and_bound_to_its_algorithm() {
        // Signed by the right key but naming the wrong algorithm family.
        let ec = TestKey::ec("ec-1", "ES256");
        let set = keyset(&[rsa(), &ec]);
        let rsa_as_es = rsa().sign(r#"{"alg":"ES256","kid":"rsa-1"}"#, &claims().to_string());
        assert_eq!(
            verify(&rsa_as_es, &set, &policy(), NOW),
            Err(Refusal::UnknownKid)
        );
        let unknown = rsa().sign(r#"{"alg":"RS256","kid":"nope"}"#, &claims().to_string());
        assert_eq!(
            verify(&unknown, &set, &policy(), NOW),
            Err(Refusal::UnknownKid)
        );
        // A known kid, signed by another key.
        let other = TestKey::rsa("rsa-1", 2048);
        assert_eq!(
            verify(&other.token(&claims()), &set, &policy(), NOW),
            Err(Refusal::BadSignature)
        );
        // No kid: only when exactly one key fits the algorithm.
        let no_kid = rsa().sign(r#"{"alg":"RS256"}"#, &claims().to_string());
        assert!(verify(&no_kid, &set, &policy(), NOW).is_ok());
        let two_rsa = TestKey::rsa("rsa-2", 2048);
        let set2 = keyset(&[rsa(), &two_rsa]);
        assert_eq!(
            verify(&no_kid, &set2, &policy(), NOW),
            Err(Refusal::AmbiguousKey)
        );
        for kid in [json!(5), json!(["rsa-1"]), json!(null)] {
            let t = rsa().sign(
                &format!(r#"{{"alg":"RS256","kid":{kid}}}"#),
                &claims().to_string(),
            );
            assert_eq!(
                verify(&t, &set, &policy(), NOW),
                Err(Refusal::MalformedToken),
                "kid={kid}"
            );
        }
    }

    #[test]
    fn key_pointing_headers_are_ignored() {
        let attacker = TestKey::rsa("rsa-1", 2048);
        let jwk = attacker.jwk();
        for extra in [
            r#""jku":"https://evil.example/jwks""#.to_string(),
            r#""x5u":"https://evil.example/cert""#.to_string(),
            r#""x5c":["MIIB"]"#.to_string(),
            format!(r#""jwk":{jwk}"#),
        ] {
            let t = attacker.sign(
                &format!(r#"{{"alg":"RS256","kid":"rsa-1",{extra}}}"#),
                &claims().to_string(),
            );
            assert_eq!(check(&t), Err(Refusal::BadSignature), "{extra}");
        }
    }

    #[test]
    fn any_crit_header_is_refused() {
        for crit in [r#"["exp"]"#, r#"["b64"]"#, "[]", r#""x""#] {
            let t = rsa().sign(
                &format!(r#"{{"alg":"RS256","kid":"rsa-1","crit":{crit}}}"#),
                &claims().to_string(),
            );
            assert_eq!(check(&t), Err(Refusal::UnknownCritical), "{crit}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused_with_invalid_token() {
        let good = rsa().token(&claims());
        let (h, rest) = good.split_once('.').unwrap();
        let cases = [
            ("", Refusal::MalformedToken),
            ("a.b", Refusal::MalformedToken),
            ("a.b.c.d", Refusal::MalformedToken),
            ("a.b.c.d.e", Refusal::EncryptedToken),
            (".b.c", Refusal::MalformedToken),
            ("..", Refusal::MalformedToken),
        ];
        for (t, expected) in cases {
            assert_eq!(check(t), Err(expected), "{t:?}");
        }
        for bad_header in [
            format!("{h}="),
            format!("{h} "),
            h.replace('-', "+"),
            "bm90IGpzb24".into(),
            "WzFd".into(),
        ] {
            let t = format!("{bad_header}.{rest}");
            if t != good {
                assert!(check(&t).is_err(), "{bad_header}");
            }
        }
        let dup = rsa().sign(
            r#"{"alg":"RS256","kid":"rsa-1","alg":"RS256"}"#,
            &claims().to_string(),
        );
        assert_eq!(check(&dup), Err(Refusal::MalformedToken));
    }

    #[test]
    fn duplicate_claims_are_refused_in_either_order() {
        for (first, second) in [(AUD, "https://evil.example"), ("https://evil.example", AUD)] {
            let payload = format!(
                r#"{{"iss":"{ISS}","aud":"{first}","aud":"{second}","exp":{}}}"#,
                NOW + 300
            );
            let t = rsa().sign(r#"{"alg":"RS256","kid":"rsa-1"}"#, &payload);
            assert_eq!(check(&t), Err(Refusal::MalformedToken), "{payload}");
        }
    }

    #[test]
    fn non_object_payloads_are_refused() {
        for payload in ["[]", "\"x\"", "42", "null", "not json", ""] {
            let t = rsa().sign(r#"{"alg":"RS256","kid":"rsa-1"}"#, payload);
            assert_eq!(check(&t), Err(Refusal::MalformedToken), "{payload:?}");
        }
    }

    #[test]
    fn oversized_tokens_are_refused_before_parsing() {
        let small = Policy {
            max_token_size: 100,
            ..policy()
        };
        assert_eq!(
            check_with(&rsa().token(&claims()), &small),
            Err(Refusal::TokenTooLarge)
        );
        assert_eq!(check(&"a".repeat(1 << 20)), Err(Refusal::TokenTooLarge));
    }

    #[test]
    fn required_scopes_come_from_scope_or_scp() {
        let p = Policy {
            required_scopes: vec!["mcp:tools".into(), "mcp:read".into()],
            ..policy()
        };
        let grants: &[(Value, Value, bool)] = &[
            (json!("mcp:tools mcp:read"), Value::Null, true),
            (json!("mcp:read  mcp:tools openid"), Value::Null, true),
            (json!("mcp:tools"), Value::Null, false),
            (Value::Null, json!(["mcp:read", "mcp:tools"]), true),
            (Value::Null, json!("mcp:read mcp:tools"), true),
            (json!("mcp:tools"), json!(["mcp:read"]), true),
            (Value::Null, Value::Null, false),
            (json!("mcp:tools:x mcp:readonly"), Value::Null, false),
        ];
        for (scope, scp, ok) in grants {
            let c = with(with(claims(), "scope", scope.clone()), "scp", scp.clone());
            let result = check_with(&rsa().token(&c), &p);
            if *ok {
                assert!(result.is_ok(), "scope={scope} scp={scp}");
            } else {
                assert_eq!(
                    result,
                    Err(Refusal::InsufficientScope),
                    "scope={scope} scp={scp}"
                );
            }
        }
        let c = with(claims(), "scope", json!(["mcp:tools"]));
        assert_eq!(
            check_with(&rsa().token(&c), &p),
            Err(Refusal::MalformedClaims)
        );
    }

    #[test]
    fn claim_rules_follow_dotted_paths_and_arrays() {
        let rules = |spec: &[(&str, &str)]| Policy {
            claim_rules: spec
                .iter()
                .map(|(p, v)| ClaimRule {
                    path: p.split('.').map(str::to_string).collect(),
                    value: v.to_string(),
                })
                .collect(),
            ..policy()
        };
        let c = with(
            with(claims(), "email_verified", json!(true)),
            "realm_access",
            json!({"roles": ["mcp-user", "other"], "level": 3}),
        );
        let token = rsa().token(&c);
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("email_verified", "true")], true),
            (&[("email_verified", "false")], false),
            (&[("realm_access.roles", "mcp-user")], true),
            (&[("realm_access.roles", "admin")], false),
            (&[("realm_access.level", "3")], true),
            (&[("realm_access.missing", "x")], false),
            (&[("sub", "alice"), ("realm_access.roles", "other")], true),
            (&[("sub", "alice"), ("realm_access.roles", "nope")], false),
            (&[("realm_access", "x")], false),
        ];
        for (spec, ok) in cases {
            let result = check_with(&token, &rules(spec));
            if *ok {
                assert!(result.is_ok(), "{spec:?}");
            } else {
                assert_eq!(result, Err(Refusal::ClaimRuleFailed), "{spec:?}");
            }
        }
    }

    #[test]
    fn client_id_falls_back_to_azp() {
        let c = with(
            with(claims(), "client_id", Value::Null),
            "azp",
            json!("web-app"),
        );
        assert_eq!(
            check(&rsa().token(&c)).unwrap().client_id.as_deref(),
            Some("web-app")
        );
    }

    #[test]
    fn every_single_bit_flip_is_refused() {
        let token = rsa().token(&claims());
        let bytes = token.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.to_vec();
                b[i] ^= 1 << bit;
                if let Ok(t) = std::str::from_utf8(&b) {
                    assert!(check(t).is_err(), "flip byte {i} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn granted_scopes_reads_scope_and_scp_as_the_required_scope_rule_does() {
        let wanted = ["mcp:tools", "mcp:read"];
        let p = Policy {
            required_scopes: wanted.iter().map(|s| s.to_string()).collect(),
            ..policy()
        };
        let grants: &[(Value, Value)] = &[
            (json!("mcp:tools mcp:read"), Value::Null),
            (json!("mcp:read  mcp:tools openid"), Value::Null),
            (json!("mcp:tools"), Value::Null),
            (Value::Null, json!(["mcp:read", "mcp:tools", 7])),
            (Value::Null, json!("mcp:read mcp:tools")),
            (json!("mcp:tools"), json!(["mcp:read"])),
            (Value::Null, Value::Null),
            (json!("mcp:tools:x mcp:readonly"), Value::Null),
            (json!(["mcp:tools"]), Value::Null),
            (Value::Null, json!(7)),
        ];
        for (scope, scp) in grants {
            let c = with(with(claims(), "scope", scope.clone()), "scp", scp.clone());
            let verified = check_with(&rsa().token(&c), &p);
            let Value::Object(map) = c else {
                unreachable!()
            };
            match granted_scopes(&map) {
                Ok(granted) => assert_eq!(
                    verified.is_ok(),
                    wanted.iter().all(|w| granted.contains(w)),
                    "scope={scope} scp={scp}"
                ),
                Err(r) => assert_eq!(verified, Err(r), "scope={scope} scp={scp}"),
            }
        }
    }

    #[test]
    fn decode_unverified_is_as_strict_as_verify() {
        let good = rsa().token(&claims());
        let (header, claims_read) = decode_unverified(&good).unwrap();
        assert_eq!(header["kid"], json!("rsa-1"));
        assert_eq!(claims_read["sub"], claims()["sub"]);
        let (h, _, s) = split(&good).unwrap();
        let duplicate = URL_SAFE_NO_PAD.encode(br#"{"aud":"a","aud":"b"}"#);
        for bad in ["opaque", "a.b", &format!("{h}.{duplicate}.{s}")] {
            assert_eq!(
                decode_unverified(bad),
                Err(Refusal::MalformedToken),
                "{bad}"
            );
        }
    }
}
