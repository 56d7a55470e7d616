//! Driving one client connection: the wait for its first request, the idle timeout, and its part in
//! a graceful shutdown.
//!
//! hyper's header timeout only starts once it reads an HTTP/1 request head: before that, the
//! HTTP/1-or-2 detection waits for bytes without limit, and HTTP/2 has no header or idle timeout at
//! all, so a client that connects and sends nothing (or only the HTTP/2 preface), or one that sends
//! one HTTP/2 request and then nothing, would hold a connection slot forever. Between HTTP/1
//! requests, hyper's header timeout applies (and is the shorter one by default).
//!
//! A request in flight is not idleness, so a client that asks and then never reads what it is sent
//! would escape the idle timeout: the send timeout ([`Activity::stalled`]) cuts a connection whose
//! responses have had bytes ready for `SEND_TIMEOUT` that the client did not take. The cut is
//! abrupt — a GOAWAY or `Connection: close` would wait for the very responses the client is not
//! reading.

use std::convert::Infallible;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use crate::server::activity::Activity;

/// How long a connection may wait for its first request (`HEADER_READ_TIMEOUT`, TLS handshake
/// included), sit with nothing in flight (`IDLE_TIMEOUT`), and leave a response untaken
/// (`SEND_TIMEOUT`).
#[derive(Clone, Copy)]
pub(crate) struct ConnectionLimits {
    pub first_request: Duration,
    pub idle: Duration,
    pub send: Duration,
}

/// How a connection ended.
pub(crate) enum Ended {
    /// hyper finished it: the client closed it, it was asked to close, or hyper refused what the
    /// client sent (then hyper has answered, e.g. 400 or 431, and the error says why).
    Served(Result<(), Box<dyn std::error::Error + Send + Sync>>),
    /// Asked to close as idle, the client did not let it close in time.
    CutOff,
    /// Its responses had bytes ready for `SEND_TIMEOUT` that the client did not take.
    Stalled,
}

/// Serves one connection until it ends. A connection that sends no request in time, or that has
/// had nothing in flight for the idle timeout, is asked to close (HTTP/2: GOAWAY; HTTP/1.1: closed
/// between requests), and so is every connection once the gate starts draining. A client that does
/// not let an idle connection close within `first_request` more is cut off, and so is one whose
/// client stops taking its responses for `send`.
pub(crate) async fn drive<I, S, B>(
    conn: auto::Connection<'_, I, S, TokioExecutor>,
    activity: &Activity,
    limits: ConnectionLimits,
    mut draining: watch::Receiver<bool>,
) -> Ended
where
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
    let stalled = activity.stalled(limits.send);
    tokio::pin!(stalled);
    let cutoff = tokio::time::sleep(Duration::MAX);
    tokio::pin!(cutoff);
    let mut closing = false;
    let mut idled = false;
    loop {
        tokio::select! {
            served = conn.as_mut() => return Ended::Served(served),
            _ = &mut stalled => return Ended::Stalled,
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
            _ = &mut cutoff, if idled => return Ended::CutOff,
        }
    }
}
