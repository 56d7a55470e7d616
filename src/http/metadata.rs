//! OAuth 2.0 Protected Resource Metadata (RFC 9728) and the well-known paths it is served at.
//!
//! The document is built once from configuration and never depends on the request (`Host` included):
//! `resource` is `RESOURCE_URI` byte for byte (§3.3), empty fields are left out rather than `null`
//! (§3.2; the MCP SDKs' schemas reject null). It is served at the root well-known path and at the
//! path-inserted one (§3.1), since clients try either, without auth and with `ACAO: *`.

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_TYPE,
};
use http::{HeaderValue, Method, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::http::body::ResponseBody;
use crate::http::error::GateError;

/// The well-known path prefix of RFC 9728 §3.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document and where it lives.
pub struct Metadata {
    /// Path-inserted form for a resource with a path (`/.well-known/oauth-protected-resource/mcp`).
    inserted_path: Option<String>,
    /// The absolute URL advertised in challenges (path-inserted when there is a path).
    url: String,
    body: Bytes,
    cache_control: HeaderValue,
}

impl Metadata {
    pub fn new(config: &Config) -> Metadata {
        let resource = &config.resource;
        let path = resource.path();
        let inserted_path = (path != "/").then(|| format!("{WELL_KNOWN}{path}"));
        let origin = resource.origin().ascii_serialization();
        let query = resource
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let url = format!(
            "{origin}{}{query}",
            inserted_path.as_deref().unwrap_or(WELL_KNOWN)
        );

        let mut doc = Map::new();
        doc.insert("resource".into(), json!(config.resource_uri));
        doc.insert(
            "authorization_servers".into(),
            json!(config.authorization_servers),
        );
        doc.insert("bearer_methods_supported".into(), json!(["header"]));
        if !config.scopes_supported.is_empty() {
            doc.insert("scopes_supported".into(), json!(config.scopes_supported));
        }
        if let Some(name) = &config.resource_name {
            doc.insert("resource_name".into(), json!(name));
        }
        if let Some(docs) = &config.resource_documentation {
            doc.insert("resource_documentation".into(), json!(docs));
        }
        // RFC 9728 §2: the proof algorithms accepted, and whether only DPoP-bound tokens are.
        let algs: Vec<&str> = config.dpop.algorithms.iter().map(|a| a.name()).collect();
        doc.insert("dpop_signing_alg_values_supported".into(), json!(algs));
        if config.dpop.required {
            doc.insert("dpop_bound_access_tokens_required".into(), json!(true));
        }
        let cache_control = HeaderValue::from_str(&format!(
            "public, max-age={}",
            config.metadata_max_age.as_secs()
        ))
        .expect("ASCII");
        Metadata {
            inserted_path,
            url,
            body: Bytes::from(Value::Object(doc).to_string()),
            cache_control,
        }
    }

    /// The absolute URL of the document, for `resource_metadata` in challenges.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether `path` is one of the document's well-known paths.
    pub fn serves(&self, path: &str) -> bool {
        path == WELL_KNOWN || self.inserted_path.as_deref() == Some(path)
    }

    /// Answers a request for the document; never a redirect.
    pub fn respond(&self, method: &Method) -> Response<ResponseBody> {
        let mut response = match *method {
            Method::GET | Method::OPTIONS => Response::new(ResponseBody::from(self.body.clone())),
            Method::HEAD => Response::new(ResponseBody::empty()),
            _ => {
                // The document's own HTTP version is not known here; 405 never closes a connection.
                GateError::MetadataMethodNotAllowed.response(http::Version::HTTP_11)
            }
        };
        let h = response.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        if response.status() == StatusCode::OK {
            let h = response.headers_mut();
            h.insert(CACHE_CONTROL, self.cache_control.clone());
            if method == Method::OPTIONS {
                h.insert(
                    ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
                // Clients send MCP-Protocol-Version on discovery; a preflight that refuses it breaks them.
                h.insert(
                    ACCESS_CONTROL_ALLOW_HEADERS,
                    HeaderValue::from_static("*, MCP-Protocol-Version"),
                );
                h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
                h.insert(ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(extra: &[(&str, &str)]) -> Config {
        let mut vars: HashMap<String, String> = [
            ("UPSTREAM_URL", "http://127.0.0.1:3000"),
            ("RESOURCE_URI", "https://mcp.example.com/mcp"),
            ("AUTHORIZATION_SERVER", "https://idp.example.com/realms/x"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        Config::from_vars(&vars).unwrap().0
    }

    fn doc(m: &Metadata) -> Value {
        serde_json::from_slice(&m.body).unwrap()
    }

    #[test]
    fn document_has_the_required_fields_and_no_nulls() {
        let m = Metadata::new(&config(&[]));
        let d = doc(&m);
        assert_eq!(d["resource"], "https://mcp.example.com/mcp");
        assert_eq!(
            d["authorization_servers"],
            json!(["https://idp.example.com/realms/x"])
        );
        assert_eq!(d["bearer_methods_supported"], json!(["header"]));
        // DPoP is accepted by default (RFC 9728 §2, RFC 9449 §5.1); Bearer too, so no "required".
        assert_eq!(
            d["dpop_signing_alg_values_supported"],
            json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
        );
        assert_eq!(d.as_object().unwrap().len(), 4, "{d}");
    }

    #[test]
    fn dpop_required_is_advertised_with_the_configured_algorithms() {
        let d = doc(&Metadata::new(&config(&[
            ("DPOP_REQUIRED", "true"),
            ("DPOP_ALGORITHMS", "ES256"),
        ])));
        assert_eq!(d["dpop_bound_access_tokens_required"], json!(true));
        assert_eq!(d["dpop_signing_alg_values_supported"], json!(["ES256"]));
    }

    #[test]
    fn optional_fields_appear_when_configured() {
        let m = Metadata::new(&config(&[
            ("REQUIRED_SCOPES", "mcp:tools"),
            ("RESOURCE_NAME", "Acme tools"),
            ("RESOURCE_DOCUMENTATION", "https://docs.example.com"),
        ]));
        let d = doc(&m);
        assert_eq!(d["scopes_supported"], json!(["mcp:tools"]));
        assert_eq!(d["resource_name"], "Acme tools");
        assert_eq!(d["resource_documentation"], "https://docs.example.com");
    }

    #[test]
    fn paths_are_root_and_path_inserted() {
        let m = Metadata::new(&config(&[]));
        assert!(m.serves("/.well-known/oauth-protected-resource"));
        assert!(m.serves("/.well-known/oauth-protected-resource/mcp"));
        assert!(!m.serves("/.well-known/oauth-protected-resource/mcp/x"));
        assert!(!m.serves("/.well-known/oauth-protected-resource/../mcp"));
        assert_eq!(
            m.url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        let root = Metadata::new(&config(&[
            ("RESOURCE_URI", "https://mcp.example.com"),
            ("EXPECTED_AUDIENCE", "https://mcp.example.com"),
        ]));
        assert_eq!(
            root.url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(doc(&root)["resource"], "https://mcp.example.com");
    }

    #[test]
    fn only_read_methods_are_answered() {
        let m = Metadata::new(&config(&[]));
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let r = m.respond(&method);
            assert_eq!(r.status(), 200, "{method}");
            assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
            assert!(r.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("max-age=3600"));
        }
        assert_eq!(m.respond(&Method::POST).status(), 405);
    }
}
