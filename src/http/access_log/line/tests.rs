use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderValue, Method, Uri};

use super::*;
use crate::logging::JsonLine;

/// Captures what a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn record(method: Option<Method>, ip: IpAddr, user_agent: Option<HeaderValue>) -> AccessRecord {
    let uri = Uri::from_static("/mcp/x%20y?token=never-logged");
    let mut record = AccessRecord::new(Method::GET, uri, ip, user_agent);
    // `None`: a head hyper refused before it parsed.
    record.method = method;
    record
}

/// The line `tracing` and `JsonLine` write for the same record, without its `ts` (the clock's).
fn through_tracing(record: &AccessRecord, complete: bool, duration_ms: f64) -> String {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .event_format(JsonLine)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || record.trace(complete, duration_ms));
    let line = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    without_ts(&line)
}

fn direct(record: &AccessRecord, complete: bool, duration_ms: f64) -> String {
    let mut out = Vec::new();
    write(&mut out, record, complete, duration_ms, SystemTime::now());
    without_ts(&String::from_utf8(out).unwrap())
}

fn without_ts(line: &str) -> String {
    // `{"ts":"2026-11-30T00:12:34.567Z",` is 34 bytes.
    assert!(line.starts_with("{\"ts\":\""), "{line}");
    assert_eq!(&line[30..34], "Z\",\"", "{line}");
    line[34..].to_owned()
}

#[test]
fn the_direct_line_is_byte_for_byte_the_tracing_line() {
    let ipv6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let mut records = vec![
        record(Some(Method::POST), IpAddr::V4(Ipv4Addr::LOCALHOST), None),
        record(None, IpAddr::V4(Ipv4Addr::new(10, 200, 0, 255)), None),
        record(
            Some(Method::GET),
            ipv6,
            Some(HeaderValue::from_static("claude-user (x) \"q\"")),
        ),
        record(
            Some(Method::from_bytes(b"PROPFIND").unwrap()),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            Some(HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap()),
        ),
    ];
    let full = &mut records[2];
    full.status = 403;
    full.sub = Some("user \"1\"\n\\\u{1}é".into());
    full.client_id = Some("claude".into());
    full.iss = Some(Arc::from("https://as.example/"));
    full.reason = Some("insufficient_scope");
    full.limit = Some("tool");
    full.scheme = Some("dpop");
    full.token_path = "introspection";
    full.introspection_ms = 3.25;
    full.exchange_ms = 0.0005;
    records[1].status = 431;
    let durations = [
        0.0,
        0.0004,
        0.0005,
        0.001,
        0.1,
        1.0,
        1.5,
        12.345678,
        999.9999,
        1234567.891,
        4e9,
    ];
    let mut compared = 0;
    for r in &records {
        for &ms in &durations {
            for complete in [true, false] {
                assert_eq!(direct(r, complete, ms), through_tracing(r, complete, ms));
                compared += 1;
            }
        }
    }
    assert_eq!(compared, records.len() * durations.len() * 2);
}

#[test]
fn odd_durations_are_written_as_tracing_writes_them() {
    let r = record(Some(Method::GET), IpAddr::V4(Ipv4Addr::LOCALHOST), None);
    for ms in [f64::NAN, f64::INFINITY, -1.0, 1e300] {
        assert_eq!(direct(&r, true, ms), through_tracing(&r, true, ms), "{ms}");
    }
}

#[test]
fn the_timestamp_is_humantimes_rfc3339_with_millis() {
    let base = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
    // Within one second (the cached text), across seconds, and back in time.
    for offset_ms in [0u64, 1, 999, 1000, 1001, 59_999, 86_400_000, 5, 123_456_789] {
        let ts = base + Duration::from_millis(offset_ms) + Duration::from_nanos(999_999);
        let mut out = Vec::new();
        push_timestamp(&mut out, ts);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            humantime::format_rfc3339_millis(ts).to_string()
        );
    }
}
