//! The access log and the audit log as the running binary writes them: one JSON line per response,
//! the same keys on every line, never a token or a tool argument.

use super::*;

#[tokio::test]
async fn access_log_is_one_json_line_per_request_without_the_token_and_sigterm_exits_0() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", &resource)
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);

    let base = format!("http://127.0.0.1:{port}");
    wait_ready_on(port).await;

    let token = key.token(&claims(&idp.issuer, &resource));
    let expired = key.token(&{
        let mut c = claims(&idp.issuer, &resource);
        c["exp"] = serde_json::json!(now() - 3600);
        c
    });
    let a = post(
        &format!("{base}/mcp?secret=q"),
        &[
            ("authorization", &bearer(&token)),
            ("user-agent", "test-agent/1"),
        ],
        "{}",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        post(
            &format!("{base}/mcp"),
            &[("authorization", &bearer(&expired))],
            ""
        )
        .await
        .status,
        401
    );
    assert_eq!(post(&format!("{base}/mcp"), &[], "").await.status, 401);

    let healthcheck = |listen: String| {
        Command::new(BIN)
            .env_clear()
            .env("LISTEN_ADDR", listen)
            .arg("healthcheck")
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(
        healthcheck(format!("0.0.0.0:{port}")),
        Some(0),
        "healthcheck of a ready gate"
    );

    sigterm(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean exit");
    assert_eq!(
        healthcheck(format!("127.0.0.1:{port}")),
        Some(1),
        "healthcheck of a stopped gate"
    );

    let lines: Vec<String> = rx.try_iter().collect();
    let all = lines.join("\n");
    assert!(
        !all.contains(&token) && !all.contains(&expired),
        "a raw token was logged"
    );
    let access: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .filter(|v| v["msg"] == "request")
        .collect();
    let mcp: Vec<&Value> = access.iter().filter(|v| v["path"] == "/mcp").collect();
    assert_eq!(mcp.len(), 3, "{all}");
    let ok = mcp[0];
    for field in [
        "ts",
        "level",
        "method",
        "path",
        "status",
        "duration_ms",
        "client_ip",
        "user_agent",
        "sub",
        "client_id",
        "iss",
    ] {
        assert!(!ok[field].is_null(), "{field} in {ok}");
    }
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["sub"], "alice");
    assert_eq!(ok["client_id"], "client-1");
    assert_eq!(ok["iss"], idp.issuer.as_str());
    assert_eq!(ok["user_agent"], "test-agent/1");
    assert_eq!(ok["path"], "/mcp", "no query string in the log");
    assert_eq!(mcp[1]["reason"], "expired");
    assert_eq!(mcp[2]["reason"], "missing_token");
}

#[tokio::test]
async fn failures_the_gate_answers_itself_are_logged_with_their_reason() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    // Accepts connections (the kernel's backlog) but never answers: the upstream is too slow.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", silent.local_addr().unwrap());
    let port = free_addr().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("UPSTREAM_URL", &upstream)
        .env("UPSTREAM_TIMEOUT", "1s")
        .env("MAX_REQUEST_BODY", "16")
        .env("RESOURCE_URI", &resource)
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    wait_ready_on(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let auth = bearer(&key.token(&claims(&idp.issuer, &resource)));
    let slow = post(&url, &[("authorization", &auth)], "{}").await;
    assert_eq!(slow.status, 504);
    let said = slow.json()["error_description"].to_string();
    assert!(said.contains("UPSTREAM_TIMEOUT"), "{said}");
    let large = post(&url, &[("authorization", &auth)], &"x".repeat(17)).await;
    assert_eq!(large.status, 413);
    drop(silent);
    assert_eq!(
        post(&url, &[("authorization", &auth)], "{}").await.status,
        502
    );

    sigterm(child.id());
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let reasons: Vec<(u64, String)> = rx
        .try_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|v| v["msg"] == "request" && v["path"] == "/mcp")
        .map(|v| {
            let reason = v["reason"].as_str().unwrap_or("(none)").to_string();
            (v["status"].as_u64().unwrap_or(0), reason)
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (504, "upstream_timeout".to_string()),
            (413, "request_too_large".to_string()),
            (502, "upstream_unreachable".to_string()),
        ]
    );
}

/// The keys of every access-log line, the Go mcp-gate's schema: a pipeline may rely on each being
/// there, empty when not known.
const ACCESS_KEYS: [&str; 19] = [
    "ts",
    "level",
    "msg",
    "method",
    "path",
    "status",
    "duration_ms",
    "client_ip",
    "user_agent",
    "sub",
    "client_id",
    "iss",
    "reason",
    "limit",
    "token_path",
    "introspection_ms",
    "exchange_ms",
    "scheme",
    "complete",
];

#[tokio::test]
async fn every_response_is_one_access_log_line_with_the_same_keys_even_refusals_hyper_sends() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let metrics = free_addr();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("METRICS_ADDR", metrics.to_string())
        .env("MAX_HEADER_SIZE", "16KiB")
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", format!("http://127.0.0.1:{port}/mcp"))
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    wait_ready_on(port).await;
    let gate = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let wait = Duration::from_secs(3);

    // No User-Agent, no token: the gate's own 401.
    let a = raw(
        gate,
        b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        wait,
    )
    .await;
    assert_eq!(a.status(), Some(401), "{}", a.text());
    // A request target with a control character: hyper's own 400.
    let a = raw(gate, b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", wait).await;
    assert_eq!(a.status(), Some(400), "{}", a.text());
    // A header block over MAX_HEADER_SIZE: hyper's own 431.
    let big = format!(
        "GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let a = raw(gate, big.as_bytes(), wait).await;
    assert_eq!(a.status(), Some(431), "{}", a.text());

    // Counted like the gate's own refusals (the line is written as the connection ends, which the
    // client may see a moment earlier).
    let wanted = [
        "mcp_gate_requests_total{status=\"400\",outcome=\"refused\"} 1",
        "mcp_gate_requests_total{status=\"431\",outcome=\"refused\"} 1",
        "mcp_gate_refusals_total{reason=\"malformed_request\"} 1",
        "mcp_gate_refusals_total{reason=\"header_too_large\"} 1",
    ];
    let mut scraped = String::new();
    for _ in 0..40 {
        let m = get(&format!("http://{metrics}/metrics"), &[]).await;
        scraped = String::from_utf8_lossy(&m.body).into_owned();
        if wanted.iter().all(|w| scraped.contains(w)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for w in wanted {
        assert!(scraped.contains(w), "{w} in\n{scraped}");
    }

    sigterm(child.id());
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let access: Vec<Value> = rx
        .try_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .filter(|v| v["msg"] == "request")
        .collect();
    for line in &access {
        let mut keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        let mut expected = ACCESS_KEYS.to_vec();
        expected.sort();
        assert_eq!(keys, expected, "{line}");
    }
    let by_status =
        |status: u64| -> Vec<&Value> { access.iter().filter(|v| v["status"] == status).collect() };
    let [unauthorized] = by_status(401)[..] else {
        panic!("one 401 line: {access:?}")
    };
    assert_eq!(
        unauthorized["user_agent"], "",
        "absent User-Agent is an empty string"
    );
    assert_eq!(unauthorized["sub"], "");
    assert_eq!(unauthorized["reason"], "missing_token");
    for (status, reason) in [(400, "malformed_request"), (431, "header_too_large")] {
        let [line] = by_status(status)[..] else {
            panic!("one {status} line: {access:?}")
        };
        assert_eq!(line["reason"], reason, "{line}");
        assert_eq!(line["client_ip"], "127.0.0.1", "{line}");
        assert_eq!(line["method"], "", "{line}");
        assert_eq!(line["path"], "", "{line}");
    }
}

#[tokio::test]
async fn each_inspected_mcp_request_gets_one_audit_line_without_its_arguments() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let port = free_addr().port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", &resource)
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .env("TOOL_SCOPES", "delete_*=mcp:admin")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let rx = stdout_lines(&mut child);
    wait_ready_on(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let auth = bearer(&key.token(&claims(&idp.issuer, &resource)));
    let allowed = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"secret":"s3cr3t-arg"}}}"#;
    let refused = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_note","arguments":{"secret":"s3cr3t-arg"}}}"#;
    assert_eq!(
        post(&url, &[("authorization", &auth)], allowed)
            .await
            .status,
        200
    );
    assert_eq!(
        post(&url, &[("authorization", &auth)], refused)
            .await
            .status,
        403
    );
    // Not a POST: not inspected, no audit line.
    assert_eq!(get(&url, &[("authorization", &auth)]).await.status, 200);

    sigterm(child.id());
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let lines: Vec<String> = rx.try_iter().collect();
    assert!(
        lines.iter().all(|l| !l.contains("s3cr3t-arg")),
        "tool arguments are never logged"
    );
    let audits: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["msg"] == "mcp")
        .collect();
    assert_eq!(audits.len(), 2, "{lines:#?}");
    for a in &audits {
        assert_eq!(a["target"], "mcp_gate::audit");
        assert_eq!(a["sub"], "alice");
        assert_eq!(a["client_id"], "client-1");
        assert_eq!(a["iss"], idp.issuer);
        assert_eq!(a["method"], "tools/call");
        assert!(a["duration_us"].is_u64());
    }
    assert_eq!(
        (
            &audits[0]["name"],
            &audits[0]["id"],
            &audits[0]["decision"],
            &audits[0]["status"]
        ),
        (
            &Value::from("echo"),
            &Value::from("1"),
            &Value::from("allowed"),
            &Value::from(200)
        )
    );
    assert_eq!(audits[0]["rule"], "default");
    assert_eq!(
        (
            &audits[1]["name"],
            &audits[1]["decision"],
            &audits[1]["rule"],
            &audits[1]["status"]
        ),
        (
            &Value::from("delete_note"),
            &Value::from("step_up"),
            &Value::from("rule 1"),
            &Value::from(403)
        )
    );
    let access: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["msg"] == "request" && v["status"] == 403)
        .collect();
    assert_eq!(access[0]["reason"], "policy_step_up");
}
