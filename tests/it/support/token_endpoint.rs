//! A token endpoint for RFC 8693 token exchange whose answers a test changes at will, with RFC 8414
//! metadata naming it (issuer: its own base URL).

use super::*;

/// How the token endpoint answers an exchange.
#[derive(Clone, Debug)]
pub enum ExchangeMode {
    /// 200 with `exchanged-<n>` (n counts the calls from 1), Bearer, this `expires_in`.
    Issue { expires_in: u64 },
    /// 400 `invalid_grant` (RFC 8693 §2.2.2).
    Refuse,
    /// Never answers.
    Stall,
    /// 200 with an HTML page.
    Garbage,
    /// 200 with a well-formed answer larger than the gate reads (a 128 KiB token).
    Oversized,
}

/// The token endpoint at `/token`.
pub struct TokenEndpoint {
    /// `http://127.0.0.1:port`: the issuer of its metadata.
    pub base: String,
    mode: Arc<Mutex<ExchangeMode>>,
    calls: Arc<AtomicUsize>,
    /// Delay before each answer (to make a burst overlap one call).
    pub delay: Arc<Mutex<Duration>>,
    /// Authorization header and form body of the last call.
    last: Arc<Mutex<(String, String)>>,
    _stop: oneshot::Sender<()>,
}

impl TokenEndpoint {
    pub async fn start(mode: ExchangeMode) -> TokenEndpoint {
        let mode = Arc::new(Mutex::new(mode));
        let calls = Arc::new(AtomicUsize::new(0));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let last = Arc::new(Mutex::new((String::new(), String::new())));
        let (m, c, d, l) = (mode.clone(), calls.clone(), delay.clone(), last.clone());
        let handler = move |req: Request<Incoming>| {
            let (m, c, d, l) = (m.clone(), c.clone(), d.clone(), l.clone());
            async move {
                let host = req.headers()["host"].to_str().unwrap().to_string();
                if req.uri().path().starts_with("/.well-known/") {
                    let doc = json!({"issuer": format!("http://{host}"),
                                     "token_endpoint": format!("http://{host}/token")});
                    return json_response(StatusCode::OK, &doc);
                }
                if req.uri().path() != "/token" {
                    return json_response(StatusCode::NOT_FOUND, &json!({}));
                }
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                let auth = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = req.into_body().collect().await.unwrap().to_bytes();
                *l.lock().unwrap() = (auth, String::from_utf8_lossy(&body).to_string());
                let wait = *d.lock().unwrap();
                tokio::time::sleep(wait).await;
                let mode = m.lock().unwrap().clone();
                let issued = |token: String, expires_in: u64| {
                    json!({"access_token": token,
                           "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                           "token_type": "Bearer", "expires_in": expires_in})
                };
                match mode {
                    ExchangeMode::Issue { expires_in } => json_response(
                        StatusCode::OK,
                        &issued(format!("exchanged-{n}"), expires_in),
                    ),
                    ExchangeMode::Refuse => json_response(
                        StatusCode::BAD_REQUEST,
                        &json!({"error": "invalid_grant", "error_description": "subject token refused"}),
                    ),
                    ExchangeMode::Stall => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        json_response(StatusCode::OK, &json!({}))
                    }
                    ExchangeMode::Garbage => Response::builder()
                        .header("content-type", "text/html")
                        .body(full("<html>login</html>"))
                        .unwrap(),
                    ExchangeMode::Oversized => {
                        json_response(StatusCode::OK, &issued("a".repeat(128 * 1024), 300))
                    }
                }
            }
        };
        let (addr, stop) = spawn_server(handler).await;
        TokenEndpoint {
            base: format!("http://{addr}"),
            mode,
            calls,
            delay,
            last,
            _stop: stop,
        }
    }

    /// The endpoint's URL.
    pub fn url(&self) -> String {
        format!("{}/token", self.base)
    }

    pub fn set(&self, mode: ExchangeMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Exchange calls answered (or begun) so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// The `Authorization` header and the form of the last call.
    pub fn last(&self) -> (String, String) {
        self.last.lock().unwrap().clone()
    }
}
