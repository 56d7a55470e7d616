//! Who the upstream sees: the verified token's claims as request headers (`CLAIM_HEADERS`), and the
//! identity headers a client could spoof removed first (`IDENTITY_HEADERS_STRIP`).
//!
//! Upstreams behind auth proxies commonly trust headers such as `X-Forwarded-User` or
//! `X-Auth-Request-Email` (oauth2-proxy, Pomerium, nginx `auth_request` setups). If the gate passed a
//! client's own copy through, anyone holding *any* valid token could claim to be anyone. So every
//! header the mapping names, and every header matching the strip list, is removed from the client's
//! request; the gate's values are set afterwards, from claims it verified itself. The proxy calls
//! [`IdentityHeaders::apply`] after removing hop-by-hop headers (RFC 9110 §7.6.1), so a client that
//! names `X-Auth-Subject` in `Connection:` can neither smuggle a value nor make the gate drop its own.
//!
//! A claim value becomes header text as follows (decided by [`header_text`], pure):
//! - a string of visible ASCII and inner spaces passes as it is; numbers and booleans as their JSON
//!   text; objects as compact JSON;
//! - an array becomes its elements' texts joined by `,` (an element holding a comma is encoded, so
//!   splitting on commas always gives back the elements);
//! - anything else (non-ASCII, control characters, leading or trailing space, an element with a
//!   comma, or text that itself begins with the prefix) is encoded RFC 8187-style:
//!   `UTF-8''` followed by the UTF-8 bytes percent-encoded (`attr-char` kept). Never dropped.
//! - a claim that is absent or `null` sets no header (its spoofed copy is still removed).

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};

/// The prefix of an RFC 8187 `ext-value` in UTF-8 with no language tag.
pub const ENCODED_PREFIX: &str = "UTF-8''";

/// The default `IDENTITY_HEADERS_STRIP`: headers that auth proxies set and upstreams commonly trust.
pub const DEFAULT_STRIP: &str =
    "X-Forwarded-User,X-Remote-User,X-Auth-Request-*,X-Auth-*,X-Forwarded-Email,X-Forwarded-Groups";

/// Headers a claim may never be written to: the gate sets or removes them itself, or they frame the
/// message (`Mcp-*` headers are validated against the body by the policy).
const RESERVED: &[&str] = &[
    "host",
    "authorization",
    "proxy-authorization",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "cookie",
    "origin",
];

/// Why `CLAIM_HEADERS` or `IDENTITY_HEADERS_STRIP` did not parse; `item` is the entry as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item:?}: {expected}")]
pub struct IdentityConfigError {
    pub item: String,
    pub expected: &'static str,
}

/// One `claim=Header` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClaimHeader {
    /// The claim as written: looked up whole first (`https://example.com/groups`), then as a dotted
    /// path (`realm_access.roles`).
    claim: String,
    header: HeaderName,
}

/// A header to remove from every client request: an exact name, or a prefix (`X-Auth-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(HeaderName),
    /// Lowercase, without the `*`; never empty.
    Prefix(String),
}

impl Pattern {
    fn matches(&self, name: &HeaderName) -> bool {
        match self {
            Pattern::Exact(n) => n == name,
            Pattern::Prefix(p) => name.as_str().starts_with(p.as_str()),
        }
    }
}

/// The identity headers of every forwarded request; parsed once at start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentityHeaders {
    set: Vec<ClaimHeader>,
    strip: Vec<Pattern>,
}

impl IdentityHeaders {
    /// Parses `CLAIM_HEADERS` (`claim=Header` pairs, comma-separated; `None` for none) and
    /// `IDENTITY_HEADERS_STRIP` (names or `Prefix-*` patterns, comma- or space-separated).
    pub fn parse(
        claim_headers: Option<&str>,
        strip: &str,
    ) -> Result<IdentityHeaders, IdentityConfigError> {
        let mut set: Vec<ClaimHeader> = Vec::new();
        for item in claim_headers
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let error = |expected| IdentityConfigError {
                item: item.to_string(),
                expected,
            };
            let (claim, header) = item
                .split_once('=')
                .ok_or_else(|| error("claim=Header pairs, comma-separated"))?;
            let claim = claim.trim();
            if claim.is_empty() || claim.split('.').any(str::is_empty) {
                return Err(error(
                    "a claim name or dotted path such as realm_access.roles",
                ));
            }
            let header = HeaderName::from_bytes(header.trim().as_bytes())
                .map_err(|_| error("a valid header name such as X-Auth-Subject"))?;
            if RESERVED.contains(&header.as_str()) || header.as_str().starts_with("mcp-") {
                return Err(error(
                    "a header the gate does not set itself (not Host, Authorization, Content-*, hop-by-hop, Forwarded, X-Forwarded-For/Host/Proto, Cookie, Origin or Mcp-*)",
                ));
            }
            if set.iter().any(|s| s.header == header) {
                return Err(error("each header once"));
            }
            set.push(ClaimHeader {
                claim: claim.to_string(),
                header,
            });
        }
        let mut patterns = Vec::new();
        for item in strip
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let error = |expected| IdentityConfigError {
                item: item.to_string(),
                expected,
            };
            let pattern = match item.strip_suffix('*') {
                Some(prefix) => {
                    // The prefix must itself be header-name text; an empty one would strip everything.
                    if prefix.is_empty() || HeaderName::from_bytes(prefix.as_bytes()).is_err() {
                        return Err(error(
                            "a header name, or a prefix ending in * such as X-Auth-*",
                        ));
                    }
                    Pattern::Prefix(prefix.to_ascii_lowercase())
                }
                None => Pattern::Exact(HeaderName::from_bytes(item.as_bytes()).map_err(|_| {
                    error("a header name, or a prefix ending in * such as X-Auth-*")
                })?),
            };
            patterns.push(pattern);
        }
        Ok(IdentityHeaders {
            set,
            strip: patterns,
        })
    }

    /// Whether the mapping sets no header (the strip list still applies).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Removes the client's copies of every identity header, then sets the gate's from `claims`.
    /// Call after hop-by-hop headers have been removed.
    pub fn apply(&self, headers: &mut HeaderMap, claims: &Map<String, Value>) {
        let spoofed: Vec<HeaderName> = headers
            .keys()
            .filter(|name| {
                self.set.iter().any(|s| s.header == **name)
                    || self.strip.iter().any(|p| p.matches(name))
            })
            .cloned()
            .collect();
        for name in spoofed {
            headers.remove(name);
        }
        for mapping in &self.set {
            let Some(value) = lookup(claims, &mapping.claim) else {
                continue;
            };
            let Some(text) = header_text(value) else {
                continue;
            };
            // `header_text` only yields visible ASCII and spaces, which is always a valid value.
            if let Ok(value) = HeaderValue::from_str(&text) {
                headers.insert(mapping.header.clone(), value);
            }
        }
    }
}

/// The claim named `claim`: a top-level member of exactly that name (namespaced claims such as
/// Auth0's `https://example.com/roles` contain dots), else the dotted path into nested objects.
fn lookup<'a>(claims: &'a Map<String, Value>, claim: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(claim) {
        return Some(v);
    }
    let mut segments = claim.split('.');
    let mut node = claims.get(segments.next()?)?;
    for segment in segments {
        node = node.get(segment)?;
    }
    Some(node)
}

/// A claim value as header text (see the module docs); `None` for `null`.
pub fn header_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .filter(|v| !v.is_null())
                .map(|v| {
                    let text = scalar_text(v);
                    if is_safe(&text) && !text.contains(',') {
                        text
                    } else {
                        encode(&text)
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
        ),
        v => {
            let text = scalar_text(v);
            Some(if is_safe(&text) { text } else { encode(&text) })
        }
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Visible ASCII and inner spaces only, and not already looking encoded.
fn is_safe(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.starts_with(ENCODED_PREFIX)
}

/// RFC 8187 §3.2.1 `ext-value` with charset UTF-8 and no language: `attr-char` kept, the rest `%XX`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(ENCODED_PREFIX.len() + text.len() * 3);
    out.push_str(ENCODED_PREFIX);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn claim_values_become_header_text_and_unsafe_ones_are_encoded_not_dropped() {
        let cases = [
            (json!("alice"), Some("alice")),
            (json!("Doe, John"), Some("Doe, John")),
            (json!(42), Some("42")),
            (json!(true), Some("true")),
            (json!(null), None),
            (json!(["a", "b"]), Some("a,b")),
            (json!([]), Some("")),
            (json!(["a,b", "c"]), Some("UTF-8''a%2Cb,c")),
            (json!(["x", 1, false]), Some("x,1,false")),
            (json!("José"), Some("UTF-8''Jos%C3%A9")),
            (
                json!("a\r\nX-Injected: 1"),
                Some("UTF-8''a%0D%0AX-Injected%3A%201"),
            ),
            (json!(" padded"), Some("UTF-8''%20padded")),
            (json!("UTF-8''%41"), Some("UTF-8''UTF-8%27%27%2541")),
            (json!({"k": "v"}), Some(r#"{"k":"v"}"#)),
        ];
        for (value, expected) in cases {
            assert_eq!(header_text(&value).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn mapped_headers_are_set_from_claims_by_name_or_dotted_path() {
        let ids = IdentityHeaders::parse(
            Some("sub=X-Auth-Subject, realm_access.roles=X-Auth-Roles, https://ex.com/org=X-Org, missing=X-Auth-Missing"),
            "",
        )
        .unwrap();
        let mut h = headers(&[("x-auth-missing", "spoofed")]);
        ids.apply(
            &mut h,
            &claims(
                json!({"sub": "alice", "realm_access": {"roles": ["r1", "r2"]},
                           "https://ex.com/org": "acme"}),
            ),
        );
        assert_eq!(h["x-auth-subject"], "alice");
        assert_eq!(h["x-auth-roles"], "r1,r2");
        assert_eq!(h["x-org"], "acme");
        assert!(
            !h.contains_key("x-auth-missing"),
            "a spoofed copy of an absent claim is removed"
        );
    }

    #[test]
    fn client_copies_of_identity_headers_are_removed_and_replaced() {
        let ids = IdentityHeaders::parse(Some("sub=X-User"), DEFAULT_STRIP).unwrap();
        let mut h = headers(&[
            ("x-user", "mallory"),
            ("x-user", "eve"),
            ("x-forwarded-user", "mallory"),
            ("x-remote-user", "mallory"),
            ("x-auth-request-email", "m@evil"),
            ("x-auth-anything", "1"),
            ("x-forwarded-email", "m@evil"),
            ("x-forwarded-groups", "admin"),
            ("x-forwarded-for", "10.0.0.1"),
            ("mcp-session-id", "s"),
        ]);
        ids.apply(&mut h, &claims(json!({"sub": "alice"})));
        let mut left: Vec<_> = h
            .iter()
            .map(|(k, v)| format!("{k}={}", v.to_str().unwrap()))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "mcp-session-id=s",
                "x-forwarded-for=10.0.0.1",
                "x-user=alice"
            ]
        );
    }

    #[test]
    fn bad_mappings_and_patterns_are_refused_at_start() {
        for bad in [
            "sub",
            "=X-A",
            "a..b=X-A",
            "sub=Bad Header",
            "sub=Authorization",
            "sub=Host",
            "sub=Mcp-Session-Id",
            "sub=X-Forwarded-For",
            "sub=X-A,email=x-a",
        ] {
            assert!(IdentityHeaders::parse(Some(bad), "").is_err(), "{bad}");
        }
        for bad in ["*", "Bad:Header", "X-(*"] {
            assert!(IdentityHeaders::parse(None, bad).is_err(), "{bad}");
        }
        assert!(IdentityHeaders::parse(None, DEFAULT_STRIP).is_ok());
        assert!(IdentityHeaders::parse(Some(""), "").unwrap().is_empty());
    }
}
