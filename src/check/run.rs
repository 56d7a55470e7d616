//! The walk of `mcp-gate check URL`: the requests a spec-following client makes, in its order, each
//! answer handed to the pure evaluators of the sibling modules.

use std::time::Duration;

use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::Value;

use super::authorization_server::{
    evaluate_as_metadata, evaluate_issuer_transport, evaluate_jwks, strings,
};
use super::challenge::{evaluate_challenge, ChallengeFindings};
use super::endpoint::{evaluate_endpoint, evaluate_error_body, evaluate_transport};
use super::probe::{fetch_hint, Prober};
use super::report::{Check, Report};
use super::resource_metadata::{
    evaluate_agreement, evaluate_authorization_servers, evaluate_metadata_answer,
    evaluate_resource, metadata_locations, MetadataLocation,
};
use super::token::{evaluate_token, ServerKeys, TokenContext};
use crate::auth::discovery::{self, Search};
use crate::auth::keys::Alg;
use crate::auth::unix_now;

/// The URL to check, as typed and parsed.
#[derive(Debug, Clone)]
pub struct Target {
    /// Exactly as given: `resource` is compared with this string.
    pub raw: String,
    pub url: url::Url,
}

/// Validates the URL argument of `mcp-gate check`.
pub fn parse_target(raw: &str) -> Result<Target, String> {
    let url = url::Url::parse(raw)
        .map_err(|e| format!("{raw:?} is not an absolute URL ({e}); give the MCP endpoint, e.g. https://mcp.example.com/mcp"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{raw:?} is not an http(s) URL"));
    }
    if url.fragment().is_some() {
        return Err(format!("{raw:?} has a fragment; MCP endpoints have none"));
    }
    Ok(Target {
        raw: raw.to_string(),
        url,
    })
}

/// An authorization server, as far as its checks got.
pub(super) struct ServerFindings {
    pub(super) checks: Vec<Check>,
    pub(super) keys: Option<ServerKeys>,
}

/// Finds and checks the metadata of `issuer` (RFC 8414 path-inserted, then OpenID), then its JWKS
/// (`jwks_override` replaces the discovered `jwks_uri`, as the gate's JWKS_URI does).
pub(super) async fn check_server(
    prober: &Prober,
    issuer: &str,
    jwks_override: Option<&str>,
    algorithms: &[Alg],
) -> ServerFindings {
    let mut checks = vec![evaluate_issuer_transport(issuer)];
    let discovered = match url::Url::parse(issuer) {
        Ok(parsed) => {
            let (metadata_checks, jwks_uri) = find_as_metadata(prober, issuer, &parsed).await;
            checks.extend(metadata_checks);
            jwks_uri
        }
        Err(_) => None,
    };
    let Some(jwks_uri) = jwks_override.map(str::to_string).or(discovered) else {
        return ServerFindings { checks, keys: None };
    };
    let answer = prober.get(&jwks_uri).await;
    let (check, keys) = evaluate_jwks(&jwks_uri, &answer, algorithms);
    checks.push(check);
    ServerFindings {
        checks,
        keys: keys.map(|keys| ServerKeys {
            issuer: issuer.to_string(),
            jwks_uri,
            keys,
        }),
    }
}

/// Looks for the metadata of `issuer` as the gate's discovery does ([`discovery::search`]) and
/// evaluates the first found.
async fn find_as_metadata(
    prober: &Prober,
    issuer: &str,
    parsed: &url::Url,
) -> (Vec<Check>, Option<String>) {
    let check = match discovery::search(prober.fetcher(), parsed).await {
        Search::Found { url, doc } => return evaluate_as_metadata(issuer, &url, &doc),
        Search::Unreachable { url, error } => Check::fail(
            "as.metadata",
            format!("{issuer}: {url}: {error}"),
            fetch_hint(
                &error,
                "Clients must reach the authorization server's metadata from the internet.",
            ),
        ),
        Search::Missing(misses) => Check::fail(
            "as.metadata",
            format!("{issuer}: no authorization server metadata ({})", misses.join("; ")),
            "Clients look for RFC 8414 or OpenID Connect metadata under the issuer URL. authorization_servers must list the issuer itself (e.g. Keycloak: https://<host>/realms/<realm>), not the login page or the metadata URL.",
        ),
    };
    (vec![check], None)
}

/// How `mcp-gate check` runs, from its command line.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    /// An access token to explain (`--token`); never printed.
    pub token: Option<&'a str>,
    /// Bound on each request.
    pub timeout: Duration,
    /// Fetch a `resource_metadata` the endpoint's 401 names on another origin
    /// (`--follow-cross-origin`).
    pub follow_cross_origin: bool,
}

impl Options<'_> {
    /// No token, `timeout` per request, nothing fetched off the endpoint's origin.
    pub fn new(timeout: Duration) -> Options<'static> {
        Options {
            token: None,
            timeout,
            follow_cross_origin: false,
        }
    }
}

/// Whether the challenge's `resource_metadata` may be fetched: always on the endpoint's origin,
/// elsewhere only when asked. The URL comes from the endpoint's answer, so following it blindly
/// would let any endpoint make this check request (and print) a document at any address the
/// machine reaches, such as a cloud metadata service or an admin API on the internal network
/// (#14). `None` when it may be fetched, else the check line that says why it was not.
pub fn evaluate_cross_origin(
    endpoint: &url::Url,
    resource_metadata: &str,
    follow: bool,
) -> Option<Check> {
    let origin = url::Url::parse(resource_metadata).ok()?.origin();
    if follow || origin == endpoint.origin() {
        return None;
    }
    Some(Check::warn(
        "metadata.challenge",
        format!(
            "the challenge's resource_metadata {resource_metadata} is on another origin ({}) than the endpoint ({}): not fetched",
            origin.ascii_serialization(),
            endpoint.origin().ascii_serialization()
        ),
        "mcp-gate check fetches a URL named by the endpoint on another origin only with --follow-cross-origin, so that an endpoint cannot make it fetch and print a document from an internal address. Clients will fetch this URL: if you trust the endpoint, run again with --follow-cross-origin to check the document.",
    ))
}

/// Walks a client's discovery against `target`; `options.timeout` bounds each request.
pub async fn run(target: &Target, options: &Options<'_>) -> Report {
    let prober = Prober::new(options.timeout);
    let mut checks = vec![evaluate_transport(&target.url)];
    let mut redirected = false;
    let report = |checks: Vec<Check>| Report {
        url: target.raw.clone(),
        checks,
    };

    let mut challenge = ChallengeFindings::default();
    match prober.initialize(target.url.as_str()).await {
        Err(e) => {
            checks.push(Check::fail(
                "endpoint",
                format!("POST {}: {e}; the remaining checks were skipped", target.raw),
                fetch_hint(&e, "Claude.ai connects from Anthropic's cloud: the endpoint must be reachable from the internet."),
            ));
            return report(checks);
        }
        Ok(answer) => {
            redirected |= (300..400).contains(&answer.status);
            checks.push(evaluate_endpoint(
                &target.raw,
                answer.status,
                answer.location(),
            ));
            if answer.status == 401 {
                let values: Vec<&str> = answer
                    .headers
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                challenge = evaluate_challenge(&values);
                checks.append(&mut challenge.checks);
                checks.push(evaluate_error_body(
                    answer.header(CONTENT_TYPE.as_str()),
                    &answer.body,
                ));
            }
        }
    }

    let mut locations: Vec<(MetadataLocation, bool, String)> = metadata_locations(&target.url)
        .into_iter()
        .map(|(at, url)| {
            let from_challenge = challenge.resource_metadata.as_deref() == Some(url.as_str());
            (at, from_challenge, url)
        })
        .collect();
    if let Some(url) = &challenge.resource_metadata {
        if !locations.iter().any(|(_, _, u)| u == url) {
            match evaluate_cross_origin(&target.url, url, options.follow_cross_origin) {
                Some(refused) => checks.push(refused),
                None => locations.insert(0, (MetadataLocation::Challenge, true, url.clone())),
            }
        }
    }
    let mut docs: Vec<(MetadataLocation, bool, Value)> = Vec::new();
    for (at, from_challenge, url) in &locations {
        let answer = prober.get(url).await;
        redirected |= matches!(&answer, Ok(a) if (300..400).contains(&a.status));
        let (check, doc) = evaluate_metadata_answer(*at, *from_challenge, url, &answer);
        checks.push(check);
        if let Some(doc) = doc {
            docs.push((*at, *from_challenge, doc));
        }
    }
    let views: Vec<(MetadataLocation, &Value)> = docs.iter().map(|(at, _, d)| (*at, d)).collect();
    checks.extend(evaluate_agreement(&views));
    // What a client reads: the challenge's document when it has one, else the first found.
    let primary = docs
        .iter()
        .find(|(_, from_challenge, _)| *from_challenge)
        .or(docs.first())
        .map(|(_, _, d)| d);
    let mut servers = Vec::new();
    let mut resource = target.raw.clone();
    let mut scopes_supported = Vec::new();
    if let Some(doc) = primary {
        checks.push(evaluate_resource(&target.raw, doc));
        if let Some(r) = doc.get("resource").and_then(Value::as_str) {
            resource = r.to_string();
        }
        scopes_supported = strings(doc, "scopes_supported").unwrap_or_default();
        let (check, listed) = evaluate_authorization_servers(doc);
        checks.push(check);
        // A handful is plenty; a document listing hundreds must not make the check hammer them.
        for issuer in listed.iter().take(4) {
            let found = check_server(&prober, issuer, None, &Alg::ALL).await;
            checks.extend(found.checks);
            servers.extend(found.keys);
        }
    }
    if !redirected {
        checks.push(Check::ok(
            "redirects",
            "no redirect on the MCP URL or the metadata",
        ));
    }

    if let Some(token) = options.token {
        let (required_scopes, scopes_from_challenge) = match challenge.scope {
            Some(scope) => (scope, true),
            None => (scopes_supported, false),
        };
        let ctx = TokenContext {
            resource,
            servers,
            required_scopes,
            scopes_from_challenge,
        };
        checks.push(evaluate_token(token, &ctx, unix_now()));
    }
    report(checks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::report::Status;

    #[test]
    fn targets_are_absolute_http_urls() {
        assert!(parse_target("https://mcp.example.com/mcp").is_ok());
        for bad in [
            "mcp.example.com/mcp",
            "/mcp",
            "ftp://h/x",
            "https://h/mcp#frag",
            "",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_target("https://MCP.example.com/mcp").unwrap().raw,
            "https://MCP.example.com/mcp"
        );
    }

    #[test]
    fn a_resource_metadata_on_another_origin_is_fetched_only_when_asked() {
        let endpoint = url::Url::parse("https://mcp.example.com/mcp").unwrap();
        let cases = [
            (
                "https://mcp.example.com/.well-known/oauth-protected-resource/x",
                false,
                false,
            ),
            ("https://mcp.example.com:443/.well-known/x", false, false),
            (
                "https://other.example.com/.well-known/oauth-protected-resource",
                false,
                true,
            ),
            (
                "http://mcp.example.com/.well-known/oauth-protected-resource",
                false,
                true,
            ),
            (
                "https://mcp.example.com:8443/.well-known/oauth-protected-resource",
                false,
                true,
            ),
            ("http://169.254.169.254/latest/meta-data", false, true),
            ("http://169.254.169.254/latest/meta-data", true, false),
        ];
        for (url, follow, refused) in cases {
            let check = evaluate_cross_origin(&endpoint, url, follow);
            assert_eq!(check.is_some(), refused, "{url} follow={follow}: {check:?}");
            if let Some(c) = check {
                assert_eq!((c.id, c.status), ("metadata.challenge", Status::Warn));
                assert!(c.message.contains("not fetched"), "{c:?}");
                assert!(c.hint.unwrap().contains("--follow-cross-origin"));
            }
        }
    }
}
