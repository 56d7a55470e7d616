//! The metrics listener (`METRICS_ADDR`): `GET /metrics` in the Prometheus text format, nothing else.
//!
//! It is a second, private listener rather than a route of the gate, so the metrics are never
//! reachable through the public port (and never behind the token check the scraper cannot pass).
//! Hand-written on hyper's HTTP/1.1 connection: one route does not earn a router (see docs/DESIGN.md).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::http::body::ResponseBody;
use crate::http::error::GateError;
use crate::metrics::Metrics;

/// Serves `/metrics` on `listener` until `stop` resolves.
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
        };
        let metrics = metrics.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let response = respond(&metrics, &request);
            async move { Ok::<_, Infallible>(response) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(metrics: &Metrics, request: &Request<Incoming>) -> Response<ResponseBody> {
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    if request.uri().path() != "/metrics" || !read {
        return GateError::MetricsNotFound.response(request.version());
    }
    let mut response = Response::new(ResponseBody::from(Bytes::from(metrics.render())));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
