//! What a POST body to the MCP endpoint asks for: the JSON-RPC method, id and MCP name of each
//! request in it (JSON-RPC 2.0 §4, §6; MCP Streamable HTTP "Sending Messages").
//!
//! The body is the truth the policy decides on (the `Mcp-*` headers are only checked against it, in
//! [`super::headers`]). It is parsed with [`crate::auth::strict_json`], which refuses duplicate member
//! names at any depth: with `{"method":"tools/list","method":"tools/call"}` the gate and the upstream
//! could otherwise disagree about what was asked. Depth is bounded by serde_json's recursion limit
//! (128); size by the caller (`MAX_REQUEST_BODY`), which reads the body before calling [`inspect`].

use serde_json::{Map, Value};

use crate::auth::strict_json;

/// The `_meta` key that carries the protocol version in 2026-07-28 request bodies.
pub const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";

/// One JSON-RPC request or notification from the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// `method`, exactly as sent (case-sensitive).
    pub method: String,
    /// `id` as sent, to echo in an error response; `None` for a notification.
    pub id: Option<Value>,
    /// The MCP name: `params.name` for `tools/call` and `prompts/get`, `params.uri` for
    /// `resources/read`; `None` for every other method.
    pub name: Option<String>,
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`, when a string.
    pub protocol_version: Option<String>,
    /// `params._meta.traceparent` and `tracestate` (the MCP semantic conventions' trace context
    /// propagation), when `traceparent` is a string; only tracing reads them.
    pub trace_context: Option<MetaTrace>,
}

/// W3C Trace Context carried in a request's `params._meta`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaTrace {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A single message (a request, a notification or a response).
    Single(Message),
    /// A JSON-RPC batch (JSON array, allowed by MCP 2025-03-26), in order; never empty.
    Batch(Vec<Message>),
    /// Not JSON-RPC: the gate cannot say what it asks for.
    Unparsable(Unparsable),
}

/// One element of a body.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request or notification: something a rule can be about.
    Call(Call),
    /// A response to a server request (pre-2026-07-28 clients send these): nothing to authorize.
    Response,
}

/// Why a body is not JSON-RPC the gate can reason about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unparsable {
    #[error("not JSON, nested too deep, or a member name repeated")]
    NotJson,
    #[error("not a JSON-RPC 2.0 message")]
    NotJsonRpc,
    #[error("an empty batch")]
    EmptyBatch,
    #[error("a tools/call, prompts/get or resources/read without a string name or uri")]
    MissingName,
}

impl Body {
    /// The calls of the body, in order (responses left out); empty when unparsable.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        let slice: &[Message] = match self {
            Body::Single(m) => std::slice::from_ref(m),
            Body::Batch(ms) => ms,
            Body::Unparsable(_) => &[],
        };
        slice.iter().filter_map(|m| match m {
            Message::Call(c) => Some(c),
            Message::Response => None,
        })
    }
}

/// Which `params` member carries the MCP name of `method`, if any (MCP Streamable HTTP,
/// "Standard Request Headers").
pub fn name_member(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Inspects a whole POST body. Pure; never panics on any input.
pub fn inspect(body: &[u8]) -> Body {
    let value = match strict_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Body::Unparsable(Unparsable::NotJson),
    };
    match value {
        Value::Array(items) if items.is_empty() => Body::Unparsable(Unparsable::EmptyBatch),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match message(item) {
                    Ok(m) => out.push(m),
                    Err(why) => return Body::Unparsable(why),
                }
            }
            Body::Batch(out)
        }
        other => match message(other) {
            Ok(m) => Body::Single(m),
            Err(why) => Body::Unparsable(why),
        },
    }
}

fn message(value: Value) -> Result<Message, Unparsable> {
    let Value::Object(mut obj) = value else {
        return Err(Unparsable::NotJsonRpc);
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Unparsable::NotJsonRpc);
    }
    let id = match obj.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => return Err(Unparsable::NotJsonRpc),
    };
    let method = match obj.get("method") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err(Unparsable::NotJsonRpc),
        None if id.is_some() && (obj.contains_key("result") || obj.contains_key("error")) => {
            return Ok(Message::Response)
        }
        None => return Err(Unparsable::NotJsonRpc),
    };
    let params = match obj.get("params") {
        None => None,
        Some(Value::Object(p)) => Some(p),
        Some(Value::Array(_)) => None,
        Some(_) => return Err(Unparsable::NotJsonRpc),
    };
    let name = match name_member(&method) {
        Some(member) => match params.and_then(|p| p.get(member)) {
            Some(Value::String(n)) => Some(n.clone()),
            _ => return Err(Unparsable::MissingName),
        },
        None => None,
    };
    let protocol_version = params.and_then(protocol_version);
    let trace_context = params.and_then(meta_trace);
    Ok(Message::Call(Call {
        method,
        id,
        name,
        protocol_version,
        trace_context,
    }))
}

fn meta_trace(params: &Map<String, Value>) -> Option<MetaTrace> {
    let meta = params.get("_meta")?;
    Some(MetaTrace {
        traceparent: meta.get("traceparent")?.as_str()?.to_string(),
        tracestate: meta
            .get("tracestate")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn protocol_version(params: &Map<String, Value>) -> Option<String> {
    params
        .get("_meta")?
        .get(PROTOCOL_VERSION_META)?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(method: &str, id: Option<Value>, name: Option<&str>) -> Message {
        Message::Call(Call {
            method: method.into(),
            id,
            name: name.map(str::to_string),
            protocol_version: None,
            trace_context: None,
        })
    }

    #[test]
    fn method_id_and_name_are_read_from_each_kind_of_request() {
        let cases: &[(&str, Body)] = &[
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_note","arguments":{"name":"x"}}}"#,
                Body::Single(call("tools/call", Some(json!(1)), Some("delete_note"))),
            ),
            (
                r#"{"jsonrpc":"2.0","id":"a","method":"prompts/get","params":{"name":"greet"}}"#,
                Body::Single(call("prompts/get", Some(json!("a")), Some("greet"))),
            ),
            (
                r#"{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x","name":"n"}}"#,
                Body::Single(call("resources/read", Some(json!(2)), Some("file:///x"))),
            ),
            (
                r#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"name":"ignored"}}"#,
                Body::Single(call("tools/list", Some(json!(3)), None)),
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                Body::Single(call("notifications/initialized", None, None)),
            ),
            (
                r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
                Body::Single(Message::Response),
            ),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"t"}}]"#,
                Body::Batch(vec![
                    call("tools/list", Some(json!(1)), None),
                    call("tools/call", Some(json!(2)), Some("t")),
                ]),
            ),
        ];
        for (body, want) in cases {
            assert_eq!(&inspect(body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn trace_context_is_read_from_meta() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v"}}}"#;
        let Body::Single(Message::Call(call)) = inspect(body) else {
            panic!("not a call")
        };
        let meta = call.trace_context.unwrap();
        assert_eq!(
            meta.traceparent,
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        );
        assert_eq!(meta.tracestate.as_deref(), Some("k=v"));
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"traceparent":7}}}"#;
        let Body::Single(Message::Call(call)) = inspect(body) else {
            panic!("not a call")
        };
        assert_eq!(call.trace_context, None);
    }

    #[test]
    fn the_2026_protocol_version_is_read_from_meta() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let Body::Single(Message::Call(c)) = inspect(body.as_bytes()) else {
            panic!("not a call")
        };
        assert_eq!(c.protocol_version.as_deref(), Some("2026-07-28"));
    }

    #[test]
    fn bodies_that_are_not_json_rpc_are_unparsable_with_a_reason() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        let cases: &[(&str, Unparsable)] = &[
            ("", Unparsable::NotJson),
            ("{", Unparsable::NotJson),
            (&deep, Unparsable::NotJson),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#,
                Unparsable::NotJson,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#,
                Unparsable::NotJson,
            ),
            ("[]", Unparsable::EmptyBatch),
            ("42", Unparsable::NotJsonRpc),
            (r#"{"id":1,"method":"tools/list"}"#, Unparsable::NotJsonRpc),
            (
                r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
                Unparsable::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
                Unparsable::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
                Unparsable::NotJsonRpc,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#,
                Unparsable::NotJsonRpc,
            ),
            (r#"{"jsonrpc":"2.0","id":1}"#, Unparsable::NotJsonRpc),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
                Unparsable::MissingName,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}"#,
                Unparsable::MissingName,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"name":"x"}}"#,
                Unparsable::MissingName,
            ),
            (
                r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},1]"#,
                Unparsable::NotJsonRpc,
            ),
        ];
        for (body, why) in cases {
            assert_eq!(inspect(body.as_bytes()), Body::Unparsable(*why), "{body}");
        }
    }

    #[test]
    fn calls_skip_responses_and_unparsable_bodies_have_none() {
        let b = inspect(
            br#"[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#,
        );
        assert_eq!(
            b.calls().map(|c| c.method.as_str()).collect::<Vec<_>>(),
            ["ping"]
        );
        assert_eq!(inspect(b"nope").calls().count(), 0);
    }
}
