//! The IdP behaving like real ones do, not failing: changing the `alg` of a published key,
//! answering only after the gate started, sending `Cache-Control: no-store` or a tiny `max-age`
//! (RFC 9111 §5.2.2), rotating its key right after the gate's scheduled refresh. Each runs against
//! a [`JwksEndpoint`] configured as `JWKS_URI`, whose document and `Cache-Control` the test sets and
//! which counts the gate's key fetches.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::WAIT_BOUND;

/// What a [`JwksEndpoint`] answers, and how often the gate asked.
struct Published {
    /// The JWKS document; `None` answers HTTP 500.
    doc: Option<String>,
    cache_control: Option<&'static str>,
    fetches: usize,
}

/// A bare JWKS endpoint for `JWKS_URI` whose document and `Cache-Control` header the test sets.
struct JwksEndpoint {
    url: String,
    published: Arc<Mutex<Published>>,
    server: tokio::task::JoinHandle<()>,
}

impl JwksEndpoint {
    async fn start(doc: Option<String>, cache_control: Option<&'static str>) -> JwksEndpoint {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let published = Arc::new(Mutex::new(Published {
            doc,
            cache_control,
            fetches: 0,
        }));
        let shared = published.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    // The answer is chosen and counted in one step, so a test that has seen the
                    // count go up knows which document that fetch got.
                    let mut p = shared.lock().unwrap();
                    // Count the gate's key fetches only, not its start-up self-check.
                    let self_check = request
                        .headers()
                        .get("user-agent")
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|ua| ua.starts_with("mcp-gate-check/"));
                    if !self_check {
                        p.fetches += 1;
                    }
                    let mut answer = http::Response::builder();
                    if let Some(cc) = p.cache_control {
                        answer = answer.header("cache-control", cc);
                    }
                    let answer = match &p.doc {
                        Some(doc) => answer
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(doc.clone()))),
                        None => answer.status(500).body(Full::new(Bytes::new())),
                    };
                    std::future::ready(Ok::<_, Infallible>(answer.unwrap()))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        JwksEndpoint {
            url,
            published,
            server,
        }
    }

    fn publish(&self, doc: Option<String>) {
        self.published.lock().unwrap().doc = doc;
    }

    fn fetches(&self) -> usize {
        self.published.lock().unwrap().fetches
    }

    /// Waits until the gate has fetched at least once more than `since`.
    async fn wait_for_fetch_after(&self, since: usize) {
        for _ in 0..1000 {
            if self.fetches() > since {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the gate never fetched the JWKS");
    }
}

impl Drop for JwksEndpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn jwks_of(jwks: &[Value]) -> Option<String> {
    Some(json!({ "keys": jwks }).to_string())
}

/// A gate whose keys come from `endpoint` (through `JWKS_URI`), for tokens of `idp`'s issuer.
async fn gate_on(
    idp: &TestIdp,
    upstream: &TestUpstream,
    endpoint: &JwksEndpoint,
    extra: &[(&str, &str)],
) -> TestGate {
    let mut vars = vec![("JWKS_URI", endpoint.url.as_str())];
    vars.extend_from_slice(extra);
    TestGate::start(idp, upstream, &vars).await
}

async fn status_of(gate: &TestGate, token: &str) -> u16 {
    post(&gate.resource(), &[("authorization", &bearer(token))], "")
        .await
        .status
}

#[tokio::test]
async fn an_idp_that_changes_the_alg_of_a_published_key_gets_its_new_tokens_accepted() {
    let key = TestKey::rsa("k1", 2048);
    let rs256 = key.jwk_with_alg();
    let mut ps256 = rs256.clone();
    ps256["alg"] = json!("PS256");
    let endpoint = JwksEndpoint::start(jwks_of(&[rs256]), None).await;
    let idp = TestIdp::start(JwksBehaviour::Fail).await;
    let upstream = TestUpstream::start().await;
    let gate = gate_on(
        &idp,
        &upstream,
        &endpoint,
        &[
            ("JWKS_REFRESH_INTERVAL", "300ms"),
            ("JWKS_MIN_REFRESH_INTERVAL", "100ms"),
        ],
    )
    .await;
    gate.wait_ready().await;
    let c = claims(&idp.issuer, &gate.resource());
    let old = key.token_as("RS256", &c);
    assert_eq!(status_of(&gate, &old).await, 200);
    // Same kid, same key material, now bound to PS256: the IdP signs with PS256 from here on.
    endpoint.publish(jwks_of(&[ps256]));
    let fetches = endpoint.fetches();
    endpoint.wait_for_fetch_after(fetches + 1).await;
    assert_eq!(
        status_of(&gate, &key.token_as("PS256", &c)).await,
        200,
        "the new binding is installed"
    );
    assert_eq!(
        status_of(&gate, &old).await,
        401,
        "the key no longer verifies RS256, even for a token accepted before"
    );
}

#[tokio::test]
async fn a_request_right_after_a_failed_first_load_waits_for_the_next_attempt_instead_of_503() {
    let key = TestKey::rsa("k1", 2048);
    let endpoint = JwksEndpoint::start(None, None).await;
    let idp = TestIdp::start(JwksBehaviour::Fail).await;
    let upstream = TestUpstream::start().await;
    let gate = gate_on(&idp, &upstream, &endpoint, &[("JWKS_FETCH_TIMEOUT", "1s")]).await;
    let token = key.token(&claims(&idp.issuer, &gate.resource()));
    // While the IdP keeps failing, a request shares the next attempt and still gets 503.
    endpoint.wait_for_fetch_after(0).await;
    let started = Instant::now();
    let a = post(&gate.resource(), &[("authorization", &bearer(&token))], "").await;
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("5"));
    assert!(started.elapsed() < WAIT_BOUND, "{:?}", started.elapsed());
    // The IdP comes up just after an attempt failed: the next request gets keys, not a 503.
    let fetches = endpoint.fetches();
    endpoint.wait_for_fetch_after(fetches).await;
    endpoint.publish(Some(jwks(&[&key])));
    let started = Instant::now();
    assert_eq!(status_of(&gate, &token).await, 200);
    assert!(started.elapsed() < WAIT_BOUND, "{:?}", started.elapsed());
}

#[tokio::test]
async fn no_store_and_a_tiny_max_age_do_not_make_the_gate_poll_the_jwks() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Fail).await;
    let upstream = TestUpstream::start().await;
    let mut gates = Vec::new();
    for cache_control in ["no-store", "max-age=1", "no-cache, max-age=0"] {
        let endpoint = JwksEndpoint::start(Some(jwks(&[&key])), Some(cache_control)).await;
        let gate = gate_on(
            &idp,
            &upstream,
            &endpoint,
            &[
                ("JWKS_REFRESH_INTERVAL", "30s"),
                ("JWKS_MIN_REFRESH_INTERVAL", "1s"),
            ],
        )
        .await;
        gate.wait_ready().await;
        gates.push((cache_control, endpoint, gate));
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for (cache_control, endpoint, gate) in &gates {
        assert_eq!(
            endpoint.fetches(),
            1,
            "{cache_control}: one load, then JWKS_REFRESH_INTERVAL (or the 60 s floor) applies"
        );
        let token = key.token(&claims(&idp.issuer, &gate.resource()));
        assert_eq!(status_of(gate, &token).await, 200, "{cache_control}");
    }
}

#[tokio::test]
async fn a_key_rotated_right_after_a_scheduled_refresh_is_accepted_on_first_use() {
    let k1 = TestKey::rsa("k1", 2048);
    let k2 = TestKey::rsa("k2", 2048);
    let endpoint = JwksEndpoint::start(Some(jwks(&[&k1])), Some("no-store")).await;
    let idp = TestIdp::start(JwksBehaviour::Fail).await;
    let upstream = TestUpstream::start().await;
    let gate = gate_on(
        &idp,
        &upstream,
        &endpoint,
        &[
            ("JWKS_REFRESH_INTERVAL", "1s"),
            ("JWKS_MIN_REFRESH_INTERVAL", "10s"),
        ],
    )
    .await;
    gate.wait_ready().await;
    // A scheduled refresh has just fetched; the IdP rotates to k2 and issues a token with it.
    let fetches = endpoint.fetches();
    endpoint.wait_for_fetch_after(fetches).await;
    endpoint.publish(Some(jwks(&[&k1, &k2])));
    let c = claims(&idp.issuer, &gate.resource());
    assert_eq!(status_of(&gate, &k2.token(&c)).await, 200);
    // That spent the kid budget: another unknown kid within JWKS_MIN_REFRESH_INTERVAL fetches nothing.
    let fetches = endpoint.fetches();
    let header = r#"{"alg":"RS256","kid":"k-unknown"}"#;
    let unknown = k2.sign(header, &c.to_string());
    let started = Instant::now();
    assert_eq!(status_of(&gate, &unknown).await, 401);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(
        endpoint.fetches() <= fetches + 1,
        "at most the scheduled refresh ran"
    );
}
