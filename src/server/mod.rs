//! The listener: accepting connections within their caps and timeouts, and shutting down gracefully.
//!
//! ```text
//! accept (MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP) ─► [TLS handshake] ─► connection::drive (first request, idle, drain)
//!                                                   └─ each request ─► gate::Gate::handle
//! ```
//! [`gate`] is the path of one request; [`connection`] drives one connection; [`shutdown`] is the
//! drain-then-stop sequence; [`admin`] serves `/metrics` on its own listener; [`tls`] terminates
//! TLS with certificate reload; [`activity`] tracks what a connection has in flight and whether
//! its client takes its responses; [`per_address`] caps the connections of one client address.

pub(crate) mod activity;
pub(crate) mod admin;
pub(crate) mod connection;
pub mod gate;
pub(crate) mod per_address;
pub(crate) mod shutdown;
pub(crate) mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::http::access_log::log_refused_head;
use crate::http::error::GateError;
use crate::http::forwarded::TrustedProxies;
use activity::{Activity, Tracked};
use connection::{drive, ConnectionLimits, Ended};
use gate::Gate;
use per_address::AddressCaps;
use shutdown::Shutdown;
use tls::Tls;

/// The longest the exit waits for the last spans to reach the collector.
const TRACE_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// Serves on `listener` until `shutdown` resolves, then drains for up to `SHUTDOWN_TIMEOUT`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let gate = Arc::new(Gate::new(&config));
    let signals = Shutdown::new();

    let refreshers: Vec<_> = gate
        .key_caches()
        .map(|keys| tokio::spawn(keys.clone().run(signals.stopped())))
        .collect();

    if let Some(reloader) = gate.policy_reloader(&config) {
        tokio::spawn(reloader.watch(signals.stopped()));
    }

    let builder = http_builder(&config);
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
        tokio::spawn(admin::serve_metrics(
            listener,
            gate.metrics().clone(),
            signals.stopped(),
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
                    .watch(config.tls_reload_interval, signals.stopped()),
            );
            Some(tls)
        }
        None => None,
    };

    let per_address = config.max_connections_per_ip.map(AddressCaps::new);
    let trusted_proxies = TrustedProxies::new(config.trusted_proxies.clone());
    let limits = ConnectionLimits {
        first_request: config.header_read_timeout,
        idle: config.idle_timeout,
        send: config.send_timeout,
    };
    tracing::info!(
        listen = %listener.local_addr()?,
        resource = %config.resource_uri,
        upstream = %config.upstream,
        metadata = %gate.metadata_url(),
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
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Over its client's cap, a connection is closed before a byte is read: it has asked for
        // nothing yet, so there is nothing to answer. A trusted front proxy carries many clients'
        // connections from one address, so it is exempt.
        let address_slot = match &per_address {
            Some(caps) if !trusted_proxies.trusts(client.ip()) => {
                match caps.try_acquire(client.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        tracing::warn!(
                            client_ip = %client.ip(),
                            "connection closed: the client already holds MAX_CONNECTIONS_PER_IP connections"
                        );
                        continue;
                    }
                }
            }
            _ => None,
        };
        let _ = stream.set_nodelay(true);
        let gate = gate.clone();
        let metrics = gate.metrics().clone();
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
        let signals = signals.connection();
        tokio::spawn(async move {
            let _permit = permit;
            let _address_slot = address_slot;
            let stopped = signals.stopped();
            let connection = async move {
                let draining = signals.draining.clone();
                let ended = match tls {
                    None => {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        drive(conn, &activity, limits, draining).await
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
                        drive(conn, &activity, limits, draining).await
                    }
                };
                report(ended, client.ip(), &metrics);
                // Held until here: the drain waits for this connection.
                drop(signals);
            };
            tokio::select! {
                _ = connection => {}
                _ = stopped => {}
            }
        });
    }

    drop(listener);
    signals.drain(config.shutdown_timeout).await;
    if let Some(telemetry) = gate.telemetry() {
        // The spans of the last requests; a collector that is down costs at most this long.
        telemetry.shutdown(TRACE_FLUSH_TIMEOUT).await;
    }
    for refresher in refreshers {
        let _ = refresher.await;
    }
    Ok(())
}

/// Writes what a connection's end says that no request's access-log line has said: the refusal
/// hyper sent on its own, or that the client stopped taking its responses.
fn report(ended: Ended, client_ip: std::net::IpAddr, metrics: &crate::metrics::Metrics) {
    match ended {
        Ended::Served(Err(error)) => match GateError::answered_by_hyper(&*error) {
            Some(refused) => log_refused_head(client_ip, refused, metrics),
            None => {
                tracing::debug!(client_ip = %client_ip, error = %error, "connection ended with an error")
            }
        },
        Ended::Stalled => tracing::info!(
            client_ip = %client_ip,
            "connection closed: the client took none of its response for SEND_TIMEOUT"
        ),
        Ended::Served(Ok(())) | Ended::CutOff => {}
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) with bounds on the header block and the time to send it.
fn http_builder(config: &Config) -> auto::Builder<TokioExecutor> {
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
    builder
}
