//! MCP authorization rules on the request path (issue #10), end to end: the gate reads the POST
//! body only when a policy is configured, forwards exactly the bytes it received, and answers
//! refusals itself (403 step-up / deny, 400 -32020 / -32700) without the upstream ever seeing them.

use std::path::PathBuf;

use crate::support::*;
use serde_json::{json, Value};

const ECHO: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#;
const DELETE: &str = r#"{"jsonrpc":"2.0","id":"d-7","method":"tools/call","params":{"name":"delete_note","arguments":{"id":3}}}"#;

/// A policy file in the temp directory, removed when dropped.
pub struct PolicyFile(pub PathBuf);

impl PolicyFile {
    pub fn new(text: &str) -> PolicyFile {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "mcp-gate-it-policy-{}-{n}.toml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        PolicyFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for PolicyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn call(s: &Stack, token: &str, extra: &[(&str, &str)], body: &str) -> Answer {
    let auth = bearer(token);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend_from_slice(extra);
    post(&s.gate.resource(), &headers, body).await
}

fn with_scope(s: &Stack, scope: &str) -> String {
    s.token_with(|c| c["scope"] = json!(scope))
}

#[tokio::test]
async fn an_allowed_call_reaches_the_upstream_byte_for_byte() {
    let s = stack(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    // Odd spacing and member order: the gate must forward what it read, not a re-serialization.
    let body = "{ \"params\" : {\"name\":\"echo\"},\n \"method\":\"tools/call\", \"id\":1, \"jsonrpc\":\"2.0\" }";
    let a = call(&s, &s.token(), &[], body).await;
    assert_eq!(a.status, 200);
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, body.as_bytes());
    assert!(seen[0].body_complete);
}

#[tokio::test]
async fn a_call_missing_a_scope_gets_a_step_up_challenge_naming_every_scope_it_needs() {
    let s = stack(&[
        ("REQUIRED_SCOPES", "mcp:tools"),
        ("TOOL_SCOPES", "delete_*=mcp:admin mcp:delete"),
    ])
    .await;
    let a = call(&s, &s.token(), &[], DELETE).await;
    assert_eq!(a.status, 403);
    let metadata = format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        s.gate.addr
    );
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        format!("Bearer error=\"insufficient_scope\", scope=\"mcp:tools mcp:admin mcp:delete\", resource_metadata=\"{metadata}\"")
    );
    let b = a.json();
    assert_eq!(b["id"], "d-7");
    let message = b["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("tools/call") && message.contains("delete_note"),
        "{message}"
    );
    assert_eq!(
        s.upstream.count(),
        0,
        "a refused call never reaches the upstream"
    );

    // With the scopes the challenge named, the same call goes through.
    let a = call(
        &s,
        &with_scope(&s, "mcp:tools mcp:admin mcp:delete"),
        &[],
        DELETE,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 1);
    // The metadata lists the scopes the rules use.
    let doc = get(&metadata, &[]).await.json();
    assert_eq!(
        doc["scopes_supported"],
        json!(["mcp:tools", "mcp:admin", "mcp:delete"])
    );
}

#[tokio::test]
async fn a_deny_rule_refuses_with_no_scope_to_offer() {
    let file =
        PolicyFile::new("[[rule]]\nmethod = \"tools/call\"\nname = \"wipe_*\"\ndeny = true\n");
    let s = stack(&[("POLICY_FILE", file.path())]).await;
    let body = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"wipe_all"}}"#;
    let a = call(&s, &with_scope(&s, "mcp:tools mcp:admin"), &[], body).await;
    assert_eq!(a.status, 403);
    let challenge = a.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(!challenge.contains("scope=\""), "{challenge}");
    let b = a.json();
    assert_eq!(b["id"], 5);
    assert!(b["error"]["message"].as_str().unwrap().contains("denies"));
    assert_eq!(s.upstream.count(), 0);
    // Other tools pass.
    assert_eq!(call(&s, &s.token(), &[], ECHO).await.status, 200);
}

#[tokio::test]
async fn mirrored_headers_that_contradict_the_body_get_32020_and_never_reach_the_upstream() {
    let s = stack(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    let a = call(
        &s,
        &s.token(),
        &[("mcp-method", "tools/call"), ("mcp-name", "echo")],
        DELETE,
    )
    .await;
    assert_eq!(a.status, 400);
    let b = a.json();
    assert_eq!(b["error"]["code"], -32020);
    assert_eq!(b["id"], "d-7");
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn a_batch_with_one_forbidden_call_is_refused_whole() {
    let s = stack(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    let batch = format!("[{ECHO},{DELETE}]");
    let a = call(&s, &s.token(), &[], &batch).await;
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["id"], "d-7");
    assert_eq!(
        s.upstream.count(),
        0,
        "no element of the batch is forwarded"
    );
}

#[tokio::test]
async fn a_base64_mcp_name_that_matches_the_body_is_accepted() {
    let s = stack(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    // "echo" in the 2026-07-28 Base64 sentinel form.
    let a = call(
        &s,
        &s.token(),
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "=?base64?ZWNobw==?="),
        ],
        ECHO,
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.seen()[0].body, ECHO.as_bytes());
}

#[tokio::test]
async fn a_body_that_is_not_jsonrpc_is_a_parse_error_when_rules_need_its_method() {
    let s = stack(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    let a = call(&s, &s.token(), &[], "{not json").await;
    assert_eq!(a.status, 400);
    let b = a.json();
    assert_eq!(b["error"]["code"], -32700);
    assert_eq!(b["id"], Value::Null);
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_before_any_rule() {
    let s = stack(&[
        ("TOOL_SCOPES", "delete_*=mcp:admin"),
        ("MAX_REQUEST_BODY", "1KiB"),
    ])
    .await;
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"t":"{}"}}}}}}"#,
        "x".repeat(2000)
    );
    assert_eq!(call(&s, &s.token(), &[], &big).await.status, 413);
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn a_gate_without_a_policy_passes_bodies_and_mcp_headers_through_unread() {
    let s = stack(&[]).await;
    for body in [DELETE, "{not json"] {
        let a = call(
            &s,
            &s.token(),
            &[("mcp-method", "tools/list"), ("mcp-name", "other")],
            body,
        )
        .await;
        assert_eq!(a.status, 200, "{body}");
    }
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, DELETE.as_bytes());
    assert_eq!(seen[1].headers["mcp-method"], "tools/list");
}

const TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

fn listed(result: &Value) -> Vec<String> {
    result["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn filtered_tools_list_json_omits_tools_the_caller_may_not_call_and_is_private() {
    let s = stack(&[
        ("TOOL_SCOPES", "delete_*=mcp:admin"),
        ("FILTER_TOOLS_LIST", "true"),
    ])
    .await;
    let a = call(&s, &s.token(), &[], TOOLS_LIST).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("cache-control"), Some("private"));
    assert_eq!(
        a.header("content-length").unwrap(),
        a.body.len().to_string()
    );
    assert_eq!(listed(&a.json()), ["echo", "read_notes"]);
    // An admin sees every tool.
    let a = call(&s, &with_scope(&s, "mcp:tools mcp:admin"), &[], TOOLS_LIST).await;
    assert_eq!(listed(&a.json()), TOOLS);
}

#[tokio::test]
async fn filtered_tools_list_sse_is_rewritten_event_by_event() {
    let s = stack(&[
        ("TOOL_SCOPES", "delete_*=mcp:admin"),
        ("FILTER_TOOLS_LIST", "true"),
    ])
    .await;
    let a = call(&s, &s.token(), &[("x-test-sse", "1")], TOOLS_LIST).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("cache-control"), Some("private"));
    let text = String::from_utf8(a.body.to_vec()).unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(
        events[0].contains("notifications/progress"),
        "untouched: {text}"
    );
    let data = events[1]
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let result: Value = serde_json::from_str(data).unwrap();
    assert_eq!(listed(&result), ["echo", "read_notes"]);
}

#[tokio::test]
async fn without_filtering_tools_list_passes_unchanged() {
    let s = stack(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).await;
    let a = call(&s, &s.token(), &[], TOOLS_LIST).await;
    assert_eq!(listed(&a.json()), TOOLS);
    assert_ne!(a.header("cache-control"), Some("private"));
}

#[tokio::test]
async fn the_policy_file_is_reloaded_while_serving_and_a_bad_version_keeps_the_old_rules() {
    let deny =
        |tool: &str| format!("[[rule]]\nmethod = \"tools/call\"\nname = \"{tool}\"\ndeny = true\n");
    let file = PolicyFile::new(&deny("wipe_*"));
    let metrics_addr = free_addr();
    let s = stack(&[
        ("POLICY_FILE", file.path()),
        ("POLICY_RELOAD_INTERVAL", "100ms"),
        ("METRICS_ADDR", &metrics_addr.to_string()),
    ])
    .await;
    assert_eq!(call(&s, &s.token(), &[], ECHO).await.status, 200);

    std::fs::write(&file.0, deny("echo")).unwrap();
    let mut status = 0;
    for _ in 0..50 {
        status = call(&s, &s.token(), &[], ECHO).await.status;
        if status == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, 403, "the new rules are in force");

    // A broken version: the previous rules stay, and the failure is counted.
    std::fs::write(
        &file.0,
        "[[rule]]\nmethod = \"tools/call\"\nall_of = [\"offline_access\"]\n",
    )
    .unwrap();
    let scrape = || async {
        String::from_utf8(
            get(&format!("http://{metrics_addr}/metrics"), &[])
                .await
                .body
                .to_vec(),
        )
        .unwrap()
    };
    let mut text = scrape().await;
    for _ in 0..50 {
        if text.contains("mcp_gate_policy_reloads_total{result=\"error\"} 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        text = scrape().await;
    }
    assert!(
        text.contains("mcp_gate_policy_reloads_total{result=\"error\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("mcp_gate_policy_reloads_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert_eq!(
        call(&s, &s.token(), &[], ECHO).await.status,
        403,
        "old rules kept"
    );
    assert_eq!(
        call(
            &s,
            &s.token(),
            &[],
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"wipe_all"}}"#
        )
        .await
        .status,
        200
    );
}
