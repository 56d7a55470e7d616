//! The gate's one outbound HTTP client: a bounded GET of a JSON document from the authorization
//! server (metadata or JWKS), and the bounded requests of `mcp-gate check`, which also needs the
//! status, headers and body of answers that are not documents.
//!
//! Every fetch is bounded in time (connect and total) and in size, and redirects are not followed:
//! the identity provider is outside the gate's control, and a stalled or hostile endpoint must never
//! hold a request or memory longer than configured.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, LOCATION, USER_AGENT};
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest metadata or JWKS document accepted.
pub const MAX_DOCUMENT: usize = 1 << 20;

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Request(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("document larger than {MAX_DOCUMENT} bytes")]
    TooLarge,
}

/// A fetched document and how long the server says it may be cached.
pub struct Fetched {
    pub body: Bytes,
    pub max_age: Option<Duration>,
}

/// Where the key cache and discovery get documents from: [`Fetcher`] over HTTP in the gate; unit
/// tests script the answers instead, so the cache's pacing can run under tokio's paused clock.
pub trait DocumentSource: Send + Sync + 'static {
    /// The document at `url`, or why there is none.
    fn get(
        &self,
        url: &str,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send;
}

impl DocumentSource for Fetcher {
    fn get(
        &self,
        url: &str,
    ) -> impl std::future::Future<Output = Result<Fetched, FetchError>> + Send {
        Fetcher::get(self, url)
    }
}

/// A whole answer to one request, whatever its status: `mcp-gate check` judges 401s, redirects and
/// error pages as well as documents.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body, up to [`MAX_DOCUMENT`]; empty when it was not read.
    pub body: Bytes,
}

impl Answer {
    /// The first value of header `name`, when it is visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Where a redirect points.
    pub fn location(&self) -> Option<&str> {
        self.header(LOCATION.as_str())
    }
}

/// Fetches documents with fixed bounds.
#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Fetcher {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(crate::http::client::https_connector(timeout));
        Fetcher { client, timeout }
    }

    /// The bound on each request (callers waiting for a slot to make one use it too).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GETs `url`; anything but a 200 with a body under [`MAX_DOCUMENT`] within the timeout is an error.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let answer = self
            .send(document_request(url)?, |status| status == 200)
            .await?;
        if answer.status != 200 {
            return Err(FetchError::Status(answer.status));
        }
        let max_age = answer
            .header(CACHE_CONTROL.as_str())
            .and_then(parse_max_age);
        Ok(Fetched {
            body: answer.body,
            max_age,
        })
    }

    /// Sends `request` under the same bounds as [`Fetcher::get`] (the timeout covers connecting,
    /// the answer and its body; the body is cut at [`MAX_DOCUMENT`]) and returns the answer whatever
    /// its status, following no redirect. The body is read only when `read_body(status)`: a 200 to
    /// an MCP `initialize` may be an endless event stream.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
        read_body: fn(u16) -> bool,
    ) -> Result<Answer, FetchError> {
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Request(error_chain(&e)))?;
            let (parts, incoming) = response.into_parts();
            let status = parts.status.as_u16();
            let body = if read_body(status) {
                read_bounded(incoming).await?
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

/// The GET of a JSON document (metadata, JWKS) as the gate sends it.
pub fn document_request(url: &str) -> Result<Request<Full<Bytes>>, FetchError> {
    Request::get(url)
        .header(ACCEPT, "application/json")
        .header(USER_AGENT, concat!("mcp-gate/", env!("CARGO_PKG_VERSION")))
        .body(Full::default())
        .map_err(|e| FetchError::Request(e.to_string()))
}

/// Reads a whole body of at most [`MAX_DOCUMENT`] bytes.
pub async fn read_bounded<B>(body: B) -> Result<Bytes, FetchError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, MAX_DOCUMENT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FetchError::TooLarge),
        Err(e) => Err(FetchError::Request(e.to_string())),
    }
}

/// The whole `source()` chain of an error, so a log line says "connection refused", not "client error".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `max-age` from a Cache-Control value; `no-store`/`no-cache` count as zero.
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            max_age = secs
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            parse_max_age("Max-Age=\"60\""),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=soon"), None);
    }
}
