//! The access log: one JSON line per request, written when the response — or the stream — ends.
//!
//! The record rides along with the response body, so a Server-Sent Events stream is logged when it
//! closes (with its full duration), and a client that hangs up is logged when the body is dropped.
//! A request hyper refused before the gate saw it (a malformed or oversized head) gets its line from
//! [`log_refused_head`] when its connection ends, so every response sent is one line.
//!
//! Every line carries the same keys — `method`, `path`, `status`, `duration_ms`, `client_ip`,
//! `user_agent`, `sub`, `client_id`, `iss`, `reason`, `limit`, `scheme`, `token_path`, `introspection_ms`,
//! `exchange_ms`, `complete` — with an empty string (or 0) for what is not known, as the Go mcp-gate's lines do, so
//! log pipelines can rely on the schema (`limit` is ours: which rate limit, `ip`, `subject` or `tool`, refused
//! a `rate_limited` request; `scheme` is `bearer` or `dpop`; `token_path` says which path decided an accepted token: `jwt`,
//! `introspection` or `cache`; `exchange_ms` is the RFC 8693 token exchange's duration, 0 when the
//! exchanged token came from the cache or none was needed). The token itself is never a field.

use std::cell::RefCell;
use std::io::Write;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Method, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};

use crate::http::body::ResponseBody;
use crate::http::error::GateError;
use crate::metrics::{Metrics, Outcome};

mod line;

/// What is known about one request, filled in as it is handled.
pub struct AccessRecord {
    /// `None` when hyper refused the request head before it was parsed.
    method: Option<Method>,
    uri: Option<Uri>,
    client_ip: IpAddr,
    user_agent: Option<HeaderValue>,
    start: Instant,
    pub status: u16,
    pub sub: Option<String>,
    pub client_id: Option<String>,
    /// The configured issuer that accepted the token.
    pub iss: Option<Arc<str>>,
    /// Why the request was refused, when it was.
    pub reason: Option<&'static str>,
    /// The rate limit that refused the request (`ip`, `subject`, `tool`), when one did.
    pub limit: Option<&'static str>,
    /// How the token was presented: `bearer` or `dpop` (RFC 9449), when it was.
    pub scheme: Option<&'static str>,
    /// How the request was decided.
    pub outcome: Outcome,
    /// Which path decided the token: `jwt`, `introspection` or `cache` (empty when none did).
    pub token_path: &'static str,
    /// Milliseconds the introspection call took for this request (0 when none was made).
    pub introspection_ms: f64,
    /// Milliseconds the token exchange call took for this request (0 when none was made).
    pub exchange_ms: f64,
}

impl AccessRecord {
    pub fn new(
        method: Method,
        uri: Uri,
        client_ip: IpAddr,
        user_agent: Option<HeaderValue>,
    ) -> AccessRecord {
        AccessRecord {
            method: Some(method),
            uri: Some(uri),
            client_ip,
            user_agent,
            start: Instant::now(),
            status: 0,
            sub: None,
            client_id: None,
            iss: None,
            reason: None,
            limit: None,
            scheme: None,
            outcome: Outcome::Public,
            token_path: "",
            introspection_ms: 0.0,
            exchange_ms: 0.0,
        }
    }

    /// The client's address as logged (the peer, or what a trusted proxy says it forwarded).
    pub fn client_ip(&self) -> IpAddr {
        self.client_ip
    }

    /// Records that the gate answered `error` itself, and returns that answer. An upstream failure
    /// keeps the outcome `Allowed` (the token was good), with the reason logged.
    pub fn fail(&mut self, error: GateError, version: Version) -> Response<ResponseBody> {
        if !error.is_upstream() {
            self.outcome = Outcome::Refused;
        }
        self.reason = Some(error.reason());
        error.response(version)
    }

    /// Time since the request arrived.
    pub fn elapsed(&self) -> std::time::Duration {
        self.start.elapsed()
    }

    fn write(&self, complete: bool) {
        let duration_ms = self.start.elapsed().as_secs_f64() * 1000.0;
        match crate::logging::access_writer() {
            Some(writer) => LINE.with_borrow_mut(|line| {
                line.clear();
                line::write(line, self, complete, duration_ms, SystemTime::now());
                // One `write` per line, as tracing's own lines: the channel keeps them whole.
                let _ = writer.clone().write_all(line);
            }),
            None => self.trace(complete, duration_ms),
        }
    }

    /// The line as a `tracing` event, for the pretty format (and for whatever subscriber a test
    /// installs). With the JSON format, [`line::write`] writes the same bytes without `tracing`.
    fn trace(&self, complete: bool, duration_ms: f64) {
        // A User-Agent that is not visible ASCII is logged as absent rather than guessed at.
        let user_agent = self.user_agent.as_ref().and_then(|v| v.to_str().ok());
        tracing::info!(
            target: "mcp_gate::access",
            method = self.method.as_ref().map_or("", Method::as_str),
            path = self.uri.as_ref().map_or("", Uri::path),
            status = self.status,
            duration_ms = (duration_ms * 1000.0).round() / 1000.0,
            client_ip = %self.client_ip,
            user_agent = user_agent.unwrap_or(""),
            sub = self.sub.as_deref().unwrap_or(""),
            client_id = self.client_id.as_deref().unwrap_or(""),
            iss = self.iss.as_deref().unwrap_or(""),
            reason = self.reason.unwrap_or(""),
            limit = self.limit.unwrap_or(""),
            token_path = self.token_path,
            introspection_ms = (self.introspection_ms * 1000.0).round() / 1000.0,
            exchange_ms = (self.exchange_ms * 1000.0).round() / 1000.0,
            scheme = self.scheme.unwrap_or(""),
            complete,
            "request"
        );
    }
}

thread_local! {
    /// Each worker thread's line buffer, reused: no allocation per line but the channel's copy.
    static LINE: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

/// Logs and counts a request head that hyper refused itself (`error`: 400, 414 or 431) on a
/// connection from `client_ip`. Method, path and user agent are unknown: the head did not parse.
pub fn log_refused_head(client_ip: IpAddr, error: GateError, metrics: &Metrics) {
    let record = AccessRecord {
        method: None,
        uri: None,
        client_ip,
        user_agent: None,
        start: Instant::now(),
        status: error.status().as_u16(),
        sub: None,
        client_id: None,
        iss: None,
        reason: Some(error.reason()),
        limit: None,
        scheme: None,
        outcome: Outcome::Refused,
        token_path: "",
        introspection_ms: 0.0,
        exchange_ms: 0.0,
    };
    // When the head began to arrive is not known here; the line says about 0 ms.
    metrics.request(record.status, record.outcome, record.elapsed());
    metrics.refusal(error.reason());
    record.write(true);
}

/// A response body that writes its request's access log line when it ends or is dropped.
pub struct LoggedBody {
    inner: ResponseBody,
    record: Option<AccessRecord>,
    /// Set for proxied responses: counted as open streams until the body ends.
    stream: Option<Arc<Metrics>>,
}

impl LoggedBody {
    pub fn new(
        inner: ResponseBody,
        record: AccessRecord,
        stream: Option<Arc<Metrics>>,
    ) -> LoggedBody {
        LoggedBody {
            inner,
            record: Some(record),
            stream,
        }
    }

    fn finish(&mut self, complete: bool) {
        if let Some(record) = self.record.take() {
            record.write(complete);
        }
        if let Some(metrics) = self.stream.take() {
            metrics.stream_closed();
        }
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // A body that was never polled to its end: either it was empty (HEAD, 204) or the client left.
        let complete = self.inner.is_end_stream();
        self.finish(complete);
    }
}
