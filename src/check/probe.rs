//! The outbound requests of `mcp-gate check`: the unauthenticated `initialize` and the GETs of the
//! documents, each bounded in time and size, following no redirect (clients follow none either).

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderMap, Method, Request};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::auth::fetch::{error_chain, FetchError};

/// A hint for a request that got no answer.
pub(super) fn fetch_hint(e: &FetchError, otherwise: &str) -> String {
    let text = e.to_string().to_ascii_lowercase();
    if text.contains("certificate") || text.contains("tls") {
        "The TLS handshake failed: the certificate must be valid for the host name and chain to a public root.".into()
    } else if text.contains("dns") || text.contains("resolve") || text.contains("lookup") {
        "The host name does not resolve: it needs an A record in public DNS.".into()
    } else if matches!(e, FetchError::Timeout(_)) || text.contains("refused") {
        format!("Nothing answers there: check the host, port, firewall and that the server is running. {otherwise}")
    } else {
        otherwise.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------------------------

/// A complete answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body, up to [`MAX_DOCUMENT`]; empty when it was not read.
    pub body: Bytes,
}

impl Answer {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub(super) fn location(&self) -> Option<&str> {
        self.header(LOCATION.as_str())
    }
}

/// The MCP `initialize` a client sends first, without a token.
const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"mcp-gate-check","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}}}"#
);

/// Bounded requests that follow no redirect: each is limited in time and in body size.
pub(super) struct Prober {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Prober {
    pub(super) fn new(timeout: Duration) -> Prober {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build(crate::connector::https_connector(timeout));
        Prober { client, timeout }
    }

    pub(super) async fn get(&self, url: &str) -> Result<Answer, FetchError> {
        self.send(Method::GET, url, None, true).await
    }

    /// POSTs the `initialize`; the body is read only for a 401 (a 200 may be an endless SSE stream).
    pub(super) async fn initialize(&self, url: &str) -> Result<Answer, FetchError> {
        self.send(Method::POST, url, Some(INITIALIZE), false).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&'static str>,
        always_read_body: bool,
    ) -> Result<Answer, FetchError> {
        let mut request = Request::builder().method(method).uri(url).header(
            USER_AGENT,
            concat!("mcp-gate-check/", env!("CARGO_PKG_VERSION")),
        );
        request = match body {
            Some(_) => request
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json, text/event-stream"),
            None => request
                .header(ACCEPT, "application/json")
                .header("mcp-protocol-version", "2025-11-25"),
        };
        let request = request
            .body(Full::new(Bytes::from_static(
                body.unwrap_or_default().as_bytes(),
            )))
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Request(error_chain(&e)))?;
            let (parts, incoming) = response.into_parts();
            let status = parts.status.as_u16();
            let body = if always_read_body || status == 401 {
                crate::auth::fetch::read_bounded(incoming).await?
            } else {
                Bytes::new()
            };
            Ok(Answer {
                status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }
}
