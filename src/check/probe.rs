//! The outbound requests of `mcp-gate check`: the unauthenticated `initialize` and the GETs of the
//! documents, through the gate's own client ([`crate::auth::fetch`]): each bounded in time and size,
//! following no redirect (clients follow none either).

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use http::Request;
use http_body_util::Full;

pub use crate::auth::fetch::Answer;
use crate::auth::fetch::{FetchError, Fetcher};

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

/// The MCP `initialize` a client sends first, without a token.
const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"mcp-gate-check","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}}}"#
);

/// The requests of a check, sent through the gate's own bounded client ([`Fetcher`]): each is
/// limited in time and in body size, and follows no redirect.
pub(super) struct Prober {
    fetcher: Fetcher,
}

impl Prober {
    pub(super) fn new(timeout: Duration) -> Prober {
        Prober {
            fetcher: Fetcher::new(timeout),
        }
    }

    /// The client itself, for the gate's own discovery ([`crate::auth::discovery::search`]).
    pub(super) fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// GETs a document; the body is read whatever the status (an HTML error page is a finding).
    pub(super) async fn get(&self, url: &str) -> Result<Answer, FetchError> {
        let request = Request::get(url)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(ACCEPT, "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(Full::default())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        self.fetcher.send(request, |_| true).await
    }

    /// POSTs the `initialize`; the body is read only for a 401 (a 200 may be an endless SSE stream).
    pub(super) async fn initialize(&self, url: &str) -> Result<Answer, FetchError> {
        let request = Request::post(url)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(Full::new(Bytes::from_static(INITIALIZE.as_bytes())))
            .map_err(|e| FetchError::Request(e.to_string()))?;
        self.fetcher.send(request, |status| status == 401).await
    }
}

const USER_AGENT_VALUE: &str = concat!("mcp-gate-check/", env!("CARGO_PKG_VERSION"));
