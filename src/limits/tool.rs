//! The tool level (`RATE_LIMIT_TOOL`): which calls of a JSON-RPC body it counts, and the key of one
//! subject's budget for one tool. Pure.
//!
//! What counts is the body, never the `Mcp-Method` / `Mcp-Name` headers (MCP Streamable HTTP
//! 2026-07-28 "Request Metadata"): the policy's header check ([`crate::policy::headers`]) has
//! refused a request whose headers disagree with its body before anything is counted.
//!
//! - Each `tools/call` *request or notification* counts once under its `params.name`; every other
//!   method (`tools/list`, `initialize`, …) and JSON-RPC responses cost nothing here.
//! - A batch (JSON-RPC 2.0 §6; MCP 2025-03-26 allows them) counts each of its `tools/call`s, in
//!   order, so a batch of ten calls of one tool costs what ten requests cost: batching cannot be
//!   used to get around the limit.
//! - A body the gate cannot parse is not counted because it never gets here: with the tool level on,
//!   the policy refuses it (400, -32700), since the upstream might read a `tools/call` in it.

use crate::policy::jsonrpc::Body;

/// The JSON-RPC method the tool level limits.
pub const TOOLS_CALL: &str = "tools/call";

/// The tool names of the `tools/call`s in `body`, in order, one per call.
pub fn counted(body: &Body) -> impl Iterator<Item = &str> {
    body.calls()
        .filter(|call| call.method == TOOLS_CALL)
        .filter_map(|call| call.name.as_deref())
}

/// SHA-256 of the subject's key and the tool name (length-prefixed): a fixed-size key whatever the
/// name's length, and Redis never sees the subject or the tool in clear.
pub fn key(subject: &[u8; 32], tool: &str) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"tool");
    ctx.update(subject);
    ctx.update(&(tool.len() as u64).to_be_bytes());
    ctx.update(tool.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::jsonrpc::inspect;

    fn names(body: &str) -> Vec<String> {
        counted(&inspect(body.as_bytes()))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn only_tools_call_counts_and_each_call_of_a_batch_counts_once() {
        let call = |id: u32, name: &str| {
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{name}"}}}}"#
            )
        };
        for (body, want) in [
            (call(1, "search"), vec!["search"]),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_string(),
                vec![],
            ),
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"search"}}"#
                    .to_string(),
                vec![],
            ),
            (
                format!(
                    "[{},{},{}]",
                    call(1, "a"),
                    r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
                    call(3, "a")
                ),
                vec!["a", "a"],
            ),
            // A notification is no less a call of the tool.
            (
                r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"n"}}"#.to_string(),
                vec!["n"],
            ),
            // A response the client sends back costs nothing.
            (
                r#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_string(),
                vec![],
            ),
            // The method is case-sensitive, as the upstream reads it.
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"x"}}"#
                    .to_string(),
                vec![],
            ),
            ("not json".to_string(), vec![]),
        ] {
            assert_eq!(names(&body), want, "{body}");
        }
    }

    #[test]
    fn a_key_names_one_subject_and_one_tool() {
        let (alice, bob) = ([1u8; 32], [2u8; 32]);
        assert_eq!(key(&alice, "search"), key(&alice, "search"));
        assert_ne!(key(&alice, "search"), key(&alice, "fetch"));
        assert_ne!(key(&alice, "search"), key(&bob, "search"));
        assert_ne!(key(&alice, ""), key(&alice, "\0"));
    }
}
