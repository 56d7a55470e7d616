//! `mcp-gate check`: the discovery a spec-following MCP client (Claude.ai, the MCP SDKs) performs,
//! run from outside against a deployed endpoint, reported as ✓ / ! / ✗ with the likely cause and fix.
//!
//! The steps follow the client's order:
//! - an unauthenticated `initialize` gets a 401 with one well-formed `Bearer` challenge (RFC 6750 §3,
//!   RFC 9110 §11.6.1) naming an absolute `resource_metadata` (RFC 9728 §5.1), and a JSON body;
//! - the Protected Resource Metadata answers at that URL, the path-inserted and the root well-known
//!   URL (RFC 9728 §3.1), the same everywhere, without nulls, with `resource` identical to the URL
//!   used (§3.3);
//! - each authorization server's metadata (RFC 8414 §3, then OpenID Connect Discovery §4) carries its
//!   exact `issuer` (RFC 8414 §3.3), the authorization code grant with PKCE `S256` (MCP
//!   authorization; OAuth 2.1 §4.1.1), a way to register (RFC 7591 or client ID metadata documents),
//!   and a `jwks_uri` with usable signing keys;
//! - https on port 443 and no redirect anywhere (Claude.ai connects only there, and follows none);
//! - a token given with `--token` goes through the gate's own validator ([`token::verify`]) with a
//!   policy built from what was discovered, and its refusal is explained in one sentence.
//!
//! Deciding is kept apart from fetching: the `evaluate_*` functions are pure (headers, documents and
//! the clock in, [`Check`]s out) and tested beside the code; [`run`] and [`self_check`] only fetch.

use std::future::Future;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::discovery::metadata_urls;
use crate::auth::fetch::{error_chain, FetchError};
use crate::auth::keys::{parse_jwks, Alg, KeySet};
use crate::auth::strict_json;
use crate::auth::token::{self, Policy, TokenType};
use crate::auth::{unix_now, Refusal};
use crate::config::{is_loopback_host, Config};
use crate::http::metadata::WELL_KNOWN;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Probably fine, or fine for a local test, but worth knowing.
    Warn,
    /// A client following the specification will fail here.
    Fail,
}

impl Status {
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name of the rule, e.g. `metadata.resource`.
    pub id: &'static str,
    pub status: Status,
    /// What was observed, in one sentence.
    pub message: String,
    /// For a warning or a failure: the likely cause and the fix.
    pub hint: Option<String>,
}

impl Check {
    fn ok(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            message: message.into(),
            hint: None,
        }
    }

    fn warn(id: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    fn fail(id: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Every check run against one URL, in the order a client meets them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The URL checked, as given.
    pub url: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether any check failed (the exit status of `mcp-gate check`).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The human checklist.
    pub fn to_text(&self) -> String {
        let mut out = format!("mcp-gate check {}\n\n", self.url);
        for c in &self.checks {
            out.push_str(&format!("{} {}\n", c.status.symbol(), c.message));
            if let Some(hint) = &c.hint {
                out.push_str(&format!("    → {hint}\n"));
            }
        }
        let (fails, warns) = (self.count(Status::Fail), self.count(Status::Warn));
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        out.push('\n');
        out.push_str(&match fails {
            0 => format!("No problems found ({}).\n", plural(warns, "warning")),
            _ => format!(
                "{} ({}).\n",
                plural(fails, "problem"),
                plural(warns, "warning")
            ),
        });
        out
    }

    /// The checks as a JSON array of `{id, status, message, hint}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.checks).unwrap_or_else(|_| "[]".into())
    }
}

// ---------------------------------------------------------------------------------------------
// Pure evaluation
// ---------------------------------------------------------------------------------------------

/// https on 443 is what Claude.ai reaches; loopback is a local test; anything else fails.
pub fn evaluate_transport(url: &url::Url) -> Check {
    const ID: &str = "transport";
    let port = url.port_or_known_default().unwrap_or(0);
    let host = url.host_str().unwrap_or_default();
    if url.scheme() == "https" && port == 443 {
        return Check::ok(ID, "https on port 443");
    }
    if is_loopback_host(url) {
        return Check::warn(
            ID,
            format!("{} on loopback ({host}:{port})", url.scheme()),
            "Fine for a local test. Claude.ai connects from Anthropic's cloud, only to public https on port 443.",
        );
    }
    if url.scheme() != "https" {
        return Check::fail(
            ID,
            format!("plain {} on {host}:{port}", url.scheme()),
            "MCP clients require https for remote servers, and Claude.ai connects only to https on port 443. Terminate TLS in front of the gate (load balancer, ingress) and give clients the https URL.",
        );
    }
    Check::fail(
        ID,
        format!("https on port {port}, not 443"),
        "Claude.ai connects only on port 443. Publish the endpoint on 443 (a load balancer or ingress can forward to any internal port).",
    )
}

/// The answer to the unauthenticated `initialize`: a 401 is what starts a client's OAuth flow.
pub fn evaluate_endpoint(url: &str, status: u16, location: Option<&str>) -> Check {
    const ID: &str = "endpoint";
    match status {
        401 => Check::ok(ID, "an initialize without a token gets 401"),
        200..=299 => Check::fail(
            ID,
            format!("an initialize without a token gets {status}: the endpoint is not protected"),
            "Clients start OAuth only on a 401. The request did not go through the gate, or authentication is off: route the public URL to the gate, not to the MCP server. (If the server allows unauthenticated initialize on purpose, ignore this.)",
        ),
        300..=399 => {
            let target = location.unwrap_or("nowhere (no Location header)");
            let why = match location {
                Some(l) if l.strip_suffix('/') == Some(url) => ", a trailing slash redirect",
                Some(l) if l.strip_prefix("http://") == url.strip_prefix("https://") => {
                    ", a downgrade to http"
                }
                Some(l) if l.strip_prefix("https://") == url.strip_prefix("http://") => {
                    ", an upgrade to https"
                }
                _ => "",
            };
            Check::fail(
                ID,
                format!("an initialize without a token gets {status}, a redirect to {target}{why}"),
                "MCP clients do not follow redirects on the endpoint (a 307 broke Claude.ai connectors). Give clients the final URL, or serve this one directly, without a trailing-slash or http→https redirect in front of the gate.",
            )
        }
        403 => Check::fail(
            ID,
            "an initialize without a token gets 403",
            "Something refuses the request before authentication: a WAF, bot protection, an IP allow-list or an Origin check. Clients need a 401 with a challenge to start OAuth.",
        ),
        404 | 405 => Check::fail(
            ID,
            format!("an initialize without a token gets {status}: nothing serves POST on this path"),
            "Check the URL's path: it must be the MCP endpoint itself (e.g. /mcp), which is what RESOURCE_URI names.",
        ),
        503 => Check::fail(
            ID,
            "an initialize without a token gets 503",
            "An mcp-gate answers 503 until it has loaded the authorization server's signing keys: check /readyz and the gate's log (keys_unavailable). Otherwise the server behind is down.",
        ),
        _ => Check::fail(
            ID,
            format!("an initialize without a token gets {status}, not 401"),
            "Clients start OAuth only on a 401 with a WWW-Authenticate challenge.",
        ),
    }
}

/// The 401 body: JSON, never an HTML page (a WAF or proxy error page breaks discovery).
pub fn evaluate_error_body(content_type: Option<&str>, body: &[u8]) -> Check {
    const ID: &str = "endpoint.body";
    if body.iter().all(u8::is_ascii_whitespace) {
        return Check::warn(
            ID,
            "the 401 has an empty body",
            "Clients act on the status and the challenge, but a JSON body ({\"error\":…,\"error_description\":…}) helps people debugging.",
        );
    }
    if serde_json::from_slice::<Value>(body).is_err() {
        return Check::fail(
            ID,
            format!("the 401 body is not JSON (it starts with {:?})", preview(body)),
            "An HTML 401 usually comes from a WAF, a login proxy or a load balancer in front of the server, which also hides its challenge. Let /mcp and /.well-known/* through to the gate untouched.",
        );
    }
    let json_type = content_type.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t.starts_with("application/json") || t.contains("+json")
    });
    if !json_type {
        return Check::warn(
            ID,
            format!(
                "the 401 body is JSON but its Content-Type is {}",
                content_type.unwrap_or("missing")
            ),
            "Send Content-Type: application/json.",
        );
    }
    Check::ok(ID, "the 401 body is JSON")
}

/// The first bytes of a body, for messages.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(40)]);
    text.trim().to_string()
}

/// One challenge of a `WWW-Authenticate` header (RFC 9110 §11.6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme as sent (`Bearer`, `bearer`, `Basic`…).
    pub scheme: String,
    /// Its auth-params in order, duplicates kept (a token68 is not kept).
    pub params: Vec<AuthParam>,
}

/// One `name=value` of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam {
    pub name: String,
    /// The value, unescaped when it was quoted.
    pub value: String,
    /// Sent as a quoted-string.
    pub quoted: bool,
    /// Whitespace around `=`: allowed (BWS), but the regexes of the SDKs then miss the parameter.
    pub spaced: bool,
}

impl Challenge {
    /// The first value of `name` (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&AuthParam> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Parses a `WWW-Authenticate` value (several header lines joined with `, `) into its challenges.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, String> {
    let mut p = ChallengeParser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        if p.done() {
            return Ok(out);
        }
        let start = p.i;
        let scheme = p.token();
        if scheme.is_empty() {
            return Err(format!("expected an auth scheme at byte {start}"));
        }
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        // `1*SP`, then a token68 or the first auth-param.
        if p.skip_ows() && !p.done() && p.peek() != Some(b',') {
            match p.param()? {
                Some(param) => challenge.params.push(param),
                None => p.token68()?,
            }
        }
        loop {
            p.skip_ows();
            if p.done() {
                break;
            }
            if p.peek() != Some(b',') {
                return Err(format!(
                    "unexpected {:?} at byte {}",
                    char::from(p.s[p.i]),
                    p.i
                ));
            }
            // A comma separates auth-params and challenges alike: `name=` continues this challenge.
            p.skip_separators();
            match p.param()? {
                Some(param) => challenge.params.push(param),
                None => break,
            }
        }
        out.push(challenge);
    }
}

struct ChallengeParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl ChallengeParser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips spaces and tabs; whether there were any.
    fn skip_ows(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > start
    }

    /// Skips whitespace and the commas of empty list elements.
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// `name BWS "=" BWS value`, or `None` (position unchanged) when the input is not shaped so.
    fn param(&mut self) -> Result<Option<AuthParam>, String> {
        let start = self.i;
        let name = self.token();
        let before = self.skip_ows();
        if name.is_empty() || self.peek() != Some(b'=') {
            self.i = start;
            return Ok(None);
        }
        self.i += 1;
        let after = self.skip_ows();
        let (value, quoted) = match self.peek() {
            // `name=` with nothing after it, or `==`: token68 padding, not a parameter.
            None | Some(b'=' | b',') => {
                self.i = start;
                return Ok(None);
            }
            Some(b'"') => (self.quoted()?, true),
            Some(_) => {
                let from = self.i;
                while !matches!(self.peek(), None | Some(b' ' | b'\t' | b',')) {
                    self.i += 1;
                }
                (
                    String::from_utf8_lossy(&self.s[from..self.i]).into_owned(),
                    false,
                )
            }
        };
        Ok(Some(AuthParam {
            name,
            value,
            quoted,
            spaced: before || after,
        }))
    }

    fn quoted(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated quoted string at byte {start}")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&value).into_owned());
                }
                Some(b'\\') => {
                    let escaped = self
                        .s
                        .get(self.i + 1)
                        .copied()
                        .ok_or_else(|| format!("unterminated quoted string at byte {start}"))?;
                    value.push(escaped);
                    self.i += 2;
                }
                Some(b) => {
                    value.push(b);
                    self.i += 1;
                }
            }
        }
    }

    fn token68(&mut self) -> Result<(), String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("expected a parameter at byte {start}"));
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        Ok(())
    }
}

/// What the challenge tells a client, with the checks on it.
#[derive(Debug, Clone, Default)]
pub struct ChallengeFindings {
    pub checks: Vec<Check>,
    /// The absolute `resource_metadata` URL, when there is a usable one.
    pub resource_metadata: Option<String>,
    /// The `scope` parameter, split.
    pub scope: Option<Vec<String>>,
}

/// Checks the `WWW-Authenticate` header lines of the 401: exactly one `Bearer` challenge, parseable,
/// quoted values, no parameter twice, an absolute `resource_metadata` (RFC 6750 §3, RFC 9728 §5.1).
pub fn evaluate_challenge(values: &[&str]) -> ChallengeFindings {
    let mut found = ChallengeFindings::default();
    if values.is_empty() {
        found.checks.push(Check::fail(
            "challenge.header",
            "the 401 has no WWW-Authenticate header",
            "Clients find the metadata through the challenge's resource_metadata (RFC 9728 §5.1); without it many fall back to legacy discovery on the MCP host and fail. Answer with WWW-Authenticate: Bearer resource_metadata=\"<absolute metadata URL>\". Something in front of the server may be dropping the header.",
        ));
        return found;
    }
    let joined = values.join(", ");
    let challenges = match parse_challenges(&joined) {
        Ok(c) => c,
        Err(e) => {
            found.checks.push(Check::fail(
                "challenge.syntax",
                format!("WWW-Authenticate does not parse ({e}): {joined}"),
                "Use the RFC 6750 form: Bearer name=\"value\", name=\"value\" — every value quoted, a comma between parameters.",
            ));
            return found;
        }
    };
    let bearers: Vec<&Challenge> = challenges
        .iter()
        .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .collect();
    let others: Vec<&str> = challenges
        .iter()
        .filter(|c| !c.scheme.eq_ignore_ascii_case("bearer"))
        .map(|c| c.scheme.as_str())
        .collect();
    let bearer = match bearers.as_slice() {
        [] => {
            found.checks.push(Check::fail(
                "challenge.bearer",
                format!(
                    "WWW-Authenticate has no Bearer challenge (schemes: {})",
                    others.join(", ")
                ),
                "MCP clients look for a Bearer challenge. Answer with WWW-Authenticate: Bearer resource_metadata=\"<absolute metadata URL>\".",
            ));
            return found;
        }
        [one] => {
            let mut message = "exactly one Bearer challenge".to_string();
            if !others.is_empty() {
                message.push_str(&format!(" (also: {})", others.join(", ")));
            }
            found.checks.push(Check::ok("challenge.bearer", message));
            *one
        }
        many => {
            found.checks.push(Check::fail(
                "challenge.bearer",
                format!(
                    "{} Bearer challenges in {} WWW-Authenticate line(s)",
                    many.len(),
                    values.len()
                ),
                "Send exactly one Bearer challenge: clients read only one, and which one differs. Two layers (a proxy and the server) each adding a challenge is the usual cause.",
            ));
            many[0]
        }
    };

    let mut problems = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for p in &bearer.params {
        let lower = p.name.to_ascii_lowercase();
        if seen.contains(&lower) {
            if !problems.iter().any(|m: &String| m.starts_with(&p.name)) {
                problems.push(format!("{} appears more than once", p.name));
            }
        } else {
            seen.push(lower);
        }
        if !p.quoted {
            problems.push(format!("{}={} is not quoted", p.name, p.value));
        }
        if p.spaced {
            problems.push(format!("whitespace around = after {}", p.name));
        }
    }
    if problems.is_empty() {
        found.checks.push(Check::ok(
            "challenge.syntax",
            "the challenge is well-formed: every value quoted, no parameter twice",
        ));
    } else {
        found.checks.push(Check::fail(
            "challenge.syntax",
            format!("the challenge is malformed: {}", problems.join("; ")),
            "Each parameter at most once, every value in double quotes, no spaces around '=': the SDKs read resource_metadata with a regex like resource_metadata=\"([^\"]*)\", and a duplicate broke the Rust client.",
        ));
    }

    match bearer.param("resource_metadata") {
        None => found.checks.push(Check::fail(
            "challenge.resource_metadata",
            "the challenge has no resource_metadata",
            "Clients learn where the metadata is from resource_metadata (RFC 9728 §5.1). Without it some probe the well-known URLs, others (and older SDKs) assume the MCP host is the authorization server and fail. Add resource_metadata=\"https://<host>/.well-known/oauth-protected-resource<path>\".",
        )),
        Some(p) => match url::Url::parse(&p.value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                found.checks.push(Check::ok(
                    "challenge.resource_metadata",
                    format!("resource_metadata is {}", p.value),
                ));
                found.resource_metadata = Some(p.value.clone());
            }
            Ok(_) => found.checks.push(Check::fail(
                "challenge.resource_metadata",
                format!("resource_metadata {:?} is not an http(s) URL", p.value),
                "Use the absolute https URL of the metadata document.",
            )),
            Err(_) => found.checks.push(Check::fail(
                "challenge.resource_metadata",
                format!("resource_metadata {:?} is not an absolute URL", p.value),
                "Clients do not resolve a relative resource_metadata. Use the absolute URL, e.g. https://<host>/.well-known/oauth-protected-resource/mcp (behind a proxy, configure the public URL rather than deriving it from the request).",
            )),
        },
    }

    if let Some(error) = bearer.param("error") {
        found.checks.push(Check::warn(
            "challenge.error",
            format!(
                "the challenge to a request without a token carries error=\"{}\"",
                error.value
            ),
            "RFC 6750 §3: a request without credentials SHOULD get no error code. Clients tolerate it.",
        ));
    }
    found.scope = bearer.param("scope").map(|p| {
        p.value
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect()
    });
    found
}

/// Where a metadata document was looked for.
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

/// The parts of an absolute URL as written, without normalisation.
struct UrlParts<'a> {
    scheme: &'a str,
    host: &'a str,
    port: Option<&'a str>,
    rest: &'a str,
}

fn url_parts(s: &str) -> Option<UrlParts<'_>> {
    let (scheme, after) = s.split_once("://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match authority.find(']') {
        Some(i) if authority.starts_with('[') => {
            (&authority[..=i], authority[i + 1..].strip_prefix(':'))
        }
        _ => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    Some(UrlParts {
        scheme,
        host,
        port,
        rest,
    })
}

/// How `found` differs from `expected`, in words: trailing slash, scheme, host case, port, path.
pub fn describe_difference(expected: &str, found: &str) -> Vec<String> {
    if expected == found {
        return Vec::new();
    }
    let (Some(e), Some(f)) = (url_parts(expected), url_parts(found)) else {
        return vec!["a different string".into()];
    };
    let mut d = Vec::new();
    if e.scheme != f.scheme {
        d.push(if e.scheme.eq_ignore_ascii_case(f.scheme) {
            format!("scheme case ({} instead of {})", f.scheme, e.scheme)
        } else {
            format!("scheme ({} instead of {})", f.scheme, e.scheme)
        });
    }
    if e.host != f.host {
        d.push(if e.host.eq_ignore_ascii_case(f.host) {
            format!("host case ({} instead of {})", f.host, e.host)
        } else {
            format!("host ({} instead of {})", f.host, e.host)
        });
    }
    match (e.port, f.port) {
        (None, None) => {}
        (Some(a), Some(b)) if a == b => {}
        (None, Some(p)) => d.push(format!("an explicit port :{p}")),
        (Some(p), None) => d.push(format!("no port (expected :{p})")),
        (Some(a), Some(b)) => d.push(format!("port :{b} instead of :{a}")),
    }
    if e.rest != f.rest {
        d.push(if f.rest.strip_suffix('/') == Some(e.rest) {
            "a trailing slash".into()
        } else if e.rest.strip_suffix('/') == Some(f.rest) {
            "a missing trailing slash".into()
        } else if e.rest.eq_ignore_ascii_case(f.rest) {
            format!("path case ({:?} instead of {:?})", f.rest, e.rest)
        } else {
            format!("path ({:?} instead of {:?})", f.rest, e.rest)
        });
    }
    if d.is_empty() {
        d.push("a different string".into());
    }
    d
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

/// An authorization server's issuer must be https; loopback http is a local test.
pub fn evaluate_issuer_transport(issuer: &str) -> Check {
    const ID: &str = "as.https";
    match url::Url::parse(issuer) {
        Ok(u) if u.scheme() == "https" => Check::ok(ID, format!("{issuer} is https")),
        Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => Check::warn(
            ID,
            format!("{issuer} is plain http on loopback"),
            "Fine for a local test. Clients talk to the authorization server over the internet and require https.",
        ),
        Ok(_) => Check::fail(
            ID,
            format!("{issuer} is not https"),
            "OAuth 2.1 requires TLS for every authorization server endpoint; clients refuse plain http. Serve the IdP over https and list its https issuer.",
        ),
        Err(_) => Check::fail(
            ID,
            format!("{issuer:?} is not a URL"),
            "authorization_servers lists issuer URLs.",
        ),
    }
}

fn strings(doc: &Value, field: &str) -> Option<Vec<String>> {
    doc.get(field)?.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// The authorization server metadata found at `url` for the listed `issuer`: exact issuer, the code
/// grant with PKCE S256, a way to register. Returns the `jwks_uri` when there is one.
pub fn evaluate_as_metadata(issuer: &str, url: &str, doc: &Value) -> (Vec<Check>, Option<String>) {
    let mut checks = Vec::new();
    match doc.get("issuer").and_then(Value::as_str) {
        Some(found) if found == issuer => checks.push(Check::ok(
            "as.metadata",
            format!("{issuer}: metadata at {url}, issuer matches"),
        )),
        Some(found) => checks.push(Check::fail(
            "as.metadata",
            format!(
                "{issuer}: the metadata at {url} says issuer {found:?}: {}",
                describe_difference(issuer, found).join(", ")
            ),
            format!(
                "authorization_servers must list the issuer exactly as its metadata spells it (RFC 8414 §3.3); the SDKs reject the server otherwise. List {found} (mcp-gate: AUTHORIZATION_SERVER={found}), or fix the IdP's public URL (e.g. Keycloak's hostname setting)."
            ),
        )),
        None => checks.push(Check::fail(
            "as.metadata",
            format!("{issuer}: the metadata at {url} has no issuer"),
            "Authorization server metadata must carry its issuer (RFC 8414 §2).",
        )),
    }

    match strings(doc, "grant_types_supported") {
        Some(grants) if !grants.iter().any(|g| g == "authorization_code") => {
            checks.push(Check::fail(
                "as.grant_types",
                format!(
                    "{issuer}: grant_types_supported is [{}], without authorization_code",
                    grants.join(", ")
                ),
                "MCP clients log users in with the authorization code grant. Enable it for the clients they register.",
            ))
        }
        Some(_) => checks.push(Check::ok(
            "as.grant_types",
            format!("{issuer}: offers the authorization_code grant"),
        )),
        None => checks.push(Check::ok(
            "as.grant_types",
            format!("{issuer}: no grant_types_supported, so authorization_code by default (RFC 8414 §2)"),
        )),
    }

    match strings(doc, "code_challenge_methods_supported") {
        Some(methods) if methods.iter().any(|m| m == "S256") => checks.push(Check::ok(
            "as.pkce",
            format!("{issuer}: PKCE with S256"),
        )),
        Some(methods) => checks.push(Check::fail(
            "as.pkce",
            format!(
                "{issuer}: code_challenge_methods_supported is [{}], without S256",
                methods.join(", ")
            ),
            "MCP clients must use PKCE with S256 and refuse to proceed otherwise. Enable S256 on the IdP.",
        )),
        None => checks.push(Check::fail(
            "as.pkce",
            format!("{issuer}: the metadata has no code_challenge_methods_supported"),
            "MCP clients must refuse to proceed when the authorization server does not advertise PKCE. Enable PKCE (S256) so the metadata lists code_challenge_methods_supported: [\"S256\"].",
        )),
    }

    let registration = doc.get("registration_endpoint").and_then(Value::as_str);
    let cimd = doc.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    match (registration, cimd) {
        (Some(endpoint), _) => checks.push(Check::ok(
            "as.registration",
            format!("{issuer}: dynamic client registration at {endpoint}"),
        )),
        (None, true) => {
            let public = strings(doc, "token_endpoint_auth_methods_supported")
                .is_some_and(|m| m.iter().any(|x| x == "none"));
            if public {
                checks.push(Check::ok(
                    "as.registration",
                    format!("{issuer}: client ID metadata documents"),
                ));
            } else {
                checks.push(Check::warn(
                    "as.registration",
                    format!("{issuer}: client ID metadata documents, but token_endpoint_auth_methods_supported lacks \"none\""),
                    "Claude.ai uses client ID metadata documents only when the server also accepts public clients (\"none\").",
                ));
            }
        }
        (None, false) => checks.push(Check::warn(
            "as.registration",
            format!("{issuer}: neither a registration_endpoint nor client_id_metadata_document_supported"),
            "Clients cannot register themselves: users must enter a client ID (and secret) by hand in the connector's advanced settings. Enable anonymous dynamic client registration or client ID metadata documents.",
        )),
    }

    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_string);
    if jwks_uri.is_none() {
        checks.push(Check::fail(
            "as.jwks",
            format!("{issuer}: the metadata has no jwks_uri"),
            "A resource server checks JWT access tokens with the keys at jwks_uri. Without one, set mcp-gate's JWKS_URI.",
        ));
    }
    (checks, jwks_uri)
}

/// The JWKS at `jwks_uri`: a 200 document with at least one key the gate can verify with.
pub fn evaluate_jwks(
    jwks_uri: &str,
    answer: &Result<Answer, FetchError>,
    algorithms: &[Alg],
) -> (Check, Option<KeySet>) {
    const ID: &str = "as.jwks";
    let answer = match answer {
        Ok(a) if a.status == 200 => a,
        Ok(a) => return (
            Check::fail(
                ID,
                format!("the JWKS at {jwks_uri} answers {}", a.status),
                "The keys must be served at jwks_uri with 200, without authentication or redirect.",
            ),
            None,
        ),
        Err(e) => {
            return (
                Check::fail(
                    ID,
                    format!("the JWKS at {jwks_uri}: {e}"),
                    fetch_hint(e, "The resource server must be able to fetch the keys."),
                ),
                None,
            )
        }
    };
    match parse_jwks(&answer.body, algorithms) {
        Ok((keys, skipped)) => {
            let kids: Vec<&str> = keys.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
            let mut message = format!(
                "the JWKS at {jwks_uri} has {} usable signing key(s)",
                keys.len()
            );
            if !kids.is_empty() {
                message.push_str(&format!(" ({})", kids.join(", ")));
            }
            if !skipped.is_empty() {
                message.push_str(&format!("; skipped: {}", skipped.join("; ")));
            }
            (Check::ok(ID, message), Some(keys))
        }
        Err(e) => (
            Check::fail(
                ID,
                format!("the JWKS at {jwks_uri}: {e}: {}", describe_jwks(&answer.body)),
                "Tokens can only be checked with asymmetric signing keys (RSA of 2048 bits or more, P-256, P-384, Ed25519). Symmetric (oct/HS256) and encryption keys are never used: give the IdP an RSA or EC signing key.",
            ),
            None,
        ),
    }
}

/// A short description of each key in a JWKS document, for a set with no usable key.
fn describe_jwks(body: &[u8]) -> String {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return format!("not JSON (it starts with {:?})", preview(body));
    };
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return "no keys array".into();
    };
    if keys.is_empty() {
        return "keys is empty".into();
    }
    let described: Vec<String> = keys
        .iter()
        .map(|k| {
            let field = |name: &str| k.get(name).and_then(Value::as_str).unwrap_or("-");
            format!(
                "kid {} (kty {}, alg {}, use {})",
                field("kid"),
                field("kty"),
                field("alg"),
                field("use")
            )
        })
        .collect();
    described.join("; ")
}

/// The gate's audiences must include its resource URI: that is the `aud` spec clients ask for.
pub fn evaluate_audiences(resource_uri: &str, audiences: &[String]) -> Check {
    const ID: &str = "config.audience";
    if audiences.iter().any(|a| a == resource_uri) {
        return Check::ok(ID, format!("EXPECTED_AUDIENCE includes {resource_uri}"));
    }
    let near: Vec<String> = audiences
        .iter()
        .filter(|a| {
            a.eq_ignore_ascii_case(resource_uri)
                || a.trim_end_matches('/') == resource_uri.trim_end_matches('/')
        })
        .map(|a| {
            format!(
                "{a:?} ({})",
                describe_difference(resource_uri, a).join(", ")
            )
        })
        .collect();
    let message = if near.is_empty() {
        format!(
            "EXPECTED_AUDIENCE [{}] does not include RESOURCE_URI {resource_uri}",
            audiences.join(", ")
        )
    } else {
        format!(
            "EXPECTED_AUDIENCE has {} but not RESOURCE_URI {resource_uri}",
            near.join(", ")
        )
    };
    Check::warn(
        ID,
        message,
        "Spec clients ask the IdP for tokens whose aud is the metadata's resource (RFC 8707). Unless the IdP is known to put something else in aud, add RESOURCE_URI to EXPECTED_AUDIENCE.",
    )
}

/// The keys of one listed authorization server, as fetched.
pub struct ServerKeys {
    pub issuer: String,
    pub jwks_uri: String,
    pub keys: KeySet,
}

/// What a token is checked against: everything here was discovered, nothing configured.
pub struct TokenContext {
    /// The audience clients request: the metadata's `resource`, else the URL checked.
    pub resource: String,
    /// Listed authorization servers whose keys could be fetched.
    pub servers: Vec<ServerKeys>,
    /// Scopes a token must carry.
    pub required_scopes: Vec<String>,
    /// Whether `required_scopes` came from the challenge's `scope` (what the server demands) rather
    /// than from `scopes_supported` (what it offers).
    pub scopes_from_challenge: bool,
}

/// A token's header and claims, decoded without verification, only to explain a refusal.
struct Peeked {
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

fn peek(token: &str) -> Peeked {
    let mut parts = token.split('.');
    let object = |segment: Option<&str>| {
        segment
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
            .unwrap_or_default()
    };
    let header = object(parts.next());
    let claims = object(parts.next());
    Peeked { header, claims }
}

impl Peeked {
    fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    fn time(&self, name: &str) -> Option<f64> {
        self.claims.get(name).and_then(Value::as_f64)
    }

    fn granted_scopes(&self) -> Vec<String> {
        let mut granted: Vec<String> = self
            .claim_str("scope")
            .map(|s| s.split_ascii_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        match self.claims.get("scp") {
            Some(Value::String(s)) => {
                granted.extend(s.split_ascii_whitespace().map(str::to_string))
            }
            Some(Value::Array(items)) => {
                granted.extend(items.iter().filter_map(|v| v.as_str().map(str::to_string)))
            }
            _ => {}
        }
        granted
    }
}

fn ago(secs: f64) -> String {
    humantime::format_duration(Duration::from_secs(secs.max(0.0) as u64)).to_string()
}

/// Runs `token` through [`token::verify`] with a policy built from what was discovered, and says in
/// one sentence which rule the gate would refuse it for. The token itself never appears in the result.
pub fn evaluate_token(token: &str, ctx: &TokenContext, now: u64) -> Check {
    const ID: &str = "token";
    let token = token.trim();
    let token = match token.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => token[7..].trim_start(),
        _ => token,
    };
    let peeked = peek(token);
    let iss = peeked.claim_str("iss");
    let Some(server) = ctx
        .servers
        .iter()
        .find(|s| Some(s.issuer.as_str()) == iss)
        .or_else(|| ctx.servers.first())
    else {
        return Check::warn(
            ID,
            "the token was not checked: no authorization server's signing keys could be fetched",
            "Fix the authorization server checks above first.",
        );
    };
    let policy = Policy {
        issuer: server.issuer.clone(),
        audiences: vec![ctx.resource.clone()],
        algorithms: Alg::ALL.to_vec(),
        token_type: TokenType::Any,
        required_scopes: ctx.required_scopes.clone(),
        claim_rules: Vec::new(),
        clock_skew_secs: 60,
        max_token_size: 16 * 1024,
    };
    let refusal = match token::verify(token, &server.keys, &policy, now) {
        Ok(verified) => {
            let left = (verified.exp as f64) - now as f64;
            return Check::ok(
                ID,
                format!(
                    "the token passes the gate's checks (signature, iss, aud, exp{}); it expires in {}",
                    if policy.required_scopes.is_empty() { "" } else { ", scope" },
                    ago(left)
                ),
            );
        }
        Err(r) => r,
    };
    let (message, hint) = explain(refusal, &peeked, &policy, server, ctx, now);
    let message = format!(
        "the gate would refuse the token ({}): {message}",
        refusal.reason()
    );
    if refusal == Refusal::InsufficientScope && !ctx.scopes_from_challenge {
        return Check::warn(ID, message, hint);
    }
    Check::fail(ID, message, hint)
}

fn explain(
    refusal: Refusal,
    t: &Peeked,
    policy: &Policy,
    server: &ServerKeys,
    ctx: &TokenContext,
    now: u64,
) -> (String, String) {
    let now = now as f64;
    let kids = || {
        let kids: Vec<&str> = server
            .keys
            .keys
            .iter()
            .filter_map(|k| k.kid.as_deref())
            .collect();
        kids.join(", ")
    };
    match refusal {
        Refusal::Expired => (
            format!(
                "it expired {} ago",
                ago(now - t.time("exp").unwrap_or(now))
            ),
            "Get a fresh token. A client that keeps sending expired tokens is not refreshing them: check that the IdP issues it refresh tokens. Right after login, suspect a wrong clock on the IdP or this machine.".into(),
        ),
        Refusal::NotYetValid | Refusal::IssuedInFuture => {
            let claim = if refusal == Refusal::NotYetValid { "nbf" } else { "iat" };
            (
                format!(
                    "its {claim} is {} in the future",
                    ago(t.time(claim).unwrap_or(now) - now)
                ),
                "A clock is wrong, the IdP's or this machine's: fix NTP. The gate allows CLOCK_SKEW (60s by default).".into(),
            )
        }
        Refusal::MissingExpiry => (
            "it has no exp".into(),
            "Access tokens must expire (RFC 9068 §2.2): configure an access token lifetime on the IdP.".into(),
        ),
        Refusal::BadAudience => {
            let aud = match t.claims.get("aud") {
                Some(Value::String(a)) => {
                    let diff = describe_difference(&ctx.resource, a);
                    format!("{a:?} ({})", diff.join(", "))
                }
                Some(other) => other.to_string(),
                None => "missing".into(),
            };
            (
                format!("aud is {aud} but the resource is {:?}", ctx.resource),
                format!(
                    "Clients ask for tokens for the metadata's resource (RFC 8707), and the IdP must put it in aud: Keycloak needs an audience mapper, Auth0 the Resource Parameter Compatibility Profile, Okta the authorization server's audience. Or make the gate accept what the IdP sends with EXPECTED_AUDIENCE={},{} on the gate.",
                    ctx.resource,
                    t.claims
                        .get("aud")
                        .and_then(Value::as_str)
                        .unwrap_or("<aud>")
                ),
            )
        }
        Refusal::BadIssuer => {
            let iss = t.claim_str("iss").unwrap_or("missing");
            (
                format!(
                    "iss is {iss:?} but the authorization server is {:?} ({})",
                    policy.issuer,
                    describe_difference(&policy.issuer, iss).join(", ")
                ),
                "The token comes from another issuer than the one the metadata lists: another realm or tenant, or the IdP's public URL differs from the one configured (trailing slash, Entra v1 vs v2). List the issuer that signs the tokens (mcp-gate: AUTHORIZATION_SERVER / EXPECTED_ISSUER).".into(),
            )
        }
        Refusal::UnknownKid => (
            format!(
                "its kid {:?} is not in the JWKS at {} (which holds {})",
                t.header_str("kid").unwrap_or("-"),
                server.jwks_uri,
                kids()
            ),
            "The token was signed by another server (another realm, tenant or environment) than the one listed, or with a key the IdP no longer publishes.".into(),
        ),
        Refusal::AmbiguousKey => (
            format!(
                "it has no kid and the JWKS at {} holds several keys that fit {}",
                server.jwks_uri,
                t.header_str("alg").unwrap_or("its algorithm")
            ),
            "Configure the IdP to put kid in token headers.".into(),
        ),
        Refusal::BadSignature => (
            format!(
                "its signature does not verify with the key {:?} from {}",
                t.header_str("kid").unwrap_or("-"),
                server.jwks_uri
            ),
            "The token was altered, or signed by a server that reuses the key id with another key: check that it comes from the listed issuer.".into(),
        ),
        Refusal::UnsupportedAlgorithm => (
            format!(
                "its alg {:?} is not accepted",
                t.header_str("alg").unwrap_or("missing")
            ),
            "Only asymmetric signatures are accepted (RS*, PS*, ES256/384, EdDSA); none and HMAC (HS*) never are. Give the IdP an RSA or EC signing key.".into(),
        ),
        Refusal::MalformedToken => (
            "it is not a signed JWT".into(),
            "The gate can only check JWT access tokens. An opaque token usually means no API or audience was selected (Auth0) or no resource was sent.".into(),
        ),
        Refusal::EncryptedToken => (
            "it is encrypted (JWE)".into(),
            "The gate checks signed tokens only: turn access token encryption off for this client or API.".into(),
        ),
        Refusal::BadType => (
            format!(
                "its typ {:?} is not an access token type",
                t.header_str("typ").unwrap_or("-")
            ),
            "This may be an ID token or another kind of JWT: send the access token.".into(),
        ),
        Refusal::UnknownCritical => (
            "it has a crit header the gate does not understand".into(),
            "Turn off the JWS extension the IdP marks as critical.".into(),
        ),
        Refusal::MalformedClaims => (
            "a registered claim has the wrong type (e.g. exp as a string, aud as a number)".into(),
            "Check the IdP's claim mappers.".into(),
        ),
        Refusal::InsufficientScope => {
            let granted = t.granted_scopes();
            let missing: Vec<&str> = policy
                .required_scopes
                .iter()
                .filter(|s| !granted.contains(s))
                .map(String::as_str)
                .collect();
            let source = if ctx.scopes_from_challenge {
                "the challenge's scope"
            } else {
                "scopes_supported"
            };
            (
                format!(
                    "it grants [{}] but {source} asks for [{}]: missing {}",
                    granted.join(" "),
                    policy.required_scopes.join(" "),
                    missing.join(", ")
                ),
                "The IdP must grant these scopes to the client: e.g. a default client scope in Keycloak, an access policy rule in Okta.".into(),
            )
        }
        Refusal::TokenTooLarge => (
            format!("it is longer than {} bytes", policy.max_token_size),
            "Raise MAX_TOKEN_SIZE on the gate, or trim the claims the IdP puts into access tokens.".into(),
        ),
        other => (other.description().to_string(), String::new()),
    }
}

/// A hint for a request that got no answer.
fn fetch_hint(e: &FetchError, otherwise: &str) -> String {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("certificate") || text.contains("tls") {
        "The TLS handshake failed: the certificate must be valid for the host name and chain to a public root.".into()
    } else if text.contains("dns") || text.contains("resolve") || text.contains("lookup") {
        "The host name does not resolve: it needs an A record in public DNS.".into()
    } else if matches!(e, FetchError::Timeout(_)) || text.contains("refused") {
        format!("Nothing answers there: check the host, port, firewall and that the server is running. {otherwise}")
    } else {
        otherwise.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------------------------

/// A complete answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body, up to [`MAX_DOCUMENT`]; empty when it was not read.
    pub body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn location(&self) -> Option<&str> {
        self.header(LOCATION.as_str())
    }
}

/// The MCP `initialize` a client sends first, without a token.
const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"mcp-gate-check","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}}}"#
);

/// Bounded requests that follow no redirect: each is limited in time and in body size.
struct Prober {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Prober {
    fn new(timeout: Duration) -> Prober {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build(crate::http::client::https_connector(timeout));
        Prober { client, timeout }
    }

    async fn get(&self, url: &str) -> Result<Answer, FetchError> {
        self.send(Method::GET, url, None, true).await
    }

    /// POSTs the `initialize`; the body is read only for a 401 (a 200 may be an endless SSE stream).
    async fn initialize(&self, url: &str) -> Result<Answer, FetchError> {
        self.send(Method::POST, url, Some(INITIALIZE), false).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&'static str>,
        always_read_body: bool,
    ) -> Result<Answer, FetchError> {
        let mut request = Request::builder().method(method).uri(url).header(
            USER_AGENT,
            concat!("mcp-gate-check/", env!("CARGO_PKG_VERSION")),
        );
        request = match body {
            Some(_) => request
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json, text/event-stream"),
            None => request
                .header(ACCEPT, "application/json")
                .header("mcp-protocol-version", "2025-11-25"),
        };
        let request = request
            .body(Full::new(Bytes::from_static(
                body.unwrap_or_default().as_bytes(),
            )))
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Request(error_chain(&e)))?;
            let (parts, incoming) = response.into_parts();
            let status = parts.status.as_u16();
            let body = if always_read_body || status == 401 {
                crate::auth::fetch::read_bounded(incoming).await?
            } else {
                Bytes::new()
            };
            Ok(Answer {
                status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }
}

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
struct ServerFindings {
    checks: Vec<Check>,
    keys: Option<ServerKeys>,
}

/// Finds and checks the metadata of `issuer` (RFC 8414 path-inserted, then OpenID), then its JWKS
/// (`jwks_override` replaces the discovered `jwks_uri`, as the gate's JWKS_URI does).
async fn check_server(
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

/// Looks for the metadata of `issuer` in discovery order and evaluates the first found.
async fn find_as_metadata(
    prober: &Prober,
    issuer: &str,
    parsed: &url::Url,
) -> (Vec<Check>, Option<String>) {
    let mut misses = Vec::new();
    for url in metadata_urls(parsed) {
        match prober.get(&url).await {
            Ok(a) if a.status == 200 => match serde_json::from_slice::<Value>(&a.body) {
                Ok(doc) if doc.is_object() => return evaluate_as_metadata(issuer, &url, &doc),
                _ => misses.push(format!("{url}: 200 but not a JSON object")),
            },
            Ok(a) if (300..400).contains(&a.status) => misses.push(format!(
                "{url}: redirect ({}) to {}",
                a.status,
                a.location().unwrap_or("nowhere")
            )),
            Ok(a) => misses.push(format!("{url}: {}", a.status)),
            Err(e) => {
                // A timeout or refused connection will not get better on the next URL of the same host.
                let check = Check::fail(
                    "as.metadata",
                    format!("{issuer}: {url}: {e}"),
                    fetch_hint(
                        &e,
                        "Clients must reach the authorization server's metadata from the internet.",
                    ),
                );
                return (vec![check], None);
            }
        }
    }
    let check = Check::fail(
        "as.metadata",
        format!("{issuer}: no authorization server metadata ({})", misses.join("; ")),
        "Clients look for RFC 8414 or OpenID Connect metadata under the issuer URL. authorization_servers must list the issuer itself (e.g. Keycloak: https://<host>/realms/<realm>), not the login page or the metadata URL.",
    );
    (vec![check], None)
}

/// Walks a client's discovery against `target`; `timeout` bounds each request.
pub async fn run(target: &Target, token: Option<&str>, timeout: Duration) -> Report {
    let prober = Prober::new(timeout);
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
            locations.insert(0, (MetadataLocation::Challenge, true, url.clone()));
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

    if let Some(token) = token {
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

/// The checks a gate can run on its own configuration: the transport of RESOURCE_URI, the
/// authorization servers (metadata, issuer, PKCE, registration, JWKS with ALLOWED_ALGORITHMS) and
/// EXPECTED_AUDIENCE against RESOURCE_URI.
pub async fn self_check(config: &Config) -> Vec<Check> {
    let prober = Prober::new(config.jwks_fetch_timeout);
    let mut checks = vec![
        evaluate_transport(&config.resource),
        evaluate_audiences(&config.resource_uri, &config.policy.audiences),
    ];
    for trusted in &config.issuers {
        // A JWKS_URI entry replaces the discovered key location of its server, as in the gate.
        let found = check_server(
            &prober,
            &trusted.server,
            trusted.jwks_uri.as_ref().map(url::Url::as_str),
            &config.policy.algorithms,
        )
        .await;
        checks.extend(found.checks);
    }
    checks
}

/// [`self_check`] as the gate runs it at start: every warning and failure becomes a `warn!` line,
/// never a reason to stop. The future owns what it needs, so it can be spawned.
pub fn startup_self_check(config: &Config) -> impl Future<Output = ()> + Send + 'static {
    let config = config.clone();
    async move {
        let checks = self_check(&config).await;
        let mut clean = true;
        for c in checks.iter().filter(|c| c.status != Status::Ok) {
            clean = false;
            tracing::warn!(
                check = c.id,
                hint = c.hint.as_deref().unwrap_or_default(),
                "start-up self-check: {}",
                c.message
            );
        }
        if clean {
            tracing::info!(
                checks = checks.len(),
                "start-up self-check: the authorization server and the configuration look right"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{jwks, TestKey};
    use serde_json::json;
    use std::sync::OnceLock;

    fn statuses(checks: &[Check]) -> Vec<(&'static str, Status)> {
        checks.iter().map(|c| (c.id, c.status)).collect()
    }

    fn failing(checks: &[Check]) -> Vec<&Check> {
        checks.iter().filter(|c| c.status == Status::Fail).collect()
    }

    #[test]
    fn transport_is_https_on_443_loopback_is_a_warning_anything_else_fails() {
        let cases = [
            ("https://mcp.example.com/mcp", Status::Ok),
            ("https://mcp.example.com:443/mcp", Status::Ok),
            ("http://127.0.0.1:8080/mcp", Status::Warn),
            ("http://localhost/mcp", Status::Warn),
            ("http://[::1]:3000/mcp", Status::Warn),
            ("http://mcp.example.com/mcp", Status::Fail),
            ("https://mcp.example.com:8443/mcp", Status::Fail),
        ];
        for (url, expected) in cases {
            let check = evaluate_transport(&url::Url::parse(url).unwrap());
            assert_eq!(check.status, expected, "{url}: {check:?}");
        }
    }

    #[test]
    fn only_a_401_to_the_unauthenticated_initialize_passes() {
        let url = "https://mcp.example.com/mcp";
        assert_eq!(evaluate_endpoint(url, 401, None).status, Status::Ok);
        for status in [200, 202, 301, 307, 403, 404, 500, 503] {
            assert_eq!(
                evaluate_endpoint(url, status, None).status,
                Status::Fail,
                "{status}"
            );
        }
        let slash = evaluate_endpoint(url, 307, Some("https://mcp.example.com/mcp/"));
        assert!(slash.message.contains("trailing slash"), "{slash:?}");
        let down = evaluate_endpoint(url, 301, Some("http://mcp.example.com/mcp"));
        assert!(down.message.contains("downgrade"), "{down:?}");
    }

    #[test]
    fn the_401_body_must_be_json() {
        let json = Some("application/json");
        assert_eq!(
            evaluate_error_body(json, br#"{"error":"invalid_token"}"#).status,
            Status::Ok
        );
        assert_eq!(evaluate_error_body(json, b"").status, Status::Warn);
        assert_eq!(
            evaluate_error_body(Some("text/plain"), b"{}").status,
            Status::Warn
        );
        let html = evaluate_error_body(Some("text/html"), b"<html><body>Denied</body></html>");
        assert_eq!(html.status, Status::Fail);
        assert!(html.message.contains("<html>"), "{html:?}");
    }

    #[test]
    fn challenges_parse_per_rfc_9110() {
        let parsed = parse_challenges(
            r#"Bearer resource_metadata="https://h/.well-known/x", scope="a b", Basic realm="r\"q", Negotiate abc=="#,
        )
        .unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].scheme, "Bearer");
        assert_eq!(
            parsed[0].param("RESOURCE_METADATA").unwrap().value,
            "https://h/.well-known/x"
        );
        assert_eq!(parsed[0].param("scope").unwrap().value, "a b");
        assert_eq!(parsed[1].param("realm").unwrap().value, "r\"q");
        assert_eq!(parsed[2].scheme, "Negotiate");
        assert!(parsed[2].params.is_empty());

        let bare = parse_challenges("Bearer scope=mcp:tools , error = \"x\"").unwrap();
        assert_eq!(bare.len(), 1);
        let scope = bare[0].param("scope").unwrap();
        assert!(!scope.quoted && !scope.spaced);
        assert!(bare[0].param("error").unwrap().spaced);

        assert_eq!(parse_challenges("Bearer").unwrap()[0].params, vec![]);
        for bad in [
            r#"Bearer resource_metadata="https://h"#,
            r#"Bearer a="1" b="2""#,
            "=x",
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_well_formed_challenge_passes_and_yields_its_metadata_url_and_scope() {
        let found = evaluate_challenge(&[
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:read""#,
        ]);
        assert!(failing(&found.checks).is_empty(), "{:?}", found.checks);
        assert_eq!(
            found.resource_metadata.as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            found.scope,
            Some(vec!["mcp:tools".to_string(), "mcp:read".to_string()])
        );
    }

    #[test]
    fn challenge_faults_each_fail_their_rule() {
        let prm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let dup = format!(r#"Bearer resource_metadata="{prm}", resource_metadata="{prm}""#);
        let two = format!(r#"Bearer resource_metadata="{prm}""#);
        let cases: Vec<(Vec<&str>, &str, &str)> = vec![
            (vec![], "challenge.header", "no WWW-Authenticate"),
            (vec![r#"Basic realm="x""#], "challenge.bearer", "no Bearer"),
            (vec![&two, &two], "challenge.bearer", "2 Bearer challenges"),
            (vec![&dup], "challenge.syntax", "more than once"),
            (
                vec![r#"Bearer resource_metadata=https://mcp.example.com/x"#],
                "challenge.syntax",
                "not quoted",
            ),
            (
                vec![r#"Bearer resource_metadata = "https://mcp.example.com/x""#],
                "challenge.syntax",
                "whitespace",
            ),
            (
                vec![r#"Bearer resource_metadata="/.well-known/oauth-protected-resource/mcp""#],
                "challenge.resource_metadata",
                "not an absolute URL",
            ),
            (
                vec![r#"Bearer scope="mcp:tools""#],
                "challenge.resource_metadata",
                "no resource_metadata",
            ),
            (
                vec![r#"Bearer resource_metadata="https://h"#],
                "challenge.syntax",
                "does not parse",
            ),
        ];
        for (values, id, words) in cases {
            let found = evaluate_challenge(&values);
            let fail = found
                .checks
                .iter()
                .find(|c| c.id == id && c.status == Status::Fail)
                .unwrap_or_else(|| panic!("{values:?}: no failing {id}: {:?}", found.checks));
            assert!(fail.message.contains(words), "{values:?}: {fail:?}");
            assert!(fail.hint.is_some());
        }
    }

    #[test]
    fn an_error_code_without_a_token_is_only_a_warning() {
        let found = evaluate_challenge(&[
            r#"Bearer error="invalid_token", resource_metadata="https://h/.well-known/oauth-protected-resource""#,
        ]);
        assert!(failing(&found.checks).is_empty());
        assert!(statuses(&found.checks).contains(&("challenge.error", Status::Warn)));
    }

    #[test]
    fn differences_between_urls_are_named() {
        let e = "https://mcp.example.com/mcp";
        let cases = [
            ("https://mcp.example.com/mcp/", "a trailing slash"),
            (
                "http://mcp.example.com/mcp",
                "scheme (http instead of https)",
            ),
            ("HTTPS://mcp.example.com/mcp", "scheme case"),
            ("https://MCP.example.com/mcp", "host case"),
            ("https://mcp.example.com:443/mcp", "an explicit port :443"),
            ("https://mcp.example.com:8443/mcp", "an explicit port :8443"),
            ("https://other.example.com/mcp", "host (other.example.com"),
            ("https://mcp.example.com/api/mcp", "path"),
            ("https://mcp.example.com/MCP", "path case"),
            ("mcp.example.com/mcp", "a different string"),
        ];
        for (found, words) in cases {
            let d = describe_difference(e, found).join(", ");
            assert!(d.contains(words), "{found}: {d}");
        }
        assert_eq!(
            describe_difference("https://h", "https://h/"),
            vec!["a trailing slash"]
        );
        assert_eq!(
            describe_difference("https://h/x/", "https://h/x"),
            vec!["a missing trailing slash"]
        );
        assert!(describe_difference(e, e).is_empty());
    }

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

    fn answer(status: u16, content_type: &str, body: &str) -> Result<Answer, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
        Ok(Answer {
            status,
            headers,
            body: Bytes::from(body.to_string()),
        })
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

    const ISS: &str = "https://idp.example.com/realms/mcp";

    fn as_doc(change: impl FnOnce(&mut Value)) -> Value {
        let mut doc = json!({
            "issuer": ISS,
            "jwks_uri": format!("{ISS}/certs"),
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "registration_endpoint": format!("{ISS}/register"),
        });
        change(&mut doc);
        doc
    }

    #[test]
    fn a_complete_authorization_server_passes() {
        let (checks, jwks_uri) = evaluate_as_metadata(ISS, "u", &as_doc(|_| {}));
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
        assert_eq!(jwks_uri, Some(format!("{ISS}/certs")));
    }

    #[test]
    fn authorization_server_faults_each_fail_or_warn_their_rule() {
        let remove = |field: &'static str| {
            move |d: &mut Value| {
                d.as_object_mut().unwrap().remove(field);
            }
        };
        let cases: Vec<(Value, &str, Status, &str)> = vec![
            (
                as_doc(|d| d["issuer"] = json!(format!("{ISS}/"))),
                "as.metadata",
                Status::Fail,
                "a trailing slash",
            ),
            (
                as_doc(|d| d["issuer"] = json!("https://IDP.example.com/realms/mcp")),
                "as.metadata",
                Status::Fail,
                "host case",
            ),
            (
                as_doc(remove("issuer")),
                "as.metadata",
                Status::Fail,
                "no issuer",
            ),
            (
                as_doc(|d| d["grant_types_supported"] = json!(["client_credentials"])),
                "as.grant_types",
                Status::Fail,
                "without authorization_code",
            ),
            (
                as_doc(|d| d["code_challenge_methods_supported"] = json!(["plain"])),
                "as.pkce",
                Status::Fail,
                "without S256",
            ),
            (
                as_doc(remove("code_challenge_methods_supported")),
                "as.pkce",
                Status::Fail,
                "no code_challenge_methods_supported",
            ),
            (
                as_doc(remove("registration_endpoint")),
                "as.registration",
                Status::Warn,
                "neither",
            ),
            (
                as_doc(|d| {
                    d.as_object_mut().unwrap().remove("registration_endpoint");
                    d["client_id_metadata_document_supported"] = json!(true);
                }),
                "as.registration",
                Status::Warn,
                "lacks \"none\"",
            ),
            (
                as_doc(remove("jwks_uri")),
                "as.jwks",
                Status::Fail,
                "no jwks_uri",
            ),
        ];
        for (doc, id, status, words) in cases {
            let (checks, _) = evaluate_as_metadata(ISS, "u", &doc);
            let c = checks
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("no {id} in {checks:?}"));
            assert_eq!(c.status, status, "{c:?}");
            assert!(c.message.contains(words), "{c:?}");
        }
        let cimd = as_doc(|d| {
            d.as_object_mut().unwrap().remove("registration_endpoint");
            d["client_id_metadata_document_supported"] = json!(true);
            d["token_endpoint_auth_methods_supported"] = json!(["none", "private_key_jwt"]);
        });
        let (checks, _) = evaluate_as_metadata(ISS, "u", &cimd);
        assert!(statuses(&checks).contains(&("as.registration", Status::Ok)));
    }

    #[test]
    fn issuer_transport_is_https_or_loopback() {
        assert_eq!(evaluate_issuer_transport(ISS).status, Status::Ok);
        assert_eq!(
            evaluate_issuer_transport("http://127.0.0.1:9000").status,
            Status::Warn
        );
        assert_eq!(
            evaluate_issuer_transport("http://idp.example.com").status,
            Status::Fail
        );
        assert_eq!(evaluate_issuer_transport("idp").status, Status::Fail);
    }

    fn key() -> &'static TestKey {
        static K: OnceLock<TestKey> = OnceLock::new();
        K.get_or_init(|| TestKey::rsa("k1", 2048))
    }

    #[test]
    fn a_jwks_needs_one_usable_signing_key() {
        let uri = "https://idp/certs";
        let (ok, keys) = evaluate_jwks(
            uri,
            &answer(200, "application/json", &jwks(&[key()])),
            &Alg::ALL,
        );
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.message.contains("(k1)"), "{ok:?}");
        assert_eq!(keys.unwrap().len(), 1);
        let hmac = r#"{"keys":[{"kty":"oct","kid":"h1","alg":"HS256","k":"c2VjcmV0"}]}"#;
        let (fail, keys) = evaluate_jwks(uri, &answer(200, "application/json", hmac), &Alg::ALL);
        assert_eq!(fail.status, Status::Fail);
        assert!(
            fail.message.contains("kid h1 (kty oct, alg HS256"),
            "{fail:?}"
        );
        assert!(keys.is_none());
        for a in [
            answer(200, "application/json", r#"{"keys":[]}"#),
            answer(200, "text/html", "<html>"),
            answer(500, "text/plain", ""),
        ] {
            assert_eq!(evaluate_jwks(uri, &a, &Alg::ALL).0.status, Status::Fail);
        }
    }

    #[test]
    fn audiences_must_include_the_resource() {
        let r = "https://mcp.example.com/mcp";
        assert_eq!(evaluate_audiences(r, &[r.to_string()]).status, Status::Ok);
        let slash = evaluate_audiences(r, &[format!("{r}/")]);
        assert_eq!(slash.status, Status::Warn);
        assert!(slash.message.contains("trailing slash"), "{slash:?}");
        assert_eq!(
            evaluate_audiences(r, &["api://mcp".to_string()]).status,
            Status::Warn
        );
    }

    const NOW: u64 = 1_800_000_000;
    const RESOURCE: &str = "https://mcp.example.com/mcp";

    fn ctx(scopes: &[&str], from_challenge: bool) -> TokenContext {
        let keys = parse_jwks(jwks(&[key()]).as_bytes(), &Alg::ALL).unwrap().0;
        TokenContext {
            resource: RESOURCE.into(),
            servers: vec![ServerKeys {
                issuer: ISS.into(),
                jwks_uri: format!("{ISS}/certs"),
                keys,
            }],
            required_scopes: scopes.iter().map(|s| s.to_string()).collect(),
            scopes_from_challenge: from_challenge,
        }
    }

    fn claims(change: impl FnOnce(&mut Value)) -> Value {
        let mut c = json!({"iss": ISS, "aud": RESOURCE, "sub": "alice", "exp": NOW + 300, "iat": NOW, "scope": "mcp:tools"});
        change(&mut c);
        c
    }

    #[test]
    fn a_good_token_passes_and_is_never_echoed() {
        let token = key().token(&claims(|_| {}));
        let check = evaluate_token(&token, &ctx(&["mcp:tools"], true), NOW);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(check.message.contains("expires in 5m"), "{check:?}");
        let bearer = evaluate_token(&format!("Bearer {token}"), &ctx(&[], true), NOW);
        assert_eq!(bearer.status, Status::Ok, "{bearer:?}");
    }

    #[test]
    fn each_refusal_is_explained_in_one_sentence() {
        let other = TestKey::rsa("k9", 2048);
        let cases: Vec<(String, Vec<&str>, &str)> = vec![
            (
                key().token(&claims(|c| c["exp"] = json!(NOW - 7200))),
                vec![],
                "expired 2h ago",
            ),
            (
                key().token(&claims(|c| c["aud"] = json!(format!("{RESOURCE}/")))),
                vec![],
                "aud is \"https://mcp.example.com/mcp/\" (a trailing slash) but the resource is \"https://mcp.example.com/mcp\"",
            ),
            (
                key().token(&claims(|c| c["iss"] = json!("https://other.example.com"))),
                vec![],
                "iss is \"https://other.example.com\" but the authorization server is",
            ),
            (
                other.token(&claims(|_| {})),
                vec![],
                "kid \"k9\" is not in the JWKS at https://idp.example.com/realms/mcp/certs (which holds k1)",
            ),
            (
                key().token(&claims(|_| {})),
                vec!["mcp:tools", "mcp:admin"],
                "grants [mcp:tools] but the challenge's scope asks for [mcp:tools mcp:admin]: missing mcp:admin",
            ),
            (
                key().token(&claims(|c| c["nbf"] = json!(NOW + 3600))),
                vec![],
                "nbf is 1h in the future",
            ),
            ("opaque-token-value".into(), vec![], "not a signed JWT"),
        ];
        for (token, scopes, words) in cases {
            let check = evaluate_token(&token, &ctx(&scopes, true), NOW);
            assert_eq!(check.status, Status::Fail, "{check:?}");
            assert!(check.message.contains(words), "{words}: {check:?}");
            assert!(!check.message.contains(&token), "token echoed");
            assert!(!check.hint.as_deref().unwrap_or_default().contains(&token));
        }
        // A scope only advertised in scopes_supported may be optional: a warning, not a failure.
        let token = key().token(&claims(|c| c["scope"] = json!("other")));
        let check = evaluate_token(&token, &ctx(&["mcp:tools"], false), NOW);
        assert_eq!(check.status, Status::Warn, "{check:?}");
        // A forged signature under a known kid.
        let mut forged = key().token(&claims(|_| {}));
        forged.truncate(forged.len() - 4);
        forged.push_str("AAAA");
        let check = evaluate_token(&forged, &ctx(&[], true), NOW);
        assert!(check.message.contains("bad_signature"), "{check:?}");
    }

    #[test]
    fn no_keys_means_the_token_is_not_checked() {
        let mut c = ctx(&[], true);
        c.servers.clear();
        let check = evaluate_token(&key().token(&claims(|_| {})), &c, NOW);
        assert_eq!(check.status, Status::Warn);
    }

    #[test]
    fn the_report_exits_on_failures_and_renders_both_forms() {
        let report = Report {
            url: RESOURCE.into(),
            checks: vec![
                Check::ok("transport", "https on port 443"),
                Check::warn("as.registration", "neither", "enter a client ID"),
                Check::fail("metadata.resource", "resource differs", "fix it"),
            ],
        };
        assert!(report.failed());
        let text = report.to_text();
        assert!(text.contains("✓ https on port 443\n"), "{text}");
        assert!(
            text.contains("✗ resource differs\n    → fix it\n"),
            "{text}"
        );
        assert!(text.contains("1 problem (1 warning)."), "{text}");
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json[2],
            json!({"id": "metadata.resource", "status": "fail", "message": "resource differs", "hint": "fix it"})
        );
        assert_eq!(json[0]["hint"], Value::Null);
        let clean = Report {
            url: RESOURCE.into(),
            checks: vec![Check::ok("transport", "https on port 443")],
        };
        assert!(!clean.failed());
        assert!(clean.to_text().contains("No problems found (0 warnings)."));
    }

    #[test]
    fn the_start_up_self_check_can_be_spawned() {
        fn spawnable<T: Send + 'static>(_: T) {}
        let vars = [
            ("UPSTREAM_URL", "http://127.0.0.1:3000"),
            ("RESOURCE_URI", RESOURCE),
            ("AUTHORIZATION_SERVER", ISS),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::from_vars(&vars).unwrap().0;
        spawnable(startup_self_check(&config));
    }

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
}
