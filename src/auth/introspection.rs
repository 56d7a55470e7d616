//! Opaque access tokens, decided by asking the authorization server: OAuth 2.0 Token Introspection
//! (RFC 7662).
//!
//! The gate authenticates to the introspection endpoint as a confidential client (RFC 7662 §2.1,
//! RFC 6749 §2.3.1: `client_secret_basic` by default, `client_secret_post` on request), POSTs
//! `token` and `token_type_hint=access_token`, and reads the JSON answer (§2.2): `active: false` is
//! a refusal (`invalid_token`); an active token's claims go through exactly the checks a JWT's do
//! ([`super::token::check_claims`]: `iss`, `aud`, `exp`/`nbf`/`iat`, scopes, claim rules). An
//! answer without `iss` is taken to speak for the issuer whose endpoint gave it.
//!
//! The endpoint is bounded like the key fetch (time and size, [`super::fetch::Fetcher`]); no
//! answer, an error status or garbage is `503` with `Retry-After`, never a pass. Outcomes are cached
//! by the token's SHA-256, in a bounded map with single flight per token (a burst with one token
//! costs one call): an active token for at most `INTROSPECTION_CACHE_MAX_AGE` and never past its
//! `exp`; an inactive one for [`NEGATIVE_TTL`]; an unreachable endpoint for [`UNAVAILABLE_TTL`].
//! At most [`MAX_CONCURRENT_CALLS`] calls are in flight at once, so a flood of distinct tokens
//! costs the endpoint at most that many calls per round-trip time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::Request;
use http_body_util::Full;
use opentelemetry::trace::SpanKind;
use opentelemetry::KeyValue;
use serde_json::{Map, Value};

use super::fetch::Fetcher;
use super::token::{check_claims, Policy, Verified};
use super::token_cache::{TokenCache, TokenDigest};
use super::Refusal;

/// How long an `active: false` answer is remembered: a revoked or unknown token replayed costs one
/// call per this period, and a token that just became valid waits at most this long.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// How long an unreachable or garbled endpoint is remembered per token, so that a burst during an
/// outage costs one call per token per this period instead of one per request.
pub const UNAVAILABLE_TTL: Duration = Duration::from_secs(1);

/// Introspection calls in flight at once, whatever the number of distinct tokens.
pub const MAX_CONCURRENT_CALLS: usize = 32;

/// Largest introspection answer used: each cached entry holds one, so this times
/// `INTROSPECTION_CACHE_SIZE` bounds the cache's memory (64 KiB × 10 000 ≈ 640 MiB at worst;
/// real answers are well under 2 KiB).
pub const MAX_ANSWER: usize = 64 * 1024;

/// Which tokens are introspected (`TOKEN_VALIDATION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Every token is a JWT checked locally (the default; no introspection).
    Jwt,
    /// Every token is introspected.
    Introspect,
    /// JWTs are checked locally, anything else is introspected.
    Auto,
}

/// How the gate authenticates to the introspection endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// A client secret: never printed, not even by `{:?}` of the configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The validated introspection settings.
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    pub validation: Validation,
    /// `INTROSPECTION_ENDPOINT`, or `None` to read `introspection_endpoint` from the issuer's metadata.
    pub endpoint: Option<url::Url>,
    pub client_id: String,
    pub client_secret: Secret,
    pub auth: ClientAuth,
    /// Longest an active token's outcome is reused (never past its `exp`).
    pub cache_max_age: Duration,
    /// Tokens remembered at most.
    pub cache_size: usize,
}

/// What one introspection call said about a token.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `active: true`, with the response's members as the token's claims.
    Active(Arc<Map<String, Value>>),
    /// `active: false` (revoked, expired, unknown, or not for this client).
    Inactive,
    /// No usable answer: transport failure, error status, not a JSON object, `active` not a boolean.
    Unavailable,
}

/// Reads an introspection response body (RFC 7662 §2.2). `issuer` fills in a missing `iss`.
pub fn read_answer(status: u16, body: &[u8], issuer: &str) -> Answer {
    if status != 200 {
        return Answer::Unavailable;
    }
    let Ok(Value::Object(mut members)) = super::strict_json::from_slice(body) else {
        return Answer::Unavailable;
    };
    match members.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Answer::Inactive,
        _ => return Answer::Unavailable,
    }
    members.remove("active");
    members
        .entry("iss")
        .or_insert_with(|| Value::String(issuer.to_string()));
    Answer::Active(Arc::new(members))
}

/// Whether `token` has the shape of a compact JWS (three segments, the first a base64url JSON
/// object): under `TOKEN_VALIDATION=auto` such a token is checked locally, anything else introspected.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|v| v.is_object())
}

#[derive(Clone)]
struct Entry {
    answer: Answer,
    until: Instant,
}

/// Asks one authorization server about opaque tokens, with a bounded single-flight cache.
pub struct Introspector {
    settings: IntrospectionSettings,
    /// The endpoint, fixed or discovered once from the issuer's metadata.
    endpoint: tokio::sync::OnceCell<String>,
    /// The `AUTHORIZATION_SERVER` whose metadata names the endpoint.
    server: String,
    allow_insecure: bool,
    fetcher: Fetcher,
    cache: quick_cache::sync::Cache<TokenDigest, Entry>,
    calls: tokio::sync::Semaphore,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Introspector {
    pub fn new(
        settings: IntrospectionSettings,
        server: String,
        allow_insecure: bool,
        fetch_timeout: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Introspector {
        Introspector {
            cache: quick_cache::sync::Cache::new(settings.cache_size.max(1)),
            endpoint: tokio::sync::OnceCell::new(),
            settings,
            server,
            allow_insecure,
            fetcher: Fetcher::new(fetch_timeout),
            calls: tokio::sync::Semaphore::new(MAX_CONCURRENT_CALLS),
            metrics,
        }
    }

    pub fn validation(&self) -> Validation {
        self.settings.validation
    }

    /// Tokens remembered now (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Decides `token` under `policy`, through the cache.
    pub async fn check(&self, token: &str, policy: &Policy, now: u64) -> Result<Verified, Refusal> {
        let digest = TokenCache::digest(token);
        let mut took = None;
        let answer = loop {
            match self.cache.get_value_or_guard_async(&digest).await {
                Ok(entry) if entry.until > Instant::now() => {
                    self.metrics.decided_by("cache");
                    break entry.answer;
                }
                Ok(_) => {
                    self.cache
                        .remove_if(&digest, |e: &Entry| e.until <= Instant::now());
                }
                Err(guard) => {
                    self.metrics.decided_by("introspection");
                    let started = Instant::now();
                    let answer = self.call(token, &policy.issuer).await;
                    took = Some(started.elapsed());
                    let until = Instant::now() + self.ttl(&answer, now);
                    let _ = guard.insert(Entry {
                        answer: answer.clone(),
                        until,
                    });
                    break answer;
                }
            }
        };
        match answer {
            Answer::Active(claims) => check_claims(&claims, policy, now).map(|verified| Verified {
                decided_by: if took.is_some() {
                    "introspection"
                } else {
                    "cache"
                },
                introspection: took,
                ..verified
            }),
            Answer::Inactive => Err(Refusal::InactiveToken),
            Answer::Unavailable => Err(Refusal::IntrospectionUnavailable),
        }
    }

    /// How long an answer may be reused: never past the token's `exp`.
    fn ttl(&self, answer: &Answer, now: u64) -> Duration {
        match answer {
            Answer::Active(claims) => {
                let left = claims
                    .get("exp")
                    .and_then(Value::as_f64)
                    .map(|exp| Duration::from_secs_f64((exp - now as f64).max(0.0)))
                    .unwrap_or(Duration::ZERO);
                left.min(self.settings.cache_max_age)
            }
            Answer::Inactive => NEGATIVE_TTL,
            Answer::Unavailable => UNAVAILABLE_TTL,
        }
    }

    /// One bounded call to the endpoint.
    async fn call(&self, token: &str, issuer: &str) -> Answer {
        let started = Instant::now();
        // A child span of the request being decided, when it is traced.
        let span = crate::telemetry::child("token introspection", SpanKind::Client);
        let answer = async {
            let Ok(_permit) =
                tokio::time::timeout(self.fetcher.timeout(), self.calls.acquire()).await
            else {
                tracing::warn!("introspection: too many calls in flight");
                return Answer::Unavailable;
            };
            let endpoint = match self.endpoint().await {
                Some(e) => e,
                None => return Answer::Unavailable,
            };
            let request = match self.request(endpoint, token) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "introspection: request not built");
                    return Answer::Unavailable;
                }
            };
            match self.fetcher.send(request, |s| s == 200).await {
                Ok(a) if a.body.len() > MAX_ANSWER => {
                    tracing::warn!(bytes = a.body.len(), "introspection: answer too large");
                    Answer::Unavailable
                }
                Ok(a) => {
                    let answer = read_answer(a.status, &a.body, issuer);
                    if answer == Answer::Unavailable {
                        tracing::warn!(status = a.status, "introspection: unusable answer");
                    }
                    answer
                }
                Err(e) => {
                    tracing::warn!(error = %e, "introspection endpoint failed");
                    Answer::Unavailable
                }
            }
        }
        .await;
        self.metrics.introspection(started.elapsed());
        if let Some(span) = &span {
            match &answer {
                Answer::Active(_) => span.set(KeyValue::new("mcp_gate.token.active", true)),
                Answer::Inactive => span.set(KeyValue::new("mcp_gate.token.active", false)),
                Answer::Unavailable => span.fail("unavailable"),
            }
        }
        answer
    }

    /// The endpoint: configured, or `introspection_endpoint` from the issuer's metadata (fetched
    /// once; a failed discovery is retried by the next call).
    async fn endpoint(&self) -> Option<&str> {
        if let Some(fixed) = &self.settings.endpoint {
            return Some(fixed.as_str());
        }
        let found = self
            .endpoint
            .get_or_try_init(|| {
                discover_endpoint(
                    &self.fetcher,
                    &self.server,
                    self.allow_insecure,
                    "introspection_endpoint",
                )
            })
            .await;
        match found {
            Ok(e) => Some(e.as_str()),
            Err(why) => {
                tracing::warn!(server = %self.server, why, "introspection endpoint not found");
                None
            }
        }
    }

    /// The RFC 7662 §2.1 request, authenticated as RFC 6749 §2.3.1 says.
    fn request(&self, endpoint: &str, token: &str) -> Result<Request<Full<Bytes>>, http::Error> {
        let s = &self.settings;
        let mut form = format!("token={}&token_type_hint=access_token", form_encode(token));
        let mut builder = Request::post(endpoint)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("mcp-gate/", env!("CARGO_PKG_VERSION")));
        match s.auth {
            ClientAuth::Basic => {
                let pair = format!(
                    "{}:{}",
                    form_encode(&s.client_id),
                    form_encode(&s.client_secret.0)
                );
                builder = builder.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(pair)));
            }
            ClientAuth::Post => {
                form.push_str(&format!(
                    "&client_id={}&client_secret={}",
                    form_encode(&s.client_id),
                    form_encode(&s.client_secret.0)
                ));
            }
        }
        builder.body(Full::new(Bytes::from(form)))
    }
}

/// The endpoint named by `member` (`introspection_endpoint`, `token_endpoint`) in `server`'s
/// metadata (RFC 8414 §2), whose `issuer` must be `server`; https unless loopback or
/// ALLOW_INSECURE_HTTP.
pub(crate) async fn discover_endpoint(
    fetcher: &Fetcher,
    server: &str,
    allow_insecure: bool,
    member: &str,
) -> Result<String, String> {
    let url = url::Url::parse(server).map_err(|e| e.to_string())?;
    let doc = match super::discovery::search(fetcher, &url).await {
        super::discovery::Search::Found { doc, .. } => doc,
        super::discovery::Search::Missing(misses) => return Err(misses.join("; ")),
        super::discovery::Search::Unreachable { url, error } => {
            return Err(format!("{url}: {error}"))
        }
    };
    if doc.get("issuer").and_then(Value::as_str) != Some(server) {
        return Err("the metadata's issuer is not the server".into());
    }
    let endpoint = doc
        .get(member)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("the metadata has no {member}"))?;
    let parsed = url::Url::parse(endpoint).map_err(|_| format!("{member} is not a URL"))?;
    let secure = parsed.scheme() == "https"
        || (parsed.scheme() == "http"
            && (allow_insecure || crate::config::is_loopback_host(&parsed)));
    if !secure {
        return Err(format!(
            "{member} is not https (ALLOW_INSECURE_HTTP allows http)"
        ));
    }
    Ok(endpoint.to_string())
}

/// `application/x-www-form-urlencoded` encoding of one value (also what RFC 6749 §2.3.1 applies to
/// the client id and secret before HTTP Basic).
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests;
