//! RFC 6750 responses: the status, `WWW-Authenticate` challenge and JSON body for every [`Refusal`].
//!
//! This is the only place that builds a refusal. Each response is prepared once at start, so a
//! refused request (the path an attacker can drive) costs no formatting. Challenges follow R20 of our
//! requirements: exactly one `Bearer` challenge, every value quoted, `resource_metadata` absolute and
//! path-inserted (RFC 9728 §5.1), `scope` listing every required scope (MCP 2025-11-25). The JSON
//! body carries the challenge's `error` code, and none when the challenge has none.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::auth::Refusal;
use crate::http::body::ResponseBody;

struct Prepared {
    status: StatusCode,
    challenge: Option<HeaderValue>,
    body: Bytes,
}

/// Ready-made responses, one per refusal.
pub struct Challenges {
    prepared: Vec<Prepared>,
}

/// How long a client should wait before retrying while the IdP's keys or introspection are unavailable.
const RETRY_AFTER_SECS: &str = "5";

impl Challenges {
    /// `resource_metadata` is the absolute metadata URL; `scopes` are the required scopes in the form
    /// clients request them (`Config::challenge_scopes`), which the challenge's `scope` names.
    pub fn new(resource_metadata: &str, scopes: &[String]) -> Challenges {
        let scope = scopes.join(" ");
        let prepared = Refusal::ALL
            .iter()
            .map(|&refusal| {
                let mut params = Vec::new();
                if let Some(code) = refusal.error_code() {
                    params.push(format!("error=\"{code}\""));
                    params.push(format!("error_description=\"{}\"", refusal.description()));
                }
                params.push(format!("resource_metadata=\"{resource_metadata}\""));
                if !scope.is_empty() && refusal != Refusal::ClaimRuleFailed {
                    params.push(format!("scope=\"{scope}\""));
                }
                let challenge = (refusal.status() != 503).then(|| {
                    HeaderValue::from_str(&format!("Bearer {}", params.join(", ")))
                        .expect("challenge parts are validated ASCII")
                });
                // The body says what the challenge says: a request without a token gets no error
                // code (RFC 6750 §3.1: the client may not know authentication is needed), only a
                // human description.
                let error = match refusal.status() {
                    503 => Some("temporarily_unavailable"),
                    _ => refusal.error_code(),
                };
                let description = refusal.description();
                let body = match error {
                    Some(error) => json!({"error": error, "error_description": description}),
                    None => json!({"error_description": description}),
                }
                .to_string();
                Prepared {
                    status: StatusCode::from_u16(refusal.status()).expect("valid status"),
                    challenge,
                    body: Bytes::from(body),
                }
            })
            .collect();
        Challenges { prepared }
    }

    /// The response for `refusal`.
    pub fn respond(&self, refusal: Refusal) -> Response<ResponseBody> {
        let p = &self.prepared[refusal.index()];
        let mut response = Response::new(ResponseBody::from(p.body.clone()));
        *response.status_mut() = p.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = &p.challenge {
            headers.insert(WWW_AUTHENTICATE, c.clone());
        }
        if p.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

    fn header(c: &Challenges, r: Refusal) -> String {
        c.respond(r)
            .headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    #[test]
    fn missing_token_gets_a_bare_challenge_with_metadata_and_scope() {
        let c = Challenges::new(PRM, &["mcp:tools".into(), "mcp:read".into()]);
        assert_eq!(
            header(&c, Refusal::MissingToken),
            format!("Bearer resource_metadata=\"{PRM}\", scope=\"mcp:tools mcp:read\"")
        );
        let none = Challenges::new(PRM, &[]);
        assert_eq!(
            header(&none, Refusal::MissingToken),
            format!("Bearer resource_metadata=\"{PRM}\"")
        );
    }

    #[test]
    fn each_refusal_gets_its_status_and_error_code() {
        let c = Challenges::new(PRM, &["s1".into()]);
        for r in Refusal::ALL {
            let response = c.respond(r);
            assert_eq!(response.status().as_u16(), r.status(), "{r:?}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            let h = header(&c, r);
            match r.status() {
                503 => {
                    assert!(h.is_empty());
                    assert_eq!(response.headers()[RETRY_AFTER], RETRY_AFTER_SECS);
                }
                _ => {
                    assert!(h.starts_with("Bearer "), "{r:?}");
                    assert_eq!(h.matches("resource_metadata=").count(), 1, "{r:?}");
                    assert_eq!(h.matches("Bearer").count(), 1, "{r:?}");
                    if let Some(code) = r.error_code() {
                        assert!(h.contains(&format!("error=\"{code}\"")), "{r:?}: {h}");
                    }
                }
            }
        }
        assert!(header(&c, Refusal::InsufficientScope).contains("scope=\"s1\""));
    }

    #[test]
    fn bodies_are_small_json_objects_with_the_challenges_error_code() {
        let c = Challenges::new(PRM, &[]);
        for r in Refusal::ALL {
            let Prepared { body, .. } = &c.prepared[r.index()];
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(v["error_description"].is_string(), "{r:?}");
            let expected = match r.status() {
                503 => Some("temporarily_unavailable"),
                _ => r.error_code(),
            };
            assert_eq!(
                v["error"].as_str(),
                expected,
                "{r:?}: the body agrees with the challenge"
            );
        }
    }
}
