//! Reading a token endpoint's answer to a token exchange (RFC 8693 §2.2), and how long the token it
//! issued may be reused. Pure: no I/O, no clock (`now` is a parameter).
//!
//! The answer is checked strictly, because whatever passes is sent to the upstream as
//! `Authorization: Bearer …`: a `200` JSON object without duplicate members, a non-empty
//! `access_token` with the RFC 6750 §2.1 `b64token` syntax, an `issued_token_type` the gate can send
//! as a bearer token (an access token, or a JWT), a `token_type` of `Bearer` (any case; `N_A` only for
//! an issued type that is not an access token, RFC 8693 §2.2.1), and an `expires_in`, when present, that
//! is a non-negative integer. Anything else — `DPoP`-typed tokens (the gate holds no proof key), refresh
//! or ID tokens, SAML assertions — is refused: the request gets 502, never the caller's own token.

use std::time::Duration;

use http::HeaderValue;
use serde_json::Value;

/// `issued_token_type` of an OAuth access token (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// `issued_token_type` of a JWT (RFC 8693 §3).
pub const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// How much earlier than its expiry an exchanged token stops being reused, at most: the upstream
/// must still accept it when it arrives, and the clocks of the gate, the authorization server and
/// the upstream differ. A short-lived token keeps at least half its lifetime.
pub const EXPIRY_SKEW: Duration = Duration::from_secs(30);

/// A usable answer: the upstream's `Authorization` value and the token's lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// `Bearer <access_token>`.
    pub authorization: HeaderValue,
    /// `expires_in`, seconds; `None` when the answer did not say (the token is then not reused).
    pub expires_in: Option<u64>,
}

/// Why an answer cannot be used: the access log says `token_exchange_failed`, the gate's own log
/// says this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    /// RFC 8693 §2.2.2 / RFC 6749 §5.2: the server refused, e.g. `invalid_grant`, `invalid_client`.
    #[error("the token endpoint refused the exchange: HTTP {status}, error {error:?}")]
    Refused { status: u16, error: String },
    #[error("the token endpoint's answer is not a JSON object (or repeats a member)")]
    NotJson,
    #[error("the answer has no usable access_token (missing, empty or not b64token syntax)")]
    AccessToken,
    #[error("issued_token_type {0:?} cannot be sent as a bearer token")]
    IssuedTokenType(String),
    #[error("token_type {0:?} cannot be sent as a bearer token")]
    TokenType(String),
    #[error("expires_in is not a non-negative integer")]
    ExpiresIn,
}

/// Reads the answer to one exchange request (RFC 8693 §2.2).
pub fn read_answer(status: u16, body: &[u8]) -> Result<Issued, Unusable> {
    let parsed = super::strict_json::from_slice(body);
    if status != 200 {
        let error = parsed
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(error_code))
            .unwrap_or_default();
        return Err(Unusable::Refused { status, error });
    }
    let Ok(Value::Object(members)) = parsed else {
        return Err(Unusable::NotJson);
    };
    let token = members
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| is_b64token(t))
        .ok_or(Unusable::AccessToken)?;
    let issued = match members.get("issued_token_type") {
        Some(Value::String(t)) if t == ACCESS_TOKEN_TYPE || t == JWT_TYPE => t.as_str(),
        Some(Value::String(t)) => return Err(Unusable::IssuedTokenType(t.clone())),
        // REQUIRED by RFC 8693 §2.2.1.
        _ => return Err(Unusable::IssuedTokenType(String::new())),
    };
    match members.get("token_type").and_then(Value::as_str) {
        Some(t) if t.eq_ignore_ascii_case("bearer") => {}
        Some("N_A") if issued != ACCESS_TOKEN_TYPE => {}
        other => return Err(Unusable::TokenType(other.unwrap_or_default().to_string())),
    }
    let expires_in = match members.get("expires_in") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or(Unusable::ExpiresIn)?),
    };
    let authorization =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| Unusable::AccessToken)?;
    Ok(Issued {
        authorization,
        expires_in,
    })
}

/// How long an exchanged token is reused from `now`: its lifetime less [`EXPIRY_SKEW`] (at most
/// half of it), and never past the caller's own token's `exp` — after that the gate refuses the
/// caller anyway. Zero (used for this request only) when the answer gave no lifetime.
pub fn reuse_for(expires_in: Option<u64>, caller_exp: Option<u64>, now: u64) -> Duration {
    let lifetime = Duration::from_secs(expires_in.unwrap_or(0));
    let skew = EXPIRY_SKEW.min(lifetime / 2);
    let caller_left = Duration::from_secs(caller_exp.map_or(0, |exp| exp.saturating_sub(now)));
    (lifetime - skew).min(caller_left)
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// An OAuth `error` code fit for a log line: its RFC 6749 §5.2 character set, at most 64 characters.
fn error_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(extra: &str) -> Vec<u8> {
        format!(
            r#"{{"access_token":"eyJ.abc-_~+/=","issued_token_type":"{ACCESS_TOKEN_TYPE}"{extra}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn a_bearer_access_token_is_usable_with_its_lifetime() {
        let issued =
            read_answer(200, &answer(r#","token_type":"bearer","expires_in":300"#)).unwrap();
        assert_eq!(issued.authorization, "Bearer eyJ.abc-_~+/=");
        assert_eq!(issued.expires_in, Some(300));
        let no_lifetime = read_answer(200, &answer(r#","token_type":"Bearer""#)).unwrap();
        assert_eq!(no_lifetime.expires_in, None);
    }

    #[test]
    fn n_a_is_accepted_only_for_a_token_that_is_not_an_access_token() {
        let jwt = format!(
            r#"{{"access_token":"a.b.c","issued_token_type":"{JWT_TYPE}","token_type":"N_A"}}"#
        );
        assert!(read_answer(200, jwt.as_bytes()).is_ok());
        assert_eq!(
            read_answer(200, &answer(r#","token_type":"N_A""#)),
            Err(Unusable::TokenType("N_A".into()))
        );
    }

    #[test]
    fn anything_the_gate_cannot_send_as_a_bearer_token_is_unusable() {
        let refresh = br#"{"access_token":"x","issued_token_type":"urn:ietf:params:oauth:token-type:refresh_token","token_type":"Bearer"}"#;
        let cases: Vec<(u16, Vec<u8>, Unusable)> = vec![
            (200, answer(r#","token_type":"DPoP""#), Unusable::TokenType("DPoP".into())),
            (200, answer(""), Unusable::TokenType(String::new())),
            (200, answer(r#","token_type":"Bearer","expires_in":"300""#), Unusable::ExpiresIn),
            (200, answer(r#","token_type":"Bearer","expires_in":-1"#), Unusable::ExpiresIn),
            (200, answer(r#","token_type":"Bearer","expires_in":1.5"#), Unusable::ExpiresIn),
            (
                200,
                refresh.to_vec(),
                Unusable::IssuedTokenType(
                    "urn:ietf:params:oauth:token-type:refresh_token".into(),
                ),
            ),
            (
                200,
                br#"{"access_token":"x","token_type":"Bearer"}"#.to_vec(),
                Unusable::IssuedTokenType(String::new()),
            ),
            (
                200,
                format!(r#"{{"access_token":"","issued_token_type":"{ACCESS_TOKEN_TYPE}","token_type":"Bearer"}}"#).into_bytes(),
                Unusable::AccessToken,
            ),
            (
                200,
                format!(r#"{{"access_token":"a b","issued_token_type":"{ACCESS_TOKEN_TYPE}","token_type":"Bearer"}}"#).into_bytes(),
                Unusable::AccessToken,
            ),
            (
                200,
                format!(r#"{{"access_token":"a\r\nX-Evil: 1","issued_token_type":"{ACCESS_TOKEN_TYPE}","token_type":"Bearer"}}"#).into_bytes(),
                Unusable::AccessToken,
            ),
            (
                200,
                format!(r#"{{"access_token":7,"issued_token_type":"{ACCESS_TOKEN_TYPE}","token_type":"Bearer"}}"#).into_bytes(),
                Unusable::AccessToken,
            ),
            (
                200,
                br#"{"access_token":"a","access_token":"b"}"#.to_vec(),
                Unusable::NotJson,
            ),
            (200, b"<html>".to_vec(), Unusable::NotJson),
            (200, b"[]".to_vec(), Unusable::NotJson),
            (
                400,
                br#"{"error":"invalid_grant","error_description":"no"}"#.to_vec(),
                Unusable::Refused { status: 400, error: "invalid_grant".into() },
            ),
            (
                401,
                br#"{"error":"invalid_client\"\n"}"#.to_vec(),
                Unusable::Refused { status: 401, error: "invalid_client".into() },
            ),
            (
                500,
                b"oops".to_vec(),
                Unusable::Refused { status: 500, error: String::new() },
            ),
            (
                302,
                answer(r#","token_type":"Bearer""#),
                Unusable::Refused { status: 302, error: String::new() },
            ),
        ];
        for (status, body, expected) in cases {
            assert_eq!(
                read_answer(status, &body),
                Err(expected),
                "{status} {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn a_token_is_reused_until_shortly_before_expiry_and_never_past_the_callers_exp() {
        const NOW: u64 = 1_800_000_000;
        let secs = Duration::from_secs;
        let cases = [
            // (expires_in, caller exp, reused for)
            (Some(3600), Some(NOW + 7200), secs(3570)),
            (Some(3600), Some(NOW + 600), secs(600)),
            (Some(60), Some(NOW + 7200), secs(30)),
            (Some(2), Some(NOW + 7200), secs(1)),
            (Some(0), Some(NOW + 7200), Duration::ZERO),
            (None, Some(NOW + 7200), Duration::ZERO),
            (Some(3600), Some(NOW - 5), Duration::ZERO),
            (Some(3600), None, Duration::ZERO),
        ];
        for (expires_in, exp, expected) in cases {
            assert_eq!(
                reuse_for(expires_in, exp, NOW),
                expected,
                "{expires_in:?} {exp:?}"
            );
        }
    }
}
