//! The access-log line written straight from an [`AccessRecord`] into a reused buffer.
//!
//! One line per request is the gate's most frequent output, and going through `tracing` for it
//! (the callsite's filter, the field visitor, `core::fmt` for every number) cost about as much CPU
//! as refusing a request without a token. Writing the known fields in a fixed order costs a
//! fraction of that. The bytes are exactly those `logging::JsonLine` writes for the same event (a
//! test holds the two to it), so log pipelines see no difference.

use std::io::Write;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http::Method;

use super::AccessRecord;
use crate::logging::push_json_string;

/// Appends the line for `record` (with its `duration_ms` and `ts`) to `out`, newline included.
pub(super) fn write(
    out: &mut Vec<u8>,
    record: &AccessRecord,
    complete: bool,
    duration_ms: f64,
    ts: SystemTime,
) {
    out.extend_from_slice(b"{\"ts\":\"");
    push_timestamp(out, ts);
    out.extend_from_slice(b"\",\"level\":\"info\",\"msg\":\"request\",\"method\":");
    push_json_string(out, record.method.as_ref().map_or("", Method::as_str));
    out.extend_from_slice(b",\"path\":");
    push_json_string(out, record.uri.as_ref().map_or("", |u| u.path()));
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(record.status).as_bytes());
    out.extend_from_slice(b",\"duration_ms\":");
    push_millis(out, duration_ms);
    out.extend_from_slice(b",\"client_ip\":\"");
    push_ip(out, record.client_ip);
    out.extend_from_slice(b"\",\"user_agent\":");
    // A User-Agent that is not visible ASCII is logged as absent rather than guessed at.
    let user_agent = record.user_agent.as_ref().and_then(|v| v.to_str().ok());
    push_json_string(out, user_agent.unwrap_or(""));
    out.extend_from_slice(b",\"sub\":");
    push_json_string(out, record.sub.as_deref().unwrap_or(""));
    out.extend_from_slice(b",\"client_id\":");
    push_json_string(out, record.client_id.as_deref().unwrap_or(""));
    out.extend_from_slice(b",\"iss\":");
    push_json_string(out, record.iss.as_deref().unwrap_or(""));
    out.extend_from_slice(b",\"reason\":");
    push_json_string(out, record.reason.unwrap_or(""));
    out.extend_from_slice(b",\"limit\":");
    push_json_string(out, record.limit.unwrap_or(""));
    out.extend_from_slice(b",\"token_path\":");
    push_json_string(out, record.token_path);
    out.extend_from_slice(b",\"introspection_ms\":");
    push_millis(out, record.introspection_ms);
    out.extend_from_slice(b",\"exchange_ms\":");
    push_millis(out, record.exchange_ms);
    out.extend_from_slice(b",\"scheme\":");
    push_json_string(out, record.scheme.unwrap_or(""));
    out.extend_from_slice(if complete {
        b",\"complete\":true}\n"
    } else {
        b",\"complete\":false}\n"
    });
}

/// Milliseconds rounded to the microsecond, printed as `f64`'s `Display` prints the rounded value
/// (`0`, `1.5`, `12.345`), without going through float formatting.
fn push_millis(out: &mut Vec<u8>, ms: f64) {
    let micros = (ms * 1000.0).round();
    if !(0.0..1e15).contains(&micros) {
        // Not a duration (NaN, negative, absurdly large): the general path, as tracing's would.
        if ms.is_finite() {
            let _ = write!(out, "{}", micros / 1000.0);
        } else {
            out.extend_from_slice(b"null");
        }
        return;
    }
    let micros = micros as u64;
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let mut frac = micros % 1000;
    if frac == 0 {
        return;
    }
    let mut digits = [b'.', b'0' + (frac / 100) as u8, 0, 0];
    frac %= 100;
    digits[2] = b'0' + (frac / 10) as u8;
    digits[3] = b'0' + (frac % 10) as u8;
    let mut len = 4;
    while digits[len - 1] == b'0' {
        len -= 1;
    }
    out.extend_from_slice(&digits[..len]);
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut itoa = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                out.extend_from_slice(itoa.format(octet).as_bytes());
            }
        }
        // Rare behind a gate and with compression rules of its own: std's formatting.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// RFC 3339 UTC with milliseconds (`2026-11-30T00:12:34.567Z`), as `humantime` writes it.
///
/// The date and time of day change once a second: each thread keeps the last second's text.
fn push_timestamp(out: &mut Vec<u8>, ts: SystemTime) {
    thread_local! {
        static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
    }
    let since = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let mut full = Vec::with_capacity(24);
        let _ = write!(
            full,
            "{}",
            humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(secs))
        );
        // `YYYY-MM-DDTHH:MM:SSZ`: before year 10000, always 20 bytes.
        if full.len() != 20 {
            let _ = write!(out, "{}", humantime::format_rfc3339_millis(ts));
            return;
        }
        text.copy_from_slice(&full[..19]);
        SECOND.set((secs, text));
    }
    out.extend_from_slice(&text);
    let millis = since.subsec_millis();
    out.extend_from_slice(&[
        b'.',
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
        b'Z',
    ]);
}

#[cfg(test)]
mod tests;
