//! Filtering `tools/list` results so a client never offers a tool the gate would refuse (MCP
//! server/tools "Listing Tools"), for a JSON response body and for an SSE response stream
//! (WHATWG HTML §9.2 "Server-sent events", event stream interpretation).
//!
//! Only results are touched: a JSON-RPC response (or batch of them) whose `result.tools` is an
//! array. Each tool object is kept when `keep(name)` says so (the caller passes
//! `|name| decide::may_call(&rules, name, &caller)`); a tool without a string `name` is dropped. A
//! result that carries the 2026-07-28 `cacheScope` gets `"private"`: the list now depends on the
//! caller (server/utilities/caching: private results "MUST NOT be shared across authorization
//! contexts"); the caller also sets `Cache-Control: private` on the HTTP response.
//!
//! Fail closed: a payload that parses as JSON only when duplicate member names are allowed is
//! withheld (two parsers could disagree about which `tools` the client sees), and so is an SSE
//! event larger than the bound (it cannot be inspected without unbounded buffering). A payload that
//! is not JSON at all is passed through: no client can read tools out of it.

use serde_json::Value;

use crate::auth::strict_json;

/// What became of one JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Not a `tools/list` result, or nothing to remove: forward the bytes as they are.
    Unchanged,
    /// The payload to send instead (compact JSON, no newline).
    Rewritten(Vec<u8>),
    /// Must not be forwarded (see the module docs). For a JSON body the caller answers `502`.
    Withheld,
}

/// Filters one JSON payload (a whole `application/json` body, or one SSE event's data).
pub fn filter_payload(payload: &[u8], keep: &dyn Fn(&str) -> bool) -> Filtered {
    let mut value = match strict_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok() => {
            return Filtered::Withheld
        }
        Err(_) => return Filtered::Unchanged,
    };
    let changed = match &mut value {
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |acc, item| filter_response(item, keep) | acc),
        item => filter_response(item, keep),
    };
    if changed {
        Filtered::Rewritten(value.to_string().into_bytes())
    } else {
        Filtered::Unchanged
    }
}

/// Filters `result.tools` of one JSON-RPC response in place; true when anything changed.
fn filter_response(response: &mut Value, keep: &dyn Fn(&str) -> bool) -> bool {
    let Some(result) = response.get_mut("result").and_then(Value::as_object_mut) else {
        return false;
    };
    let Some(Value::Array(tools)) = result.get_mut("tools") else {
        return false;
    };
    let before = tools.len();
    tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(keep));
    let mut changed = tools.len() != before;
    if let Some(scope) = result.get_mut("cacheScope") {
        if scope.as_str() != Some("private") {
            *scope = Value::from("private");
            changed = true;
        }
    }
    changed
}

/// A streaming SSE rewriter: feed it the response body's chunks as they come, split anywhere;
/// it writes each complete event to `out`, rewritten when its data is a `tools/list` result and
/// byte for byte otherwise. It holds at most one event (bounded by `max_event`).
pub struct SseFilter<K: Fn(&str) -> bool> {
    keep: K,
    max_event: usize,
    /// The bytes of the event being read.
    event: Vec<u8>,
    /// The last byte ended a line (or nothing was read yet): the next terminator ends the event.
    at_line_start: bool,
    /// The last byte was CR, whose meaning (CR or CRLF) the next byte decides; `Some(true)` when
    /// that CR ended an empty line.
    pending_cr: Option<bool>,
    /// The current event outgrew `max_event`: its bytes are being discarded.
    oversized: bool,
    /// Events withheld so far (oversized or ambiguous), for the caller's log and metrics.
    pub withheld: u64,
}

impl<K: Fn(&str) -> bool> SseFilter<K> {
    pub fn new(keep: K, max_event: usize) -> SseFilter<K> {
        SseFilter {
            keep,
            max_event,
            event: Vec::new(),
            at_line_start: true,
            pending_cr: None,
            oversized: false,
            withheld: 0,
        }
    }

    /// Consumes one chunk; appends whatever is ready to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for &b in chunk {
            if let Some(blank) = self.pending_cr.take() {
                if b == b'\n' {
                    self.append(b);
                    if blank {
                        self.end_event(out);
                    }
                    continue;
                }
                if blank {
                    self.end_event(out);
                }
            }
            self.append(b);
            match b {
                b'\r' => {
                    self.pending_cr = Some(self.at_line_start);
                    self.at_line_start = true;
                }
                b'\n' => {
                    let blank = self.at_line_start;
                    self.at_line_start = true;
                    if blank {
                        self.end_event(out);
                    }
                }
                _ => self.at_line_start = false,
            }
        }
    }

    /// The stream ended: flushes what is held (an unterminated last event goes through the same
    /// filter, since a lenient client might still use it).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.pending_cr = None;
        if !self.event.is_empty() || self.oversized {
            self.end_event(out);
        }
    }

    fn append(&mut self, b: u8) {
        if self.oversized {
            return;
        }
        if self.event.len() >= self.max_event {
            self.oversized = true;
            self.event = Vec::new();
            return;
        }
        self.event.push(b);
    }

    fn end_event(&mut self, out: &mut Vec<u8>) {
        let oversized = std::mem::take(&mut self.oversized);
        if oversized || !rewrite_event(&self.event, out, &self.keep) {
            self.withheld += 1;
        }
        self.event.clear();
        self.at_line_start = true;
    }
}

/// Splits `bytes` into lines, each with its terminator (CRLF, LF or CR; the last may have none).
fn lines(bytes: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let end = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' | b'\n' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push((&bytes[start..i], &bytes[i..end]));
        start = end;
        i = end;
    }
    if start < bytes.len() {
        out.push((&bytes[start..], &[][..]));
    }
    out
}

/// The value of a `data` field line, or `None` for any other line.
fn data_value(line: &[u8]) -> Option<&[u8]> {
    let (field, value) = match line.iter().position(|b| *b == b':') {
        Some(colon) => (&line[..colon], &line[colon + 1..]),
        None => (line, &[][..]),
    };
    (field == b"data").then(|| value.strip_prefix(b" ").unwrap_or(value))
}

/// Writes one complete event to `out`, rewritten when needed; false when it was withheld.
fn rewrite_event(event: &[u8], out: &mut Vec<u8>, keep: &dyn Fn(&str) -> bool) -> bool {
    let lines = lines(event);
    let mut data: Vec<u8> = Vec::new();
    let mut any_data = false;
    for (line, _) in &lines {
        if let Some(v) = data_value(line) {
            if any_data {
                data.push(b'\n');
            }
            data.extend_from_slice(v);
            any_data = true;
        }
    }
    if !any_data {
        out.extend_from_slice(event);
        return true;
    }
    let payload = match filter_payload(&data, keep) {
        Filtered::Unchanged => {
            out.extend_from_slice(event);
            return true;
        }
        Filtered::Withheld => return false,
        Filtered::Rewritten(p) => p,
    };
    let mut written = false;
    for (line, terminator) in lines {
        if data_value(line).is_none() {
            out.extend_from_slice(line);
            out.extend_from_slice(terminator);
        } else if !written {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&payload);
            out.extend_from_slice(if terminator.is_empty() {
                b"\n"
            } else {
                terminator
            });
            written = true;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(name: &str) -> bool {
        !name.starts_with("delete_")
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"delete_note"},{"title":"nameless"}],"cacheScope":"public"}}"#;
    const FILTERED: &str =
        r#"{"id":1,"jsonrpc":"2.0","result":{"cacheScope":"private","tools":[{"name":"echo"}]}}"#;

    #[test]
    fn json_results_lose_the_tools_the_caller_may_not_call_and_become_private() {
        assert_eq!(
            filter_payload(LIST.as_bytes(), &keep),
            Filtered::Rewritten(FILTERED.into())
        );
        let batch = format!("[{LIST},{{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{}}}}]");
        let Filtered::Rewritten(b) = filter_payload(batch.as_bytes(), &keep) else {
            panic!()
        };
        assert!(!String::from_utf8(b).unwrap().contains("delete_note"));
    }

    #[test]
    fn other_payloads_pass_unchanged_and_duplicate_members_are_withheld() {
        for unchanged in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"}]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}"#,
            "not json",
        ] {
            assert_eq!(
                filter_payload(unchanged.as_bytes(), &keep),
                Filtered::Unchanged,
                "{unchanged}"
            );
        }
        let dup = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[],"tools":[{"name":"delete_x"}]}}"#;
        assert_eq!(filter_payload(dup.as_bytes(), &keep), Filtered::Withheld);
    }

    fn run(stream: &[u8], splits: &[usize], max_event: usize) -> (Vec<u8>, u64) {
        let mut f = SseFilter::new(keep, max_event);
        let mut out = Vec::new();
        let mut last = 0;
        for &s in splits {
            f.push(&stream[last..s], &mut out);
            last = s;
        }
        f.push(&stream[last..], &mut out);
        f.finish(&mut out);
        (out, f.withheld)
    }

    #[test]
    fn sse_events_are_rewritten_at_every_split_point_and_other_bytes_pass_unchanged() {
        let stream = format!(
            ": keep-alive\r\n\r\nevent: message\nid: 7\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}}\n\n\
             event: message\r\ndata: {}\r\n\r\n:\r\rdata: x\rdata: y\r\r",
            LIST
        );
        let want = format!(
            ": keep-alive\r\n\r\nevent: message\nid: 7\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}}\n\n\
             event: message\r\ndata: {FILTERED}\r\n\r\n:\r\rdata: x\rdata: y\r\r"
        );
        let bytes = stream.as_bytes();
        for i in 0..=bytes.len() {
            assert_eq!(
                run(bytes, &[i], 1 << 16),
                (want.clone().into_bytes(), 0),
                "split at {i}"
            );
        }
        for i in (0..bytes.len()).step_by(7) {
            let j = (i + 13).min(bytes.len());
            assert_eq!(
                run(bytes, &[i, j], 1 << 16).0,
                want.as_bytes(),
                "split at {i},{j}"
            );
        }
    }

    #[test]
    fn data_split_over_several_lines_is_joined_before_filtering() {
        let (head, tail) = LIST.split_at(LIST.find("\"result\"").unwrap());
        for eol in ["\n", "\r\n", "\r"] {
            let stream = format!("data: {head}{eol}data:{tail}{eol}{eol}");
            for i in 0..=stream.len() {
                let (out, _) = run(stream.as_bytes(), &[i], 1 << 16);
                let want = format!("data: {FILTERED}{eol}{eol}");
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    want,
                    "{eol:?} split at {i}"
                );
            }
        }
    }

    #[test]
    fn an_oversized_event_is_withheld_and_the_stream_goes_on() {
        let stream = format!("data: {LIST}\n\n: ping\n\n");
        for i in 0..=stream.len() {
            let (out, withheld) = run(stream.as_bytes(), &[i], 64);
            assert_eq!(
                (out.as_slice(), withheld),
                (&b": ping\n\n"[..], 1),
                "split at {i}"
            );
        }
    }

    #[test]
    fn an_unterminated_last_event_is_filtered_too() {
        let (out, _) = run(format!("data: {LIST}").as_bytes(), &[], 1 << 16);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("data: {FILTERED}\n")
        );
    }
}
