//! The MCP 2026-07-28 mirrored request headers, checked against the body (MCP Streamable HTTP
//! 2026-07-28, "Request Metadata": "Standard Request Headers", "Value Encoding", "Server
//! Validation").
//!
//! `Mcp-Method` mirrors `method`; `Mcp-Name` mirrors `params.name` (`tools/call`, `prompts/get`) or
//! `params.uri` (`resources/read`), Base64-encoded as `=?base64?…?=` when not plain ASCII; the
//! `MCP-Protocol-Version` header mirrors `params._meta["io.modelcontextprotocol/protocolVersion"]`.
//! The gate decides on the body, never on these headers; it checks them so that nothing behind it
//! (the upstream, a load balancer, a log pipeline) can act on a header that says something else.
//!
//! Decisions where the spec leaves room (each is the stricter reading):
//! - No `Mcp-Method` and no `Mcp-Name`: a pre-2026-07-28 client; nothing to compare, accepted.
//! - `Mcp-Method` present, body names a tool/prompt/resource, `Mcp-Name` absent: the client claims
//!   the 2026-07-28 transport, where `Mcp-Name` is required; refused (the spec lists a missing
//!   required header as a validation failure).
//! - `Mcp-Name` present but the body's method has no name: refused (the header matches nothing).
//! - A batch, or a lone JSON-RPC response, with either header: refused. 2026-07-28 bodies are single
//!   messages, and one header value cannot mirror several.
//! - A repeated header, a value with bytes outside visible ASCII/space/tab, or a sentinel whose
//!   content is not Base64 of UTF-8: refused ("a header value contains invalid characters").
//! - An unparsable body: not compared here; the caller passes it on or refuses it with a parse
//!   error (see `super::decide`). The upstream must parse, and so reject, it anyway.
//! - `MCP-Protocol-Version` is compared only when the body carries the `_meta` version too.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use http::HeaderMap;
use serde_json::Value;

use super::jsonrpc::{Body, Message};

/// The JSON-RPC error code of a header/body mismatch (MCP 2026-07-28, `HeaderMismatch`).
pub const HEADER_MISMATCH_CODE: i64 = -32020;

pub const MCP_METHOD: &str = "mcp-method";
pub const MCP_NAME: &str = "mcp-name";
pub const MCP_PROTOCOL_VERSION: &str = "mcp-protocol-version";

const SENTINEL_PREFIX: &str = "=?base64?";
const SENTINEL_SUFFIX: &str = "?=";

/// Standard alphabet; padding optional, since the spec shows it but clients differ.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A request whose mirrored headers do not match its body: `400`, JSON-RPC error `-32020`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Header mismatch: {reason}")]
pub struct HeaderMismatch {
    /// The request's `id`, to echo (`None` for a batch or a notification).
    pub id: Option<Value>,
    pub reason: Mismatch,
}

/// What did not match; the text names the header, never its value (values are client input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("Mcp-Method header does not match the body's method")]
    Method,
    #[error("Mcp-Name header does not match the body's name or uri")]
    Name,
    #[error("Mcp-Name header is missing for a request that names a tool, prompt or resource")]
    NameMissing,
    #[error("Mcp-Name header is present but the body's method has no name")]
    NameUnexpected,
    #[error("MCP-Protocol-Version header does not match the body's _meta protocolVersion")]
    ProtocolVersion,
    #[error("the {0} header is repeated")]
    Repeated(&'static str),
    #[error("the {0} header has invalid characters or an invalid Base64 value")]
    Invalid(&'static str),
    #[error("mirrored headers on a batch or a response")]
    NotSingleRequest,
}

impl HeaderMismatch {
    /// The JSON-RPC error response body (the HTTP status is 400).
    pub fn jsonrpc_body(&self) -> String {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.id.clone().unwrap_or(Value::Null),
            "error": {"code": HEADER_MISMATCH_CODE, "message": self.to_string()},
        })
        .to_string()
    }
}

/// Decodes a `Mcp-Name` (or `Mcp-Param-*`) value: the `=?base64?…?=` sentinel is decoded, any other
/// value is taken as is. `None` when the value has bytes outside visible ASCII, space and tab, or the
/// sentinel does not hold Base64 of UTF-8.
pub fn decode_value(raw: &[u8]) -> Option<String> {
    if !raw.iter().all(|b| (0x20..=0x7e).contains(b) || *b == b'\t') {
        return None;
    }
    let text = std::str::from_utf8(raw).ok()?;
    match text
        .strip_prefix(SENTINEL_PREFIX)
        .and_then(|t| t.strip_suffix(SENTINEL_SUFFIX))
    {
        Some(encoded) => String::from_utf8(BASE64.decode(encoded).ok()?).ok(),
        None => Some(text.to_string()),
    }
}

/// The single value of header `name`: `Ok(None)` when absent, refused when repeated.
fn single<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h [u8]>, Mismatch> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(Mismatch::Repeated(name));
    }
    Ok(first.map(|v| v.as_bytes()))
}

/// Checks the mirrored headers against the inspected body (see the module docs for each case).
pub fn check(headers: &HeaderMap, body: &Body) -> Result<(), HeaderMismatch> {
    let refuse = |id: Option<&Value>, reason| HeaderMismatch {
        id: id.cloned(),
        reason,
    };
    let method = single(headers, MCP_METHOD).map_err(|r| refuse(None, r))?;
    let name = single(headers, MCP_NAME).map_err(|r| refuse(None, r))?;
    let version = single(headers, MCP_PROTOCOL_VERSION).map_err(|r| refuse(None, r))?;
    let call = match body {
        Body::Unparsable(_) => return Ok(()),
        Body::Single(Message::Call(call)) => call,
        Body::Single(Message::Response) | Body::Batch(_) => {
            return match (method, name) {
                (None, None) => Ok(()),
                _ => Err(refuse(None, Mismatch::NotSingleRequest)),
            };
        }
    };
    let id = call.id.as_ref();
    if let Some(m) = method {
        if m != call.method.as_bytes() {
            return Err(refuse(id, Mismatch::Method));
        }
    }
    match (name, &call.name) {
        (Some(raw), Some(body_name)) => match decode_value(raw) {
            Some(decoded) if decoded == *body_name => {}
            Some(_) => return Err(refuse(id, Mismatch::Name)),
            None => return Err(refuse(id, Mismatch::Invalid("Mcp-Name"))),
        },
        (Some(_), None) => return Err(refuse(id, Mismatch::NameUnexpected)),
        (None, Some(_)) if method.is_some() => return Err(refuse(id, Mismatch::NameMissing)),
        (None, _) => {}
    }
    if let (Some(header), Some(meta)) = (version, &call.protocol_version) {
        if header != meta.as_bytes() {
            return Err(refuse(id, Mismatch::ProtocolVersion));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::jsonrpc::inspect;
    use http::HeaderValue;
    use serde_json::json;

    const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_weather","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    const UNICODE: &str =
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"Hello, 世界"}}"#;
    const LIST: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
    const BATCH: &str = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#;

    /// Header name and raw value pairs, in order.
    type Pairs<'a> = &'a [(&'static str, &'a [u8])];

    fn headers(pairs: Pairs) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn outcome(body: &str, pairs: Pairs) -> Result<(), Mismatch> {
        check(&headers(pairs), &inspect(body.as_bytes())).map_err(|e| e.reason)
    }

    #[test]
    fn matching_or_absent_headers_pass() {
        let ok: &[(&str, Pairs)] = &[
            (CALL, &[]),
            (
                CALL,
                &[(MCP_METHOD, b"tools/call"), (MCP_NAME, b"get_weather")],
            ),
            (CALL, &[(MCP_NAME, b"get_weather")]),
            (CALL, &[(MCP_NAME, b"=?base64?Z2V0X3dlYXRoZXI=?=")]),
            (CALL, &[(MCP_PROTOCOL_VERSION, b"2026-07-28")]),
            (
                UNICODE,
                &[
                    (MCP_METHOD, b"tools/call"),
                    (MCP_NAME, b"=?base64?SGVsbG8sIOS4lueVjA==?="),
                ],
            ),
            (UNICODE, &[(MCP_NAME, b"=?base64?SGVsbG8sIOS4lueVjA?=")]),
            (LIST, &[(MCP_METHOD, b"tools/list")]),
            (LIST, &[(MCP_PROTOCOL_VERSION, b"2025-06-18")]),
            (BATCH, &[]),
            ("not json", &[(MCP_METHOD, b"tools/call")]),
        ];
        for (body, pairs) in ok {
            assert_eq!(outcome(body, pairs), Ok(()), "{body} {pairs:?}");
        }
    }

    #[test]
    fn mismatched_missing_repeated_or_invalid_headers_are_refused() {
        let refused: &[(&str, Pairs, Mismatch)] = &[
            (CALL, &[(MCP_METHOD, b"tools/list")], Mismatch::Method),
            (CALL, &[(MCP_METHOD, b"Tools/Call")], Mismatch::Method),
            (
                CALL,
                &[(MCP_METHOD, b"tools/call"), (MCP_NAME, b"read_notes")],
                Mismatch::Name,
            ),
            (CALL, &[(MCP_NAME, b"Get_Weather")], Mismatch::Name),
            (CALL, &[(MCP_METHOD, b"tools/call")], Mismatch::NameMissing),
            (
                CALL,
                &[(MCP_NAME, b"=?base64?cmVhZF9ub3Rlcw==?=")],
                Mismatch::Name,
            ),
            (
                CALL,
                &[(MCP_NAME, b"=?base64?!!!?=")],
                Mismatch::Invalid("Mcp-Name"),
            ),
            (
                CALL,
                &[(MCP_NAME, b"=?base64?/w==?=")],
                Mismatch::Invalid("Mcp-Name"),
            ),
            (
                CALL,
                &[(MCP_NAME, b"get_weather\x80")],
                Mismatch::Invalid("Mcp-Name"),
            ),
            (
                CALL,
                &[(MCP_NAME, b"=?BASE64?Z2V0X3dlYXRoZXI=?=")],
                Mismatch::Name,
            ),
            (
                CALL,
                &[(MCP_METHOD, b"tools/call"), (MCP_METHOD, b"tools/call")],
                Mismatch::Repeated(MCP_METHOD),
            ),
            (
                CALL,
                &[(MCP_NAME, b"get_weather"), (MCP_NAME, b"x")],
                Mismatch::Repeated(MCP_NAME),
            ),
            (
                CALL,
                &[(MCP_PROTOCOL_VERSION, b"2025-11-25")],
                Mismatch::ProtocolVersion,
            ),
            (UNICODE, &[(MCP_NAME, b"Hello, ??")], Mismatch::Name),
            (LIST, &[(MCP_NAME, b"x")], Mismatch::NameUnexpected),
            (
                BATCH,
                &[(MCP_METHOD, b"tools/list")],
                Mismatch::NotSingleRequest,
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
                &[(MCP_NAME, b"x")],
                Mismatch::NotSingleRequest,
            ),
        ];
        for (body, pairs, why) in refused {
            assert_eq!(outcome(body, pairs), Err(*why), "{body} {pairs:?}");
        }
    }

    #[test]
    fn a_literal_sentinel_name_must_itself_be_encoded() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"=?base64?literal?="}}"#;
        assert!(outcome(body, &[(MCP_NAME, b"=?base64?literal?=")]).is_err());
        assert_eq!(
            outcome(body, &[(MCP_NAME, b"=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=")]),
            Ok(())
        );
    }

    #[test]
    fn the_refusal_is_a_jsonrpc_error_with_the_request_id_and_no_header_value() {
        let err = check(
            &headers(&[(MCP_NAME, b"secret_value")]),
            &inspect(CALL.as_bytes()),
        )
        .unwrap_err();
        let body: Value = serde_json::from_str(&err.jsonrpc_body()).unwrap();
        assert_eq!(body["id"], json!(7));
        assert_eq!(body["error"]["code"], json!(-32020));
        assert!(!err.jsonrpc_body().contains("secret_value"));
    }
}
