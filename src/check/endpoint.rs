//! The MCP endpoint itself, as a client first meets it: the transport (https on 443), the status of
//! an unauthenticated `initialize` (a 401 starts OAuth; MCP authorization, RFC 6750 §3) and the
//! 401's body (JSON, never an HTML page from a WAF).

use serde_json::Value;

use super::report::Check;
use crate::config::is_loopback_host;

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
pub(super) fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(40)]);
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::report::Status;

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
}
