//! The Authorization header parser: never panics, and whatever it returns as a token really is a
//! b64token taken from the one `Bearer` header of the request (RFC 6750 §2.1).
//!
//! Input: the query string, then one `Authorization` value per line.
#![no_main]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_gate::auth::bearer::extract;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|b| *b == b'\n');
    let query = lines.next().and_then(|q| std::str::from_utf8(q).ok());
    let mut headers = HeaderMap::new();
    let mut values = Vec::new();
    for line in lines {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(AUTHORIZATION, v);
            values.push(line);
        }
    }
    if let Ok(token) = extract(&headers, query) {
        assert_eq!(values.len(), 1, "a token out of several headers");
        let value = std::str::from_utf8(values[0]).expect("a token from a non-ASCII header");
        assert!(value.contains(token));
        assert!(value.len() > 6 && value[..6].eq_ignore_ascii_case("bearer"));
        assert!(!token.is_empty() && !token.starts_with('='));
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)));
        assert!(!query.is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token")
        }));
    }
});
