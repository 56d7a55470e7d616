//! The streaming reverse proxy to the upstream MCP server.
//!
//! Bodies stream both ways, frame by frame, with no buffering and no idle timeout (an SSE stream lives
//! as long as the upstream keeps it open); only the wait for the upstream's response headers is
//! bounded. The upstream URI is built from parts: the upstream's scheme and authority, and the request's
//! path under `UPSTREAM_URL`'s base path ([`crate::http::target`]). Hop-by-hop headers are dropped
//! (RFC 9110 §7.6.1); `Host` becomes the upstream's authority (MCP SDK servers refuse a foreign `Host`
//! with 421); the forwarded headers say what the gate saw ([`crate::http::forwarded`]); every other
//! header, `Mcp-*` included, passes unchanged, except identity headers: a client's copies are removed
//! and the gate sets its own from the verified claims ([`crate::http::identity`]). The client's `Authorization` is removed
//! unless `FORWARD_TOKEN=true`: MCP forbids token passthrough; with `TOKEN_EXCHANGE` the upstream
//! gets the token exchanged for it instead ([`crate::auth::exchange`]). Dropping the client's response (a
//! hang-up) drops the upstream request with it.

use std::net::SocketAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{LengthLimitError, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value};

use crate::auth::exchange::UpstreamAuthorization;
use crate::http::body::{RequestBody, ResponseBody};
use crate::http::error::GateError;
use crate::http::forwarded::{self, TrustedProxies};
use crate::http::identity::IdentityHeaders;
use crate::http::target;

static X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Forwards accepted requests to one upstream.
pub struct Proxy {
    client: Client<HttpsConnector<HttpConnector>, Limited<RequestBody>>,
    /// The upstream's scheme and authority: every upstream URI is built from these parts and the
    /// request's path-and-query, never by concatenating strings, so no target can change them.
    scheme: Scheme,
    authority: Authority,
    /// `UPSTREAM_URL`'s path without a trailing slash (empty for none); no request path leaves it.
    base_path: String,
    /// The upstream's authority, sent as `Host`.
    host: HeaderValue,
    /// Whose forwarded headers are believed.
    trusted_proxies: TrustedProxies,
    /// What the upstream is told of the caller (`CLAIM_HEADERS`), and the spoofable headers removed.
    identity: IdentityHeaders,
    forward_token: bool,
    timeout: Duration,
    max_body: u64,
}

/// How the proxy is set up.
pub struct ProxySettings {
    pub upstream: url::Url,
    pub forward_token: bool,
    /// Time allowed for the upstream's response headers.
    pub timeout: Duration,
    pub max_body: u64,
    pub trusted_proxies: TrustedProxies,
    pub identity: IdentityHeaders,
}

impl Proxy {
    pub fn new(settings: ProxySettings) -> Proxy {
        let upstream = &settings.upstream;
        let authority = match upstream.port() {
            Some(port) => format!("{}:{port}", upstream.host_str().unwrap_or_default()),
            None => upstream.host_str().unwrap_or_default().to_string(),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(crate::http::client::https_connector(
                settings.timeout.min(Duration::from_secs(10)),
            ));
        Proxy {
            client,
            scheme: upstream
                .scheme()
                .parse()
                .expect("the configuration admits only http and https"),
            authority: authority
                .parse()
                .expect("a URL's host and port are a valid authority"),
            base_path: upstream.path().trim_end_matches('/').to_string(),
            host: HeaderValue::from_str(&authority)
                .expect("a URL authority is a valid header value"),
            trusted_proxies: settings.trusted_proxies,
            identity: settings.identity,
            forward_token: settings.forward_token,
            timeout: settings.timeout,
            max_body: settings.max_body,
        }
    }

    /// Sends `request` upstream and returns its response, or why the gate answers itself
    /// (413, 400, 502, 504). The request's target has been classified as forwardable
    /// ([`crate::http::target::classify`]); `claims` are the verified token's, for the identity
    /// headers.
    pub async fn forward(
        &self,
        request: Request<RequestBody>,
        client: SocketAddr,
        tls: bool,
        claims: &Map<String, Value>,
    ) -> Result<Response<ResponseBody>, GateError> {
        let (mut parts, body) = request.into_parts();

        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body) {
            return Err(GateError::BodyTooLarge);
        }

        let path_and_query = match parts.uri.path_and_query() {
            Some(pq) => target::upstream_path(&self.base_path, pq)?.into_owned(),
            None => return Err(GateError::MalformedTarget),
        };
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| GateError::MalformedTarget)?;
        let original_host = target::original_host(&parts.uri, &parts.headers);

        let headers = &mut parts.headers;
        strip_hop_by_hop(headers);
        // After the hop-by-hop removal: a header named in `Connection:` cannot take the gate's
        // own identity headers with it.
        self.identity.apply(headers, claims);
        if !self.forward_token {
            headers.remove(header::AUTHORIZATION);
            // The DPoP proof travels with the token it proves (RFC 9449 §4.1): never one without the other.
            headers.remove(crate::auth::bearer::DPOP);
        }
        // TOKEN_EXCHANGE: the upstream's own token, set after the caller's was removed.
        if let Some(exchanged) = parts.extensions.remove::<UpstreamAuthorization>() {
            headers.insert(header::AUTHORIZATION, exchanged.0);
        }
        headers.remove(header::PROXY_AUTHORIZATION);
        headers.insert(header::HOST, self.host.clone());
        self.trusted_proxies.apply(
            headers,
            forwarded::Seen {
                peer: client.ip(),
                proto: if tls { "https" } else { "http" },
                host: original_host,
            },
        );
        parts.uri = uri;
        // The upstream leg is HTTP/1.1 whatever the client spoke.
        parts.version = Version::HTTP_11;

        let upstream_request =
            Request::from_parts(parts, Limited::new(body, self.max_body as usize));
        let response = match tokio::time::timeout(
            self.timeout,
            self.client.request(upstream_request),
        )
        .await
        {
            Err(_) => return Err(GateError::UpstreamTimeout),
            Ok(Err(e)) if is_length_limit(&e) => return Err(GateError::BodyTooLarge),
            Ok(Err(e)) if is_request_body_error(&e) => {
                // The client's body broke off or was malformed (bad chunk framing): its fault, not
                // the upstream's. The upstream saw an aborted body, never a complete one.
                tracing::debug!(error = %crate::auth::fetch::error_chain(&e), "request body failed");
                return Err(GateError::MalformedBody);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %crate::auth::fetch::error_chain(&e), "upstream request failed");
                return Err(GateError::UpstreamUnreachable);
            }
            Ok(Ok(r)) => r,
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            // The gate strips `Upgrade` from every request, so a 101 answers a question nobody
            // asked: relaying it would hand the client a raw connection to the upstream.
            tracing::warn!(
                "upstream answered 101 Switching Protocols to a request without Upgrade"
            );
            return Err(GateError::UpstreamBadResponse);
        }
        let (mut parts, body) = response.into_parts();
        if parts.headers.contains_key(header::TRANSFER_ENCODING) {
            // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and the body is re-framed
            // on the way out; a length kept beside it would truncate what the client receives.
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        strip_hop_by_hop(&mut parts.headers);
        let is_event_stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
        if is_event_stream && !parts.headers.contains_key(&X_ACCEL_BUFFERING) {
            // Tells a buffering front proxy (nginx and friends) to pass events through as they come.
            parts
                .headers
                .insert(X_ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"));
        }
        Ok(Response::from_parts(
            parts,
            ResponseBody::Upstream(crate::http::coalesce::Coalesce::new(body)),
        ))
    }
}

fn is_length_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether the upstream request failed because the client's request body did: hyper reports an error
/// of the body it was sending as a "user" error, whose source is the server side's decoding error.
fn is_request_body_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Removes the headers that describe one connection rather than the message (RFC 9110 §7.6.1),
/// including any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("mcp-session-id", HeaderValue::from_static("abc"));
        h.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-11-25"),
        );
        strip_hop_by_hop(&mut h);
        let mut left: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        left.sort();
        assert_eq!(left, vec!["mcp-protocol-version", "mcp-session-id"]);
    }
}
