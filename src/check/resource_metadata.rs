//! The Protected Resource Metadata (RFC 9728): where clients look for it (§3.1, and the challenge's
//! `resource_metadata`, §5.1), what each answer must be (200, a JSON object, no nulls), that every
//! copy agrees, that `resource` is the URL used (§3.3) and that `authorization_servers` lists one.

use http::header::CONTENT_TYPE;
use serde_json::Value;

use super::endpoint::preview;
use super::probe::{fetch_hint, Answer};
use super::report::Check;
use super::url_diff::describe_difference;
use crate::auth::fetch::FetchError;
use crate::auth::strict_json;
use crate::http::metadata::WELL_KNOWN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataLocation {
    /// `/.well-known/oauth-protected-resource` + the resource's path (RFC 9728 §3.1).
    PathInserted,
    /// `/.well-known/oauth-protected-resource`.
    Root,
    /// The challenge's `resource_metadata`, when it is neither of the above.
    Challenge,
}

impl MetadataLocation {
    fn id(self) -> &'static str {
        match self {
            MetadataLocation::PathInserted => "metadata.path",
            MetadataLocation::Root => "metadata.root",
            MetadataLocation::Challenge => "metadata.challenge",
        }
    }

    fn name(self) -> &'static str {
        match self {
            MetadataLocation::PathInserted => "the path-inserted metadata",
            MetadataLocation::Root => "the root metadata",
            MetadataLocation::Challenge => "the challenge's resource_metadata",
        }
    }

    fn why_it_matters(self) -> &'static str {
        match self {
            MetadataLocation::PathInserted => "Clients without a resource_metadata try the path-inserted URL first (RFC 9728 §3.1). Serve the document here too.",
            MetadataLocation::Root => "Claude.ai has been seen probing only the root and giving up on a 404, and the SDKs fall back to it. Serve the same document at the root too.",
            MetadataLocation::Challenge => "Clients fetch exactly the URL the challenge names, with no fallback; on failure they treat the server as having no metadata. Point resource_metadata at a URL that answers.",
        }
    }
}

/// The metadata URLs a client tries for `url`: path-inserted (keeping the query), then root.
pub fn metadata_locations(url: &url::Url) -> Vec<(MetadataLocation, String)> {
    let origin = url.origin().ascii_serialization();
    let root = format!("{origin}{WELL_KNOWN}");
    let path = url.path().trim_end_matches('/');
    let mut out = Vec::new();
    if !path.is_empty() || url.query().is_some() {
        let query = url.query().map(|q| format!("?{q}")).unwrap_or_default();
        out.push((
            MetadataLocation::PathInserted,
            format!("{origin}{WELL_KNOWN}{path}{query}"),
        ));
    }
    out.push((MetadataLocation::Root, root));
    out
}

/// The JSON paths of every `null` in a document (`scopes_supported`, `authorization_servers[0]`).
pub fn find_nulls(value: &Value) -> Vec<String> {
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Null => out.push(if path.is_empty() { "(document)" } else { path }.into()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), out);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(item, &p, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, "", &mut out);
    out
}

/// One answer at a metadata URL: 200, a JSON object, no nulls. Returns the document when it is one.
pub fn evaluate_metadata_answer(
    location: MetadataLocation,
    also_challenge: bool,
    url: &str,
    answer: &Result<Answer, FetchError>,
) -> (Check, Option<Value>) {
    let id = location.id();
    let what = if also_challenge && location != MetadataLocation::Challenge {
        format!("{} (the challenge's resource_metadata)", location.name())
    } else {
        location.name().to_string()
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            return (
                Check::fail(
                    id,
                    format!("{what} at {url}: {e}"),
                    fetch_hint(e, location.why_it_matters()),
                ),
                None,
            )
        }
    };
    match answer.status {
        200 => {}
        300..=399 => {
            return (
                Check::fail(
                    id,
                    format!(
                        "{what} at {url} redirects ({}) to {}",
                        answer.status,
                        answer.location().unwrap_or("nowhere")
                    ),
                    "Clients follow no redirect on the metadata (and a redirect to another URL changes what `resource` must be). Serve the document at this URL with 200.",
                ),
                None,
            )
        }
        status => {
            return (
                Check::fail(
                    id,
                    format!("{what} at {url} answers {status}"),
                    location.why_it_matters(),
                ),
                None,
            )
        }
    }
    let doc = match strict_json::from_slice(&answer.body) {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(_) => {
            return (
                Check::fail(
                    id,
                    format!("{what} at {url} is JSON but not an object"),
                    "The metadata is a JSON object (RFC 9728 §3.2).",
                ),
                None,
            )
        }
        Err(e) => {
            return (
                Check::fail(
                    id,
                    format!(
                        "{what} at {url} is not JSON ({e}; it starts with {:?})",
                        preview(&answer.body)
                    ),
                    "An HTML answer usually comes from a WAF, a login proxy or a catch-all route in front of the server. Let /.well-known/* through to the gate.",
                ),
                None,
            )
        }
    };
    let nulls = find_nulls(&doc);
    if !nulls.is_empty() {
        return (
            Check::fail(
                id,
                format!("{what} at {url} has null values: {}", nulls.join(", ")),
                "The TypeScript SDK's schema rejects null and the client then ignores the whole document. Leave out fields that have no value (RFC 9728 §3.2).",
            ),
            Some(doc),
        );
    }
    let content_type = answer.header(CONTENT_TYPE.as_str()).unwrap_or("missing");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/json")
    {
        return (
            Check::warn(
                id,
                format!("{what} at {url} is JSON, but its Content-Type is {content_type}"),
                "Serve it as application/json (RFC 9728 §3.2).",
            ),
            Some(doc),
        );
    }
    (
        Check::ok(id, format!("{what} at {url} answers 200 JSON")),
        Some(doc),
    )
}

/// All metadata documents found must be the same: clients use whichever they reach first.
pub fn evaluate_agreement(docs: &[(MetadataLocation, &Value)]) -> Option<Check> {
    let ((first_at, first), rest) = docs.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let mut differ = Vec::new();
    for (at, doc) in rest {
        if doc != first {
            let mut fields: Vec<&str> = Vec::new();
            for (a, b) in [(*first, *doc), (*doc, *first)] {
                for (k, v) in a.as_object().into_iter().flatten() {
                    if b.get(k) != Some(v) && !fields.contains(&k.as_str()) {
                        fields.push(k.as_str());
                    }
                }
            }
            differ.push(format!(
                "{} differs from {} in {}",
                at.name(),
                first_at.name(),
                fields.join(", ")
            ));
        }
    }
    Some(if differ.is_empty() {
        Check::ok(
            "metadata.agree",
            format!("the {} metadata documents are identical", docs.len()),
        )
    } else {
        Check::fail(
            "metadata.agree",
            differ.join("; "),
            "Clients use whichever document they reach first, so they must be the same. Serve one document at every location.",
        )
    })
}

/// `resource` must be the URL the client used, byte for byte (RFC 9728 §3.3).
pub fn compare_resource(expected: &str, found: &str) -> Check {
    const ID: &str = "metadata.resource";
    if expected == found {
        return Check::ok(ID, format!("resource is {found}, the URL checked"));
    }
    Check::fail(
        ID,
        format!(
            "resource is {found:?}, not the URL checked {expected:?}: {}",
            describe_difference(expected, found).join(", ")
        ),
        format!(
            "A client must discard metadata whose resource is not identical to the URL it used (RFC 9728 §3.3), then falls back to legacy discovery or fails (\"Authorization with the MCP server failed\"). Publish exactly the URL users connect to (mcp-gate: RESOURCE_URI={expected}), or give clients the URL {found} instead."
        ),
    )
}

/// The metadata's `resource` field.
pub fn evaluate_resource(expected: &str, doc: &Value) -> Check {
    match doc.get("resource") {
        Some(Value::String(found)) => compare_resource(expected, found),
        Some(_) => Check::fail(
            "metadata.resource",
            "resource is not a string",
            "resource is the URL of the endpoint as a string (RFC 9728 §2).",
        ),
        None => Check::fail(
            "metadata.resource",
            "the metadata has no resource",
            "resource is REQUIRED (RFC 9728 §2): the URL of the endpoint, exactly as clients use it.",
        ),
    }
}

/// `authorization_servers`: at least one issuer string (MCP requires one).
pub fn evaluate_authorization_servers(doc: &Value) -> (Check, Vec<String>) {
    const ID: &str = "metadata.authorization_servers";
    let hint = "MCP requires at least one authorization server: its issuer URL, exactly as its own metadata spells it (mcp-gate: AUTHORIZATION_SERVER).";
    match doc.get("authorization_servers") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let servers: Vec<String> = items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            if servers.len() != items.len() {
                return (
                    Check::fail(ID, "authorization_servers holds a non-string", hint),
                    servers,
                );
            }
            (
                Check::ok(
                    ID,
                    format!("authorization_servers lists {}", servers.join(", ")),
                ),
                servers,
            )
        }
        Some(Value::Array(_)) => (
            Check::fail(ID, "authorization_servers is empty", hint),
            Vec::new(),
        ),
        Some(_) => (
            Check::fail(ID, "authorization_servers is not an array", hint),
            Vec::new(),
        ),
        None => (
            Check::fail(ID, "the metadata has no authorization_servers", hint),
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::answer;
    use crate::check::report::Status;
    use http::header::LOCATION;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn resource_must_equal_the_url_byte_for_byte() {
        let e = "https://mcp.example.com/mcp";
        assert_eq!(compare_resource(e, e).status, Status::Ok);
        let slash = compare_resource(e, "https://mcp.example.com/mcp/");
        assert_eq!(slash.status, Status::Fail);
        assert!(slash.message.contains("trailing slash"), "{slash:?}");
        assert!(slash
            .hint
            .unwrap()
            .contains("RESOURCE_URI=https://mcp.example.com/mcp"));
        assert_eq!(
            evaluate_resource(e, &json!({"authorization_servers": []})).status,
            Status::Fail
        );
        assert_eq!(
            evaluate_resource(e, &json!({"resource": null})).status,
            Status::Fail
        );
    }

    #[test]
    fn metadata_locations_are_path_inserted_then_root() {
        let at = |u: &str| metadata_locations(&url::Url::parse(u).unwrap());
        assert_eq!(
            at("https://h.example/mcp"),
            vec![
                (
                    MetadataLocation::PathInserted,
                    "https://h.example/.well-known/oauth-protected-resource/mcp".to_string()
                ),
                (
                    MetadataLocation::Root,
                    "https://h.example/.well-known/oauth-protected-resource".to_string()
                ),
            ]
        );
        assert_eq!(at("https://h.example").len(), 1);
        assert_eq!(
            at("https://h.example/mcp?t=1")[0].1,
            "https://h.example/.well-known/oauth-protected-resource/mcp?t=1"
        );
    }

    #[test]
    fn nulls_are_found_at_any_depth() {
        let doc =
            json!({"resource": "r", "scopes_supported": null, "a": [1, null], "o": {"x": null}});
        let mut nulls = find_nulls(&doc);
        nulls.sort();
        assert_eq!(nulls, vec!["a[1]", "o.x", "scopes_supported"]);
        assert!(find_nulls(&json!({"resource": "r"})).is_empty());
    }

    #[test]
    fn a_metadata_answer_is_200_json_without_nulls() {
        let at = MetadataLocation::PathInserted;
        let url = "https://h/.well-known/oauth-protected-resource/mcp";
        let good = r#"{"resource":"https://h/mcp","authorization_servers":["https://idp"]}"#;
        let cases = [
            (answer(200, "application/json", good), Status::Ok),
            (answer(200, "text/plain", good), Status::Warn),
            (answer(404, "text/plain", "no"), Status::Fail),
            (answer(200, "text/html", "<html>"), Status::Fail),
            (answer(200, "application/json", "[1]"), Status::Fail),
            (
                answer(
                    200,
                    "application/json",
                    r#"{"resource":"a","resource":"b"}"#,
                ),
                Status::Fail,
            ),
            (
                answer(
                    200,
                    "application/json",
                    r#"{"resource":"a","scopes_supported":null}"#,
                ),
                Status::Fail,
            ),
            (
                Err(FetchError::Timeout(Duration::from_secs(1))),
                Status::Fail,
            ),
        ];
        for (a, expected) in cases {
            let (check, _) = evaluate_metadata_answer(at, false, url, &a);
            assert_eq!(check.status, expected, "{check:?}");
        }
        let mut redirect = answer(308, "text/plain", "").unwrap();
        redirect
            .headers
            .insert(LOCATION, "https://h/elsewhere".parse().unwrap());
        let (check, doc) = evaluate_metadata_answer(at, true, url, &Ok(redirect));
        assert_eq!(check.status, Status::Fail);
        assert!(check
            .message
            .contains("redirects (308) to https://h/elsewhere"));
        assert!(check.message.contains("resource_metadata"));
        assert!(doc.is_none());
    }

    #[test]
    fn metadata_documents_must_agree() {
        let a = json!({"resource": "https://h/mcp", "authorization_servers": ["x"]});
        let b = json!({"resource": "https://h/mcp/", "authorization_servers": ["x"]});
        assert!(evaluate_agreement(&[(MetadataLocation::Root, &a)]).is_none());
        let same = evaluate_agreement(&[
            (MetadataLocation::PathInserted, &a),
            (MetadataLocation::Root, &a),
        ])
        .unwrap();
        assert_eq!(same.status, Status::Ok);
        let differ = evaluate_agreement(&[
            (MetadataLocation::PathInserted, &a),
            (MetadataLocation::Root, &b),
        ])
        .unwrap();
        assert_eq!(differ.status, Status::Fail);
        assert!(differ.message.contains("in resource"), "{differ:?}");
    }

    #[test]
    fn authorization_servers_must_list_at_least_one_issuer() {
        let (ok, listed) =
            evaluate_authorization_servers(&json!({"authorization_servers": ["https://idp"]}));
        assert_eq!(
            (ok.status, listed),
            (Status::Ok, vec!["https://idp".to_string()])
        );
        for doc in [
            json!({}),
            json!({"authorization_servers": []}),
            json!({"authorization_servers": "https://idp"}),
            json!({"authorization_servers": [1]}),
        ] {
            assert_eq!(
                evaluate_authorization_servers(&doc).0.status,
                Status::Fail,
                "{doc}"
            );
        }
    }
}
