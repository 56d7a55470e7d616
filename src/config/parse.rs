//! Value parsers shared by the settings: lists, sizes, and the URLs the gate publishes or calls.
//!
//! The resource identifier follows RFC 8707 §2 and RFC 9728 §1.2 (absolute, no fragment, compared
//! byte for byte by clients); authorization-server and JWKS URLs must be `https` except on loopback
//! (RFC 8414 §2, RFC 9728 §7.1).

use std::borrow::Cow;
use std::net::IpAddr;

use super::vars::{Var, Vars};
use super::{invalid, ConfigError};

/// Lists accept commas, spaces or both.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `4MiB`, `512KiB`, `1MB` or plain bytes; `None` for anything else or on overflow.
pub(super) fn parse_size(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (num, unit) = raw.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// True for `localhost` and loopback addresses, where plain HTTP cannot be intercepted off-host.
pub fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses an absolute http(s) URL; `https` is demanded unless the host is loopback or insecure HTTP is allowed.
pub(super) fn secure_url(
    var: Var,
    raw: &str,
    allow_insecure: bool,
) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(raw).map_err(|_| {
        let example = if var == Var::RESOURCE_URI {
            "https://mcp.example.com/mcp"
        } else {
            "https://idp.example.com"
        };
        invalid(var, raw, format!("an absolute URL such as {example}"))
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure || is_loopback_host(&url) => Ok(url),
        "http" => Err(invalid(
            var,
            raw,
            "an https:// URL (plain http is only allowed for loopback hosts or with ALLOW_INSECURE_HTTP=true)",
        )),
        _ => Err(invalid(var, raw, "an http(s) URL")),
    }
}

/// The resource identifier must be usable verbatim as an RFC 8707 `resource` and RFC 9728 `resource`.
pub(super) fn resource(raw: &str, allow_insecure: bool) -> Result<url::Url, ConfigError> {
    const VAR: Var = Var::RESOURCE_URI;
    let url = secure_url(VAR, raw, allow_insecure)?;
    if url.fragment().is_some() || raw.contains('#') {
        return Err(invalid(VAR, raw, "a URL without a fragment (RFC 8707 §2)"));
    }
    if url.path().len() > 1 && url.path().ends_with('/') {
        return Err(invalid(
            VAR,
            raw,
            "a URL without a trailing slash (clients compare it byte for byte), e.g. https://mcp.example.com/mcp",
        ));
    }
    // The url crate normalises (lower-cases the host, adds "/" to an empty path); clients compare the
    // string we publish with the URL they were given, so the configured string must already be canonical.
    let canonical = url.as_str();
    let same = canonical == raw || (url.path() == "/" && canonical.strip_suffix('/') == Some(raw));
    if !same {
        return Err(invalid(
            VAR,
            raw,
            format!(
                "a canonical URL (lower-case scheme and host, no default port), e.g. {canonical}"
            ),
        ));
    }
    if raw.ends_with('/') {
        return Err(invalid(
            VAR,
            raw,
            "a URL without a trailing slash, e.g. https://mcp.example.com",
        ));
    }
    Ok(url)
}

/// `UPSTREAM_URL`: an absolute http(s) base URL without query, fragment or credentials.
///
/// Credentials (`http://svc:pw@host`) are refused: the proxy never sends them (it builds each
/// upstream request from scheme, host and path), so they would be silently unused, and the URL is
/// logged at start. Every message about this variable shows the value with its userinfo masked.
pub(super) fn upstream(v: &Vars) -> Result<url::Url, ConfigError> {
    const VAR: Var = Var::UPSTREAM_URL;
    let raw = v.required(
        VAR,
        "the upstream MCP server's URL, e.g. http://127.0.0.1:3000",
    )?;
    let shown = without_userinfo(raw);
    let upstream =
        url::Url::parse(raw).map_err(|_| invalid(VAR, &shown, "an absolute http(s) URL"))?;
    if !upstream.username().is_empty() || upstream.password().is_some() {
        return Err(invalid(
            VAR,
            &shown,
            "a URL without user name or password (the gate does not send them to the upstream; use FORWARD_TOKEN or network policy instead)",
        ));
    }
    if !matches!(upstream.scheme(), "http" | "https") || upstream.host().is_none() {
        return Err(invalid(VAR, &shown, "an absolute http(s) URL"));
    }
    if upstream.query().is_some() || upstream.fragment().is_some() {
        return Err(invalid(VAR, &shown, "a URL without query or fragment"));
    }
    Ok(upstream)
}

/// `raw` with the userinfo of its authority (everything up to the last `@` before the path)
/// replaced by `***`, so an error message never repeats a password.
fn without_userinfo(raw: &str) -> Cow<'_, str> {
    let Some(start) = raw.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(raw);
    };
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    match raw[start..end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}***{}", &raw[..start], &raw[start + at..])),
        None => Cow::Borrowed(raw),
    }
}

/// `TRUSTED_PROXIES`: networks in CIDR notation (`10.0.0.0/8`, `fd00::/8`) or single addresses
/// (`127.0.0.1`, taken as /32 or /128), separated by commas or spaces. One bad entry refuses the
/// whole setting: a typo must not quietly trust nobody, or the wrong network.
pub(super) fn trusted_proxies(v: &Vars) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    const VAR: Var = Var::TRUSTED_PROXIES;
    let Some(raw) = v.get(VAR) else {
        return Ok(Vec::new());
    };
    split_list(raw)
        .iter()
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    invalid(
                        VAR,
                        raw,
                        format!(
                            "{entry:?} is not a CIDR or an IP address (e.g. 10.0.0.0/8,127.0.0.1/32)"
                        ),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("1MB"), Some(1_000_000));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn lists_accept_commas_spaces_or_both() {
        assert_eq!(split_list("a, b  c,,d"), ["a", "b", "c", "d"]);
        assert!(split_list(" , ").is_empty());
    }

    #[test]
    fn userinfo_is_masked_in_what_is_shown() {
        for (raw, shown) in [
            ("http://svc:pw@host:3000/mcp", "http://***@host:3000/mcp"),
            ("http://svc@host", "http://***@host"),
            ("http://a:b@c@host/x@y", "http://***@host/x@y"),
            ("http://host/p@th", "http://host/p@th"),
            ("http://host?u=a@b", "http://host?u=a@b"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(without_userinfo(raw), shown, "{raw}");
        }
    }

    fn upstream_of(raw: &str) -> Result<url::Url, ConfigError> {
        let map = HashMap::from([("UPSTREAM_URL".to_string(), raw.to_string())]);
        upstream(&Vars::new(&map))
    }

    #[test]
    fn upstream_url_with_credentials_is_refused_without_repeating_them() {
        for raw in [
            "http://svc:s3cret@upstream:3000",
            "https://svc:s3cret@upstream/base",
            "http://s3cret@upstream",
            "ftp://svc:s3cret@upstream",
        ] {
            let e = upstream_of(raw).unwrap_err().to_string();
            assert!(e.starts_with("UPSTREAM_URL="), "{raw}: {e}");
            assert!(!e.contains("s3cret"), "{raw}: {e}");
        }
        let e = upstream_of("http://svc:s3cret@upstream:3000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without user name or password"), "{e}");
        assert!(e.contains("http://***@upstream:3000"), "{e}");
        assert!(upstream_of("http://upstream:3000/base").is_ok());
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses_and_a_bad_entry_stops_start_up() {
        let parsed = |raw: &str| {
            let m =
                std::collections::HashMap::from([("TRUSTED_PROXIES".to_string(), raw.to_string())]);
            trusted_proxies(&Vars::new(&m))
        };
        let nets = |raw: &str| -> Vec<String> {
            parsed(raw)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            nets("10.0.0.0/8,127.0.0.1/32"),
            ["10.0.0.0/8", "127.0.0.1/32"]
        );
        assert_eq!(nets("192.0.2.7 ::1"), ["192.0.2.7/32", "::1/128"]);
        assert_eq!(nets("10.1.2.3/8"), ["10.0.0.0/8"]);
        for bad in ["10.0.0.0/33", "10.0.0/8", "proxy.internal", "10.0.0.0/8,x"] {
            let e = parsed(bad).unwrap_err().to_string();
            assert!(e.starts_with("TRUSTED_PROXIES="), "{bad}: {e}");
        }
        let empty = std::collections::HashMap::new();
        assert!(
            trusted_proxies(&Vars::new(&empty)).unwrap().is_empty(),
            "trusts nobody by default"
        );
    }
}
