//! Property tests across the policy modules: no `Mcp-*` header value can change which rule
//! applies (`decide` never sees headers; `headers::check` lets a request through only when its
//! headers say what the body says), and body inspection never panics.

use base64::Engine;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::json;

use super::file::parse_tool_scopes;
use super::headers::{check, decode_value, MCP_METHOD, MCP_NAME};
use super::jsonrpc::{inspect, Body, Message};

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tools/call".to_string()),
        Just("prompts/get".to_string()),
        Just("resources/read".to_string()),
        Just("tools/list".to_string()),
        "[a-z/]{1,12}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("delete_note".to_string()),
        Just("echo".to_string()),
        "[a-z_]{0,10}",
        "\\PC{0,8}",
        Just("=?base64?ZWNobw==?=".to_string()),
    ]
}

fn sentinel(s: &str) -> String {
    format!(
        "=?base64?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

/// A header value derived from `truth` or not: the value itself, encoded, another one, or bytes.
fn header_value(truth: String) -> impl Strategy<Value = Option<Vec<u8>>> {
    let t1 = truth.clone();
    let t2 = truth.clone();
    prop_oneof![
        Just(None),
        Just(Some(t1.into_bytes())),
        Just(Some(sentinel(&t2).into_bytes())),
        name().prop_map(|n| Some(n.into_bytes())),
        name().prop_map(|n| Some(sentinel(&n).into_bytes())),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(Some),
        Just(Some(truth.to_uppercase().into_bytes())),
    ]
}

fn request() -> impl Strategy<Value = (String, String, Option<Vec<u8>>, Option<Vec<u8>>)> {
    (method(), name()).prop_flat_map(|(m, n)| {
        (
            Just(m.clone()),
            Just(n.clone()),
            header_value(m),
            header_value(n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_header_value_changes_which_rule_applies((m, n, hm, hn) in request()) {
        let rules = parse_tool_scopes("delete_*=mcp:admin;echo=mcp:tools;*=mcp:other").unwrap();
        let body = json!({"jsonrpc":"2.0","id":1,"method":m,"params":{"name":n,"uri":n}}).to_string();
        let inspected = inspect(body.as_bytes());
        let Body::Single(Message::Call(call)) = &inspected else {
            return Err(TestCaseError::fail("a request body did not inspect as a call"));
        };
        prop_assert_eq!(&call.method, &m);
        let mut headers = HeaderMap::new();
        for (key, v) in [(MCP_METHOD, &hm), (MCP_NAME, &hn)] {
            if let Some(v) = v {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    headers.insert(key, v);
                }
            }
        }
        if check(&headers, &inspected).is_ok() {
            let header_method = headers.get(MCP_METHOD).map(|v| v.as_bytes().to_vec());
            let header_name = headers.get(MCP_NAME).and_then(|v| decode_value(v.as_bytes()));
            if let Some(hm) = header_method {
                prop_assert_eq!(hm, m.as_bytes().to_vec());
            }
            if let Some(hn) = &header_name {
                prop_assert_eq!(Some(hn), call.name.as_ref());
                prop_assert_eq!(
                    rules.first_match(&m, Some(hn)).map(|r| r.0),
                    rules.first_match(&call.method, call.name.as_deref()).map(|r| r.0)
                );
            }
        }
    }

    #[test]
    fn inspection_never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = inspect(&bytes);
    }
}
