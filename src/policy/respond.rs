//! The answers the gate gives when the MCP authorization rules refuse a request: built here and
//! nowhere else, so a client always gets the same shape for the same refusal.
//!
//! - Step-up: `403` with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…",
//!   resource_metadata="…"` (RFC 6750 §3.1), where `scope` names every scope the operation needs
//!   (MCP authorization "Scope Challenge Handling", SEP-835 / SEP-2350), never `offline_access`.
//! - Deny (a `deny` rule, or a claim condition that fails): `403 insufficient_scope` without
//!   `scope`, since no scope would help; the body says so.
//! - Header mismatch: `400`, JSON-RPC `-32020` (MCP Streamable HTTP 2026-07-28).
//! - A body a rule needed the method of and could not read: `400`, JSON-RPC `-32700` (parse error).
//!
//! Every body is a JSON-RPC error response with the request's `id`, so an MCP client can match it
//! to its call, and names the method and tool (never the token's contents).

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use super::decide::DenyReason;
use super::headers::HeaderMismatch;
use super::jsonrpc::{Call, Unparsable};
use crate::http::body::ResponseBody;

/// The gate's own JSON-RPC error code for a call the authorization rules refuse (JSON-RPC 2.0
/// §5.1 leaves -32000..-32099 to the implementation; MCP defines none for this).
pub const FORBIDDEN_CODE: i64 = -32003;
/// JSON-RPC 2.0 §5.1 parse error.
pub const PARSE_ERROR_CODE: i64 = -32700;

/// `403`: the token lacks scopes; `scopes` are all the scopes the operation needs.
pub fn step_up(resource_metadata: &str, scopes: &[String], call: &Call) -> Response<ResponseBody> {
    let scope = scopes.join(" ");
    let message = format!(
        "{} needs the scopes: {scope}; authorize again with them",
        what(call)
    );
    let challenge = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{resource_metadata}\""
    );
    let data = json!({"method": call.method, "name": call.name, "scopes": scopes});
    forbidden(&challenge, resource_metadata, call, &message, data)
}

/// `403`: a rule refuses the call whatever the token's scopes.
pub fn deny(resource_metadata: &str, why: DenyReason, call: &Call) -> Response<ResponseBody> {
    let reason = match why {
        DenyReason::DenyRule => "an authorization rule denies it",
        DenyReason::ClaimFailed => {
            "the token does not meet the claim conditions of the rule for it"
        }
    };
    let message = format!("{} is not allowed: {reason}", what(call));
    let challenge =
        format!("Bearer error=\"insufficient_scope\", resource_metadata=\"{resource_metadata}\"");
    let data = json!({"method": call.method, "name": call.name});
    forbidden(&challenge, resource_metadata, call, &message, data)
}

/// `400`, `-32020`: the mirrored `Mcp-*` headers do not match the body.
pub fn header_mismatch(m: &HeaderMismatch) -> Response<ResponseBody> {
    json_rpc(StatusCode::BAD_REQUEST, Bytes::from(m.jsonrpc_body()))
}

/// `400`, `-32700`: the rules need the body's method and it does not say one.
pub fn bad_body(why: Unparsable) -> Response<ResponseBody> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": Value::Null,
        "error": {"code": PARSE_ERROR_CODE, "message": format!("Parse error: {why}")},
    });
    json_rpc(StatusCode::BAD_REQUEST, Bytes::from(body.to_string()))
}

/// `tools/call of "delete_note"`, or just the method when it has no name.
fn what(call: &Call) -> String {
    match &call.name {
        Some(name) => format!("{} of {name:?}", call.method),
        None => call.method.clone(),
    }
}

fn forbidden(
    challenge: &str,
    resource_metadata: &str,
    call: &Call,
    message: &str,
    data: Value,
) -> Response<ResponseBody> {
    let body = json!({
        "jsonrpc": "2.0",
        "id": call.id.clone().unwrap_or(Value::Null),
        "error": {"code": FORBIDDEN_CODE, "message": message, "data": data},
    });
    let mut response = json_rpc(StatusCode::FORBIDDEN, Bytes::from(body.to_string()));
    // Scopes and the metadata URL are validated at start (RFC 6749 §3.3 scope-tokens, a URL), so
    // this cannot fail; if it did, the bare challenge still says insufficient_scope.
    let value = HeaderValue::from_str(challenge).unwrap_or_else(|_| {
        HeaderValue::from_str(&format!(
            "Bearer error=\"insufficient_scope\", resource_metadata=\"{resource_metadata}\""
        ))
        .unwrap_or(HeaderValue::from_static(
            "Bearer error=\"insufficient_scope\"",
        ))
    });
    response.headers_mut().insert(WWW_AUTHENTICATE, value);
    response
}

fn json_rpc(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    const PRM: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

    fn call(name: Option<&str>) -> Call {
        Call {
            method: "tools/call".into(),
            id: Some(json!(7)),
            name: name.map(str::to_string),
            protocol_version: None,
            trace_context: None,
        }
    }

    async fn body(r: Response<ResponseBody>) -> Value {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn step_up_challenge_names_every_scope_and_the_metadata() {
        let scopes = vec!["mcp:tools".to_string(), "mcp:admin".to_string()];
        let r = step_up(PRM, &scopes, &call(Some("delete_note")));
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.headers()[WWW_AUTHENTICATE],
            format!("Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:admin\", resource_metadata=\"{PRM}\"").as_str()
        );
        let b = body(r).await;
        assert_eq!(b["id"], 7);
        assert_eq!(b["error"]["code"], FORBIDDEN_CODE);
        let message = b["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("tools/call of \"delete_note\""),
            "{message}"
        );
        assert!(message.contains("mcp:tools mcp:admin"), "{message}");
    }

    #[tokio::test]
    async fn a_denial_offers_no_scope_and_says_why() {
        for (why, says) in [
            (DenyReason::DenyRule, "rule denies"),
            (DenyReason::ClaimFailed, "claim conditions"),
        ] {
            let r = deny(PRM, why, &call(Some("wipe")));
            assert_eq!(r.status(), 403);
            let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_string();
            assert!(challenge.contains("insufficient_scope"), "{challenge}");
            assert!(!challenge.contains("scope=\""), "{challenge}");
            let b = body(r).await;
            assert_eq!(b["id"], 7);
            assert!(b["error"]["message"].as_str().unwrap().contains(says));
        }
    }

    #[tokio::test]
    async fn an_unreadable_body_is_a_jsonrpc_parse_error_with_a_null_id() {
        let b = body(bad_body(Unparsable::NotJson)).await;
        assert_eq!(b["error"]["code"], PARSE_ERROR_CODE);
        assert_eq!(b["id"], Value::Null);
    }
}
