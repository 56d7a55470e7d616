//! The spans of one request: the server span (HTTP semantic conventions, plus the gate's decision)
//! and its children, with W3C Trace Context (Recommendation "Trace Context", §3) in and out.
//!
//! The server span is created when first needed, not when the request arrives: an MCP body's
//! `params._meta.traceparent` (the MCP semantic conventions' "Context propagation") is read only
//! after authentication, by the policy, and a span's trace id cannot change once it exists. Its
//! start time is the arrival time all the same. A child span (a key fetch during authentication)
//! creates it early; a body's trace context that comes after that is recorded as a link.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use http::header::{HOST, USER_AGENT};
use http::{HeaderMap, Request, Version};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, Span};

use crate::http::access_log::AccessRecord;
use crate::metrics::Outcome;

/// What every request's trace shares: the tracer and the fixed attributes of the upstream.
pub struct Shared {
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    record_subject: bool,
    upstream_address: String,
    upstream_port: i64,
}

impl Shared {
    pub(super) fn new(tracer: SdkTracer, record_subject: bool, upstream: &url::Url) -> Shared {
        Shared {
            tracer,
            propagator: TraceContextPropagator::new(),
            record_subject,
            upstream_address: upstream.host_str().unwrap_or_default().to_string(),
            upstream_port: upstream.port_or_known_default().map_or(0, i64::from),
        }
    }
}

/// The trace of one request; cheap to clone (the request's [`Context`] holds one, so that
/// [`super::child`] finds it from anywhere in the request's call tree).
#[derive(Clone)]
pub struct RequestTrace {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    started: SystemTime,
    name: &'static str,
    state: Mutex<State>,
}

struct State {
    /// The caller's context (the `traceparent` header's, or empty for a new trace).
    parent: Context,
    /// Whether `parent` came from the headers: they win over a body's `_meta`.
    parent_from_header: bool,
    /// The server span, once created.
    server: Option<Context>,
    attributes: Vec<KeyValue>,
    /// A body's trace context that came after the server span existed.
    late_link: Option<opentelemetry::trace::SpanContext>,
}

/// `params._meta.traceparent` and `tracestate` of an inspected MCP request, when present.
#[derive(Clone, Copy, Default)]
pub struct MetaContext<'a> {
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
}

impl Extractor for MetaContext<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.traceparent,
            "tracestate" => self.tracestate,
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// A child span; ends when dropped.
pub struct ChildSpan {
    cx: Context,
}

impl ChildSpan {
    /// Adds an attribute.
    pub fn set(&self, attribute: KeyValue) {
        self.cx.span().set_attribute(attribute);
    }

    /// Marks the operation failed, with a short reason (`error.type`): never a token or a secret.
    pub fn fail(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let span = self.cx.span();
        span.set_attribute(KeyValue::new("error.type", reason.clone()));
        span.set_status(Status::error(reason));
    }

    /// The upstream's answer: its status, or `None` when there was none (error, timeout).
    pub fn answered(&self, status: Option<u16>) {
        match status {
            Some(status) => {
                self.set(KeyValue::new(
                    "http.response.status_code",
                    i64::from(status),
                ));
                if status >= 500 {
                    self.fail(status.to_string());
                }
            }
            None => self.fail("no_answer"),
        }
    }

    /// Replaces the caller's `traceparent`/`tracestate` in `headers` with this span's, so the next
    /// hop continues the trace as this span's child.
    fn inject(&self, shared: &TraceContextPropagator, headers: &mut HeaderMap) {
        headers.remove("traceparent");
        headers.remove("tracestate");
        shared.inject_context(&self.cx, &mut HeaderInjector(headers));
    }
}

impl Drop for ChildSpan {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The span name of the HTTP semantic conventions without a route: the method, or `HTTP` for one
/// outside the registered set (span names must stay low-cardinality).
fn span_name(method: &http::Method) -> &'static str {
    use http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        M::CONNECT => "CONNECT",
        M::TRACE => "TRACE",
        _ => "HTTP",
    }
}

/// `http.request.method`: the method, or `_OTHER` for one outside the registered set.
fn method_attribute(method: &http::Method) -> &'static str {
    match span_name(method) {
        "HTTP" => "_OTHER",
        known => known,
    }
}

impl RequestTrace {
    pub(super) fn begin<B>(
        shared: Arc<Shared>,
        request: &Request<B>,
        peer: SocketAddr,
        client_ip: IpAddr,
        tls: bool,
    ) -> RequestTrace {
        let parent = shared
            .propagator
            .extract(&HeaderExtractor(request.headers()));
        let parent_from_header = parent.span().span_context().is_valid();
        let (host, port) = authority(request, tls);
        let mut attributes = vec![
            KeyValue::new("http.request.method", method_attribute(request.method())),
            KeyValue::new("url.path", request.uri().path().to_string()),
            KeyValue::new("url.scheme", if tls { "https" } else { "http" }),
            KeyValue::new(
                "network.protocol.version",
                protocol_version(request.version()),
            ),
            KeyValue::new("client.address", client_ip.to_string()),
            KeyValue::new("network.peer.address", peer.ip().to_string()),
            KeyValue::new("network.peer.port", i64::from(peer.port())),
        ];
        if let Some(host) = host {
            attributes.push(KeyValue::new("server.address", host));
            attributes.push(KeyValue::new("server.port", port));
        }
        if let Some(agent) = request
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
        {
            attributes.push(KeyValue::new("user_agent.original", agent.to_string()));
        }
        RequestTrace {
            inner: Arc::new(Inner {
                shared,
                started: SystemTime::now(),
                name: span_name(request.method()),
                state: Mutex::new(State {
                    parent,
                    parent_from_header,
                    server: None,
                    attributes,
                    late_link: None,
                }),
            }),
        }
    }

    /// The context to run the request's handling in, so [`super::child`] finds this trace.
    pub fn context(&self) -> Context {
        Context::new().with_value(self.clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-written that matters for a span.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server span's context, creating the span on first use.
    fn server(&self, state: &mut State) -> Context {
        if let Some(cx) = &state.server {
            return cx.clone();
        }
        let tracer = &self.inner.shared.tracer;
        let span = tracer
            .span_builder(self.inner.name)
            .with_kind(SpanKind::Server)
            .with_start_time(self.inner.started)
            .start_with_context(tracer, &state.parent);
        let cx = state.parent.with_span(span);
        state.server = Some(cx.clone());
        cx
    }

    pub(super) fn child(&self, name: &'static str, kind: SpanKind) -> ChildSpan {
        let parent = {
            let mut state = self.state();
            self.server(&mut state)
        };
        let tracer = &self.inner.shared.tracer;
        let span: Span = tracer
            .span_builder(name)
            .with_kind(kind)
            .start_with_context(tracer, &parent);
        ChildSpan {
            cx: parent.with_span(span),
        }
    }

    /// The client span of the upstream call; `headers` (the upstream request's) get its
    /// `traceparent`, replacing the client's.
    pub fn upstream(&self, method: &http::Method, headers: &mut HeaderMap) -> ChildSpan {
        let shared = &self.inner.shared;
        let span = self.child(span_name(method), SpanKind::Client);
        span.set(KeyValue::new(
            "http.request.method",
            method_attribute(method),
        ));
        span.set(KeyValue::new(
            "server.address",
            shared.upstream_address.clone(),
        ));
        span.set(KeyValue::new("server.port", shared.upstream_port));
        span.inject(&shared.propagator, headers);
        span
    }

    pub(super) fn mcp_call(&self, method: &str, name: Option<&str>, meta: MetaContext<'_>) {
        let mut state = self.state();
        state
            .attributes
            .push(KeyValue::new("mcp.method.name", method.to_string()));
        if let Some(name) = name {
            let key = match method {
                "tools/call" => "gen_ai.tool.name",
                "prompts/get" => "gen_ai.prompt.name",
                _ => "mcp.resource.uri",
            };
            state.attributes.push(KeyValue::new(key, name.to_string()));
        }
        if state.parent_from_header || meta.traceparent.is_none() {
            return;
        }
        let from_body = self.inner.shared.propagator.extract(&meta);
        let remote = from_body.span().span_context().clone();
        if !remote.is_valid() {
            return;
        }
        if state.server.is_none() {
            state.parent = from_body;
        } else {
            state.late_link = Some(remote);
        }
    }

    /// Ends the server span with what the access record says about the request.
    pub fn finish(self, record: &AccessRecord) {
        let mut state = self.state();
        let cx = self.server(&mut state);
        let span = cx.span();
        span.set_attributes(state.attributes.drain(..));
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(record.status),
        ));
        match record.outcome {
            Outcome::Allowed => {
                span.set_attribute(KeyValue::new("mcp_gate.auth.decision", "allowed"))
            }
            Outcome::Refused => {
                span.set_attribute(KeyValue::new("mcp_gate.auth.decision", "refused"))
            }
            Outcome::Public => {}
        }
        if let Some(reason) = record.reason {
            let key = match record.outcome {
                Outcome::Refused => "mcp_gate.refusal.reason",
                _ => "error.type",
            };
            span.set_attribute(KeyValue::new(key, reason));
        }
        if let Some(limit) = record.limit {
            span.set_attribute(KeyValue::new("mcp_gate.rate_limit", limit));
        }
        if self.inner.shared.record_subject {
            if let Some(sub) = &record.sub {
                span.set_attribute(KeyValue::new("enduser.id", sub.clone()));
            }
        }
        if let Some(link) = state.late_link.take() {
            span.add_link(link, Vec::new());
        }
        // HTTP semantic conventions: a server span is an error for 5xx only (4xx is the client's).
        if record.status >= 500 {
            span.set_status(Status::error(record.reason.unwrap_or("server error")));
        }
        span.end();
    }
}

/// `server.address`/`server.port` from the request target or `Host` (HTTP semantic conventions).
fn authority<B>(request: &Request<B>, tls: bool) -> (Option<String>, i64) {
    let default_port = if tls { 443 } else { 80 };
    let from_uri = request
        .uri()
        .authority()
        .map(|a| (a.host().to_string(), a.port_u16()));
    let from_host = || {
        let value = request.headers().get(HOST)?.to_str().ok()?;
        let authority: http::uri::Authority = value.parse().ok()?;
        Some((authority.host().to_string(), authority.port_u16()))
    };
    match from_uri.or_else(from_host) {
        Some((host, port)) => (Some(host), i64::from(port.unwrap_or(default_port))),
        None => (None, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, host: Option<&str>) -> Request<()> {
        let mut builder = Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(HOST, host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn server_address_comes_from_the_target_then_host_with_the_scheme_default_port() {
        /// Target, `Host`, TLS, and the expected `server.address` and `server.port`.
        type Case<'a> = (&'a str, Option<&'a str>, bool, (Option<&'a str>, i64));
        let cases: &[Case] = &[
            (
                "/mcp",
                Some("mcp.example.com"),
                true,
                (Some("mcp.example.com"), 443),
            ),
            (
                "/mcp",
                Some("mcp.example.com:8443"),
                true,
                (Some("mcp.example.com"), 8443),
            ),
            ("/mcp", Some("127.0.0.1"), false, (Some("127.0.0.1"), 80)),
            (
                "http://gate:8080/mcp",
                Some("other"),
                false,
                (Some("gate"), 8080),
            ),
            ("/mcp", None, false, (None, 0)),
            ("/mcp", Some("bad host"), false, (None, 0)),
        ];
        for (uri, host, tls, (want_host, want_port)) in cases {
            let (got_host, got_port) = authority(&request(uri, *host), *tls);
            assert_eq!(
                (got_host.as_deref(), got_port),
                (*want_host, *want_port),
                "{uri} {host:?}"
            );
        }
    }

    #[test]
    fn span_names_are_the_method_or_http_for_unregistered_methods() {
        assert_eq!(span_name(&http::Method::POST), "POST");
        assert_eq!(span_name(&http::Method::DELETE), "DELETE");
        let custom = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(span_name(&custom), "HTTP");
        assert_eq!(method_attribute(&custom), "_OTHER");
    }

    #[test]
    fn meta_context_offers_only_the_trace_context_keys() {
        let meta = MetaContext {
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            tracestate: None,
        };
        let cx = TraceContextPropagator::new().extract(&meta);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(meta.get("authorization"), None);
    }
}
