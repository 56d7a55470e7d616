//! How finished spans leave the gate: a bounded queue in front of the SDK's batch processor, the OTLP
//! HTTP/protobuf exporter (OTLP specification, "OTLP/HTTP"), and the HTTP client it sends with.
//!
//! A request never waits for the collector. Ending a span hands it to the batch processor's own
//! thread with a non-blocking send; when `OTEL_BSP_MAX_QUEUE_SIZE` spans are already waiting, the
//! span is dropped. The SDK counts those drops only for a log line at shutdown, so [`Counted`]
//! keeps the count of waiting spans itself, drops before the SDK would, and counts every drop in
//! `mcp_gate_trace_spans_dropped_total`; spans a failed export loses are counted there too.
//!
//! The exporter's client is the gate's hyper + rustls (aws-lc-rs) connector rather than the SDK's
//! reqwest default, so no second TLS stack is built in. The batch processor exports from its own
//! thread, outside the runtime; each POST is spawned onto the gate's runtime and awaited from there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry::Context;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;

use super::{Settings, TelemetryError};
use crate::metrics::Metrics;

/// A collector's answer is a small status document; anything larger is cut off.
const MAX_ANSWER: usize = 64 * 1024;

/// The batch processor behind a bounded, counted queue.
pub(super) fn processor(
    settings: &Settings,
    metrics: Arc<Metrics>,
) -> Result<Counted, TelemetryError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
    let client = OtlpClient {
        client: Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(crate::http::client::https_connector(settings.timeout)),
        runtime,
        timeout: settings.timeout,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(settings.endpoint.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(settings.timeout)
        .with_headers(settings.headers.iter().cloned().collect::<HashMap<_, _>>())
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let metrics = Counts(metrics);
    let waiting = Arc::new(AtomicUsize::new(0));
    let exporter = CountingExporter {
        inner: exporter,
        waiting: waiting.clone(),
        metrics: metrics.clone(),
    };
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(settings.max_queue)
        .with_max_export_batch_size(settings.max_batch)
        .with_scheduled_delay(settings.schedule_delay)
        .build();
    Ok(Counted {
        inner: BatchSpanProcessor::new(exporter, config),
        waiting,
        capacity: settings.max_queue,
        metrics,
    })
}

/// The SDK's batch processor with its queue length known: spans beyond `capacity` are dropped here
/// and counted.
#[derive(Debug)]
pub(super) struct Counted {
    inner: BatchSpanProcessor,
    /// Spans handed to `inner` and not yet taken by an export.
    waiting: Arc<AtomicUsize>,
    capacity: usize,
    metrics: Counts,
}

/// The gate's metrics, where the exporter counts (a newtype: the SDK wants `Debug`).
#[derive(Clone)]
struct Counts(Arc<Metrics>);

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Counts")
    }
}

impl std::ops::Deref for Counts {
    type Target = Metrics;
    fn deref(&self) -> &Metrics {
        &self.0
    }
}

impl SpanProcessor for Counted {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        // The SDK's channel holds no more than `waiting` (a span leaves it before its export
        // starts), so at `capacity` here its own send would fail too: drop and count instead.
        if !span.span_context.is_sampled() {
            return;
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            self.metrics.trace_spans_dropped("queue_full", 1);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, releasing queue places as batches leave and counting the spans of failed
/// exports.
#[derive(Debug)]
struct CountingExporter {
    inner: opentelemetry_otlp::SpanExporter,
    waiting: Arc<AtomicUsize>,
    metrics: Counts,
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        self.waiting.fetch_sub(n, Ordering::AcqRel);
        let result = self.inner.export(batch).await;
        match &result {
            Ok(()) => self.metrics.trace_spans_exported(n),
            Err(e) => {
                tracing::debug!(error = %e, spans = n, "trace export failed");
                self.metrics.trace_spans_dropped("export_failed", n);
            }
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter's HTTP client: one bounded POST on the gate's runtime.
#[derive(Debug)]
struct OtlpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
}

#[async_trait::async_trait]
impl HttpClient for OtlpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let post = async move {
            let response = client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
            Ok::<_, HttpError>(Response::from_parts(parts, body))
        };
        let sent = self
            .runtime
            .spawn(async move { tokio::time::timeout(timeout, post).await });
        match sent.await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(format!("no answer within {timeout:?}").into()),
            Err(e) => Err(e.into()),
        }
    }
}
