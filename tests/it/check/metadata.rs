//! The protected resource metadata (RFC 9728 §3): served at the path-inserted and the root
//! well-known URL with the same content, naming the resource exactly (§3.3), without nulls or
//! redirects; and a `resource_metadata` on another origin, fetched only when asked.

use super::*;

/// Issue #14 point 9: a 401 may name a `resource_metadata` on any origin, e.g. an internal metadata
/// service. The check fetches it (and prints what it found) only with `--follow-cross-origin`, and
/// says why it did not otherwise.
#[tokio::test]
async fn a_resource_metadata_on_another_origin_is_followed_only_when_asked() {
    let internal = site(|d| {
        d.edit(PRM_PATH, |doc| {
            doc["resource"] = json!("http://internal.example/secret-resource")
        })
    })
    .await;
    let elsewhere = format!("{}{PRM_PATH}", internal.deployment.base);
    let s = site(|d| d.set_challenge(&[format!("Bearer resource_metadata=\"{elsewhere}\"")])).await;
    let url = s.deployment.url();

    let report = run(&url, None).await;
    let text = report.to_text();
    let refused = find(&report, "metadata.challenge");
    assert_eq!(refused.status, Status::Warn, "\n{text}");
    assert!(refused.message.contains("not fetched"), "\n{text}");
    assert!(
        refused
            .hint
            .as_deref()
            .unwrap()
            .contains("--follow-cross-origin"),
        "\n{text}"
    );
    assert!(!text.contains("secret-resource"), "\n{text}");
    assert!(failing(&report).is_empty(), "\n{text}");

    let (code, out, err) = binary(&[&url]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("not fetched") && !out.contains("secret-resource"),
        "{out}"
    );

    let (code, out, err) = binary(&[&url, "--follow-cross-origin"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!(
            "the challenge's resource_metadata at {elsewhere} answers 200 JSON"
        )),
        "{out}"
    );
    assert!(out.contains("secret-resource"), "{out}");
}

#[tokio::test]
async fn a_resource_with_a_trailing_slash_fails_and_says_so() {
    let report = check_site(|d| {
        let slashed = format!("{}/mcp/", d.base);
        for path in [PRM_PATH, PRM_ROOT] {
            d.edit(path, |doc| doc["resource"] = json!(slashed));
        }
    })
    .await;
    assert_fails(&report, &["metadata.resource"], "a trailing slash");
    let hint = find(&report, "metadata.resource").hint.clone().unwrap();
    assert!(hint.contains("RFC 9728 §3.3"), "{hint}");
}

#[tokio::test]
async fn metadata_with_a_null_fails() {
    let report = check_site(|d| {
        for path in [PRM_PATH, PRM_ROOT] {
            d.edit(path, |doc| doc["resource_name"] = Value::Null);
        }
    })
    .await;
    assert_fails(
        &report,
        &["metadata.path", "metadata.root"],
        "has null values: resource_name",
    );
}

#[tokio::test]
async fn a_404_at_the_path_inserted_metadata_url_fails() {
    let report = check_site(|d| {
        d.pages.remove(PRM_PATH);
        d.set_challenge(&[format!("Bearer resource_metadata=\"{}{PRM_ROOT}\"", d.base)]);
    })
    .await;
    assert_fails(&report, &["metadata.path"], "answers 404");
    assert!(find(&report, "metadata.path")
        .hint
        .as_deref()
        .unwrap()
        .contains("path-inserted"));
}

#[tokio::test]
async fn metadata_that_differ_between_locations_fail() {
    let report = check_site(|d| {
        d.edit(PRM_ROOT, |doc| {
            doc["scopes_supported"] = json!(["mcp:tools", "offline_access"])
        })
    })
    .await;
    assert_fails(&report, &["metadata.agree"], "in scopes_supported");
}

#[tokio::test]
async fn a_redirect_on_the_metadata_fails() {
    let report = check_site(|d| {
        d.pages.insert(
            PRM_ROOT.into(),
            Canned {
                status: 301,
                headers: vec![("location", format!("{}/elsewhere", d.base))],
                body: String::new(),
            },
        );
    })
    .await;
    assert_fails(&report, &["metadata.root"], "redirects (301)");
}
