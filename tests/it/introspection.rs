//! Opaque tokens decided by introspection (RFC 7662) against a small in-process endpoint whose
//! answers the tests change: active, inactive, slow, down, garbage; the cache's bounds and its
//! single flight per token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::support::*;

#[derive(Clone)]
enum Mode {
    /// Tokens in the map are active with those members; any other token is inactive.
    Answer,
    Fail,
    Garbage,
    Stall,
}

/// An introspection endpoint at `/introspect`, and RFC 8414 metadata naming it (issuer: its own
/// base URL).
struct Endpoint {
    url: String,
    mode: Arc<Mutex<Mode>>,
    active: Arc<Mutex<HashMap<String, Value>>>,
    calls: Arc<AtomicUsize>,
    /// Delay before each answer (to make a burst overlap one call).
    delay: Arc<Mutex<Duration>>,
    /// Authorization header and form body of the last call.
    last: Arc<Mutex<(String, String)>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Endpoint {
    async fn start() -> Endpoint {
        let mode = Arc::new(Mutex::new(Mode::Answer));
        let active = Arc::new(Mutex::new(HashMap::<String, Value>::new()));
        let calls = Arc::new(AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let last = Arc::new(Mutex::new((String::new(), String::new())));
        let (m, a, c, d, l) = (
            mode.clone(),
            active.clone(),
            calls.clone(),
            delay.clone(),
            last.clone(),
        );
        let handler = move |req: Request<Incoming>| {
            let (m, a, c, d, l) = (m.clone(), a.clone(), c.clone(), d.clone(), l.clone());
            async move {
                if req
                    .uri()
                    .path()
                    .starts_with("/.well-known/oauth-authorization-server")
                {
                    let host = req.headers()["host"].to_str().unwrap().to_string();
                    let doc = json!({"issuer": format!("http://{host}"),
                                     "introspection_endpoint": format!("http://{host}/introspect")});
                    return Response::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(doc.to_string())).boxed())
                        .unwrap();
                }
                c.fetch_add(1, Ordering::SeqCst);
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let form = String::from_utf8_lossy(&body).to_string();
                *l.lock().unwrap() = (auth, form.clone());
                let wait = *d.lock().unwrap();
                tokio::time::sleep(wait).await;
                let token = form
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("token="))
                    .unwrap_or_default()
                    .to_string();
                let mode = m.lock().unwrap().clone();
                let text = |status: u16, s: String| {
                    Response::builder()
                        .status(status)
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(s)).boxed())
                        .unwrap()
                };
                match mode {
                    Mode::Answer => {
                        let found = a.lock().unwrap().get(&token).cloned();
                        match found {
                            Some(Value::Object(mut members)) => {
                                members.insert("active".into(), json!(true));
                                text(200, Value::Object(members).to_string())
                            }
                            _ => text(200, r#"{"active":false}"#.into()),
                        }
                    }
                    Mode::Fail => text(500, "{}".into()),
                    Mode::Garbage => text(200, "<html>login</html>".into()),
                    Mode::Stall => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        text(200, "{}".into())
                    }
                }
            }
        };
        let (addr, stop) = spawn_server(handler).await;
        Endpoint {
            url: format!("http://{addr}/introspect"),
            mode,
            active,
            calls,
            delay,
            last,
            _stop: stop,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn activate(&self, token: &str, members: Value) {
        self.active.lock().unwrap().insert(token.into(), members);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A stack whose gate introspects opaque tokens at `endpoint` (`auto`), with extra settings.
async fn introspecting(endpoint: &Endpoint, extra: &[(&str, &str)]) -> Stack {
    let mut vars = vec![
        ("TOKEN_VALIDATION", "auto"),
        ("INTROSPECTION_ENDPOINT", endpoint.url.as_str()),
        ("INTROSPECTION_CLIENT_ID", "gate"),
        ("INTROSPECTION_CLIENT_SECRET", "s3cret:x"),
        ("CLAIM_HEADERS", "sub=X-Auth-Subject"),
    ];
    vars.extend_from_slice(extra);
    stack(&vars).await
}

/// Members an active answer carries for a token valid at this gate.
fn members(s: &Stack) -> Value {
    json!({"sub": "alice", "aud": s.gate.resource(), "exp": now() + 300, "scope": "mcp:tools",
           "client_id": "client-1"})
}

#[tokio::test]
async fn an_active_opaque_token_is_accepted_and_a_jwt_is_still_checked_locally() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[]).await;
    e.activate("opaque-alice", members(&s));
    let a = s.post_bearer("opaque-alice").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(e.calls(), 1);
    let (auth, form) = e.last.lock().unwrap().clone();
    // RFC 6749 §2.3.1: id and secret form-encoded, then HTTP Basic.
    assert_eq!(auth, "Basic Z2F0ZTpzM2NyZXQlM0F4");
    assert!(form.contains("token=opaque-alice"), "{form}");
    assert!(form.contains("token_type_hint=access_token"), "{form}");
    assert_eq!(
        s.upstream.seen()[0].headers["x-auth-subject"],
        "alice",
        "the introspected claims make the identity headers"
    );
    // A JWT never reaches the endpoint.
    assert_eq!(s.post_bearer(&s.token()).await.status, 200);
    assert_eq!(e.calls(), 1);
}

#[tokio::test]
async fn the_endpoint_is_found_in_the_servers_metadata_and_introspect_needs_no_keys() {
    let e = Endpoint::start().await;
    let base = e.url.trim_end_matches("/introspect").to_string();
    // The endpoint's server is the only authorization server; it publishes no JWKS, and under
    // TOKEN_VALIDATION=introspect the gate is ready without keys.
    let s = stack(&[
        ("AUTHORIZATION_SERVER", base.as_str()),
        ("TOKEN_VALIDATION", "introspect"),
        ("INTROSPECTION_CLIENT_ID", "gate"),
        ("INTROSPECTION_CLIENT_SECRET", "s"),
    ])
    .await;
    e.activate("opaque-alice", members(&s));
    assert_eq!(s.post_bearer("opaque-alice").await.status, 200);
    assert_eq!(e.calls(), 1);
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_form() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[("INTROSPECTION_AUTH_METHOD", "client_secret_post")]).await;
    e.activate("opaque-alice", members(&s));
    assert_eq!(s.post_bearer("opaque-alice").await.status, 200);
    let (auth, form) = e.last.lock().unwrap().clone();
    assert_eq!(auth, "");
    assert!(
        form.contains("client_id=gate&client_secret=s3cret%3Ax"),
        "{form}"
    );
}

#[tokio::test]
async fn an_inactive_token_is_refused_with_invalid_token() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[]).await;
    let a = s.post_bearer("revoked-or-unknown").await;
    assert_eq!(a.status, 401);
    assert!(a
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn an_active_answer_goes_through_the_same_policy_as_a_jwt() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let mut wrong_aud = members(&s);
    wrong_aud["aud"] = json!("https://other.example.com");
    e.activate("wrong-aud", wrong_aud);
    let mut expired = members(&s);
    expired["exp"] = json!(now() - 3600);
    e.activate("expired", expired);
    let mut no_scope = members(&s);
    no_scope["scope"] = json!("other");
    e.activate("no-scope", no_scope);
    let mut foreign = members(&s);
    foreign["iss"] = json!("https://evil.example.com");
    e.activate("foreign-iss", foreign);
    for (token, status) in [
        ("wrong-aud", 401),
        ("expired", 401),
        ("no-scope", 403),
        ("foreign-iss", 401),
    ] {
        assert_eq!(s.post_bearer(token).await.status, status, "{token}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn an_endpoint_that_is_down_slow_or_garbled_gives_503_never_a_pass() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[]).await;
    e.activate("opaque-alice", members(&s));
    for (i, mode) in [Mode::Fail, Mode::Garbage, Mode::Stall]
        .into_iter()
        .enumerate()
    {
        e.set(mode);
        // A token of its own for each case, so no earlier outcome is reused.
        let token = format!("opaque-{i}");
        e.activate(&token, members(&s));
        let started = Instant::now();
        let a = s.post_bearer(&token).await;
        assert_eq!(a.status, 503, "case {i}");
        assert!(a.header("retry-after").is_some(), "case {i}");
        // Bounded by JWKS_FETCH_TIMEOUT (1 s in tests).
        assert!(started.elapsed() < Duration::from_secs(3), "case {i}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn a_burst_with_one_token_costs_one_call() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[]).await;
    e.activate("opaque-alice", members(&s));
    *e.delay.lock().unwrap() = Duration::from_millis(300);
    let url = s.gate.resource();
    let burst: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                post(&url, &[("authorization", "Bearer opaque-alice")], "")
                    .await
                    .status
            })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), 200);
    }
    assert_eq!(e.calls(), 1);
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_the_cache_bound_has_passed() {
    let e = Endpoint::start().await;
    let s = introspecting(&e, &[("INTROSPECTION_CACHE_MAX_AGE", "1s")]).await;
    e.activate("opaque-alice", members(&s));
    assert_eq!(s.post_bearer("opaque-alice").await.status, 200);
    e.active.lock().unwrap().clear();
    // Within the bound the cached answer stands (one call in all) …
    assert_eq!(s.post_bearer("opaque-alice").await.status, 200);
    assert_eq!(e.calls(), 1);
    // … and after it the endpoint is asked again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(s.post_bearer("opaque-alice").await.status, 401);
    assert_eq!(e.calls(), 2);
}

#[tokio::test]
async fn a_flood_of_distinct_tokens_keeps_the_cache_bounded_and_costs_one_call_each() {
    use mcp_gate::auth::introspection::{
        ClientAuth, IntrospectionSettings, Introspector, Secret, Validation,
    };
    let e = Endpoint::start().await;
    let introspector = Introspector::new(
        IntrospectionSettings {
            validation: Validation::Introspect,
            endpoint: Some(url::Url::parse(&e.url).unwrap()),
            client_id: "gate".into(),
            client_secret: Secret("s".into()),
            auth: ClientAuth::Basic,
            cache_max_age: Duration::from_secs(60),
            cache_size: 16,
        },
        "http://127.0.0.1".into(),
        true,
        Duration::from_secs(1),
        Arc::new(mcp_gate::metrics::Metrics::new()),
    );
    let policy = policy_for("http://127.0.0.1");
    for i in 0..300 {
        let token = format!("flood-{i}");
        assert!(introspector.check(&token, &policy, now()).await.is_err());
        // Replayed at once: the negative answer is reused, no second call.
        assert!(introspector.check(&token, &policy, now()).await.is_err());
    }
    assert_eq!(
        e.calls(),
        300,
        "one call per distinct token, none per replay"
    );
    assert!(
        introspector.cached() <= 32,
        "the cache holds {} entries",
        introspector.cached()
    );
}

fn policy_for(issuer: &str) -> mcp_gate::auth::Policy {
    mcp_gate::auth::Policy {
        issuer: issuer.into(),
        audiences: vec!["https://mcp.example.com/mcp".into()],
        algorithms: vec![],
        token_type: mcp_gate::auth::token::TokenType::Any,
        required_scopes: vec![],
        claim_rules: vec![],
        clock_skew_secs: 0,
        max_token_size: 4096,
    }
}
