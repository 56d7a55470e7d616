//! CORS for browser MCP clients and the MCP `Origin` rule (Streamable HTTP, "Security Warning").
//!
//! Preflights are answered before authentication (a 401 on a preflight blocks the real request); a
//! request whose `Origin` is present but not allowed gets 403 (DNS-rebinding protection); a request
//! without `Origin` (server-side clients such as Claude.ai) is unaffected. The headers JavaScript needs
//! to read — `WWW-Authenticate` to start OAuth, `DPoP-Nonce` (RFC 9449 §8–9), `Mcp-Session-Id` to continue a session — are exposed
//! on every response, refusals included.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};

use crate::http::body::ResponseBody;

/// Request headers every MCP transport revision uses.
const ALLOWED_HEADERS: &str =
    "Authorization, DPoP, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name";
/// What a browser client may read: the challenge, MCP's session headers, and when to retry a 429.
const EXPOSED_HEADERS: &str =
    "WWW-Authenticate, DPoP-Nonce, Mcp-Session-Id, MCP-Protocol-Version, Retry-After, RateLimit, RateLimit-Policy";
const ALLOWED_METHODS: &str = "GET, POST, DELETE, OPTIONS";

/// What a request's `Origin` means for it.
pub enum OriginCheck {
    /// No `Origin`: not a browser cross-origin request.
    Absent,
    /// An allowed origin; responses carry CORS headers for it.
    Allowed(HeaderValue),
    /// A browser page from an origin that may not call this server.
    Forbidden,
}

/// The origin policy of the MCP endpoint.
pub struct Cors {
    allowed: Vec<String>,
}

impl Cors {
    /// `allowed` are exact origins; the resource's own origin is always allowed.
    pub fn new(allowed: &[String], own_origin: String) -> Cors {
        let mut allowed = allowed.to_vec();
        allowed.push(own_origin);
        Cors { allowed }
    }

    pub fn check(&self, headers: &HeaderMap) -> OriginCheck {
        let mut origins = headers.get_all(ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (None, _) => OriginCheck::Absent,
            (Some(origin), None)
                if origin
                    .to_str()
                    .is_ok_and(|o| self.allowed.iter().any(|a| a == o)) =>
            {
                OriginCheck::Allowed(origin.clone())
            }
            _ => OriginCheck::Forbidden,
        }
    }

    /// Whether this request is a CORS preflight.
    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(ORIGIN)
            && headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// The 204 answer to a preflight from an allowed origin.
    pub fn preflight(&self, origin: HeaderValue, request: &HeaderMap) -> Response<ResponseBody> {
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        // Echo the Mcp-* extension headers a client asks for (e.g. 2026's Mcp-Param-*), on top of the fixed list.
        let extra: Vec<&str> = request
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| h.len() > 4 && h[..4].eq_ignore_ascii_case("mcp-"))
            .filter(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .collect();
        let allow_headers = if extra.is_empty() {
            HeaderValue::from_static(ALLOWED_HEADERS)
        } else {
            HeaderValue::from_str(&format!("{ALLOWED_HEADERS}, {}", extra.join(", ")))
                .unwrap_or(HeaderValue::from_static(ALLOWED_HEADERS))
        };
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOWED_METHODS),
        );
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        h.append(VARY, HeaderValue::from_static("Origin"));
        response
    }

    /// Adds the CORS headers for an allowed origin to an actual response.
    pub fn decorate(response: &mut Response<ResponseBody>, origin: HeaderValue) {
        let h = response.headers_mut();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(
            ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
        h.append(VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors() -> Cors {
        Cors::new(
            &["https://app.example.com".into()],
            "https://mcp.example.com".into(),
        )
    }

    fn with_origin(o: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        h
    }

    #[test]
    fn origins_are_matched_exactly() {
        let c = cors();
        assert!(matches!(c.check(&HeaderMap::new()), OriginCheck::Absent));
        assert!(matches!(
            c.check(&with_origin("https://app.example.com")),
            OriginCheck::Allowed(_)
        ));
        assert!(matches!(
            c.check(&with_origin("https://mcp.example.com")),
            OriginCheck::Allowed(_)
        ));
        for bad in [
            "https://app.example.com.evil.com",
            "http://app.example.com",
            "https://APP.example.com",
            "null",
            "",
        ] {
            assert!(
                matches!(c.check(&with_origin(bad)), OriginCheck::Forbidden),
                "{bad}"
            );
        }
    }

    #[test]
    fn preflight_allows_mcp_headers_and_echoes_mcp_extensions() {
        let mut req = with_origin("https://app.example.com");
        req.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        req.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("authorization, mcp-param-x, x-evil"),
        );
        assert!(Cors::is_preflight(&Method::OPTIONS, &req));
        let r = cors().preflight(HeaderValue::from_static("https://app.example.com"), &req);
        assert_eq!(r.status(), 204);
        let allow = r.headers()[ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allow.contains("MCP-Protocol-Version") && allow.contains("mcp-param-x"));
        assert!(!allow.contains("x-evil"));
    }
}
