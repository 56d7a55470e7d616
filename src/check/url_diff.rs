//! Says in words how two URLs differ (trailing slash, scheme, host case, port, path), for the rules
//! that demand byte-for-byte identity: `resource` (RFC 9728 §3.3), `issuer` (RFC 8414 §3.3), `aud`.
//! The URLs are compared as written, never normalised: normalising would hide the very difference
//! that makes a client refuse.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
