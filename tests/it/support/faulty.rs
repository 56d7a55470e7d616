//! An upstream that misbehaves at the TCP/HTTP level, for the upstream-fault tests.

use super::*;

/// How many events `/sse-burst` sends.
pub const BURST_EVENTS: usize = 2_000;

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
/// - `/sse-burst`: an SSE stream of [`BURST_EVENTS`] events, each its own chunk, all in one write.
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

/// A ready gate in front of a [`FaultyUpstream`] (`extra` settings after `UPSTREAM_URL`), and an
/// `Authorization` value it accepts.
pub struct FaultyStack {
    pub faulty: FaultyUpstream,
    pub gate: TestGate,
    pub auth: String,
    _idp: TestIdp,
    _unused: TestUpstream,
}

impl FaultyStack {
    pub async fn start(extra: &[(&str, &str)]) -> FaultyStack {
        let faulty = FaultyUpstream::start().await;
        let key = TestKey::rsa("k1", 2048);
        let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&key]))).await;
        let unused = TestUpstream::start().await;
        let url = faulty.url();
        let mut settings = vec![("UPSTREAM_URL", url.as_str())];
        settings.extend_from_slice(extra);
        let gate = TestGate::start(&idp, &unused, &settings).await;
        gate.wait_ready().await;
        let auth = bearer(&key.token(&claims(&idp.issuer, &gate.resource())));
        FaultyStack {
            faulty,
            gate,
            auth,
            _idp: idp,
            _unused: unused,
        }
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
            "/sse-burst" => {
                let mut response = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for i in 0..BURST_EVENTS {
                    let event = format!("data: {i}\n\n");
                    response
                        .extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
                }
                response.extend_from_slice(b"0\r\n\r\n");
                let _ = stream.write_all(&response).await;
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            "/sse" | "/sse-reset" => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                // 13 bytes of event: chunk size d.
                let event = b"d\r\ndata: event\n\n\r\n";
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
