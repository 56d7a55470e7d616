//! `mcp-gate check` over real sockets: against a healthy gate and identity provider, against
//! deliberately misconfigured deployments (small in-test servers, one fault each), the start-up
//! self-check, and the binary's exit codes and output.
//!
//! This module holds what every stage shares: [`run`] and the assertions on its report, the fake
//! [`Deployment`] (an MCP server, its metadata and its authorization server on one origin, healthy
//! until a test changes one thing) that a [`Site`] serves, and [`binary`]. The tests, one file per
//! stage of the check:
//! - `healthy`: a real gate and the healthy fake deployment pass every check;
//! - `endpoint`: the MCP endpoint and its 401 challenge (RFC 6750 §3, RFC 9728 §5.1): unreachable,
//!   unprotected or redirected, a missing, relative or duplicated `resource_metadata`;
//! - `metadata`: the protected resource metadata (RFC 9728 §3): the path-inserted and root
//!   locations and their agreement, `resource`, nulls, redirects, a document on another origin;
//! - `authorization_server`: the authorization server's metadata (RFC 8414 §3, OpenID discovery),
//!   its issuer, PKCE with S256 and its JWKS;
//! - `token`: a token given with `--token`, judged as the gate would, and the advice for a wrong
//!   `aud`;
//! - `self_check`: the start-up self-check of the gate's own configuration;
//! - `binary`: the binary's exit codes, text and JSON output, and that it never prints the token.

mod authorization_server;
mod binary;
mod endpoint;
mod healthy;
mod metadata;
mod self_check;
mod token;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mcp_gate::check::{self, Check, Report, Status};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-gate");

async fn run(url: &str, token: Option<&str>) -> Report {
    let target = check::parse_target(url).unwrap();
    let options = check::Options {
        token,
        ..check::Options::new(Duration::from_secs(3))
    };
    check::run(&target, &options).await
}

fn failing(report: &Report) -> Vec<&'static str> {
    report
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id)
        .collect()
}

fn find<'a>(report: &'a Report, id: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} check in\n{}", report.to_text()))
}

/// Exactly the checks `ids` fail; the first of them says `words` and has a hint.
fn assert_fails(report: &Report, ids: &[&str], words: &str) {
    assert_eq!(failing(report), ids, "\n{}", report.to_text());
    let c = find(report, ids[0]);
    assert!(
        c.message.contains(words),
        "{words:?} not in {:?}\n{}",
        c.message,
        report.to_text()
    );
    assert!(c.hint.as_deref().is_some_and(|h| !h.is_empty()), "{c:?}");
    assert!(report.failed());
}

/// A canned answer.
#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

fn json_answer(status: u16, doc: &Value) -> Canned {
    Canned {
        status,
        headers: vec![("content-type", "application/json".into())],
        body: doc.to_string(),
    }
}

/// An MCP server, its metadata and its authorization server (at `{base}/as`) on one origin, healthy
/// until a test changes one thing.
#[derive(Clone)]
struct Deployment {
    base: String,
    /// The answer to `POST /mcp`.
    endpoint: Canned,
    /// Answers to `GET {path}`; anything else is a 404.
    pages: HashMap<String, Canned>,
}

const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
const PRM_ROOT: &str = "/.well-known/oauth-protected-resource";
const AS_PATH: &str = "/.well-known/oauth-authorization-server/as";

fn signing_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| TestKey::rsa("site-key", 2048))
}

impl Deployment {
    fn healthy(base: &str) -> Deployment {
        let challenge =
            format!("Bearer resource_metadata=\"{base}{PRM_PATH}\", scope=\"mcp:tools\"");
        let prm = json!({"resource": format!("{base}/mcp"), "authorization_servers": [format!("{base}/as")],
                         "scopes_supported": ["mcp:tools"], "bearer_methods_supported": ["header"]});
        let issuer = format!("{base}/as");
        let as_doc = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks"),
                            "authorization_endpoint": format!("{issuer}/auth"), "token_endpoint": format!("{issuer}/token"),
                            "registration_endpoint": format!("{issuer}/register"),
                            "grant_types_supported": ["authorization_code", "refresh_token"],
                            "code_challenge_methods_supported": ["S256"]});
        let mut endpoint = json_answer(
            401,
            &json!({"error": "invalid_token", "error_description": "An access token is required"}),
        );
        endpoint.headers.push(("www-authenticate", challenge));
        let mut pages = HashMap::new();
        pages.insert(PRM_PATH.to_string(), json_answer(200, &prm));
        pages.insert(PRM_ROOT.to_string(), json_answer(200, &prm));
        pages.insert(AS_PATH.to_string(), json_answer(200, &as_doc));
        pages.insert(
            "/as/jwks".to_string(),
            Canned {
                status: 200,
                headers: vec![("content-type", "application/json".into())],
                body: jwks(&[signing_key()]),
            },
        );
        Deployment {
            base: base.to_string(),
            endpoint,
            pages,
        }
    }

    fn set_challenge(&mut self, values: &[String]) {
        self.endpoint
            .headers
            .retain(|(k, _)| *k != "www-authenticate");
        for v in values {
            self.endpoint.headers.push(("www-authenticate", v.clone()));
        }
    }

    /// Changes a JSON page in place.
    fn edit(&mut self, path: &str, change: impl FnOnce(&mut Value)) {
        let page = self.pages.get_mut(path).unwrap();
        let mut doc: Value = serde_json::from_str(&page.body).unwrap();
        change(&mut doc);
        page.body = doc.to_string();
    }

    fn url(&self) -> String {
        format!("{}/mcp", self.base)
    }
}

/// Serves a deployment until dropped.
struct Site {
    deployment: Deployment,
    _stop: oneshot::Sender<()>,
}

async fn site(configure: impl FnOnce(&mut Deployment)) -> Site {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut deployment = Deployment::healthy(&base);
    configure(&mut deployment);
    let shared = Arc::new(deployment.clone());
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                _ = &mut stop_rx => return,
            };
            let d = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let d = d.clone();
                    async move { Ok::<_, Infallible>(answer(&d, &req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Site {
        deployment,
        _stop: stop_tx,
    }
}

fn answer(d: &Deployment, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let canned = match (req.method(), req.uri().path()) {
        (&Method::POST, "/mcp") => Some(&d.endpoint),
        (&Method::GET, path) => d.pages.get(path),
        _ => None,
    };
    let Some(c) = canned else {
        return Response::builder()
            .status(404)
            .body(Full::new(Bytes::from_static(b"not found")))
            .unwrap();
    };
    let mut r = Response::builder().status(c.status);
    for (k, v) in &c.headers {
        r = r.header(*k, v.as_str());
    }
    r.body(Full::new(Bytes::from(c.body.clone()))).unwrap()
}

async fn check_site(configure: impl FnOnce(&mut Deployment)) -> Report {
    let s = site(configure).await;
    run(&s.deployment.url(), None).await
}

async fn binary(args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(BIN)
        .env_clear()
        .arg("check")
        .args(args)
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
