//! Every failure the gate answers itself that is not about the token: one [`GateError`] value, one
//! response, one access-log `reason`.
//!
//! Authentication refusals have their own closed enum and challenges ([`crate::auth::Refusal`],
//! [`crate::auth::challenge`]); everything else the gate says on its own — a request it will not
//! forward, an upstream that failed — is a `GateError`. Its status, JSON body and log reason are
//! decided here and nowhere else, so an operator can grep one `reason` and a client always gets the
//! same body for the same failure.

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode, Version};
use serde_json::json;

use crate::http::body::ResponseBody;

/// A request the gate answers itself with an error, for a reason other than the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// `Transfer-Encoding` and `Content-Length` that two parsers could read differently (RFC 9112 §6).
    #[error("the request's message framing is ambiguous")]
    AmbiguousFraming,
    /// A browser `Origin` not in `CORS_ALLOWED_ORIGINS`.
    #[error("requests from this origin are not allowed")]
    ForbiddenOrigin,
    /// A request target the gate cannot turn into an upstream URI: `*` with a method other than
    /// OPTIONS (RFC 9112 §3.2.4), an encoded slash in the path.
    #[error("the request target is malformed")]
    MalformedTarget,
    /// No `Host` on HTTP/1.1, more than one, an invalid one, or one that contradicts HTTP/2's
    /// `:authority` (RFC 9112 §3.2, RFC 9113 §8.3.1).
    #[error("the request must carry exactly one valid Host header")]
    BadHost,
    /// CONNECT asks for a tunnel the gate could not inspect; it is never forwarded.
    #[error("the CONNECT method is not supported")]
    ConnectNotSupported,
    /// The client's body broke off or had bad chunk framing.
    #[error("the request body is malformed or incomplete")]
    MalformedBody,
    /// The body is larger than `MAX_REQUEST_BODY`.
    #[error("the request body exceeds the gate's limit")]
    BodyTooLarge,
    /// The upstream could not be reached or broke the exchange.
    #[error("the upstream MCP server could not be reached")]
    UpstreamUnreachable,
    /// The upstream answered with something the gate cannot relay: a `101 Switching Protocols` to a
    /// request that asked for no upgrade (the gate never forwards one).
    #[error("the upstream MCP server sent a response the gate cannot relay")]
    UpstreamBadResponse,
    /// The upstream sent no response headers within `UPSTREAM_TIMEOUT`.
    #[error("the upstream MCP server did not answer within UPSTREAM_TIMEOUT")]
    UpstreamTimeout,
    /// A filtered `tools/list` result the gate could not filter safely (duplicate member names, or
    /// larger than the bound): withheld rather than passed on unfiltered (`FILTER_TOOLS_LIST`).
    #[error("the upstream's tools/list result could not be filtered safely")]
    ToolsListWithheld,
    /// The metadata document answers only GET, HEAD and OPTIONS.
    #[error("the metadata document supports GET, HEAD and OPTIONS")]
    MetadataMethodNotAllowed,
    /// The metrics listener serves only `/metrics`.
    #[error("metrics are at /metrics")]
    MetricsNotFound,
    /// A request head hyper could not parse (bad request line, target or header). hyper answers it
    /// itself before the gate sees a request; the gate only logs and counts it.
    #[error("the request is malformed")]
    MalformedRequest,
    /// A request head over `MAX_HEADER_SIZE`; answered by hyper itself, like `MalformedRequest`.
    #[error("the request header block is too large")]
    HeaderTooLarge,
    /// A request target over hyper's own URI limit (64 KiB); answered by hyper itself.
    #[error("the request target is too long")]
    UriTooLong,
    /// Over `RATE_LIMIT_IP`, `RATE_LIMIT_SUBJECT` or `RATE_LIMIT_TOOL` (RFC 6585 §4); `limits::refusal` adds
    /// `Retry-After` and the `RateLimit` fields, the access log's `limit` says which.
    #[error("too many requests; retry after the time in Retry-After")]
    RateLimited,
    /// The shared rate-limit store did not answer and `RATE_LIMIT_REDIS_FAILURE=closed`.
    #[error("the rate-limit store is unavailable")]
    RateLimitUnavailable,
    /// `TOKEN_EXCHANGE`: the authorization server gave no usable token for the upstream (refused,
    /// unreachable, slow or garbled, RFC 8693 §2.2); the request is not forwarded at all.
    #[error("the token for the upstream MCP server could not be obtained")]
    TokenExchangeFailed,
}

impl GateError {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            GateError::AmbiguousFraming
            | GateError::MalformedTarget
            | GateError::BadHost
            | GateError::MalformedBody => StatusCode::BAD_REQUEST,
            GateError::ConnectNotSupported => StatusCode::NOT_IMPLEMENTED,
            GateError::ForbiddenOrigin => StatusCode::FORBIDDEN,
            GateError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GateError::UpstreamUnreachable | GateError::UpstreamBadResponse => {
                StatusCode::BAD_GATEWAY
            }
            GateError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            GateError::ToolsListWithheld => StatusCode::BAD_GATEWAY,
            GateError::MetadataMethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GateError::MetricsNotFound => StatusCode::NOT_FOUND,
            GateError::MalformedRequest => StatusCode::BAD_REQUEST,
            GateError::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            GateError::UriTooLong => StatusCode::URI_TOO_LONG,
            GateError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            GateError::RateLimitUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            GateError::TokenExchangeFailed => StatusCode::BAD_GATEWAY,
        }
    }

    /// The refusal hyper sent on its own when a connection ended with `error`, if it sent one: an
    /// HTTP/1 request head it could not parse (hyper's `Server::on_error` answers 400, 414 or 431
    /// and closes). Timeouts, I/O errors and HTTP/2 protocol errors get no response, so no line.
    pub fn answered_by_hyper(error: &(dyn std::error::Error + 'static)) -> Option<GateError> {
        let error = error.downcast_ref::<hyper::Error>()?;
        if !error.is_parse() || error.is_parse_status() || error.is_parse_version_h2() {
            return None;
        }
        if error.is_parse_too_large() {
            // hyper's public API folds "URI too long" (414) into "too large"; only its message
            // tells them apart, and a head over MAX_HEADER_SIZE is by far the common case.
            return Some(if error.to_string().contains("URI too long") {
                GateError::UriTooLong
            } else {
                GateError::HeaderTooLarge
            });
        }
        Some(GateError::MalformedRequest)
    }

    /// The access log's and the refusal metric's `reason`: stable, snake_case, one per variant.
    pub fn reason(self) -> &'static str {
        match self {
            GateError::AmbiguousFraming => "ambiguous_framing",
            GateError::ForbiddenOrigin => "forbidden_origin",
            GateError::MalformedTarget => "malformed_target",
            GateError::BadHost => "bad_host",
            GateError::ConnectNotSupported => "connect_not_supported",
            GateError::MalformedBody => "malformed_body",
            GateError::BodyTooLarge => "request_too_large",
            GateError::UpstreamUnreachable => "upstream_unreachable",
            GateError::UpstreamBadResponse => "upstream_bad_response",
            GateError::UpstreamTimeout => "upstream_timeout",
            GateError::ToolsListWithheld => "tools_list_withheld",
            GateError::MetadataMethodNotAllowed => "method_not_allowed",
            GateError::MetricsNotFound => "not_found",
            GateError::MalformedRequest => "malformed_request",
            GateError::HeaderTooLarge => "header_too_large",
            GateError::UriTooLong => "uri_too_long",
            GateError::RateLimited => "rate_limited",
            GateError::RateLimitUnavailable => "rate_limit_unavailable",
            GateError::TokenExchangeFailed => "token_exchange_failed",
        }
    }

    /// The JSON body's `error`, in the OAuth style of the gate's other errors.
    fn code(self) -> &'static str {
        match self {
            GateError::AmbiguousFraming
            | GateError::MalformedTarget
            | GateError::MalformedBody
            | GateError::MalformedRequest
            | GateError::BadHost => "invalid_request",
            GateError::HeaderTooLarge => "header_too_large",
            GateError::UriTooLong => "uri_too_long",
            GateError::ConnectNotSupported => "not_implemented",
            GateError::ForbiddenOrigin => "forbidden_origin",
            GateError::BodyTooLarge => "request_too_large",
            GateError::UpstreamUnreachable | GateError::UpstreamBadResponse => "bad_gateway",
            GateError::UpstreamTimeout => "gateway_timeout",
            GateError::ToolsListWithheld => "bad_gateway",
            GateError::MetadataMethodNotAllowed => "method_not_allowed",
            GateError::MetricsNotFound => "not_found",
            GateError::RateLimited => "rate_limited",
            GateError::RateLimitUnavailable => "temporarily_unavailable",
            GateError::TokenExchangeFailed => "bad_gateway",
        }
    }

    /// Whether the failure is the upstream's (502/504) rather than the client's.
    pub fn is_upstream(self) -> bool {
        matches!(
            self,
            GateError::UpstreamUnreachable
                | GateError::UpstreamBadResponse
                | GateError::UpstreamTimeout
                | GateError::ToolsListWithheld
                | GateError::TokenExchangeFailed
        )
    }

    /// Whether an HTTP/1.1 connection must close after the answer: where a request's body ends is
    /// in doubt, so nothing after it on the connection can be trusted to be the next request.
    fn closes_connection(self) -> bool {
        matches!(self, GateError::AmbiguousFraming | GateError::MalformedBody)
    }

    /// The response for a request that arrived over `version`.
    pub fn response(self, version: Version) -> Response<ResponseBody> {
        let mut response = json_error(self.status(), self.code(), &capitalized(self));
        let headers = response.headers_mut();
        if self.closes_connection() && version < Version::HTTP_2 {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        if self == GateError::MetadataMethodNotAllowed {
            headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        }
        response
    }
}

/// The display text as a sentence for the body's `error_description`.
fn capitalized(e: GateError) -> String {
    let text = e.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// A small `{"error", "error_description"}` JSON response, never cached.
pub(crate) fn json_error(
    status: StatusCode,
    error: &str,
    description: &str,
) -> Response<ResponseBody> {
    let body = json!({"error": error, "error_description": description}).to_string();
    let mut response = Response::new(ResponseBody::from(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [GateError; 19] = [
        GateError::AmbiguousFraming,
        GateError::ForbiddenOrigin,
        GateError::MalformedTarget,
        GateError::BadHost,
        GateError::ConnectNotSupported,
        GateError::UpstreamBadResponse,
        GateError::MalformedBody,
        GateError::BodyTooLarge,
        GateError::UpstreamUnreachable,
        GateError::UpstreamTimeout,
        GateError::ToolsListWithheld,
        GateError::MetadataMethodNotAllowed,
        GateError::MetricsNotFound,
        GateError::MalformedRequest,
        GateError::HeaderTooLarge,
        GateError::UriTooLong,
        GateError::RateLimited,
        GateError::RateLimitUnavailable,
        GateError::TokenExchangeFailed,
    ];

    #[test]
    fn every_error_has_a_distinct_reason_and_a_json_body_with_its_status() {
        let mut reasons: Vec<_> = ALL.iter().map(|e| e.reason()).collect();
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), ALL.len());
        for e in ALL {
            let response = e.response(Version::HTTP_11);
            assert_eq!(response.status(), e.status(), "{e:?}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        }
    }

    #[test]
    fn only_ambiguous_bodies_close_an_http1_connection() {
        for e in ALL {
            let h1 = e.response(Version::HTTP_11);
            let h2 = e.response(Version::HTTP_2);
            let expect = matches!(e, GateError::AmbiguousFraming | GateError::MalformedBody);
            assert_eq!(h1.headers().contains_key(CONNECTION), expect, "{e:?}");
            assert!(!h2.headers().contains_key(CONNECTION), "{e:?}");
        }
    }

    #[test]
    fn errors_that_are_not_hyper_parse_errors_were_not_answered_by_hyper() {
        let io = std::io::Error::other("reset");
        assert_eq!(GateError::answered_by_hyper(&io), None);
    }

    #[test]
    fn upstream_errors_are_502_and_504() {
        assert_eq!(GateError::UpstreamUnreachable.status(), 502);
        assert_eq!(GateError::UpstreamTimeout.status(), 504);
        assert_eq!(GateError::UpstreamBadResponse.status(), 502);
        assert!(GateError::UpstreamTimeout.is_upstream());
        assert!(GateError::UpstreamBadResponse.is_upstream());
        assert!(!GateError::BodyTooLarge.is_upstream());
        assert_eq!(GateError::TokenExchangeFailed.status(), 502);
        assert!(GateError::TokenExchangeFailed.is_upstream());
    }
}
