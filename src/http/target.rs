//! What a request names and where it may go upstream: the request-target forms (RFC 9112 §3.2), the
//! `Host` rules (RFC 9112 §3.2, RFC 9113 §8.3.1) and the path the upstream receives, with dot-segments
//! removed (RFC 3986 §5.2.4) so that no path leaves `UPSTREAM_URL`'s base path.
//!
//! Everything here is a pure decision over the request line and headers; [`crate::proxy`] builds the
//! upstream URI from the parts (scheme, authority, path-and-query), never by concatenating strings, so
//! no target can change the upstream's host or port.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Uri, Version};

use crate::http::error::GateError;

/// The form of an accepted request's target, once authentication has passed (RFC 9112 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Origin form (`/mcp?x`) or absolute form (`http://x/mcp`): forwarded, with only its path and
    /// query; the absolute form's authority never reaches the upstream URI.
    Forward,
    /// `OPTIONS *`: a question about the gate itself, answered locally.
    ServerOptions,
}

/// Decides what an authenticated request's target asks for: `*` is valid only with OPTIONS
/// (RFC 9112 §3.2.4), and CONNECT (authority form, HTTP/1.1 or HTTP/2) would open a tunnel the gate
/// could not inspect, so it is never forwarded.
pub fn classify(method: &Method, uri: &Uri) -> Result<Target, GateError> {
    if method == Method::CONNECT {
        return Err(GateError::ConnectNotSupported);
    }
    match uri.path_and_query().map(PathAndQuery::as_str) {
        Some("*") if method == Method::OPTIONS => Ok(Target::ServerOptions),
        Some(pq) if pq.starts_with('/') => Ok(Target::Forward),
        _ => Err(GateError::MalformedTarget),
    }
}

/// The `Host` rules of RFC 9112 §3.2: an HTTP/1.1 request has exactly one `Host`, and it is a valid
/// `uri-host [":" port]` (empty is allowed: a target without authority). Over HTTP/2 a `host` field is
/// optional but must agree with `:authority` (RFC 9113 §8.3.1). hyper checks none of this.
pub fn check_host(version: Version, uri: &Uri, headers: &HeaderMap) -> Result<(), GateError> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(GateError::BadHost);
    }
    match host {
        None if version == Version::HTTP_11 => Err(GateError::BadHost),
        None => Ok(()),
        Some(h) if !is_valid_host(h.as_bytes()) => Err(GateError::BadHost),
        Some(h) if version >= Version::HTTP_2 => match uri.authority() {
            Some(a)
                if !a
                    .as_str()
                    .eq_ignore_ascii_case(&String::from_utf8_lossy(h.as_bytes())) =>
            {
                Err(GateError::BadHost)
            }
            _ => Ok(()),
        },
        Some(_) => Ok(()),
    }
}

/// The host the client addressed, for `X-Forwarded-Host`: the absolute-form authority when there is
/// one (the server MUST ignore `Host` then, RFC 9112 §3.2.2), HTTP/2's `:authority` (RFC 9113
/// §8.3.1, which hyper puts in the URI too), else the single `Host` field checked by [`check_host`].
pub fn original_host(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    if let Some(authority) = uri.authority() {
        // An absolute-form target may carry userinfo (`http://u@h/`); it is no part of the host.
        let host = authority
            .as_str()
            .rsplit_once('@')
            .map_or(authority.as_str(), |(_, h)| h);
        return HeaderValue::from_str(host).ok();
    }
    headers.get(header::HOST).filter(|h| !h.is_empty()).cloned()
}

/// `uri-host [":" port]` (RFC 3986 §3.2.2): an IP literal in brackets or a reg-name / IPv4 address of
/// unreserved, sub-delims and pct-encoded characters, then an optional decimal port. Empty is valid.
fn is_valid_host(value: &[u8]) -> bool {
    let (host, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => {
                let literal = &value[1..end];
                if literal.is_empty()
                    || !literal
                        .iter()
                        .all(|b| b.is_ascii_hexdigit() || b":.vV".contains(b))
                {
                    return false;
                }
                (&value[..0], &value[end + 1..])
            }
            None => return false,
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[value.len()..]),
        },
    };
    let host_ok = host
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b));
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    host_ok && port_ok
}

/// The path-and-query the upstream receives: `base` (`UPSTREAM_URL`'s path, no trailing slash) joined
/// with the request's path after removing its dot-segments (RFC 3986 §5.2.4), literal or
/// percent-encoded (`%2e` is `.`, RFC 3986 §2.3), so `..` stops at the base. An encoded slash or
/// backslash (`%2f`, `%5c`) is refused: an upstream that decodes it before normalising would see a
/// segment boundary the gate did not, and a `..` next to it could leave the base there.
///
/// Returns the request's own value, unallocated, when there is no base and nothing to remove (the
/// common case: `/mcp`).
pub fn upstream_path<'a>(
    base: &str,
    request: &'a PathAndQuery,
) -> Result<Cow<'a, PathAndQuery>, GateError> {
    let path = request.path();
    if has_encoded_separator(path) {
        return Err(GateError::MalformedTarget);
    }
    let clean = !path.split('/').any(is_dot_segment);
    if clean && base.is_empty() {
        return Ok(Cow::Borrowed(request));
    }
    let mut joined = String::with_capacity(base.len() + request.as_str().len());
    joined.push_str(base);
    if clean {
        joined.push_str(path);
    } else {
        remove_dot_segments(path, &mut joined);
    }
    if let Some(query) = request.query() {
        joined.push('?');
        joined.push_str(query);
    }
    PathAndQuery::try_from(joined)
        .map(Cow::Owned)
        .map_err(|_| GateError::MalformedTarget)
}

/// `.` or `..`, with any dot written as `%2e` or `%2E`.
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        match rest {
            [b'.', tail @ ..] => rest = tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => rest = tail,
            _ => return false,
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

fn has_encoded_separator(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && ((w[1] == b'2' && w[2].eq_ignore_ascii_case(&b'f'))
                || (w[1] == b'5' && w[2].eq_ignore_ascii_case(&b'c')))
    })
}

/// RFC 3986 §5.2.4 for an absolute path, appended to `out`: `.` segments vanish and `..` removes the
/// segment before it, never reaching above the root (so never above the base `out` already holds).
fn remove_dot_segments(path: &str, out: &mut String) {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut ends_in_dir = false;
    for (i, segment) in segments.into_iter().enumerate() {
        if is_dot_segment(segment) {
            let is_parent = segment.len() > 1 && segment != "%2e" && segment != "%2E";
            if is_parent {
                kept.pop();
            }
            // `/a/..` and `/a/.` name a directory: the result keeps its trailing slash.
            ends_in_dir = i == last;
        } else {
            kept.push(segment);
            ends_in_dir = false;
        }
    }
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if ends_in_dir || kept.is_empty() {
        out.push('/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pq(s: &str) -> PathAndQuery {
        s.parse().unwrap()
    }

    #[test]
    fn paths_never_leave_the_base_and_dot_segments_are_removed() {
        for (base, request, expect) in [
            ("", "/mcp", "/mcp"),
            ("", "/mcp?x=1&y=..", "/mcp?x=1&y=.."),
            ("/tenant-a", "/mcp?a=b", "/tenant-a/mcp?a=b"),
            ("/tenant-a", "/../tenant-b/mcp", "/tenant-a/tenant-b/mcp"),
            (
                "/tenant-a",
                "/%2e%2e/tenant-b/mcp",
                "/tenant-a/tenant-b/mcp",
            ),
            (
                "/tenant-a",
                "/%2E%2E/tenant-b/mcp",
                "/tenant-a/tenant-b/mcp",
            ),
            ("/tenant-a", "/.%2e/tenant-b/mcp", "/tenant-a/tenant-b/mcp"),
            (
                "/tenant-a",
                "/../../../../etc/passwd",
                "/tenant-a/etc/passwd",
            ),
            ("/tenant-a", "/x/../mcp", "/tenant-a/mcp"),
            ("/tenant-a", "/./mcp/.", "/tenant-a/mcp/"),
            ("/tenant-a", "/mcp/%2e", "/tenant-a/mcp/"),
            ("/tenant-a", "/..", "/tenant-a/"),
            ("/tenant-a", "/", "/tenant-a/"),
            ("", "/../mcp?q=1", "/mcp?q=1"),
            ("", "/a/b/../../..", "/"),
            // Not dot-segments: dots inside a name, three dots.
            ("/b", "/v1.2/..a/.../mcp", "/b/v1.2/..a/.../mcp"),
        ] {
            let request = pq(request);
            let got = upstream_path(base, &request).unwrap();
            assert_eq!(got.as_str(), expect, "{base} + {request}");
        }
    }

    #[test]
    fn a_clean_path_without_base_is_reused_without_allocating() {
        let request = pq("/mcp?x=1");
        assert!(matches!(upstream_path("", &request), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn encoded_slashes_and_backslashes_are_refused() {
        for request in ["/..%2ftenant-b/mcp", "/a%2Fb", "/..%5c..%5cmcp", "/a%5Cb"] {
            assert_eq!(
                upstream_path("/tenant-a", &pq(request)),
                Err(GateError::MalformedTarget),
                "{request}"
            );
        }
    }

    #[test]
    fn asterisk_is_for_options_only_and_connect_is_never_forwarded() {
        let star: Uri = "*".parse().unwrap();
        let origin: Uri = "/mcp".parse().unwrap();
        let absolute: Uri = "http://evil.example/mcp".parse().unwrap();
        let authority: Uri = "127.0.0.1:3000".parse().unwrap();
        assert_eq!(classify(&Method::OPTIONS, &star), Ok(Target::ServerOptions));
        for m in [Method::GET, Method::POST, Method::DELETE, Method::HEAD] {
            assert_eq!(classify(&m, &star), Err(GateError::MalformedTarget), "{m}");
        }
        assert_eq!(classify(&Method::POST, &origin), Ok(Target::Forward));
        assert_eq!(classify(&Method::POST, &absolute), Ok(Target::Forward));
        for uri in [&authority, &origin, &star] {
            assert_eq!(
                classify(&Method::CONNECT, uri),
                Err(GateError::ConnectNotSupported)
            );
        }
    }

    #[test]
    fn http11_needs_exactly_one_valid_host_and_http2_a_host_agreeing_with_authority() {
        let check = |version, uri: &str, hosts: &[&str]| {
            let mut h = HeaderMap::new();
            for v in hosts {
                h.append(header::HOST, HeaderValue::from_str(v).unwrap());
            }
            check_host(version, &uri.parse().unwrap(), &h)
        };
        use Version as V;
        for hosts in [
            &["x"][..],
            &["mcp.example.com:8443"],
            &["127.0.0.1:8080"],
            &["[::1]:8080"],
            &["[::1]"],
            &[""],
        ] {
            assert_eq!(check(V::HTTP_11, "/mcp", hosts), Ok(()), "{hosts:?}");
        }
        for hosts in [
            &[][..],
            &["a", "b"],
            &["a", "a"],
            &["a b"],
            &["u@h"],
            &["h:80:80"],
            &["h:port"],
            &["h/x"],
            &["[::1"],
            &["[zz]"],
            &["h:123456"],
        ] {
            assert_eq!(
                check(V::HTTP_11, "/mcp", hosts),
                Err(GateError::BadHost),
                "{hosts:?}"
            );
        }
        assert_eq!(check(V::HTTP_10, "/mcp", &[]), Ok(()));
        assert_eq!(check(V::HTTP_2, "http://a/mcp", &[]), Ok(()));
        assert_eq!(check(V::HTTP_2, "http://a/mcp", &["A"]), Ok(()));
        assert_eq!(
            check(V::HTTP_2, "http://a/mcp", &["b"]),
            Err(GateError::BadHost)
        );
    }

    #[test]
    fn forwarded_host_comes_from_the_absolute_form_authority_before_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("from-host"));
        let host = |uri: &str, h: &HeaderMap| original_host(&uri.parse().unwrap(), h);
        assert_eq!(
            host("http://abs.example:81/mcp", &h).unwrap(),
            "abs.example:81"
        );
        assert_eq!(host("http://u@abs.example/mcp", &h).unwrap(), "abs.example");
        assert_eq!(host("/mcp", &h).unwrap(), "from-host");
        assert_eq!(host("/mcp", &HeaderMap::new()), None);
    }
}
