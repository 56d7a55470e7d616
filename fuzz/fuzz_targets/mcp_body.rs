//! MCP body inspection and what reads its result: never a panic; a request's own mirrored headers
//! (method, Base64-encoded name) always pass the header check; the decision is the same whatever
//! the headers; `tools/list` filtering gives the same bytes however an SSE stream is split.
//!
//! Input: the POST body (also used as one SSE event's data, split at a point its first byte picks).
#![no_main]

use base64::Engine;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_gate::policy::decide::{decide, may_call, Caller};
use mcp_gate::policy::file::parse_tool_scopes;
use mcp_gate::policy::headers::{check, MCP_METHOD, MCP_NAME};
use mcp_gate::policy::jsonrpc::{inspect, Body, Message};
use mcp_gate::policy::tools_list::{filter_payload, SseFilter};

fuzz_target!(|data: &[u8]| {
    let body = inspect(data);
    let rules = parse_tool_scopes("delete_*=mcp:admin;*=mcp:tools").expect("a valid policy");
    let claims = serde_json::json!({"scope": "mcp:tools"});
    let caller = Caller::new(claims.as_object().expect("an object")).expect("valid scopes");
    let decision = decide(&rules, &caller, &body);

    if let Body::Single(Message::Call(call)) = &body {
        let mut headers = HeaderMap::new();
        if let Ok(m) = HeaderValue::from_str(&call.method) {
            headers.insert(MCP_METHOD, m);
            if let Some(name) = &call.name {
                let encoded = base64::engine::general_purpose::STANDARD.encode(name);
                let v = HeaderValue::from_str(&format!("=?base64?{encoded}?="))
                    .expect("Base64 is a valid header value");
                headers.insert(MCP_NAME, v);
            }
            assert_eq!(check(&headers, &body), Ok(()), "own headers refused");
        }
        assert_eq!(decide(&rules, &caller, &body), decision);
    }

    let keep = |name: &str| may_call(&rules, name, &caller);
    let _ = filter_payload(data, &keep);
    if !data.contains(&b'\n') && !data.contains(&b'\r') {
        let stream = [b"data: ", data, b"\n\n"].concat();
        let split = data.first().map_or(0, |b| *b as usize % (stream.len() + 1));
        let run = |at: usize| {
            let mut f = SseFilter::new(keep, 1 << 20);
            let mut out = Vec::new();
            f.push(&stream[..at], &mut out);
            f.push(&stream[at..], &mut out);
            f.finish(&mut out);
            out
        };
        assert_eq!(run(split), run(stream.len()));
    }
});
