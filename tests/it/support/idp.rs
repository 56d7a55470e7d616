//! The identity provider the gate trusts: RFC 8414 metadata and a JWKS whose behaviour a test changes at will.

use super::*;

/// Serves `handler` on 127.0.0.1:0 until the returned sender is dropped or used.
pub async fn spawn_server<F, Fut>(handler: F) -> (SocketAddr, oneshot::Sender<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<BoxBody>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    serve_on(listener, handler, stop_rx);
    (addr, stop_tx)
}

/// How the test identity provider answers JWKS requests.
#[derive(Clone)]
pub enum JwksBehaviour {
    /// The given JWKS document, with an optional Cache-Control header.
    Serve(String),
    /// HTTP 500.
    Fail,
    /// 200 with this body (HTML, truncated JSON, …).
    Garbage(String),
    /// Never answers.
    Stall,
    /// Sends 200 and the start of a body, then never finishes it.
    StallBody,
}

/// An identity provider with RFC 8414 metadata and a JWKS whose behaviour tests change at will.
pub struct TestIdp {
    pub addr: SocketAddr,
    pub issuer: String,
    behaviour: Arc<Mutex<JwksBehaviour>>,
    jwks_fetches: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl TestIdp {
    pub async fn start(initial: JwksBehaviour) -> TestIdp {
        TestIdp::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), initial).await
    }

    /// Starts on a given listener (to bring an IdP "up" on an address the gate already knows).
    pub async fn start_on(listener: TcpListener, initial: JwksBehaviour) -> TestIdp {
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let issuer = format!("http://{addr}");
        let behaviour = Arc::new(Mutex::new(initial));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (b, f, iss) = (behaviour.clone(), jwks_fetches.clone(), issuer.clone());
        let handler = move |req: Request<Incoming>| {
            let (b, f, iss) = (b.clone(), f.clone(), iss.clone());
            async move {
                match req.uri().path() {
                    "/.well-known/oauth-authorization-server"
                    | "/.well-known/openid-configuration" => {
                        let doc = json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks"),
                                         "authorization_endpoint": format!("{iss}/auth"),
                                         "token_endpoint": format!("{iss}/token"),
                                         "registration_endpoint": format!("{iss}/register"),
                                         "grant_types_supported": ["authorization_code", "refresh_token"],
                                         "code_challenge_methods_supported": ["S256"]});
                        json_response(StatusCode::OK, &doc)
                    }
                    "/jwks" => {
                        // `serve` runs no start-up self-check (the binary does), so every fetch
                        // counted here is the key cache's.
                        f.fetch_add(1, Ordering::SeqCst);
                        let current = b.lock().unwrap().clone();
                        match current {
                            JwksBehaviour::Serve(doc) => Response::builder()
                                .header("content-type", "application/json")
                                .body(full(doc))
                                .unwrap(),
                            JwksBehaviour::Fail => {
                                Response::builder().status(500).body(full("oops")).unwrap()
                            }
                            JwksBehaviour::Garbage(body) => {
                                Response::builder().body(full(body)).unwrap()
                            }
                            JwksBehaviour::Stall => {
                                tokio::time::sleep(Duration::from_secs(3600)).await;
                                Response::new(full(""))
                            }
                            JwksBehaviour::StallBody => {
                                let (tx, rx) = mpsc::channel::<Bytes>(1);
                                tokio::spawn(async move {
                                    let _ = tx.send(Bytes::from_static(b"{\"keys\":[")).await;
                                    tx.closed().await;
                                });
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(BodyExt::boxed(ChannelBody(rx)))
                                    .unwrap()
                            }
                        }
                    }
                    _ => Response::builder().status(404).body(full("")).unwrap(),
                }
            }
        };
        // Bind again on the same port (the caller's listener was only a reservation).
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        serve_on(listener, handler, stop_rx);
        TestIdp {
            addr,
            issuer,
            behaviour,
            jwks_fetches,
            _stop: stop_tx,
        }
    }

    pub fn set(&self, behaviour: JwksBehaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    pub fn serve_keys(&self, keys: &[&TestKey]) {
        self.set(JwksBehaviour::Serve(jwks(keys)));
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }
}

fn serve_on<F, Fut>(listener: TcpListener, handler: F, mut stop_rx: oneshot::Receiver<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<BoxBody>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                _ = &mut stop_rx => return,
            };
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let handler = handler.clone();
                    async move { Ok::<_, Infallible>(handler(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

pub fn json_response(status: StatusCode, v: &Value) -> Response<BoxBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(v.to_string()))
        .unwrap()
}
