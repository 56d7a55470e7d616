//! OpenTelemetry traces (issue #12): one server span per request, child spans for the upstream call,
//! key fetches and introspection, exported with OTLP over HTTP/protobuf.
//!
//! - [`Telemetry`] — built once from the `OTEL_*` settings ([`crate::config::otel`]); the gate holds
//!   it as an `Option`, so with tracing off a request pays one branch and nothing else.
//! - [`request`] — the server span of one request ([`RequestTrace`]): W3C Trace Context from the
//!   client's `traceparent`/`tracestate` headers or, failing that, from an MCP body's
//!   `params._meta`; the attributes of the HTTP semantic conventions and the gate's decision.
//! - [`child`] — a child span of the request being handled, for code deep in the call tree (the
//!   key cache, introspection, token exchange) that has no handle on the request.
//! - [`export`] — the exporter's HTTP client (the gate's own hyper + rustls, no second TLS stack)
//!   and the bounded queue in front of the batch processor, whose drops are counted in /metrics.
//!
//! Spans end when the response head is sent; the access log's duration also covers the body stream.

pub(crate) mod export;
pub(crate) mod request;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{SpanKind, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;

use crate::metrics::Metrics;
pub use request::{ChildSpan, RequestTrace};

/// The validated `OTEL_*` settings of an enabled tracer.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The full OTLP/HTTP traces URL (`…/v1/traces`).
    pub endpoint: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS`, decoded; usually a credential, so never logged.
    pub headers: Vec<(String, String)>,
    /// The bound on one export.
    pub timeout: Duration,
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES`, decoded.
    pub resource: Vec<(String, String)>,
    pub sampling: Sampling,
    /// Time between two exports.
    pub schedule_delay: Duration,
    /// Finished spans waiting for export at most; beyond it spans are dropped, never waited for.
    pub max_queue: usize,
    pub max_batch: usize,
    /// Whether the server span carries the token's `sub` as `enduser.id` (personal data: opt-in).
    pub record_subject: bool,
}

/// `OTEL_TRACES_SAMPLER`: the decision for a trace that starts here, and whether a caller's decision
/// (the `traceparent` flags) is followed instead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub parent_based: bool,
    pub root: Root,
}

/// The sampler for root spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    /// `traceidratio` with its `OTEL_TRACES_SAMPLER_ARG`.
    Ratio(f64),
}

impl Sampling {
    fn sampler(self) -> Sampler {
        let root = match self.root {
            Root::AlwaysOn => Sampler::AlwaysOn,
            Root::AlwaysOff => Sampler::AlwaysOff,
            Root::Ratio(r) => Sampler::TraceIdRatioBased(r),
        };
        if self.parent_based {
            Sampler::ParentBased(Box::new(root))
        } else {
            root
        }
    }
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("the OTLP exporter cannot be built: {0}")]
    Exporter(String),
    #[error("tracing needs a tokio runtime to send its exports on")]
    NoRuntime,
}

/// The tracer of an enabled gate, and what every request span shares.
pub struct Telemetry {
    provider: SdkTracerProvider,
    shared: Arc<request::Shared>,
}

impl Telemetry {
    /// [`Telemetry::start`] when tracing is configured; a failure is logged and leaves tracing off
    /// (the settings were validated at start, so only a missing runtime gets here).
    pub fn configured(
        settings: Option<&Settings>,
        upstream: &url::Url,
        metrics: &Arc<Metrics>,
    ) -> Option<Telemetry> {
        match Telemetry::start(settings?, upstream, metrics.clone()) {
            Ok(t) => {
                // The origin only: a URL may carry credentials in its user part or query.
                let collector = url::Url::parse(&settings?.endpoint)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default();
                tracing::info!(%collector, "exporting traces (OTLP/HTTP)");
                Some(t)
            }
            Err(e) => {
                tracing::error!(error = %e, "tracing is off");
                None
            }
        }
    }

    /// Builds the exporter and the tracer; must run inside the tokio runtime that will carry the
    /// exports. Nothing is sent until a span ends.
    pub fn start(
        settings: &Settings,
        upstream: &url::Url,
        metrics: Arc<Metrics>,
    ) -> Result<Telemetry, TelemetryError> {
        let processor = export::processor(settings, metrics)?;
        let resource = Resource::builder_empty()
            .with_service_name(settings.service_name.clone())
            .with_attributes(
                settings
                    .resource
                    .iter()
                    .filter(|(k, _)| k != "service.name")
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(settings.sampling.sampler())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("mcp-gate");
        Ok(Telemetry {
            provider,
            shared: Arc::new(request::Shared::new(
                tracer,
                settings.record_subject,
                upstream,
            )),
        })
    }

    /// Starts the trace of one request (its server span is created when first needed).
    pub fn begin<B>(
        &self,
        request: &http::Request<B>,
        client: std::net::SocketAddr,
        client_ip: std::net::IpAddr,
        tls: bool,
    ) -> RequestTrace {
        RequestTrace::begin(self.shared.clone(), request, client, client_ip, tls)
    }

    /// Exports what is queued, waiting at most `timeout`; spans that end later are dropped.
    /// The SDK's shutdown blocks its caller, and the export it waits for runs on this runtime, so
    /// it runs on a blocking thread.
    pub async fn shutdown(&self, timeout: Duration) {
        let provider = self.provider.clone();
        let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(timeout));
        match tokio::time::timeout(timeout + Duration::from_millis(100), flushed).await {
            Ok(Ok(Ok(()))) => tracing::debug!("trace exporter flushed"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "trace exporter shutdown"),
            _ => tracing::warn!(?timeout, "trace exporter did not flush in time"),
        }
    }
}

/// A child span of the request being handled on this task, or `None` when the current task is not
/// handling a traced request (tracing off, or a background key refresh).
pub fn child(name: &'static str, kind: SpanKind) -> Option<ChildSpan> {
    let trace = Context::map_current(|cx| cx.get::<RequestTrace>().cloned())?;
    Some(trace.child(name, kind))
}

/// What an inspected MCP call says (method, tool, `params._meta` trace context), for the server
/// span of the request being handled; nothing when it is not traced.
pub fn mcp_call(call: &crate::policy::jsonrpc::Call) {
    if let Some(trace) = Context::map_current(|cx| cx.get::<RequestTrace>().cloned()) {
        let meta = request::MetaContext {
            traceparent: call.trace_context.as_ref().map(|t| t.traceparent.as_str()),
            tracestate: call
                .trace_context
                .as_ref()
                .and_then(|t| t.tracestate.as_deref()),
        };
        trace.mcp_call(&call.method, call.name.as_deref(), meta);
    }
}

/// The client span of the upstream call of the request being handled, with its `traceparent` put
/// in `request` in place of the client's; `None` when the request is not traced.
pub fn upstream<B>(request: &mut http::Request<B>) -> Option<ChildSpan> {
    let trace = Context::map_current(|cx| cx.get::<RequestTrace>().cloned())?;
    let method = request.method().clone();
    Some(trace.upstream(&method, request.headers_mut()))
}
