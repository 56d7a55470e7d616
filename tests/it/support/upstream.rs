//! The recording upstream: what it saw of each request, JSON and SSE answers, tools/list.

use super::*;

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
pub struct ChannelBody(pub mpsc::Receiver<Bytes>);

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
