//! Log output: one JSON object per line (`ts`, `level`, `msg`, then the event's fields), or
//! tracing's human-readable format for development.
//!
//! The JSON shape is flat and stable so log pipelines can index `reason`, `status` and `sub`
//! without unwrapping nested objects.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `level` is one of error/warn/info/debug/trace.
///
/// Lines go to stdout through a background writer thread that batches them, so a busy gate makes one
/// `write` per batch instead of one per request. It is not lossy: when the queue is full, logging
/// waits rather than dropping access-log lines. Keep the returned guard alive until exit: dropping
/// it flushes what is queued.
pub fn init(level: &str, format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("mcp-gate-log")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    // Our own events at `level`; the libraries we use only when they have something to warn about.
    let filter = EnvFilter::new(format!("warn,mcp_gate={level}"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match format {
        LogFormat::Json => builder.event_format(JsonLine).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // Already installed (tests start several gates in one process): keep the first.
    let _ = result;
    guard
}

/// Formats an event as one flat JSON object.
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let ts = humantime::format_rfc3339_millis(std::time::SystemTime::now());
        let level = event.metadata().level().as_str().to_ascii_lowercase();
        let mut line = format!("{{\"ts\":\"{ts}\",\"level\":\"{level}\"");
        let mut visitor = JsonFields { out: &mut line };
        event.record(&mut visitor);
        if event.metadata().target() != "mcp_gate::access" {
            let _ = write!(line, ",\"target\":{}", quote(event.metadata().target()));
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

struct JsonFields<'a> {
    out: &'a mut String,
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        let name = if field.name() == "message" {
            "msg"
        } else {
            field.name()
        };
        let _ = write!(self.out, ",{}:", quote(name));
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        self.out.push_str(&quote(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.out.push_str(if value { "true" } else { "false" });
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.out, "{value}");
        } else {
            self.out.push_str("null");
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        self.out.push_str(&quote(&format!("{value:?}")));
    }
}
