//! The `htu` of a DPoP proof (RFC 9449 §4.3 item 9) and the URI it must equal: both absolute http(s)
//! URIs compared after RFC 3986 §6.2.2 normalisation, without query and fragment. Pure.

/// An `htu` as compared (RFC 9449 §4.3 item 9, RFC 3986 §6.2.2): absolute http(s) URI, scheme and
/// host lower-cased, default port dropped, dot-segments removed, percent-encodings upper-cased and
/// unreserved characters decoded; query and fragment cut off. `None` when it is not such a URI.
pub fn normalize_htu(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = normalize_percent_encoding(url.path());
    url.set_path(&path);
    Some(url.to_string())
}

/// The `htu` a client at `resource`'s origin uses for `path` (behind a proxy the gate's own view of
/// scheme and host is wrong, so the origin comes from `RESOURCE_URI`), normalised.
pub fn expected_htu(resource: &url::Url, path: &str) -> Option<String> {
    let origin = resource.origin().ascii_serialization();
    let path = if path.starts_with('/') { path } else { "/" };
    normalize_htu(&format!("{origin}{path}"))
}

/// `%2f` → `%2F`; `%41` → `A` (RFC 3986 §6.2.2.1–2).
fn normalize_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = &bytes[i + 1..bytes.len().min(i + 3)];
            if hex.len() == 2 && hex.iter().all(u8::is_ascii_hexdigit) {
                let hex = &path[i + 1..i + 3];
                let b = u8::from_str_radix(hex, 16).expect("two hex digits");
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                    out.push(b as char);
                } else {
                    out.push('%');
                    out.push_str(&hex.to_ascii_uppercase());
                }
                i += 3;
                continue;
            }
            // A `%` that starts no escape is itself escaped: otherwise a byte decoded right after
            // it (`%%34` → `%4`) would form a new escape, and normalising twice would differ.
            out.push_str("%25");
            i += 1;
            continue;
        }
        out.push(bytes[i] as char);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_rfc_3986_and_is_idempotent() {
        assert_eq!(
            normalize_htu("https://h/a%2fb"),
            normalize_htu("https://h/a%2Fb")
        );
        assert_ne!(
            normalize_htu("https://h/a%2Fb"),
            normalize_htu("https://h/a/b")
        );
        for raw in [
            // Found by the dpop_proof fuzz target: a stray `%` before an escape of a digit.
            "HTTPS:TTP4/:S0/%%34ea22E/#y",
            "https://h/a%%41b%",
            "https://h/%+4x",
            "HTTPS://MCP.Example.COM:443/a/%2e%2E/mcp?x#y",
            "https://h/%7e%41%2f%25",
            "http://h:8080/a b",
        ] {
            let once = normalize_htu(raw).unwrap();
            assert_eq!(
                normalize_htu(&once).as_deref(),
                Some(once.as_str()),
                "{raw}"
            );
        }
        assert_eq!(
            normalize_htu("HTTPS://MCP.Example.COM:443/a/%2e%2E/mcp?x#y").as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        assert_eq!(
            normalize_htu("https://h/%7e%41%2f").as_deref(),
            Some("https://h/~A%2F")
        );
        assert_eq!(normalize_htu("ftp://h/x"), None);
        assert_eq!(normalize_htu("mailto:a@b"), None);
        assert_eq!(normalize_htu("/mcp"), None);
        let resource = url::Url::parse("https://mcp.example.com/mcp").unwrap();
        assert_eq!(
            expected_htu(&resource, "/mcp/x").as_deref(),
            Some("https://mcp.example.com/mcp/x")
        );
    }
}
