//! The `mcp-gate check` binary: exit code 0, 1 or 2, text and JSON output, and never the token.

use super::*;

#[tokio::test]
async fn the_binary_exits_0_1_or_2_and_never_prints_the_token() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let url = s.gate.resource();
    let token = s.token_with(|_| {});

    let (code, out, err) = binary(&[&url, "--token", &token]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("✓ the token passes the gate's checks"),
        "{out}"
    );
    assert!(out.contains("No problems found (2 warnings)."), "{out}");

    let expired = s.token_with(|c| c["exp"] = json!(now() - 600));
    let (code, out, err) = binary(&[&url, "--json", "--token", &expired]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    let checks: Value = serde_json::from_str(&out).unwrap();
    let token_check = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "token")
        .unwrap();
    assert_eq!(token_check["status"], "fail");
    assert!(token_check["message"].as_str().unwrap().contains("expired"));
    assert!(token_check["hint"].is_string());

    assert!(!out.contains(&expired) && !err.contains(&expired));
    let (_, out, err) = binary(&[&url, "--token", &token]).await;
    assert!(!out.contains(&token) && !err.contains(&token));

    let broken = site(|d| d.endpoint = json_answer(200, &json!({}))).await;
    let (code, out, _) = binary(&[&broken.deployment.url()]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ an initialize without a token gets 200"),
        "{out}"
    );

    for args in [
        &["not a url"][..],
        &[][..],
        &[&url, "--timeout", "soon"][..],
    ] {
        let (code, out, err) = binary(args).await;
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
    }
}
