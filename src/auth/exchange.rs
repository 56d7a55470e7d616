//! OAuth 2.0 Token Exchange (RFC 8693) for the upstream: instead of the caller's token, which MCP
//! forbids passing through, the upstream receives a token the authorization server issued for it.
//!
//! After the caller's token is accepted (and the MCP rules allowed the request), the gate POSTs to
//! the token endpoint (`TOKEN_EXCHANGE_ENDPOINT`, or `token_endpoint` from the server's metadata,
//! RFC 8414 §2) the §2.1 request: `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
//! `subject_token` (the caller's token), `subject_token_type` and `requested_token_type` (access
//! token), and the configured `audience`, `resource` and `scope`, authenticated as a confidential
//! client (RFC 6749 §2.3.1, `client_secret_basic` or `client_secret_post`). The answer is read by
//! [`super::exchange_answer`]; the upstream gets `Authorization: Bearer <issued token>`.
//!
//! The call is bounded like the key fetch (time and size, [`super::fetch::Fetcher`]). Every failure
//! — refused, unreachable, slow, garbage — is [`GateError::TokenExchangeFailed`] (502): the proxy has
//! already removed the caller's `Authorization`, so nothing of the caller's token goes upstream.
//!
//! Issued tokens are cached by the SHA-256 of the caller's token (the target is the gate's one
//! upstream, so the caller's token alone names the pair), in a bounded map with single flight per
//! key: a burst with one token costs one exchange. An entry lives until shortly before the issued
//! token expires and never past the caller's `exp` ([`super::exchange_answer::reuse_for`]); a failure
//! is remembered for [`FAILURE_TTL`], so an outage costs one call per caller token per that period.
//!
//! A DPoP-bound caller token (RFC 9449) is exchanged like any other: the issued token belongs to the
//! gate, is a Bearer token, and no proof is sent upstream. An authorization server that insists on a
//! proof for a bound subject token refuses, and the request gets 502.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Request};
use http_body_util::Full;

use super::exchange_answer::{read_answer, reuse_for, ACCESS_TOKEN_TYPE};
use super::fetch::Fetcher;
use super::introspection::{discover_endpoint, form_encode, ClientAuth, Secret};
use super::token_cache::{TokenCache, TokenDigest};
use crate::http::error::GateError;
use opentelemetry::trace::SpanKind;

/// How long a failed exchange is remembered per caller token.
pub const FAILURE_TTL: Duration = Duration::from_secs(1);

/// Exchange calls in flight at once, whatever the number of distinct caller tokens.
pub const MAX_CONCURRENT_CALLS: usize = 32;

/// Largest token endpoint answer read: each cached entry holds one issued token, so this times
/// `TOKEN_EXCHANGE_CACHE_SIZE` bounds the cache's memory.
pub const MAX_ANSWER: usize = 64 * 1024;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The validated `TOKEN_EXCHANGE_*` settings.
#[derive(Debug, Clone)]
pub struct ExchangeSettings {
    /// `TOKEN_EXCHANGE_ENDPOINT`, or `None` to read `token_endpoint` from the server's metadata.
    pub endpoint: Option<url::Url>,
    /// `audience` parameters (RFC 8693 §2.1), one per value.
    pub audiences: Vec<String>,
    /// `resource` parameters (absolute URIs, RFC 8693 §2.1 / RFC 8707).
    pub resources: Vec<String>,
    /// The `scope` parameter (space-separated), when one is asked for.
    pub scope: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    pub auth: ClientAuth,
    /// Caller tokens whose exchanged token is remembered at most.
    pub cache_size: usize,
}

/// The upstream's `Authorization`, set by the proxy after it removed the caller's (a request
/// extension, so the proxy's signature does not change).
#[derive(Clone, Debug)]
pub struct UpstreamAuthorization(pub HeaderValue);

/// One exchange's outcome for one request.
pub struct Exchanged {
    /// The upstream's token, or why there is none.
    pub authorization: Result<UpstreamAuthorization, GateError>,
    /// How long the call took, when this request made one (also when it failed; 0 in the access
    /// log otherwise).
    pub took: Option<Duration>,
}

#[derive(Clone)]
struct Entry {
    /// `None`: the exchange failed.
    authorization: Option<HeaderValue>,
    until: Instant,
}

/// Exchanges caller tokens at one authorization server, with a bounded single-flight cache.
pub struct Exchanger {
    settings: ExchangeSettings,
    /// The endpoint, fixed or discovered once from the server's metadata.
    endpoint: tokio::sync::OnceCell<String>,
    /// The `AUTHORIZATION_SERVER` whose metadata names the endpoint.
    server: String,
    allow_insecure: bool,
    fetcher: Fetcher,
    cache: quick_cache::sync::Cache<TokenDigest, Entry>,
    calls: tokio::sync::Semaphore,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Exchanger {
    pub fn new(
        settings: ExchangeSettings,
        server: String,
        allow_insecure: bool,
        fetch_timeout: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Exchanger {
        Exchanger {
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

    /// Caller tokens remembered now (for tests).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Obtains the upstream's token for `request`, whose bearer token was accepted with `claims`,
    /// and attaches it as an [`UpstreamAuthorization`] extension for the proxy. Says how long the
    /// exchange call took, when this request made one, whatever its outcome.
    pub async fn authorize<B>(
        &self,
        request: &mut http::Request<B>,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> (Option<Duration>, Result<(), GateError>) {
        // The token was accepted from these very headers, so this cannot fail; if it did, the
        // request would go nowhere rather than with something else.
        let Ok(credentials) = super::bearer::credentials(request.headers(), request.uri().query())
        else {
            return (None, Err(GateError::TokenExchangeFailed));
        };
        let caller_exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_f64)
            .map(|exp| exp as u64);
        let exchanged = self
            .exchange(credentials.token, caller_exp, super::unix_now())
            .await;
        let outcome = exchanged.authorization.map(|value| {
            request.extensions_mut().insert(value);
        });
        (exchanged.took, outcome)
    }

    /// The exchanged token for `subject`, through the cache.
    pub async fn exchange(&self, subject: &str, caller_exp: Option<u64>, now: u64) -> Exchanged {
        let digest = TokenCache::digest(subject);
        let (entry, took) = loop {
            match self.cache.get_value_or_guard_async(&digest).await {
                Ok(entry) if entry.until > Instant::now() => break (entry, None),
                Ok(_) => {
                    self.cache
                        .remove_if(&digest, |e: &Entry| e.until <= Instant::now());
                }
                Err(guard) => {
                    let started = Instant::now();
                    let issued = self.call(subject).await;
                    let took = started.elapsed();
                    self.metrics.token_exchange_call(took);
                    let entry = match issued {
                        Ok(issued) => Entry {
                            until: Instant::now() + reuse_for(issued.expires_in, caller_exp, now),
                            authorization: Some(issued.authorization),
                        },
                        Err(()) => Entry {
                            authorization: None,
                            until: Instant::now() + FAILURE_TTL,
                        },
                    };
                    let _ = guard.insert(entry.clone());
                    break (entry, Some(took));
                }
            }
        };
        let authorization = match entry.authorization {
            Some(value) => {
                self.metrics
                    .token_exchange(if took.is_some() { "miss" } else { "hit" });
                Ok(UpstreamAuthorization(value))
            }
            None => {
                self.metrics.token_exchange("failure");
                Err(GateError::TokenExchangeFailed)
            }
        };
        Exchanged {
            authorization,
            took,
        }
    }

    /// One exchange, as a child span of the request it serves when that request is traced.
    async fn call(&self, subject: &str) -> Result<super::exchange_answer::Issued, ()> {
        let span = crate::telemetry::child("token exchange", SpanKind::Client);
        let issued = self.call_endpoint(subject).await;
        if let (Some(span), Err(())) = (&span, &issued) {
            span.fail("token_exchange_failed");
        }
        issued
    }

    /// One bounded exchange at the token endpoint; why it failed is logged here (never a token).
    async fn call_endpoint(&self, subject: &str) -> Result<super::exchange_answer::Issued, ()> {
        let Ok(_permit) = tokio::time::timeout(self.fetcher.timeout(), self.calls.acquire()).await
        else {
            tracing::warn!("token exchange: too many calls in flight");
            return Err(());
        };
        let Some(endpoint) = self.endpoint().await else {
            return Err(());
        };
        let request = self.request(endpoint, subject).map_err(|e| {
            tracing::warn!(error = %e, "token exchange: request not built");
        })?;
        match self.fetcher.send(request, |_| true).await {
            Ok(a) if a.body.len() > MAX_ANSWER => {
                tracing::warn!(bytes = a.body.len(), "token exchange: answer too large");
                Err(())
            }
            Ok(a) => read_answer(a.status, &a.body).map_err(|why| {
                tracing::warn!(status = a.status, why = %why, "token exchange failed");
            }),
            Err(e) => {
                tracing::warn!(error = %e, "token exchange: token endpoint failed");
                Err(())
            }
        }
    }

    /// The endpoint: configured, or `token_endpoint` from the server's metadata (fetched once; a
    /// failed discovery is retried by the next call).
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
                    "token_endpoint",
                )
            })
            .await;
        match found {
            Ok(e) => Some(e.as_str()),
            Err(why) => {
                tracing::warn!(server = %self.server, why, "token endpoint not found");
                None
            }
        }
    }

    /// The RFC 8693 §2.1 request, authenticated as RFC 6749 §2.3.1 says.
    fn request(&self, endpoint: &str, subject: &str) -> Result<Request<Full<Bytes>>, http::Error> {
        let s = &self.settings;
        let mut form = exchange_form(s, subject);
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

/// The form of an exchange request for `subject`, without client credentials.
fn exchange_form(s: &ExchangeSettings, subject: &str) -> String {
    let mut form = format!(
        "grant_type={}&subject_token={}&subject_token_type={}&requested_token_type={}",
        form_encode(GRANT_TYPE),
        form_encode(subject),
        form_encode(ACCESS_TOKEN_TYPE),
        form_encode(ACCESS_TOKEN_TYPE),
    );
    for audience in &s.audiences {
        form.push_str(&format!("&audience={}", form_encode(audience)));
    }
    for resource in &s.resources {
        form.push_str(&format!("&resource={}", form_encode(resource)));
    }
    if let Some(scope) = &s.scope {
        form.push_str(&format!("&scope={}", form_encode(scope)));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_every_rfc_8693_parameter_form_encoded() {
        let settings = ExchangeSettings {
            endpoint: None,
            audiences: vec!["api-a".into(), "api b".into()],
            resources: vec!["https://api.example.com/x?y=1".into()],
            scope: Some("read write".into()),
            client_id: "gate".into(),
            client_secret: Secret("s".into()),
            auth: ClientAuth::Basic,
            cache_size: 1,
        };
        assert_eq!(
            exchange_form(&settings, "eyJ.a+b"),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange\
             &subject_token=eyJ.a%2Bb\
             &subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token\
             &audience=api-a&audience=api+b\
             &resource=https%3A%2F%2Fapi.example.com%2Fx%3Fy%3D1\
             &scope=read+write"
        );
    }
}
