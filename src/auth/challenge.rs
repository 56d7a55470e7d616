//! RFC 6750 responses: the status, `WWW-Authenticate` challenge and JSON body for every [`Refusal`].
//!
//! This is the only place that builds a refusal. Each response is prepared once at start, so a
//! refused request (the path an attacker can drive) costs no formatting. Challenges follow R20 of our
//! requirements: exactly one `Bearer` challenge, every value quoted, `resource_metadata` absolute and
//! path-inserted (RFC 9728 §5.1), `scope` listing every required scope (MCP 2025-11-25). The JSON
//! body carries the challenge's `error` code, and none when the challenge has none. With DPoP (RFC
//! 9449 §7.1), requests that speak DPoP and sender-constraint refusals get a `DPoP algs="…"`
//! challenge carrying the error, followed by a bare `Bearer` one while Bearer tokens are accepted;
//! plain Bearer requests keep the single Bearer challenge (metadata advertises DPoP to them).

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::auth::keys::Alg;
use crate::auth::Refusal;
use crate::http::body::ResponseBody;

struct Prepared {
    status: StatusCode,
    /// The `WWW-Authenticate` fields, in order (none for 503).
    challenges: Vec<HeaderValue>,
    body: Bytes,
}

/// Ready-made responses, one per refusal: for Bearer requests, and (with DPoP) for requests that
/// speak DPoP or refusals about sender constraint.
pub struct Challenges {
    bearer: Vec<Prepared>,
    dpop: Option<Vec<Prepared>>,
    /// Whether Bearer tokens are accepted (not `DPOP_REQUIRED`): then the Bearer challenge is sent too.
    bearer_accepted: bool,
}

/// How long a client should wait before retrying while the IdP's keys or introspection are unavailable.
const RETRY_AFTER_SECS: &str = "5";

impl Challenges {
    /// `resource_metadata` is the absolute metadata URL; `scopes` are the required scopes in the form
    /// clients request them (`Config::challenge_scopes`), which the challenge's `scope` names.
    #[cfg(test)]
    pub fn new(resource_metadata: &str, scopes: &[String]) -> Challenges {
        Challenges {
            bearer: table(resource_metadata, scopes, None),
            dpop: None,
            bearer_accepted: true,
        }
    }

    /// As [`Challenges::new`], plus the `DPoP` challenge of RFC 9449 §7.1 naming `algs`. A request
    /// that speaks DPoP, or a refusal about sender constraint, gets the `DPoP` challenge with the error
    /// first and (while Bearer tokens are accepted) a bare `Bearer` challenge after it; with
    /// `bearer_accepted` false, every refusal gets the `DPoP` challenge alone.
    pub fn with_dpop(
        resource_metadata: &str,
        scopes: &[String],
        algs: &[Alg],
        bearer_accepted: bool,
    ) -> Challenges {
        let algs: Vec<&str> = algs.iter().map(|a| a.name()).collect();
        let dpop = DpopChallenge {
            algs: algs.join(" "),
            bearer_accepted,
        };
        Challenges {
            bearer: table(resource_metadata, scopes, None),
            dpop: Some(table(resource_metadata, scopes, Some(&dpop))),
            bearer_accepted,
        }
    }

    /// The response for `refusal` to a Bearer request.
    pub fn respond(&self, refusal: Refusal) -> Response<ResponseBody> {
        self.respond_to(refusal, false)
    }

    /// The response for `refusal`; `speaks_dpop` when the request used the DPoP scheme or sent a
    /// proof ([`super::bearer::speaks_dpop`]).
    pub fn respond_to(&self, refusal: Refusal, speaks_dpop: bool) -> Response<ResponseBody> {
        let table = match &self.dpop {
            Some(dpop) if speaks_dpop || refusal.concerns_dpop() || !self.bearer_accepted => dpop,
            _ => &self.bearer,
        };
        let p = &table[refusal.index()];
        let mut response = Response::new(ResponseBody::from(p.body.clone()));
        *response.status_mut() = p.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for c in &p.challenges {
            headers.append(WWW_AUTHENTICATE, c.clone());
        }
        if p.status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response
    }
}

/// The `DPoP` challenge's fixed part.
struct DpopChallenge {
    /// Space-separated algorithm names (RFC 9449 §7.1 `algs`).
    algs: String,
    bearer_accepted: bool,
}

/// One prepared response per refusal; with `dpop`, the DPoP-first form.
fn table(
    resource_metadata: &str,
    scopes: &[String],
    dpop: Option<&DpopChallenge>,
) -> Vec<Prepared> {
    let scope = scopes.join(" ");
    Refusal::ALL
        .iter()
        .map(|&refusal| {
            let params = |with_error: bool| {
                let mut params = Vec::new();
                if let Some(code) = refusal.error_code().filter(|_| with_error) {
                    params.push(format!("error=\"{code}\""));
                    params.push(format!("error_description=\"{}\"", refusal.description()));
                }
                params.push(format!("resource_metadata=\"{resource_metadata}\""));
                if !scope.is_empty() && refusal != Refusal::ClaimRuleFailed {
                    params.push(format!("scope=\"{scope}\""));
                }
                params.join(", ")
            };
            let header = |value: String| {
                HeaderValue::from_str(&value).expect("challenge parts are validated ASCII")
            };
            let challenges = match (refusal.status(), dpop) {
                (503, _) => Vec::new(),
                (_, None) => vec![header(format!("Bearer {}", params(true)))],
                (_, Some(d)) => {
                    let mut c = vec![header(format!(
                        "DPoP algs=\"{}\", {}",
                        d.algs,
                        params(true)
                    ))];
                    if d.bearer_accepted {
                        c.push(header(format!("Bearer {}", params(false))));
                    }
                    c
                }
            };
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
                challenges,
                body: Bytes::from(body),
            }
        })
        .collect()
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
            let Prepared { body, .. } = &c.bearer[r.index()];
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

    #[test]
    fn dpop_requests_get_the_dpop_challenge_first_and_a_bare_bearer_one() {
        let algs = [Alg::ES256, Alg::EdDSA];
        let c = Challenges::with_dpop(PRM, &["s1".into()], &algs, true);
        let all = |r: Refusal, dpop: bool| -> Vec<String> {
            c.respond_to(r, dpop)
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            all(Refusal::DpopReplayed, true),
            [
                format!("DPoP algs=\"ES256 EdDSA\", error=\"invalid_dpop_proof\", error_description=\"The DPoP proof is invalid\", resource_metadata=\"{PRM}\", scope=\"s1\""),
                format!("Bearer resource_metadata=\"{PRM}\", scope=\"s1\""),
            ]
        );
        // A bound token sent as Bearer is told about DPoP even though the request did not speak it.
        let h = all(Refusal::BoundTokenAsBearer, false);
        assert!(
            h[0].starts_with("DPoP algs=\"ES256 EdDSA\", error=\"invalid_token\""),
            "{h:?}"
        );
        // A plain Bearer request keeps exactly one Bearer challenge.
        assert_eq!(all(Refusal::Expired, false).len(), 1);
        assert!(all(Refusal::Expired, false)[0].starts_with("Bearer error=\"invalid_token\""));
        // An expired token sent with DPoP: the DPoP challenge carries the error.
        assert!(all(Refusal::Expired, true)[0].starts_with("DPoP algs="));
        assert!(all(Refusal::KeysUnavailable, true).is_empty());
    }

    #[test]
    fn with_dpop_required_every_refusal_gets_the_dpop_challenge_alone() {
        let c = Challenges::with_dpop(PRM, &[], &[Alg::ES256], false);
        for r in Refusal::ALL.into_iter().filter(|r| r.status() != 503) {
            let response = c.respond_to(r, false);
            let h: Vec<_> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .collect();
            assert_eq!(h.len(), 1, "{r:?}");
            assert!(
                h[0].to_str().unwrap().starts_with("DPoP algs=\"ES256\""),
                "{r:?}"
            );
        }
    }
}
