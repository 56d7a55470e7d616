//! Finding the authorization server's `jwks_uri` from its metadata: RFC 8414 §3 (path-inserted
//! `/.well-known/oauth-authorization-server`), then OpenID Connect Discovery 1.0 §4
//! (`/.well-known/openid-configuration` appended to the issuer, then path-inserted).
//!
//! The metadata's `issuer` must equal the configured identifier exactly (RFC 8414 §3.3): a mismatch
//! means clients will reject the server too, and its keys must not be trusted for our issuer.

use serde::Deserialize;

use super::fetch::{document_request, DocumentSource, FetchError, Fetcher};

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: FetchError,
    },
    #[error("{url}: not authorization server metadata: {reason}")]
    Invalid { url: String, reason: String },
    #[error("{url}: metadata says issuer {found:?}, expected exactly {expected:?}")]
    IssuerMismatch {
        url: String,
        found: String,
        expected: String,
    },
    #[error("{url}: jwks_uri {jwks_uri:?} is not an https URL (set ALLOW_INSECURE_HTTP=true to allow plain http)")]
    InsecureJwksUri { url: String, jwks_uri: String },
    #[error("authorization server metadata not found: {0}")]
    NotFound(String),
}

#[derive(Deserialize)]
struct Metadata {
    issuer: Option<String>,
    jwks_uri: Option<String>,
}

/// The metadata URLs to try for `issuer`, in order.
pub fn metadata_urls(issuer: &url::Url) -> Vec<String> {
    let origin = issuer.origin().ascii_serialization();
    let path = issuer.path().trim_end_matches('/');
    let mut urls = vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{origin}{path}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ];
    urls.dedup();
    urls
}

/// Discovers the `jwks_uri` of `issuer`.
pub async fn jwks_uri(
    fetcher: &impl DocumentSource,
    issuer: &str,
    allow_insecure: bool,
) -> Result<String, DiscoveryError> {
    let parsed = url::Url::parse(issuer).map_err(|e| DiscoveryError::NotFound(e.to_string()))?;
    let mut misses = Vec::new();
    for url in metadata_urls(&parsed) {
        let fetched = match fetcher.get(&url).await {
            Ok(f) => f,
            // A 404 or similar means "try the next form"; a timeout or refused connection will not
            // get better on the next URL of the same host, so stop there.
            Err(FetchError::Status(code)) => {
                misses.push(format!("{url}: HTTP {code}"));
                continue;
            }
            Err(source) => return Err(DiscoveryError::Fetch { url, source }),
        };
        let metadata: Metadata =
            serde_json::from_slice(&fetched.body).map_err(|e| DiscoveryError::Invalid {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        match metadata.issuer {
            Some(found) if found == issuer => {}
            Some(found) => {
                return Err(DiscoveryError::IssuerMismatch {
                    url,
                    found,
                    expected: issuer.to_string(),
                })
            }
            None => {
                return Err(DiscoveryError::Invalid {
                    url,
                    reason: "no issuer".into(),
                })
            }
        }
        let jwks_uri = metadata.jwks_uri.ok_or_else(|| DiscoveryError::Invalid {
            url: url.clone(),
            reason: "no jwks_uri".into(),
        })?;
        let parsed = url::Url::parse(&jwks_uri).map_err(|_| DiscoveryError::Invalid {
            url: url.clone(),
            reason: format!("jwks_uri {jwks_uri:?} is not a URL"),
        })?;
        let secure = parsed.scheme() == "https"
            || (parsed.scheme() == "http"
                && (allow_insecure || crate::config::is_loopback_host(&parsed)));
        if !secure {
            return Err(DiscoveryError::InsecureJwksUri { url, jwks_uri });
        }
        return Ok(jwks_uri);
    }
    Err(DiscoveryError::NotFound(misses.join("; ")))
}

/// Where the search for an issuer's metadata ended, with every URL it tried: for `mcp-gate check`,
/// which reports what a client meets at each URL rather than stopping at the first miss.
pub(crate) enum Search {
    /// The first URL, in discovery order, that answered 200 with a JSON object, and that object.
    Found { url: String, doc: serde_json::Value },
    /// No URL held the document: one `"{url}: why"` per URL tried.
    Missing(Vec<String>),
    /// `url` got no answer; a timeout or refused connection will not get better on the next URL of
    /// the same host, so the search stopped there.
    Unreachable { url: String, error: FetchError },
}

/// Looks for the metadata of `issuer` at [`metadata_urls`], in order, following no redirect.
/// Unlike [`jwks_uri`] it judges nothing in the document (the caller does) and goes on past a 200
/// that is not a JSON object, as a client would.
pub(crate) async fn search(fetcher: &Fetcher, issuer: &url::Url) -> Search {
    let mut misses = Vec::new();
    for url in metadata_urls(issuer) {
        let answer = match document_request(&url) {
            Ok(request) => fetcher.send(request, |status| status == 200).await,
            Err(error) => Err(error),
        };
        match answer {
            Ok(a) if a.status == 200 => {
                match serde_json::from_slice::<serde_json::Value>(&a.body) {
                    Ok(doc) if doc.is_object() => return Search::Found { url, doc },
                    _ => misses.push(format!("{url}: 200 but not a JSON object")),
                }
            }
            Ok(a) if (300..400).contains(&a.status) => misses.push(format!(
                "{url}: redirect ({}) to {}",
                a.status,
                a.location().unwrap_or("nowhere")
            )),
            Ok(a) => misses.push(format!("{url}: {}", a.status)),
            Err(error) => return Search::Unreachable { url, error },
        }
    }
    Search::Missing(misses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_well_known_path_and_append_for_openid() {
        let u = url::Url::parse("https://kc.example.com/realms/mcp").unwrap();
        assert_eq!(
            metadata_urls(&u),
            vec![
                "https://kc.example.com/.well-known/oauth-authorization-server/realms/mcp",
                "https://kc.example.com/realms/mcp/.well-known/openid-configuration",
                "https://kc.example.com/.well-known/openid-configuration/realms/mcp",
            ]
        );
        let root = url::Url::parse("https://idp.example.com/").unwrap();
        assert_eq!(
            metadata_urls(&root),
            vec![
                "https://idp.example.com/.well-known/oauth-authorization-server",
                "https://idp.example.com/.well-known/openid-configuration",
            ]
        );
    }
}
