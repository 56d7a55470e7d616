//! The tracing tests' harness: an OTLP/HTTP receiver decoding with `opentelemetry-proto`, and the
//! gate binary started with a given environment.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tokio::sync::oneshot;

use crate::support::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-gate");

/// An OTLP/HTTP traces receiver: every span of every export, decoded.
pub struct Receiver {
    pub url: String,
    pub spans: Arc<Mutex<Vec<Span>>>,
    pub exports: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let exports = Arc::new(AtomicUsize::new(0));
        let (s, e) = (spans.clone(), exports.clone());
        let (addr, stop) = spawn_server(move |req: Request<Incoming>| {
            let (s, e) = (s.clone(), e.clone());
            async move {
                assert_eq!(req.uri().path(), "/v1/traces");
                assert_eq!(
                    req.headers()["content-type"],
                    "application/x-protobuf",
                    "OTLP/HTTP binary protobuf"
                );
                let body = req.into_body().collect().await.unwrap().to_bytes();
                let export = ExportTraceServiceRequest::decode(body).expect("an OTLP export");
                e.fetch_add(1, Ordering::SeqCst);
                for resource in export.resource_spans {
                    for scope in resource.scope_spans {
                        s.lock().unwrap().extend(scope.spans);
                    }
                }
                let answer = ExportTraceServiceResponse::default().encode_to_vec();
                Response::builder()
                    .header("content-type", "application/x-protobuf")
                    .body(Full::new(Bytes::from(answer)).boxed())
                    .unwrap()
            }
        })
        .await;
        Receiver {
            url: format!("http://{addr}"),
            spans,
            exports,
            _stop: stop,
        }
    }

    /// Waits until a span satisfies `pred` (exports arrive every OTEL_BSP_SCHEDULE_DELAY).
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&Span) -> bool) -> Span {
        for _ in 0..100 {
            if let Some(span) = self.spans.lock().unwrap().iter().find(|s| pred(s)) {
                return span.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no span {what}; got {:#?}", self.spans.lock().unwrap());
    }
}

/// The gate binary on a free port; killed when dropped.
pub struct Gate {
    pub url: String,
    pub child: Child,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn gate(idp: &TestIdp, upstream: &TestUpstream, env: &[(&str, &str)]) -> Gate {
    start(Command::new(BIN), idp, upstream, env).await
}

/// The gate on one CPU (`taskset`): it then runs tokio's current-thread runtime, where an SDK
/// shutdown that blocks the runtime's only thread would starve the export it waits for.
pub async fn gate_on_one_core(
    idp: &TestIdp,
    upstream: &TestUpstream,
    env: &[(&str, &str)],
) -> Gate {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", BIN]);
    start(cmd, idp, upstream, env).await
}

async fn start(
    mut cmd: Command,
    idp: &TestIdp,
    upstream: &TestUpstream,
    env: &[(&str, &str)],
) -> Gate {
    let port = free_addr().port();
    let url = format!("http://127.0.0.1:{port}");
    cmd.env_clear()
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("UPSTREAM_URL", upstream.url())
        .env("RESOURCE_URI", format!("{url}/mcp"))
        .env("AUTHORIZATION_SERVER", &idp.issuer)
        .env("ALLOW_INSECURE_HTTP", "true")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let gate = Gate {
        url,
        child: cmd.spawn().unwrap(),
    };
    for _ in 0..200 {
        let listening = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok();
        if listening && get(&format!("{}/readyz", gate.url), &[]).await.status == 200 {
            return gate;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gate did not become ready");
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn attr(span: &Span, key: &str) -> Option<String> {
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        AnyValue::StringValue(s) => Some(s.clone()),
        AnyValue::IntValue(i) => Some(i.to_string()),
        AnyValue::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}
