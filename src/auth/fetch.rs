//! A bounded GET of a JSON document from the authorization server (metadata or JWKS).
//!
//! Every fetch is bounded in time (connect and total) and in size, and redirects are not followed:
//! the identity provider is outside the gate's control, and a stalled or hostile endpoint must never
//! hold a request or memory longer than configured.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, USER_AGENT};
use http::Request;
use http_body_util::{BodyExt, Empty, Limited};
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

/// Fetches documents with fixed bounds.
#[derive(Clone)]
pub struct Fetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> Fetcher {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(crate::http::client::https_connector(timeout));
        Fetcher { client, timeout }
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GETs `url`; anything but a 200 with a body under [`MAX_DOCUMENT`] within the timeout is an error.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let request = Request::get(url)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, concat!("mcp-gate/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| FetchError::Request(e.to_string()))?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Request(error_chain(&e)))?;
            if response.status() != http::StatusCode::OK {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let max_age = response
                .headers()
                .get(CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_max_age);
            let body = read_bounded(response.into_body()).await?;
            Ok(Fetched { body, max_age })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }
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
