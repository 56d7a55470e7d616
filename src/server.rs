//! The listener and the path of one request: public routes, origin policy, authentication, proxy.
//!
//! ```text
//! request ─► metadata paths ─► RFC 9728 document (public)
//!          ├ health paths   ─► /healthz, /readyz (public)
//!          ├ Origin not allowed ─► 403; allowed preflight ─► 204 (before auth)
//!          └ auth::check ─┬─ refused ─► challenge (400/401/403/503)
//!                         └─ accepted ─► proxy ─► upstream (streamed)
//! ```
//! Connections are HTTP/1.1 or HTTP/2 (prior knowledge), at most `MAX_CONNECTIONS` at once, with a
//! bound on the header block and on the time to send it (and to start the first request); a request
//! whose body framing is ambiguous is refused before it is routed. Shutdown stops accepting, lets
//! in-flight requests finish for `SHUTDOWN_TIMEOUT`, then closes what is left (SSE streams never end
//! on their own).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONNECTION, CONTENT_TYPE, ORIGIN, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::access_log::{AccessRecord, LoggedBody};
use crate::activity::{Activity, Tracked};
use crate::auth::jwks::{JwksCache, JwksSettings, KeySource};
use crate::auth::{Authenticator, Issuer};
use crate::body::ResponseBody;
use crate::challenge::{error_response, Challenges};
use crate::config::Config;
use crate::cors::{Cors, OriginCheck};
use crate::metadata::Metadata;
use crate::metrics::{Metrics, Outcome};
use crate::proxy::{Proxy, ProxySettings};
use crate::tls::Tls;

/// Everything a request needs, shared by all connections.
pub struct Gate {
    metadata: Metadata,
    challenges: Challenges,
    auth: Authenticator,
    proxy: Proxy,
    cors: Cors,
    health_path: String,
    ready_path: String,
    metrics: Arc<Metrics>,
    /// Whether clients reach the gate over TLS it terminates (for `X-Forwarded-Proto`).
    tls: bool,
}

impl Gate {
    /// Builds the gate from a validated configuration. Nothing is fetched yet.
    pub fn new(config: &Config) -> Gate {
        let metrics = Arc::new(Metrics::new());
        let metadata = Metadata::new(config);
        let challenges = Challenges::new(metadata.url(), &config.challenge_scopes);
        let issuers = config
            .issuers
            .iter()
            .map(|trusted| {
                let source = match &trusted.jwks_uri {
                    Some(uri) => KeySource::Fixed(uri.to_string()),
                    None => KeySource::Discover {
                        issuer: trusted.server.clone(),
                        allow_insecure: config.allow_insecure_http,
                    },
                };
                let keys = Arc::new(JwksCache::new(
                    JwksSettings {
                        issuer: trusted.policy.issuer.clone(),
                        source,
                        algorithms: trusted.policy.algorithms.clone(),
                        refresh_interval: config.jwks_refresh_interval,
                        min_refresh_interval: config.jwks_min_refresh_interval,
                        fetch_timeout: config.jwks_fetch_timeout,
                    },
                    metrics.clone(),
                ));
                Issuer::new(trusted.policy.clone(), keys)
            })
            .collect();
        Gate {
            metadata,
            challenges,
            auth: Authenticator::new(
                issuers,
                config.max_token_size,
                config.token_cache_size,
                metrics.clone(),
            ),
            proxy: Proxy::new(ProxySettings {
                upstream: config.upstream.clone(),
                forward_token: config.forward_token,
                timeout: config.upstream_timeout,
                max_body: config.max_request_body,
            }),
            cors: Cors::new(
                &config.cors_allowed_origins,
                config.resource.origin().ascii_serialization(),
            ),
            health_path: config.health_path.clone(),
            ready_path: config.ready_path.clone(),
            metrics,
            tls: config.tls.is_some(),
        }
    }

    /// The gate's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The signing-key caches, one per issuer (to run their refreshers).
    pub fn key_caches(&self) -> impl Iterator<Item = &Arc<JwksCache>> {
        self.auth.issuers().iter().map(|i| &i.keys)
    }

    /// Whether every issuer's keys have loaded (`/readyz`).
    pub fn is_ready(&self) -> bool {
        self.auth.is_ready()
    }

    /// Handles one request and attaches its access-log record to the response body.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<LoggedBody> {
        let mut record = AccessRecord::new(
            request.method().clone(),
            request.uri().clone(),
            client.ip(),
            request.headers().get(USER_AGENT).cloned(),
        );
        let response = self.route(request, client, &mut record).await;
        record.status = response.status().as_u16();
        self.metrics
            .request(record.status, record.outcome, record.elapsed());
        if let Some(reason) = record.reason {
            self.metrics.refusal(reason);
        }
        let stream = (record.outcome == Outcome::Allowed).then(|| {
            self.metrics.stream_opened();
            self.metrics.clone()
        });
        let (parts, body) = response.into_parts();
        Response::from_parts(parts, LoggedBody::new(body, record, stream))
    }

    async fn route(
        &self,
        mut request: Request<Incoming>,
        client: SocketAddr,
        record: &mut AccessRecord,
    ) -> Response<ResponseBody> {
        if let Some(why) = crate::proxy::ambiguous_framing(request.headers()) {
            tracing::debug!(why, "refusing a request whose body framing is ambiguous");
            record.outcome = Outcome::Refused;
            record.reason = Some("ambiguous_framing");
            let mut response = error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request's message framing is ambiguous",
            );
            if request.version() < Version::HTTP_2 {
                // Where this request's body ends is in doubt, so nothing after it on this connection
                // can be trusted to be the next request: close it.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
        let path = request.uri().path();
        if self.metadata.serves(path) {
            return self.metadata.respond(request.method());
        }
        if path == self.health_path && is_read(request.method()) {
            return status_json(StatusCode::OK, r#"{"status":"ok"}"#);
        }
        if path == self.ready_path && is_read(request.method()) {
            return if self.is_ready() {
                status_json(StatusCode::OK, r#"{"status":"ready"}"#)
            } else {
                status_json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    r#"{"status":"not ready","reason":"the authorization server's signing keys have not loaded yet"}"#,
                )
            };
        }

        let origin = match self.cors.check(request.headers()) {
            OriginCheck::Forbidden => {
                record.outcome = Outcome::Refused;
                record.reason = Some("forbidden_origin");
                return error_response(
                    StatusCode::FORBIDDEN,
                    "forbidden_origin",
                    "Requests from this origin are not allowed",
                );
            }
            OriginCheck::Allowed(origin)
                if Cors::is_preflight(request.method(), request.headers()) =>
            {
                return self.cors.preflight(origin, request.headers());
            }
            OriginCheck::Allowed(origin) => Some(origin),
            OriginCheck::Absent => None,
        };

        let mut response = match self
            .auth
            .check(request.headers(), request.uri().query())
            .await
        {
            Err(refusal) => {
                record.outcome = Outcome::Refused;
                record.reason = Some(refusal.reason());
                self.challenges.respond(refusal)
            }
            Ok(identity) => {
                record.sub = identity.sub;
                record.client_id = identity.client_id;
                record.iss = identity.issuer;
                if origin.is_some() {
                    // The gate has enforced the origin policy; upstream SDK servers apply their own
                    // localhost-only rule to `Origin` and would refuse every browser request.
                    request.headers_mut().remove(ORIGIN);
                }
                record.outcome = Outcome::Allowed;
                let started = Instant::now();
                let response = self.proxy.forward(request, client, self.tls).await;
                self.metrics.upstream(started.elapsed());
                response
            }
        };
        if let Some(origin) = origin {
            Cors::decorate(&mut response, origin);
        }
        response
    }
}

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

fn status_json(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::from(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves on `listener` until `shutdown` resolves, then drains for up to `SHUTDOWN_TIMEOUT`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let gate = Arc::new(Gate::new(&config));
    // Warns about configurations that will break clients (issuer mismatch, unusable JWKS, …); never blocks.
    tokio::spawn(crate::check::startup_self_check(&config));
    let (stop_tx, stop_rx) = watch::channel(false);

    let refreshers: Vec<_> = gate
        .key_caches()
        .map(|keys| tokio::spawn(keys.clone().run(stopped(stop_rx.clone()))))
        .collect();

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_size);
    // HTTP/2 gets the same bound on a request's header block as HTTP/1.1 (hyper's own default is
    // 16 KiB, which would refuse over HTTP/2 tokens that MAX_HEADER_SIZE admits over HTTP/1.1).
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_size).unwrap_or(u32::MAX));
    let connections = Arc::new(Semaphore::new(
        config.max_connections.min(Semaphore::MAX_PERMITS),
    ));

    if let Some(addr) = config.metrics_addr {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on METRICS_ADDR={addr}: {e}"),
            )
        })?;
        tracing::info!(listen = %listener.local_addr()?, "metrics at /metrics");
        tokio::spawn(serve_metrics(
            listener,
            gate.metrics().clone(),
            stopped(stop_rx.clone()),
        ));
    }

    let tls = match &config.tls {
        Some(files) => {
            let tls = Tls::new(&files.cert, &files.key).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
            })?;
            let tls = Arc::new(tls);
            tokio::spawn(
                tls.clone()
                    .watch(config.tls_reload_interval, stopped(stop_rx.clone())),
            );
            Some(tls)
        }
        None => None,
    };

    // Shutdown: `draining` asks every connection to finish what it has in flight and close; each
    // connection task holds a `live` sender, so the receiver sees the end once the last one is gone.
    let (draining_tx, draining_rx) = watch::channel(false);
    let (live_tx, mut live_rx) = mpsc::channel::<()>(1);
    tracing::info!(
        listen = %listener.local_addr()?,
        resource = %config.resource_uri,
        upstream = %config.upstream,
        metadata = %gate.metadata.url(),
        "mcp-gate listening"
    );
    tokio::pin!(shutdown);
    loop {
        // At MAX_CONNECTIONS the loop stops accepting: further clients wait in the kernel's listen
        // backlog (their connect succeeds, their request is read once a slot frees) rather than being
        // accepted and dropped. One permit is held for the life of each connection.
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let gate = gate.clone();
        let activity = Activity::default();
        let tracker = activity.clone();
        let service = service_fn(move |request| {
            let in_flight = tracker.begin();
            let gate = gate.clone();
            async move {
                let response = gate.handle(request, client).await;
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
            }
        });
        let builder = builder.clone();
        let tls = tls.clone();
        let limits = ConnectionLimits {
            first_request: config.header_read_timeout,
            idle: config.idle_timeout,
        };
        let draining = draining_rx.clone();
        let live = live_tx.clone();
        let mut force_close = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _live = live;
            let connection = async move {
                match tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        drive(conn, &activity, limits, draining).await;
                    }
                    Some(tls) => {
                        // The handshake is bounded like the header read: a silent client is cut off.
                        let accepted = tokio::time::timeout(
                            limits.first_request,
                            tls.acceptor().accept(stream),
                        )
                        .await;
                        let Ok(Ok(stream)) = accepted else { return };
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        drive(conn, &activity, limits, draining).await;
                    }
                }
            };
            tokio::select! {
                _ = connection => {}
                _ = force_close.wait_for(|stop| *stop) => {}
            }
        });
    }

    drop(listener);
    drop(live_tx);
    let _ = draining_tx.send(true);
    tracing::info!(timeout = ?config.shutdown_timeout, "shutting down: no new connections, draining in-flight requests");
    tokio::select! {
        _ = live_rx.recv() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(config.shutdown_timeout) => {
            tracing::warn!("shutdown timeout reached; closing the remaining connections");
        }
    }
    let _ = stop_tx.send(true);
    for refresher in refreshers {
        let _ = refresher.await;
    }
    Ok(())
}

/// The metrics listener: `GET /metrics` in the Prometheus text format, nothing else.
async fn serve_metrics(
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
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
        };
        let metrics = metrics.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            let metrics = metrics.clone();
            async move {
                let response = if request.uri().path() == "/metrics" && is_read(request.method()) {
                    let mut r = Response::new(ResponseBody::from(Bytes::from(metrics.render())));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    );
                    r
                } else {
                    error_response(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "Metrics are at /metrics",
                    )
                };
                Ok::<_, Infallible>(response)
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// How long a connection may wait for its first request (`HEADER_READ_TIMEOUT`, TLS handshake
/// included), and then sit with nothing in flight (`IDLE_TIMEOUT`). hyper's header timeout only
/// starts once it reads an HTTP/1 request head: before that, the HTTP/1-or-2 detection waits for
/// bytes without limit, and HTTP/2 has no header or idle timeout at all, so a client that connects
/// and sends nothing (or only the HTTP/2 preface), or one that sends one HTTP/2 request and then
/// nothing, would hold a connection slot forever. Between HTTP/1 requests, hyper's header timeout
/// applies (and is the shorter one by default).
#[derive(Clone, Copy)]
struct ConnectionLimits {
    first_request: Duration,
    idle: Duration,
}

/// Serves one connection until it ends. A connection that sends no request in time, or that has
/// had nothing in flight for the idle timeout, is asked to close (HTTP/2: GOAWAY; HTTP/1.1: closed
/// between requests), and so is every connection once the gate starts draining. A client that does
/// not let an idle connection close within `first_request` more is cut off.
async fn drive<I, S, B>(
    conn: auto::Connection<'_, I, S, TokioExecutor>,
    activity: &Activity,
    limits: ConnectionLimits,
    mut draining: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    TokioExecutor: auto::HttpServerConnExec<S::Future, B>,
{
    tokio::pin!(conn);
    let idle = activity.idle(limits.first_request, limits.idle);
    tokio::pin!(idle);
    let cutoff = tokio::time::sleep(Duration::MAX);
    tokio::pin!(cutoff);
    let mut closing = false;
    let mut idled = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = &mut idle, if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                idled = true;
                cutoff.as_mut().reset(tokio::time::Instant::now() + limits.first_request);
            }
            _ = draining.wait_for(|d| *d), if !closing => {
                // Bounded by SHUTDOWN_TIMEOUT, not by the cutoff: in-flight streams may finish.
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = &mut cutoff, if idled => return,
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
