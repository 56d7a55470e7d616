//! The first stage: the MCP endpoint itself and its answer to an initialize without a token. It must
//! be reachable without a redirect and answer 401 with exactly one `Bearer` challenge (RFC 6750 §3)
//! whose `resource_metadata` is one absolute URL (RFC 9728 §5.1).

use super::*;

#[tokio::test]
async fn an_unreachable_endpoint_fails_once_and_skips_the_rest() {
    let port = free_addr().port();
    let report = run(&format!("http://127.0.0.1:{port}/mcp"), None).await;
    assert_fails(&report, &["endpoint"], "remaining checks were skipped");
    assert_eq!(report.checks.len(), 2, "\n{}", report.to_text());
}

#[tokio::test]
async fn an_endpoint_that_answers_200_without_a_token_fails() {
    let report = check_site(|d| {
        d.endpoint = json_answer(200, &json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
    })
    .await;
    assert_fails(
        &report,
        &["endpoint"],
        "gets 200: the endpoint is not protected",
    );
}

#[tokio::test]
async fn a_challenge_without_resource_metadata_fails() {
    let report = check_site(|d| d.set_challenge(&["Bearer scope=\"mcp:tools\"".into()])).await;
    assert_fails(
        &report,
        &["challenge.resource_metadata"],
        "no resource_metadata",
    );
    // The well-known URLs are still tried, as clients do.
    assert_eq!(find(&report, "metadata.path").status, Status::Ok);
}

#[tokio::test]
async fn a_relative_resource_metadata_fails() {
    let report =
        check_site(|d| d.set_challenge(&[format!("Bearer resource_metadata=\"{PRM_PATH}\"")]))
            .await;
    assert_fails(
        &report,
        &["challenge.resource_metadata"],
        "is not an absolute URL",
    );
}

#[tokio::test]
async fn a_duplicated_resource_metadata_or_a_second_bearer_challenge_fails() {
    let report = check_site(|d| {
        let prm = format!("{}{PRM_PATH}", d.base);
        d.set_challenge(&[format!(
            "Bearer resource_metadata=\"{prm}\", resource_metadata=\"{prm}\""
        )])
    })
    .await;
    assert_fails(
        &report,
        &["challenge.syntax"],
        "resource_metadata appears more than once",
    );

    let report = check_site(|d| {
        let one = format!("Bearer resource_metadata=\"{}{PRM_PATH}\"", d.base);
        d.set_challenge(&[one.clone(), one])
    })
    .await;
    assert_fails(&report, &["challenge.bearer"], "2 Bearer challenges");
}

#[tokio::test]
async fn a_redirect_on_the_mcp_url_fails() {
    let report = check_site(|d| {
        d.endpoint = Canned {
            status: 307,
            headers: vec![("location", format!("{}/mcp/", d.base))],
            body: String::new(),
        };
    })
    .await;
    assert_fails(&report, &["endpoint"], "307, a redirect to");
    assert!(find(&report, "endpoint")
        .message
        .contains("trailing slash redirect"));
    assert!(report.checks.iter().all(|c| c.id != "redirects"));
}
