//! Log output: one JSON object per line (`ts`, `level`, `msg`, then the event's fields), or
//! tracing's human-readable format for development.
//!
//! The JSON shape is flat and stable so log pipelines can index `reason`, `status` and `sub`
//! without unwrapping nested objects.

use std::fmt::Write;
use std::sync::OnceLock;

use tracing_appender::non_blocking::NonBlocking;

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
        // The channel allocates all its slots up front: the default 128,000 cost about 4 MiB of
        // idle RSS. 16,384 lines still hold about half a second of a saturated gate's access log
        // before writers wait (lossy(false): waiting, never dropping).
        .buffered_lines_limit(16_384)
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
        .with_writer(writer.clone());
    let result = match format {
        LogFormat::Json => builder.event_format(JsonLine).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    // Already installed (tests start several gates in one process): keep the first.
    if result.is_ok() && format == LogFormat::Json && matches!(level, "info" | "debug" | "trace") {
        let _ = ACCESS_WRITER.set(writer);
    }
    guard
}

/// The writer access-log lines go to directly, set when they are JSON and `LOG_LEVEL` lets them
/// through. It is the same channel as every other line, so lines keep their order.
static ACCESS_WRITER: OnceLock<NonBlocking> = OnceLock::new();

/// Where to write a JSON access-log line, or `None` to hand the event to `tracing` (pretty format,
/// a level that drops it, or no subscriber installed by us, as in tests).
pub(crate) fn access_writer() -> Option<&'static NonBlocking> {
    ACCESS_WRITER.get()
}

/// Appends `s` to `out` as a JSON string literal (RFC 8259 §7), byte for byte what
/// [`write_json_string`] writes.
pub(crate) fn push_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[plain..i]);
        if escaped.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escaped);
        }
        plain = i + 1;
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

/// Formats an event as one flat JSON object.
///
/// Written straight into the subscriber's line buffer: no intermediate strings, no allocation per
/// field. This runs once per request for the access log, so it is on the hot path.
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
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warn",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        write!(writer, "{{\"ts\":\"{ts}\",\"level\":\"{level}\"")?;
        let mut visitor = JsonFields {
            out: &mut writer,
            result: Ok(()),
        };
        event.record(&mut visitor);
        visitor.result?;
        let target = event.metadata().target();
        if target != "mcp_gate::access" {
            writer.write_str(",\"target\":")?;
            write_json_string(&mut writer, target)?;
        }
        writer.write_str("}\n")
    }
}

struct JsonFields<'a, W: Write> {
    out: &'a mut W,
    /// The first write error, if any (the visitor's methods cannot return one).
    result: std::fmt::Result,
}

impl<W: Write> JsonFields<'_, W> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut W) -> std::fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let name = if field.name() == "message" {
            "msg"
        } else {
            field.name()
        };
        self.result = self
            .out
            .write_str(",")
            .and_then(|_| write_json_string(self.out, name))
            .and_then(|_| self.out.write_str(":"))
            .and_then(|_| value(self.out));
    }
}

impl<W: Write> Visit for JsonFields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_string(w, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.write_str(if value { "true" } else { "false" }));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w| {
            if value.is_finite() {
                write!(w, "{value}")
            } else {
                w.write_str("null")
            }
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, |w| {
            w.write_str("\"")?;
            write!(JsonEscaped(w), "{value:?}")?;
            w.write_str("\"")
        });
    }
}

/// `s` as a JSON string literal (RFC 8259 §7).
pub(crate) fn write_json_string<W: Write + ?Sized>(w: &mut W, s: &str) -> std::fmt::Result {
    w.write_str("\"")?;
    JsonEscaped(w).write_str(s)?;
    w.write_str("\"")
}

/// Escapes what passes through it for the inside of a JSON string: `"`, `\\` and control characters.
struct JsonEscaped<'a, W: Write + ?Sized>(&'a mut W);

impl<W: Write + ?Sized> Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&s[plain..i])?;
            if escaped.is_empty() {
                write!(self.0, "\\u{b:04x}")?;
            } else {
                self.0.write_str(escaped)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_through_the_escaper() {
        for s in [
            "",
            "plain",
            "quote \" and backslash \\ and slash /",
            "line\nbreak\r\ttab",
            "\u{0}\u{1}\u{1f} controls \u{7f}",
            "unicode é ✓ 🚀",
            "\\\"\\\"",
        ] {
            let mut out = String::new();
            write_json_string(&mut out, s).unwrap();
            let back: String = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
            assert_eq!(back, s, "{out}");
        }
    }

    #[test]
    fn the_byte_escaper_writes_what_the_fmt_escaper_writes() {
        let all_ascii: String = (0u8..0x80).map(char::from).collect();
        for s in [
            "",
            "plain",
            "a\"b\\c\n\u{0}\u{1f}\u{7f}é🚀",
            all_ascii.as_str(),
        ] {
            let mut expected = String::new();
            write_json_string(&mut expected, s).unwrap();
            let mut out = Vec::new();
            push_json_string(&mut out, s);
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn debug_values_are_escaped_as_they_are_formatted() {
        let mut out = String::new();
        write!(JsonEscaped(&mut out), "{:?}", "a\"b").unwrap();
        assert_eq!(out, r#"\"a\\\"b\""#);
    }
}
