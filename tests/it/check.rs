//! `mcp-gate check` over real sockets: against a healthy gate and identity provider, against
//! deliberately misconfigured deployments (small in-test servers, one fault each), and the binary's
//! exit codes and output.

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

// -------------------------------------------------------------------------------------------
// The real gate
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_healthy_gate_passes_every_check_with_only_loopback_warnings() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let report = run(&s.gate.resource(), None).await;
    assert!(failing(&report).is_empty(), "\n{}", report.to_text());
    let warnings: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warn)
        .map(|c| c.id)
        .collect();
    assert_eq!(
        warnings,
        ["transport", "as.https"],
        "\n{}",
        report.to_text()
    );
    for id in [
        "endpoint",
        "challenge.bearer",
        "challenge.syntax",
        "challenge.resource_metadata",
        "endpoint.body",
        "metadata.path",
        "metadata.root",
        "metadata.agree",
        "metadata.resource",
        "metadata.authorization_servers",
        "as.metadata",
        "as.grant_types",
        "as.pkce",
        "as.registration",
        "as.jwks",
        "redirects",
    ] {
        assert_eq!(find(&report, id).status, Status::Ok, "{id}");
    }
    assert!(find(&report, "metadata.path")
        .message
        .contains("the challenge's resource_metadata"));
}

#[tokio::test]
async fn a_valid_token_passes_and_each_bad_token_is_refused_for_its_rule() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let url = s.gate.resource();
    let good = s.token_with(|_| {});
    let report = run(&url, Some(&good)).await;
    assert_eq!(
        find(&report, "token").status,
        Status::Ok,
        "\n{}",
        report.to_text()
    );
    assert!(!report.to_text().contains(&good) && !report.to_json().contains(&good));

    let other_key = TestKey::rsa("k9", 2048);
    let cases = [
        (
            s.token_with(|c| c["exp"] = json!(now() - 7200)),
            "(expired): it expired 2h".to_string(),
        ),
        (
            s.token_with(|c| c["aud"] = json!("https://mcp.example.com/mcp")),
            format!("bad_audience): aud is \"https://mcp.example.com/mcp\" (scheme (https instead of http), host (mcp.example.com instead of 127.0.0.1), no port (expected :{}))", s.gate.addr.port()),
        ),
        (
            s.token_with(|c| c["iss"] = json!(format!("{}/", s.idp.issuer))),
            format!("bad_issuer): iss is \"{}/\" but the authorization server is \"{}\" (a trailing slash)", s.idp.issuer, s.idp.issuer),
        ),
        (
            other_key.token(&claims(&s.idp.issuer, &url)),
            "unknown_kid): its kid \"k9\" is not in the JWKS".to_string(),
        ),
        (
            s.token_with(|c| c["scope"] = json!("profile email")),
            "insufficient_scope): it grants [profile email] but the challenge's scope asks for [mcp:tools]: missing mcp:tools".to_string(),
        ),
    ];
    for (token, words) in cases {
        let report = run(&url, Some(&token)).await;
        assert_fails(&report, &["token"], &words);
        let text = report.to_text();
        let json = report.to_json();
        assert!(
            !text.contains(&token) && !json.contains(&token),
            "token printed"
        );
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_once_and_skips_the_rest() {
    let port = free_addr().port();
    let report = run(&format!("http://127.0.0.1:{port}/mcp"), None).await;
    assert_fails(&report, &["endpoint"], "remaining checks were skipped");
    assert_eq!(report.checks.len(), 2, "\n{}", report.to_text());
}

// -------------------------------------------------------------------------------------------
// Misconfigured deployments
// -------------------------------------------------------------------------------------------

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

#[tokio::test]
async fn the_healthy_test_deployment_passes() {
    let s = site(|_| {}).await;
    let report = run(&s.deployment.url(), None).await;
    assert!(failing(&report).is_empty(), "\n{}", report.to_text());
    let token = signing_key().token(&json!({"iss": format!("{}/as", s.deployment.base),
        "aud": s.deployment.url(), "exp": now() + 60, "scope": "mcp:tools"}));
    let report = run(&s.deployment.url(), Some(&token)).await;
    assert_eq!(
        find(&report, "token").status,
        Status::Ok,
        "\n{}",
        report.to_text()
    );
}

/// Issue #14 point 16: the `EXPECTED_AUDIENCE` advice must be one the gate can honour. A space-
/// separated `aud` (an IdP without resource indicators putting scopes there) is split by the gate's
/// list parser and can never match, so the only fix is RFC 8707 at the IdP; an array `aud` names one
/// of its members, never a placeholder.
#[tokio::test]
async fn the_audience_hint_is_advice_the_gate_can_follow_for_every_shape_of_aud() {
    let s = site(|_| {}).await;
    let url = s.deployment.url();
    let token_for = |aud: Value| {
        signing_key().token(&json!({"iss": format!("{}/as", s.deployment.base),
            "aud": aud, "exp": now() + 60, "scope": "mcp:tools"}))
    };
    let hint_for = |report: &Report| {
        assert_fails(report, &["token"], "bad_audience");
        find(report, "token").hint.clone().unwrap()
    };

    let scopes = run(&url, Some(&token_for(json!("openid profile mcp:tools")))).await;
    let hint = hint_for(&scopes);
    assert!(!hint.contains("EXPECTED_AUDIENCE="), "{hint}");
    assert!(hint.contains("resource indicators (RFC 8707)"), "{hint}");

    let array = run(&url, Some(&token_for(json!(["api://mcp", "account"])))).await;
    let hint = hint_for(&array);
    assert!(
        hint.contains(&format!("EXPECTED_AUDIENCE={url},api://mcp ")),
        "{hint}"
    );
    assert!(!hint.contains("<aud>"), "{hint}");

    let one = run(&url, Some(&token_for(json!("api://mcp")))).await;
    let hint = hint_for(&one);
    assert!(
        hint.contains(&format!("EXPECTED_AUDIENCE={url},api://mcp ")),
        "{hint}"
    );
}

/// Issue #14 point 9: a 401 may name a `resource_metadata` on any origin, e.g. an internal metadata
/// service. The check fetches it (and prints what it found) only with `--follow-cross-origin`, and
/// says why it did not otherwise.
#[tokio::test]
async fn a_resource_metadata_on_another_origin_is_followed_only_when_asked() {
    let internal = site(|d| {
        d.edit(PRM_PATH, |doc| {
            doc["resource"] = json!("http://internal.example/secret-resource")
        })
    })
    .await;
    let elsewhere = format!("{}{PRM_PATH}", internal.deployment.base);
    let s = site(|d| d.set_challenge(&[format!("Bearer resource_metadata=\"{elsewhere}\"")])).await;
    let url = s.deployment.url();

    let report = run(&url, None).await;
    let text = report.to_text();
    let refused = find(&report, "metadata.challenge");
    assert_eq!(refused.status, Status::Warn, "\n{text}");
    assert!(refused.message.contains("not fetched"), "\n{text}");
    assert!(
        refused
            .hint
            .as_deref()
            .unwrap()
            .contains("--follow-cross-origin"),
        "\n{text}"
    );
    assert!(!text.contains("secret-resource"), "\n{text}");
    assert!(failing(&report).is_empty(), "\n{text}");

    let (code, out, err) = binary(&[&url]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("not fetched") && !out.contains("secret-resource"),
        "{out}"
    );

    let (code, out, err) = binary(&[&url, "--follow-cross-origin"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!(
            "the challenge's resource_metadata at {elsewhere} answers 200 JSON"
        )),
        "{out}"
    );
    assert!(out.contains("secret-resource"), "{out}");
}

#[tokio::test]
async fn an_endpoint_that_answers_200_without_a_token_fails() {
    let report = check_site(|d| {
        d.endpoint = json_answer(200, &json!({"jsonrpc": "2.0", "id": 1, "result": {}}))
    })
    .await;
    assert_fails(
        &report,
        &["endpoint"],
        "gets 200: the endpoint is not protected",
    );
}

#[tokio::test]
async fn a_challenge_without_resource_metadata_fails() {
    let report = check_site(|d| d.set_challenge(&["Bearer scope=\"mcp:tools\"".into()])).await;
    assert_fails(
        &report,
        &["challenge.resource_metadata"],
        "no resource_metadata",
    );
    // The well-known URLs are still tried, as clients do.
    assert_eq!(find(&report, "metadata.path").status, Status::Ok);
}

#[tokio::test]
async fn a_relative_resource_metadata_fails() {
    let report =
        check_site(|d| d.set_challenge(&[format!("Bearer resource_metadata=\"{PRM_PATH}\"")]))
            .await;
    assert_fails(
        &report,
        &["challenge.resource_metadata"],
        "is not an absolute URL",
    );
}

#[tokio::test]
async fn a_duplicated_resource_metadata_or_a_second_bearer_challenge_fails() {
    let report = check_site(|d| {
        let prm = format!("{}{PRM_PATH}", d.base);
        d.set_challenge(&[format!(
            "Bearer resource_metadata=\"{prm}\", resource_metadata=\"{prm}\""
        )])
    })
    .await;
    assert_fails(
        &report,
        &["challenge.syntax"],
        "resource_metadata appears more than once",
    );

    let report = check_site(|d| {
        let one = format!("Bearer resource_metadata=\"{}{PRM_PATH}\"", d.base);
        d.set_challenge(&[one.clone(), one])
    })
    .await;
    assert_fails(&report, &["challenge.bearer"], "2 Bearer challenges");
}

#[tokio::test]
async fn a_resource_with_a_trailing_slash_fails_and_says_so() {
    let report = check_site(|d| {
        let slashed = format!("{}/mcp/", d.base);
        for path in [PRM_PATH, PRM_ROOT] {
            d.edit(path, |doc| doc["resource"] = json!(slashed));
        }
    })
    .await;
    assert_fails(&report, &["metadata.resource"], "a trailing slash");
    let hint = find(&report, "metadata.resource").hint.clone().unwrap();
    assert!(hint.contains("RFC 9728 §3.3"), "{hint}");
}

#[tokio::test]
async fn metadata_with_a_null_fails() {
    let report = check_site(|d| {
        for path in [PRM_PATH, PRM_ROOT] {
            d.edit(path, |doc| doc["resource_name"] = Value::Null);
        }
    })
    .await;
    assert_fails(
        &report,
        &["metadata.path", "metadata.root"],
        "has null values: resource_name",
    );
}

#[tokio::test]
async fn a_404_at_the_path_inserted_metadata_url_fails() {
    let report = check_site(|d| {
        d.pages.remove(PRM_PATH);
        d.set_challenge(&[format!("Bearer resource_metadata=\"{}{PRM_ROOT}\"", d.base)]);
    })
    .await;
    assert_fails(&report, &["metadata.path"], "answers 404");
    assert!(find(&report, "metadata.path")
        .hint
        .as_deref()
        .unwrap()
        .contains("path-inserted"));
}

#[tokio::test]
async fn metadata_that_differ_between_locations_fail() {
    let report = check_site(|d| {
        d.edit(PRM_ROOT, |doc| {
            doc["scopes_supported"] = json!(["mcp:tools", "offline_access"])
        })
    })
    .await;
    assert_fails(&report, &["metadata.agree"], "in scopes_supported");
}

#[tokio::test]
async fn an_authorization_server_whose_issuer_differs_from_the_listed_one_fails() {
    let report = check_site(|d| {
        let issuer = format!("{}/as/", d.base);
        d.edit(AS_PATH, |doc| doc["issuer"] = json!(issuer))
    })
    .await;
    assert_fails(&report, &["as.metadata"], "as/\": a trailing slash");
}

#[tokio::test]
async fn an_authorization_server_found_only_by_openid_discovery_passes() {
    let report = check_site(|d| {
        let doc = d.pages.remove(AS_PATH).unwrap();
        d.pages
            .insert("/as/.well-known/openid-configuration".into(), doc);
    })
    .await;
    assert!(failing(&report).is_empty(), "\n{}", report.to_text());
    assert!(find(&report, "as.metadata")
        .message
        .contains("/as/.well-known/openid-configuration"));
}

#[tokio::test]
async fn an_authorization_server_without_metadata_fails() {
    let report = check_site(|d| {
        d.pages.remove(AS_PATH);
    })
    .await;
    assert_fails(
        &report,
        &["as.metadata"],
        "no authorization server metadata",
    );
}

#[tokio::test]
async fn an_authorization_server_without_s256_fails() {
    let report = check_site(|d| {
        d.edit(AS_PATH, |doc| {
            doc["code_challenge_methods_supported"] = json!(["plain"])
        })
    })
    .await;
    assert_fails(&report, &["as.pkce"], "without S256");
}

#[tokio::test]
async fn a_jwks_without_a_usable_key_fails() {
    let report = check_site(|d| {
        d.pages.get_mut("/as/jwks").unwrap().body =
            json!({"keys": [{"kty": "oct", "kid": "shared", "alg": "HS256", "k": "c2VjcmV0"}]})
                .to_string();
    })
    .await;
    assert_fails(&report, &["as.jwks"], "no usable signing key");
    assert!(find(&report, "as.jwks")
        .message
        .contains("kid shared (kty oct"));
}

#[tokio::test]
async fn a_redirect_on_the_mcp_url_fails() {
    let report = check_site(|d| {
        d.endpoint = Canned {
            status: 307,
            headers: vec![("location", format!("{}/mcp/", d.base))],
            body: String::new(),
        };
    })
    .await;
    assert_fails(&report, &["endpoint"], "307, a redirect to");
    assert!(find(&report, "endpoint")
        .message
        .contains("trailing slash redirect"));
    assert!(report.checks.iter().all(|c| c.id != "redirects"));
}

#[tokio::test]
async fn a_redirect_on_the_metadata_fails() {
    let report = check_site(|d| {
        d.pages.insert(
            PRM_ROOT.into(),
            Canned {
                status: 301,
                headers: vec![("location", format!("{}/elsewhere", d.base))],
                body: String::new(),
            },
        );
    })
    .await;
    assert_fails(&report, &["metadata.root"], "redirects (301)");
}

// -------------------------------------------------------------------------------------------
// The start-up self-check
// -------------------------------------------------------------------------------------------

fn gate_config(idp: &TestIdp, extra: &[(&str, &str)]) -> mcp_gate::Config {
    let mut vars: HashMap<String, String> = [
        ("UPSTREAM_URL", "http://127.0.0.1:9"),
        ("RESOURCE_URI", "http://127.0.0.1:8080/mcp"),
        ("JWKS_FETCH_TIMEOUT", "2s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vars.insert("AUTHORIZATION_SERVER".into(), idp.issuer.clone());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    mcp_gate::Config::from_vars(&vars).unwrap().0
}

fn status_of(checks: &[Check], id: &str) -> Option<Status> {
    checks.iter().find(|c| c.id == id).map(|c| c.status)
}

#[tokio::test]
async fn the_self_check_passes_a_sound_configuration_and_names_a_wrong_one() {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;

    let checks = check::self_check(&gate_config(&idp, &[])).await;
    let bad: Vec<&Check> = checks.iter().filter(|c| c.status == Status::Fail).collect();
    assert!(bad.is_empty(), "{bad:?}");

    let slashed = format!("{}/", idp.issuer);
    let checks = check::self_check(&gate_config(
        &idp,
        &[
            ("AUTHORIZATION_SERVER", &slashed),
            ("EXPECTED_AUDIENCE", "http://127.0.0.1:8080/mcp/"),
        ],
    ))
    .await;
    assert_eq!(
        status_of(&checks, "as.metadata"),
        Some(Status::Fail),
        "{checks:?}"
    );
    assert_eq!(
        status_of(&checks, "config.audience"),
        Some(Status::Warn),
        "{checks:?}"
    );

    // JWKS_URI is checked even when the issuer publishes no metadata.
    let nowhere = format!("{}/nowhere", idp.issuer);
    let jwks_uri = format!("{}/jwks", idp.issuer);
    let checks = check::self_check(&gate_config(
        &idp,
        &[("AUTHORIZATION_SERVER", &nowhere), ("JWKS_URI", &jwks_uri)],
    ))
    .await;
    assert_eq!(status_of(&checks, "as.metadata"), Some(Status::Fail));
    assert_eq!(
        status_of(&checks, "as.jwks"),
        Some(Status::Ok),
        "{checks:?}"
    );

    idp.set(JwksBehaviour::Fail);
    let checks = check::self_check(&gate_config(&idp, &[])).await;
    let jwks = checks.iter().find(|c| c.id == "as.jwks").unwrap();
    assert_eq!(jwks.status, Status::Fail);
    assert!(jwks.message.contains("answers 500"), "{jwks:?}");
}

// -------------------------------------------------------------------------------------------
// The binary
// -------------------------------------------------------------------------------------------

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

#[tokio::test]
async fn the_binary_exits_0_1_or_2_and_never_prints_the_token() {
    let s = stack(&[("REQUIRED_SCOPES", "mcp:tools")]).await;
    let url = s.gate.resource();
    let token = s.token_with(|_| {});

    let (code, out, err) = binary(&[&url, "--token", &token]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("✓ the token passes the gate's checks"),
        "{out}"
    );
    assert!(out.contains("No problems found (2 warnings)."), "{out}");

    let expired = s.token_with(|c| c["exp"] = json!(now() - 600));
    let (code, out, err) = binary(&[&url, "--json", "--token", &expired]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    let checks: Value = serde_json::from_str(&out).unwrap();
    let token_check = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "token")
        .unwrap();
    assert_eq!(token_check["status"], "fail");
    assert!(token_check["message"].as_str().unwrap().contains("expired"));
    assert!(token_check["hint"].is_string());

    assert!(!out.contains(&expired) && !err.contains(&expired));
    let (_, out, err) = binary(&[&url, "--token", &token]).await;
    assert!(!out.contains(&token) && !err.contains(&token));

    let broken = site(|d| d.endpoint = json_answer(200, &json!({}))).await;
    let (code, out, _) = binary(&[&broken.deployment.url()]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ an initialize without a token gets 200"),
        "{out}"
    );

    for args in [
        &["not a url"][..],
        &[][..],
        &[&url, "--timeout", "soon"][..],
    ] {
        let (code, out, err) = binary(args).await;
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
    }
}
