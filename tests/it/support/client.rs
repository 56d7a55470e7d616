//! The client side: whole and streamed requests, raw bytes on a socket, tokens, and process helpers.

use super::*;

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
