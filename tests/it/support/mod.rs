//! Shared helpers for the integration tests: a controllable identity provider (metadata + JWKS), a
//! recording upstream (JSON and SSE), a gate started in-process on an ephemeral port, and a client.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify};

pub use mcp_gate::test_support::{jwks, TestKey};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> BoxBody {
    Full::new(b.into()).boxed()
}

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

/// What the upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// False when the request body ended in an error (the gate aborted it) rather than at its end.
    pub body_complete: bool,
}

/// An MCP-ish upstream that records every request. Paths:
/// - `/sse`: an SSE stream; sends `event 1`, then waits for [`TestUpstream::release`] before `event 2`.
/// - `/status/NNN`: answers with that status.
/// - `/slow`: answers after 10 s.
/// - anything else: 200 JSON echo of the request, with an `Mcp-Session-Id` response header.
pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    release: Arc<Notify>,
    /// Set when an SSE stream's body is dropped by the gate (client went away).
    pub sse_closed: Arc<Notify>,
    _stop: oneshot::Sender<()>,
}

impl TestUpstream {
    pub async fn start() -> TestUpstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Notify::new());
        let sse_closed = Arc::new(Notify::new());
        let (s, r, c) = (seen.clone(), release.clone(), sse_closed.clone());
        let handler = move |req: Request<Incoming>| {
            let (s, r, c) = (s.clone(), r.clone(), c.clone());
            async move {
                let (parts, body) = req.into_parts();
                let path = parts.uri.path().to_string();
                let (body, body_complete) = if path == "/sse" {
                    (Bytes::new(), true)
                } else {
                    match body.collect().await {
                        Ok(b) => (b.to_bytes(), true),
                        Err(_) => (Bytes::new(), false),
                    }
                };
                s.lock().unwrap().push(Seen {
                    method: parts.method.clone(),
                    path_and_query: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    headers: parts.headers.clone(),
                    body: body.clone(),
                    body_complete,
                });
                if path == "/sse" {
                    let (tx, rx) = mpsc::channel::<Bytes>(4);
                    tokio::spawn(async move {
                        let _ = tx.send(Bytes::from("data: event 1\n\n")).await;
                        tokio::select! {
                            _ = r.notified() => {
                                let _ = tx.send(Bytes::from("data: event 2\n\n")).await;
                                tx.closed().await;
                            }
                            _ = tx.closed() => {}
                        }
                        c.notify_one();
                    });
                    return Response::builder()
                        .header("content-type", "text/event-stream")
                        .header("mcp-session-id", "sess-sse")
                        .body(BodyExt::boxed(ChannelBody(rx)))
                        .unwrap();
                }
                if let Some(code) = path.strip_prefix("/status/") {
                    let status = StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
                    return Response::builder().status(status).body(full("")).unwrap();
                }
                if path == "/slow" {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                if body.windows(12).any(|w| w == b"\"tools/list\"") {
                    return tools_list_response(parts.headers.contains_key("x-test-sse"));
                }
                let headers: serde_json::Map<String, Value> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
                    .collect();
                let mut resp = json_response(
                    StatusCode::OK,
                    &json!({"path": parts.uri.to_string(), "method": parts.method.as_str(), "headers": headers,
                            "body": String::from_utf8_lossy(&body)}),
                );
                resp.headers_mut()
                    .insert("mcp-session-id", "sess-1".parse().unwrap());
                resp
            }
        };
        let (addr, stop) = spawn_server(handler).await;
        TestUpstream {
            addr,
            seen,
            release,
            sse_closed,
            _stop: stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Clears the record (after a control request that was meant to pass).
    pub fn forget(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Lets the SSE stream send its next event.
    pub fn release(&self) {
        self.release.notify_one();
    }
}

/// The tools the test upstream lists.
pub const TOOLS: [&str; 3] = ["echo", "delete_note", "read_notes"];

/// The test upstream's `tools/list` answer: JSON, or an SSE stream (a progress notification, then
/// the result, each sent in small chunks split mid-event).
fn tools_list_response(sse: bool) -> Response<BoxBody> {
    let tools: Vec<Value> = TOOLS
        .iter()
        .map(|n| json!({"name": n, "inputSchema": {"type": "object"}}))
        .collect();
    let result = json!({"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}});
    if !sse {
        return json_response(StatusCode::OK, &result);
    }
    let stream = format!(
        "event: message\ndata: {}\n\nevent: message\ndata: {}\n\n",
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}}),
        result
    );
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for chunk in stream.as_bytes().chunks(17) {
            if tx.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed(ChannelBody(rx)))
        .unwrap()
}

/// A body fed by a channel; dropping it (the gate hung up) closes the channel.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl ChannelBody {
    /// A request body the test writes chunk by chunk; it ends when the sender is dropped.
    pub fn pair() -> (mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = mpsc::channel(16);
        (tx, ChannelBody(rx))
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// A gate running in-process.
pub struct TestGate {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub const RESOURCE_PATH: &str = "/mcp";

impl TestGate {
    /// Starts a gate in front of `upstream` trusting `idp`, with extra settings.
    pub async fn start(idp: &TestIdp, upstream: &TestUpstream, extra: &[(&str, &str)]) -> TestGate {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut vars: HashMap<String, String> = HashMap::new();
        vars.insert("UPSTREAM_URL".into(), upstream.url());
        vars.insert(
            "RESOURCE_URI".into(),
            format!("http://{addr}{RESOURCE_PATH}"),
        );
        vars.insert("AUTHORIZATION_SERVER".into(), idp.issuer.clone());
        vars.insert("JWKS_MIN_REFRESH_INTERVAL".into(), "1s".into());
        vars.insert("JWKS_FETCH_TIMEOUT".into(), "1s".into());
        vars.insert("SHUTDOWN_TIMEOUT".into(), "1s".into());
        for (k, v) in extra {
            vars.insert(k.to_string(), v.to_string());
        }
        let (config, _) = mcp_gate::Config::from_vars(&vars).expect("valid test config");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let done = tokio::spawn(mcp_gate::serve(listener, config, async {
            let _ = stop_rx.await;
        }));
        TestGate {
            addr,
            stop: Some(stop_tx),
            done: Some(done),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn resource(&self) -> String {
        self.url(RESOURCE_PATH)
    }

    /// Polls `/readyz` until it answers 200 (or panics after 5 s).
    pub async fn wait_ready(&self) {
        self.wait_ready_at("/readyz").await
    }

    /// Polls a readiness path until it answers 200 (or panics after 5 s).
    pub async fn wait_ready_at(&self, path: &str) {
        for _ in 0..250 {
            if get(&self.url(path), &[]).await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("gate never became ready");
    }

    /// Signals shutdown and waits for `serve` to return.
    pub async fn shutdown(mut self) -> Duration {
        let started = std::time::Instant::now();
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap().unwrap();
        started.elapsed()
    }
}

impl Drop for TestGate {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An identity provider publishing one RSA key (`k1`), a recording upstream and a ready gate in front
/// of it: the usual arrangement of the integration tests.
pub struct Stack {
    pub idp: TestIdp,
    pub upstream: TestUpstream,
    pub gate: TestGate,
    pub key: TestKey,
}

/// Starts a [`Stack`] with extra gate settings and waits until the gate is ready.
pub async fn stack(extra: &[(&str, &str)]) -> Stack {
    let key = TestKey::rsa("k1", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &upstream, extra).await;
    let ready_path = extra
        .iter()
        .find(|(k, _)| *k == "READY_PATH")
        .map_or("/readyz", |(_, v)| *v);
    gate.wait_ready_at(ready_path).await;
    Stack {
        idp,
        upstream,
        gate,
        key,
    }
}

impl Stack {
    /// A valid token for this gate, signed with the stack's key.
    pub fn token(&self) -> String {
        self.key
            .token(&claims(&self.idp.issuer, &self.gate.resource()))
    }

    /// A token with the standard claims changed by `change`, signed with the stack's key.
    pub fn token_with(&self, change: impl FnOnce(&mut Value)) -> String {
        let mut c = claims(&self.idp.issuer, &self.gate.resource());
        change(&mut c);
        self.key.token(&c)
    }

    /// `POST` to the MCP endpoint with `token` as the bearer.
    pub async fn post_bearer(&self, token: &str) -> Answer {
        post(
            &self.gate.resource(),
            &[("authorization", &bearer(token))],
            "",
        )
        .await
    }

    /// A valid token for this gate, signed with `key`.
    pub fn token_from(&self, key: &TestKey) -> String {
        key.token(&claims(&self.idp.issuer, &self.gate.resource()))
    }
}

/// Collects a child process's stdout, line by line, on a thread of its own.
pub fn stdout_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Polls `http://127.0.0.1:PORT/readyz` until it answers 200 (a binary started by a test); panics
/// after 5 s.
pub async fn wait_ready_on(port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
            && get(&url, &[]).await.status == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the binary on port {port} never became ready");
}

/// An address on 127.0.0.1 that was free a moment ago (for a listener a test cannot pass in).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A complete response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends a request and reads the whole response (bounded to 10 s).
pub async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client().request(request))
        .await
        .expect("response within 10 s")
        .expect("request succeeds");
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(Duration::from_secs(10), body.collect())
        .await
        .expect("body within 10 s")
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    send(Method::GET, url, headers, "").await
}

pub async fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    send(Method::POST, url, headers, body).await
}

/// Opens a request and returns the response head with the body still streaming.
pub async fn open(method: Method, url: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
    let mut builder = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    client()
        .request(builder.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap()
}

/// Reads the next data frame of a streaming body (bounded wait).
pub async fn next_chunk(body: &mut Incoming, wait: Duration) -> Option<Bytes> {
    loop {
        let frame = tokio::time::timeout(wait, body.frame()).await.ok()??.ok()?;
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Standard valid claims for a gate at `resource` trusting `issuer`.
pub fn claims(issuer: &str, resource: &str) -> Value {
    json!({"iss": issuer, "aud": resource, "sub": "alice", "client_id": "client-1",
           "exp": now() + 300, "iat": now(), "scope": "mcp:tools"})
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// What a server sent back on a raw TCP connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub bytes: Vec<u8>,
    /// The server closed (or reset) the connection; false when the read stopped on the idle bound.
    pub closed: bool,
}

impl RawAnswer {
    /// The status code of the first response, if any arrived.
    pub fn status(&self) -> Option<u16> {
        self.statuses().first().copied()
    }

    /// The status code of every response on the connection, in order.
    pub fn statuses(&self) -> Vec<u16> {
        let text = self.text();
        text.match_indices("HTTP/1.1 ")
            .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }

    /// The value of the first response's header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = self.text();
        let head = text.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Writes `request` on a fresh connection (concurrently with reading, so an early answer to a huge
/// request is not lost) and reads until the server closes the connection or stays silent for `idle`.
/// For requests an HTTP client library refuses to build: raw bytes, smuggling shapes, absolute form.
pub async fn raw(addr: SocketAddr, request: &[u8], idle: Duration) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let request = request.to_vec();
    let writer = tokio::spawn(async move {
        // The server may answer and close before reading everything: write errors are expected.
        let _ = wr.write_all(&request).await;
        // Keep the write half open (no FIN) so the server decides when the exchange ends.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(wr);
    });
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let closed = loop {
        match tokio::time::timeout(idle, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    writer.abort();
    RawAnswer { bytes, closed }
}

/// Number of open file descriptors of this process (sockets included), from /proc/self/fd.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// An upstream that misbehaves at the TCP/HTTP level, chosen by the request path:
/// - `/reset`: resets the connection without answering.
/// - `/close`: closes the connection without answering.
/// - `/garbage`: answers with bytes that are not HTTP.
/// - `/bad-length`: a response with two different Content-Length headers.
/// - `/huge-headers`: a response whose header block is 1 MB.
/// - `/stall`: never answers; holds the connection until the gate closes it.
/// - `/truncated`: promises 1000 bytes, sends 10, then resets.
/// - `/sse`: an SSE stream that sends one event, then nothing until the gate closes the connection.
/// - `/sse-reset`: an SSE stream that sends one event, then resets.
/// - anything else: a small 200.
pub struct FaultyUpstream {
    pub addr: SocketAddr,
    /// Connections currently open from the gate.
    open: Arc<AtomicUsize>,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    /// Sent when a `/sse` or `/stall` connection sees the gate close it.
    closed_tx: tokio::sync::broadcast::Sender<&'static str>,
    _stop: oneshot::Sender<()>,
}

impl FaultyUpstream {
    pub async fn start() -> FaultyUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (closed_tx, _) = tokio::sync::broadcast::channel(64);
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let (o, a, c) = (open.clone(), accepted.clone(), closed_tx.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(s) => s, Err(_) => continue },
                    _ = &mut stop_rx => return,
                };
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let (o, c) = (o.clone(), c.clone());
                tokio::spawn(async move {
                    faulty_connection(stream, c).await;
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        FaultyUpstream {
            addr,
            open,
            accepted,
            closed_tx,
            _stop: stop_tx,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Receives the path of each `/sse` or `/stall` connection the gate closes.
    pub fn closures(&self) -> tokio::sync::broadcast::Receiver<&'static str> {
        self.closed_tx.subscribe()
    }
}

/// Reads a request head byte by byte (so nothing after it is consumed), up to the blank line;
/// `None` when the connection ends first. For upstreams that misbehave on purpose.
pub async fn read_head(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(head)
}

async fn faulty_connection(
    stream: tokio::net::TcpStream,
    closed: tokio::sync::broadcast::Sender<&'static str>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    // Serve requests on this connection until one of them misbehaves.
    loop {
        let Some(head) = read_head(&mut stream).await else {
            return;
        };
        let text = String::from_utf8_lossy(&head).into_owned();
        let path = text.split(' ').nth(1).unwrap_or("/").to_string();
        let length: usize = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let reset = |s: tokio::net::TcpStream| {
            let _ = s.set_zero_linger();
            drop(s);
        };
        match path.as_str() {
            "/reset" => return reset(stream),
            "/close" => return,
            "/garbage" => {
                let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
                return;
            }
            "/bad-length" => {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
                    )
                    .await;
                return;
            }
            "/huge-headers" => {
                let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
                for i in 0..1024 {
                    r.extend_from_slice(
                        format!("X-Filler-{i}: {}\r\n", "a".repeat(1000)).as_bytes(),
                    );
                }
                r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
                let _ = stream.write_all(&r).await;
                return;
            }
            "/stall" => {
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                let _ = closed.send("/stall");
                return;
            }
            "/truncated" => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                return reset(stream);
            }
            "/sse" | "/sse-reset" => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                let event = b"e\r\ndata: event\n\n\r\n";
                let _ = stream.write_all(event).await;
                if path == "/sse-reset" {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return reset(stream);
                }
                // Then silence: only the gate closing the connection ends this stream.
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                let _ = closed.send("/sse");
                return;
            }
            _ => {
                if stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}
