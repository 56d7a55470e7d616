//! The path of one request: public routes, framing and origin policy, authentication, proxy.
//!
//! ```text
//! request ─► ambiguous framing, bad Host ─► 400 (GateError)
//!          ├ metadata paths ─► RFC 9728 document (public)
//!          ├ health paths   ─► /healthz, /readyz (public)
//!          ├ Origin not allowed ─► 403; allowed preflight ─► 204 (before auth)
//!          ├ over RATE_LIMIT_IP ─► 429 (before the token is looked at)
//!          └ auth::check ─┬─ refused ─► challenge (400/401/403/503)
//!                         └─ accepted ─┬─ over RATE_LIMIT_SUBJECT ─► 429
//!                                      ├─ CONNECT ─► 501; `*` ─► 200 for OPTIONS, else 400
//!                                      ├─ [policy: POST body read, Mcp-* headers, rules] ─► 400/403
//!                                      ├─ [a tools/call over RATE_LIMIT_TOOL] ─► 429 (JSON-RPC)
//!                                      ├─ [TOKEN_EXCHANGE: the upstream's own token] ─► 502 when none
//!                                      └─ proxy ─► upstream (streamed), or a GateError (413/502/504)
//! ```
//! [`Gate`] is also the composition root: it builds every part from the validated [`Config`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, ORIGIN, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::auth::bearer::{self, Scheme};
use crate::auth::challenge::Challenges;
use crate::auth::exchange::Exchanger;
use crate::auth::key_cache::{KeyCache, KeyCacheSettings, KeySource};
use crate::auth::sender::SenderConstraint;
use crate::auth::{unix_now, Authenticator, Issuer, Refusal};
use crate::config::Config;
use crate::http::access_log::{AccessRecord, LoggedBody};
use crate::http::body::{RequestBody, ResponseBody};
use crate::http::cors::{Cors, OriginCheck};
use crate::http::error::GateError;
use crate::http::forwarded::TrustedProxies;
use crate::http::framing::ambiguous_framing;
use crate::http::metadata::Metadata;
use crate::http::target::{self, Target};
use crate::limits::{self, RateLimiter, Refused, Subject};
use crate::metrics::{Metrics, Outcome};
use crate::policy::enforce::{Enforcer, Inspected, Verdict};
use crate::policy::reload::Reloader;
use crate::proxy::{Proxy, ProxySettings};
use crate::telemetry::Telemetry;

/// Everything a request needs, shared by all connections.
pub struct Gate {
    metadata: Metadata,
    challenges: Challenges,
    auth: Authenticator,
    proxy: Proxy,
    cors: Cors,
    health_path: String,
    ready_path: String,
    metrics: Arc<Metrics>,
    /// Whether clients reach the gate over TLS it terminates (for `X-Forwarded-Proto`).
    tls: bool,
    /// Whose `X-Forwarded-For` names the client in the access log and the address rate limit.
    trusted_proxies: TrustedProxies,
    /// The MCP authorization rules; `None` (no body is ever read) when none are configured and
    /// `RATE_LIMIT_TOOL` is off (the tool level needs the body's tool names: the enforcer reads it).
    policy: Option<Arc<Enforcer>>,
    /// `RATE_LIMIT_*`.
    limits: RateLimiter,
    /// `TOKEN_EXCHANGE`: obtains the upstream's own token (RFC 8693); `None` sends it none.
    exchange: Option<Exchanger>,
    /// `OTEL_*`: `None` (one branch per request, nothing else) when tracing is off.
    telemetry: Option<Telemetry>,
}

impl Gate {
    /// Builds the gate from a validated configuration. Nothing is fetched yet.
    pub fn new(config: &Config) -> Gate {
        let metrics = Arc::new(Metrics::new());
        let metadata = Metadata::new(config);
        let challenges = Challenges::with_dpop(
            metadata.url(),
            &config.challenge_scopes,
            &config.dpop.algorithms,
            !config.dpop.required,
        );
        let issuers = config
            .issuers
            .iter()
            .map(|trusted| {
                let source = match &trusted.jwks_uri {
                    Some(uri) => KeySource::Fixed(uri.to_string()),
                    None => KeySource::Discover {
                        issuer: trusted.server.clone(),
                        allow_insecure: config.allow_insecure_http,
                    },
                };
                let keys = Arc::new(KeyCache::new(
                    KeyCacheSettings {
                        issuer: trusted.policy.issuer.clone(),
                        source,
                        algorithms: trusted.policy.algorithms.clone(),
                        refresh_interval: config.jwks_refresh_interval,
                        min_refresh_interval: config.jwks_min_refresh_interval,
                        fetch_timeout: config.jwks_fetch_timeout,
                    },
                    metrics.clone(),
                ));
                Issuer::new(trusted.policy.clone(), keys)
            })
            .collect();
        let limits = RateLimiter::new(&config.rate_limit, metrics.clone());
        // The tool level needs each call's tool name: the enforcer reads bodies for it too.
        let reads_bodies = config.mcp_policy.is_active() || config.rate_limit.tool.is_some();
        let telemetry =
            Telemetry::configured(config.telemetry.as_ref(), &config.upstream, &metrics);
        let mut auth = Authenticator::new(
            issuers,
            config.max_token_size,
            config.token_cache_size,
            metrics.clone(),
        );
        if let Some(settings) = &config.introspection {
            auth = auth.with_introspection(crate::auth::introspection::Introspector::new(
                settings.clone(),
                config.issuers[0].server.clone(),
                config.allow_insecure_http,
                config.jwks_fetch_timeout,
                metrics.clone(),
            ));
        }
        let auth = auth.with_sender_constraint(SenderConstraint::configured(
            &config.dpop,
            &config.resource,
            &metrics,
        ));
        let exchange = config.exchange.as_ref().map(|settings| {
            Exchanger::new(
                settings.clone(),
                config.issuers[0].server.clone(),
                config.allow_insecure_http,
                config.jwks_fetch_timeout,
                metrics.clone(),
            )
        });
        Gate {
            exchange,
            limits,
            telemetry,
            challenges,
            auth,
            proxy: Proxy::new(ProxySettings {
                upstream: config.upstream.clone(),
                forward_token: config.forward_token,
                timeout: config.upstream_timeout,
                max_body: config.max_request_body,
                trusted_proxies: TrustedProxies::new(config.trusted_proxies.clone()),
                identity: config.identity_headers.clone(),
            }),
            cors: Cors::new(
                &config.cors_allowed_origins,
                config.resource.origin().ascii_serialization(),
            ),
            health_path: config.health_path.clone(),
            ready_path: config.ready_path.clone(),
            policy: reads_bodies.then(|| {
                Arc::new(Enforcer::new(
                    config.mcp_policy.rules.clone(),
                    config.mcp_policy.filter_tools_list,
                    config.max_request_body,
                    metadata.url(),
                    config.upstream_timeout,
                    config.rate_limit.tool.is_some(),
                ))
            }),
            metadata,
            metrics,
            tls: config.tls.is_some(),
            trusted_proxies: TrustedProxies::new(config.trusted_proxies.clone()),
        }
    }

    /// The gate's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The tracer, when tracing is on (to flush it at shutdown).
    pub fn telemetry(&self) -> Option<&Telemetry> {
        self.telemetry.as_ref()
    }

    /// The signing-key caches, one per issuer (to run their refreshers).
    pub fn key_caches(&self) -> impl Iterator<Item = &Arc<KeyCache>> {
        self.auth.issuers().iter().map(|i| &i.keys)
    }

    /// The watcher of `POLICY_FILE`, when the rules come from one (to run beside the server).
    pub fn policy_reloader(&self, config: &Config) -> Option<Reloader> {
        let (enforcer, path) = (self.policy.as_ref()?, config.mcp_policy.file.as_ref()?);
        Some(Reloader::new(
            enforcer.clone(),
            path.clone(),
            config.mcp_policy.rules.base_scopes.clone(),
            config.mcp_policy.reload_interval,
            self.metrics.clone(),
        ))
    }

    /// The absolute URL of the metadata document (for the start-up log line).
    pub fn metadata_url(&self) -> &str {
        self.metadata.url()
    }

    /// Whether every issuer's keys have loaded (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.auth.is_ready()
    }

    /// Handles one request and attaches its access-log record to the response body.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<LoggedBody> {
        let mut record = AccessRecord::new(
            request.method().clone(),
            request.uri().clone(),
            self.trusted_proxies
                .client_ip(client.ip(), request.headers()),
            request.headers().get(USER_AGENT).cloned(),
        );
        // Health probes are not traced: every few seconds per replica, they would bury the traces.
        let path = request.uri().path();
        let trace = (self.telemetry.as_ref())
            .filter(|_| path != self.health_path && path != self.ready_path)
            .map(|t| t.begin(&request, client, record.client_ip(), self.tls));
        let response = match &trace {
            None => self.route(request, client, &mut record).await,
            Some(trace) => {
                use opentelemetry::context::FutureExt;
                // Boxed: with two arms awaiting two different futures of the route, this future
                // held both (twice a request's whole state, created and moved on every request).
                let route = self.route(request, client, &mut record);
                Box::pin(route.with_context(trace.context())).await
            }
        };
        record.status = response.status().as_u16();
        if let Some(trace) = trace {
            trace.finish(&record);
        }
        self.metrics
            .request(record.status, record.outcome, record.elapsed());
        if let (Some(reason), Outcome::Refused) = (record.reason, record.outcome) {
            self.metrics.refusal(reason);
        }
        let stream = (record.outcome == Outcome::Allowed).then(|| {
            self.metrics.stream_opened();
            self.metrics.clone()
        });
        let (parts, body) = response.into_parts();
        Response::from_parts(parts, LoggedBody::new(body, record, stream))
    }

    async fn route(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
        record: &mut AccessRecord,
    ) -> Response<ResponseBody> {
        let version = request.version();
        if let Some(why) = ambiguous_framing(request.headers()) {
            tracing::debug!(why, "refusing a request whose body framing is ambiguous");
            return record.fail(GateError::AmbiguousFraming, version);
        }
        if let Err(e) = target::check_host(version, request.uri(), request.headers()) {
            return record.fail(e, version);
        }
        let path = request.uri().path();
        if self.metadata.serves(path) {
            return self.metadata.respond(request.method());
        }
        if path == self.health_path && is_read(request.method()) {
            return status_json(StatusCode::OK, r#"{"status":"ok"}"#);
        }
        if path == self.ready_path && is_read(request.method()) {
            return if self.is_ready() {
                status_json(StatusCode::OK, r#"{"status":"ready"}"#)
            } else {
                status_json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"status":"not ready","reason":"the authorization server's signing keys have not loaded yet"}"#,
                )
            };
        }

        let origin = match self.cors.check(request.headers()) {
            OriginCheck::Forbidden => return record.fail(GateError::ForbiddenOrigin, version),
            OriginCheck::Allowed(origin)
                if Cors::is_preflight(request.method(), request.headers()) =>
            {
                return self.cors.preflight(origin, request.headers());
            }
            OriginCheck::Allowed(origin) => Some(origin),
            OriginCheck::Absent => None,
        };

        // Before the token: a flood of garbage tokens costs one map lookup per request here.
        if let Err(refused) = self.limits.check_address(record.client_ip()).await {
            return rate_limited(refused, record, version, origin);
        }
        record.scheme = bearer::scheme(request.headers()).map(Scheme::name);
        let speaks_dpop = bearer::speaks_dpop(request.headers());
        let mut response = match self
            .auth
            .check(request.method(), request.uri(), request.headers())
            .await
        {
            Err(refusal) => {
                record.outcome = Outcome::Refused;
                record.reason = Some(refusal.reason());
                self.challenges.respond_to(refusal, speaks_dpop)
            }
            Ok(identity) => {
                let limited = self.limits.check_subject(&identity).await;
                let tool_subject = self.limits.tool_subject(&identity);
                record.sub = identity.sub;
                record.client_id = identity.client_id;
                record.iss = identity.issuer;
                if let Err(refused) = limited {
                    return rate_limited(refused, record, version, origin);
                }
                record.token_path = identity.decided_by;
                record.introspection_ms = identity
                    .introspection
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                if origin.is_some() {
                    // The gate has enforced the origin policy; upstream SDK servers apply their own
                    // localhost-only rule to `Origin` and would refuse every browser request.
                    request.headers_mut().remove(ORIGIN);
                }
                // Checked after authentication, so every target gets the same 401 without a token.
                match target::classify(request.method(), request.uri()) {
                    Err(e) => return record.fail(e, version),
                    Ok(Target::ServerOptions) => return server_options(),
                    Ok(Target::Forward) => {}
                }
                record.outcome = Outcome::Allowed;
                self.authorized(request, &identity.claims, tool_subject, client, record)
                    .await
            }
        };
        if speaks_dpop {
            // RFC 9449 §9: a fresh nonce on every answer to a DPoP request, when nonces are on.
            if let Some(nonce) = self.auth.sender_constraint().fresh_nonce(unix_now()) {
                response.headers_mut().insert(bearer::DPOP_NONCE, nonce);
            }
        }
        if let Some(origin) = origin {
            Cors::decorate(&mut response, origin);
        }
        response
    }
}

impl Gate {
    /// An authenticated request: the MCP authorization rules when there are any, the tool rate
    /// limit, the token exchange, then the proxy (each step only for what the one before let pass).
    async fn authorized(
        &self,
        request: Request<Incoming>,
        claims: &Arc<serde_json::Map<String, serde_json::Value>>,
        tool_subject: Option<Subject>,
        client: SocketAddr,
        record: &mut AccessRecord,
    ) -> Response<ResponseBody> {
        let version = request.version();
        let (mut request, mut audit) = match &self.policy {
            None => (request.map(RequestBody::Streamed), None),
            // Boxed, as each optional step below: a step's future is part of every request's
            // (created and moved each time) unless it is boxed, and these are large.
            Some(policy) => match Box::pin(policy.enforce(request, claims)).await {
                Verdict::Forward(request, audit) => (request, audit),
                Verdict::Refuse(refused) => {
                    record.outcome = Outcome::Refused;
                    record.reason = Some(refused.reason);
                    let status = refused.response.status().as_u16();
                    refused.audit.finish(record, status, &self.metrics);
                    return refused.response;
                }
                Verdict::Fail(e) => return record.fail(e, version),
                Verdict::MalformedScopes => {
                    record.outcome = Outcome::Refused;
                    record.reason = Some(Refusal::MalformedClaims.reason());
                    return self.challenges.respond(Refusal::MalformedClaims);
                }
            },
        };
        if let Some(inspected) = audit.as_mut() {
            let tools = limits::tool::counted(inspected.body());
            if let Err((refused, tool)) =
                Box::pin(self.limits.check_tools(tool_subject, tools)).await
            {
                let response = refused.respond_to_calls(inspected.body(), tool);
                inspected.rate_limited();
                return tool_limited(refused, response, audit, record, &self.metrics);
            }
        }
        // After the rules: a refused request costs no exchange.
        if let Some(exchanger) = &self.exchange {
            let (took, outcome) = Box::pin(exchanger.authorize(&mut request, claims)).await;
            record.exchange_ms = took.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            if let Err(e) = outcome {
                let response = record.fail(e, version);
                if let Some(audit) = audit {
                    audit.finish(record, response.status().as_u16(), &self.metrics);
                }
                return response;
            }
        }
        let span = (self.telemetry.as_ref()).and_then(|_| crate::telemetry::upstream(&mut request));
        let started = Instant::now();
        let response = self.proxy.forward(request, client, self.tls, claims).await;
        self.metrics.upstream(started.elapsed());
        if let Some(span) = span {
            span.answered(response.as_ref().ok().map(|r| r.status().as_u16()));
        }
        let mut response = response.unwrap_or_else(|e| record.fail(e, version));
        if let Some(mut audit) = audit {
            response = Box::pin(audit.filter(response)).await;
            audit.finish(record, response.status().as_u16(), &self.metrics);
        }
        response
    }
}

/// The 429 (or 503) for a request a rate limit refused, logged with the limit that did; never forwarded.
fn rate_limited(
    refused: Refused,
    record: &mut AccessRecord,
    version: http::Version,
    origin: Option<HeaderValue>,
) -> Response<ResponseBody> {
    record.limit = Some(refused.level().as_str());
    let mut response = record.fail(refused.error(), version);
    refused.decorate(&mut response);
    if let Some(origin) = origin {
        Cors::decorate(&mut response, origin);
    }
    response
}

/// The 429 (or 503) for a `tools/call` over `RATE_LIMIT_TOOL`, whose answer was built from the
/// request's body (a JSON-RPC error with its id); logged and audited, never forwarded.
fn tool_limited(
    refused: Refused,
    response: Response<ResponseBody>,
    audit: Option<Inspected>,
    record: &mut AccessRecord,
    metrics: &Metrics,
) -> Response<ResponseBody> {
    record.limit = Some(refused.level().as_str());
    record.outcome = Outcome::Refused;
    record.reason = Some(refused.error().reason());
    if let Some(audit) = audit {
        audit.finish(record, response.status().as_u16(), metrics);
    }
    response
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

/// `OPTIONS *` (RFC 9110 §9.3.7): what the server as a whole supports, answered by the gate itself.
/// Asked with a valid token only, like every path the gate does not serve publicly.
fn server_options() -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(Bytes::new()));
    response.headers_mut().insert(
        ALLOW,
        HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    response
}

fn status_json(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
