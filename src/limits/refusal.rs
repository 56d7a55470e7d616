//! The answer to a request over a limit: 429 (RFC 6585 §4) with `Retry-After` (RFC 9110 §10.2.3) and
//! the `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10 (the
//! Structured-Fields syntax the draft has used since -08: a quoted policy name with `q` and `w` for
//! the policy, `r` and `t` for the current state).
//!
//! Status and log reason are the [`GateError`]'s, decided in `http/error.rs` like every other
//! answer the gate gives itself. The body is the gate's usual `{"error", "error_description"}` JSON
//! when the request's JSON-RPC body has not been read (the address and subject levels refuse before
//! reading it: a limited client must not make the gate buffer bodies), and a JSON-RPC error response
//! with the request's `id` when it has (the tool level), so an MCP client can match it to its call.

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Response, StatusCode};
use serde_json::{json, Value};

use super::{Quota, Refused, Verdict};
use crate::http::body::ResponseBody;
use crate::http::error::GateError;
use crate::policy::jsonrpc::Body;

/// The JSON-RPC error code of a call refused by a rate limit: the gate's own, from the range
/// JSON-RPC 2.0 §5.1 leaves to the implementation (MCP defines none for this). Not -32000, which
/// MCP SDKs use for "connection closed"; 29 as in 429.
pub const RATE_LIMITED_CODE: i64 = -32029;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

impl Refused {
    /// The error whose status, JSON body and log reason the response carries.
    pub fn error(self) -> GateError {
        match self {
            Refused::Limited { .. } => GateError::RateLimited,
            Refused::StoreUnavailable { .. } => GateError::RateLimitUnavailable,
        }
    }

    /// The answer to a request whose JSON-RPC body is known: for a 429, a JSON-RPC error response
    /// with the request's `id` naming the limited `tool` (see [`jsonrpc_error`]), with the numeric
    /// fields; a 503 keeps the gate's usual JSON body.
    pub fn respond_to_calls(self, body: &Body, tool: &str) -> Response<ResponseBody> {
        let Refused::Limited { level, verdict, .. } = self else {
            return self.error().response(http::Version::HTTP_11);
        };
        let data = json!({
            "limit": level.as_str(),
            "tool": tool,
            "retry_after": whole_seconds(verdict.retry_after),
        });
        let text = jsonrpc_error(body, data).to_string();
        let mut response = Response::new(ResponseBody::from(Bytes::from(text)));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.decorate(&mut response);
        response
    }

    /// Adds the numeric fields to the response built from [`Refused::error`].
    pub fn decorate(self, response: &mut Response<ResponseBody>) {
        let Refused::Limited {
            level,
            quota,
            verdict,
        } = self
        else {
            return;
        };
        for (name, value) in fields(level.as_str(), &quota, &verdict) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
}

/// The JSON-RPC answer refusing every request of `body` (JSON-RPC 2.0 §5, §6): one error object
/// with the request's `id` for a single message; for a batch, which is refused whole, an array with
/// one error per request that has an `id`; `id: null` when there is no id to echo (notifications
/// only). `data` is the same in each.
pub fn jsonrpc_error(body: &Body, data: Value) -> Value {
    let error = |id: Value| {
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": RATE_LIMITED_CODE, "message": "rate limited", "data": data},
        })
    };
    if let Body::Batch(_) = body {
        let errors: Vec<Value> = body
            .calls()
            .filter_map(|call| call.id.clone())
            .map(error)
            .collect();
        if !errors.is_empty() {
            return Value::Array(errors);
        }
    }
    let id = body.calls().next().and_then(|call| call.id.clone());
    error(id.unwrap_or(Value::Null))
}

/// Seconds, rounded up: a client that waits what it is told must find the unit available.
fn whole_seconds(d: std::time::Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000_000).max(1)
}

/// `Retry-After`, `RateLimit-Policy` and `RateLimit` for a refusal by the policy named `name`.
fn fields(name: &str, quota: &Quota, verdict: &Verdict) -> [(HeaderName, String); 3] {
    let secs = whole_seconds;
    [
        (RETRY_AFTER, secs(verdict.retry_after).to_string()),
        (
            RATELIMIT_POLICY,
            format!("\"{name}\";q={};w={}", quota.count, secs(quota.period)),
        ),
        (
            RATELIMIT,
            format!(
                "\"{name}\";r={};t={}",
                verdict.remaining,
                secs(verdict.reset)
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fields_round_seconds_up_and_name_the_policy() {
        for (quota, retry_ms, reset_ms, expect) in [
            (
                "100/1m",
                600,
                60_000,
                ["1", "\"ip\";q=100;w=60", "\"ip\";r=0;t=60"],
            ),
            (
                "1/10s",
                9_001,
                9_001,
                ["10", "\"ip\";q=1;w=10", "\"ip\";r=0;t=10"],
            ),
            (
                "5/500ms,burst=1",
                100,
                100,
                ["1", "\"ip\";q=5;w=1", "\"ip\";r=0;t=1"],
            ),
        ] {
            let verdict = Verdict {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(retry_ms),
                reset: Duration::from_millis(reset_ms),
            };
            let got = fields("ip", &Quota::parse(quota).unwrap(), &verdict).map(|(_, v)| v);
            assert_eq!(got, expect, "{quota}");
        }
    }

    #[test]
    fn the_jsonrpc_answer_echoes_each_request_id_and_null_when_there_is_none() {
        use crate::policy::jsonrpc::inspect;
        let call = |id: &str| {
            format!(r#"{{"jsonrpc":"2.0",{id}"method":"tools/call","params":{{"name":"t"}}}}"#)
        };
        let data = json!({"limit": "tool"});
        let ids = |body: &str| {
            let v = jsonrpc_error(&inspect(body.as_bytes()), data.clone());
            match v {
                Value::Array(all) => Value::Array(all.iter().map(|e| e["id"].clone()).collect()),
                one => one["id"].clone(),
            }
        };
        assert_eq!(ids(&call(r#""id":7,"#)), json!(7));
        assert_eq!(ids(&call(r#""id":"abc","#)), json!("abc"));
        assert_eq!(ids(&call("")), Value::Null);
        let batch = format!(
            "[{},{},{}]",
            call(r#""id":1,"#),
            call(""),
            call(r#""id":"x","#)
        );
        assert_eq!(ids(&batch), json!([1, "x"]));
        assert_eq!(ids(&format!("[{}]", call(""))), Value::Null);

        let one = jsonrpc_error(&inspect(call(r#""id":7,"#).as_bytes()), data.clone());
        assert_eq!(one["jsonrpc"], "2.0");
        assert_eq!(one["error"]["code"], RATE_LIMITED_CODE);
        assert_eq!(one["error"]["message"], "rate limited");
        assert_eq!(one["error"]["data"], data);
    }

    #[test]
    fn a_tool_429_is_a_jsonrpc_error_with_the_same_fields() {
        use crate::policy::jsonrpc::inspect;
        let refused = Refused::Limited {
            level: super::super::Level::Tool,
            quota: Quota::parse("2/1m").unwrap(),
            verdict: Verdict {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(29_500),
                reset: Duration::from_secs(60),
            },
        };
        let body =
            inspect(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"s"}}"#);
        let response = refused.respond_to_calls(&body, "s");
        assert_eq!(response.status(), 429);
        let h = response.headers();
        assert_eq!(h[CONTENT_TYPE], "application/json");
        assert_eq!(h[RETRY_AFTER], "30");
        assert_eq!(h["ratelimit-policy"], "\"tool\";q=2;w=60");
        assert_eq!(h["ratelimit"], "\"tool\";r=0;t=60");
    }

    #[test]
    fn a_429_carries_retry_after_and_both_ratelimit_fields() {
        let refused = Refused::Limited {
            level: super::super::Level::Subject,
            quota: Quota::parse("5/1s").unwrap(),
            verdict: Verdict {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(200),
                reset: Duration::from_secs(1),
            },
        };
        let mut response = refused.error().response(http::Version::HTTP_11);
        refused.decorate(&mut response);
        assert_eq!(response.status(), 429);
        let h = response.headers();
        assert_eq!(h[RETRY_AFTER], "1");
        assert_eq!(h["ratelimit-policy"], "\"subject\";q=5;w=1");
        assert_eq!(h["ratelimit"], "\"subject\";r=0;t=1");
    }
}
