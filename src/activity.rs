//! What one client connection is doing: how many of its requests are in flight, so that a
//! connection with nothing in flight can be closed after a while.
//!
//! hyper bounds the wait for the next request on HTTP/1.1 (the header read timeout) but has no idle
//! timeout for HTTP/2, where a client may open a connection, send one request and then hold the
//! connection — and one of `MAX_CONNECTIONS` slots — for ever. A request counts as in flight from
//! the moment the service sees it until its response body has been sent or dropped, so an open SSE
//! stream keeps its connection busy however quiet the stream is.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// The activity of one connection; cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Activity(Arc<Inner>);

#[derive(Default)]
struct Inner {
    in_flight: AtomicUsize,
    /// Whether any request has started on this connection.
    started: AtomicBool,
    /// Signalled when `in_flight` leaves or reaches zero.
    changed: Notify,
}

impl Activity {
    /// A request has started; it is in flight until the returned guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.0.started.store(true, Ordering::Relaxed);
        if self.0.in_flight.fetch_add(1, Ordering::AcqRel) == 0 {
            self.0.changed.notify_waiters();
        }
        InFlight(self.0.clone())
    }

    /// Resolves once the connection has had nothing in flight for `idle` — or, before its first
    /// request, for `first`. Never resolves while a request is in flight.
    pub async fn idle(&self, first: Duration, idle: Duration) {
        loop {
            // Registered before the count is read, so a change in between is not missed.
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.0.in_flight.load(Ordering::Acquire) > 0 {
                changed.await;
                continue;
            }
            let wait = if self.0.started.load(Ordering::Relaxed) {
                idle
            } else {
                first
            };
            tokio::select! {
                _ = changed => continue,
                _ = tokio::time::sleep(wait) => {
                    if self.0.in_flight.load(Ordering::Acquire) == 0 {
                        return;
                    }
                }
            }
        }
    }
}

/// One request in flight; dropping it ends it.
pub struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// A response body that keeps its request in flight until it has been sent or dropped.
pub struct Tracked<B> {
    inner: B,
    _in_flight: InFlight,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Tracked<B> {
        Tracked {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(60);

    /// Whether `idle` resolves within `wait` of (paused, auto-advancing) time.
    async fn idles_within(activity: &Activity, wait: Duration) -> bool {
        tokio::time::timeout(wait, activity.idle(FIRST, IDLE))
            .await
            .is_ok()
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_is_idle_after_the_first_timeout() {
        let a = Activity::default();
        assert!(!idles_within(&a, FIRST - Duration::from_millis(1)).await);
        assert!(idles_within(&a, FIRST + Duration::from_millis(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_busy_however_long() {
        let a = Activity::default();
        let request = a.begin();
        assert!(!idles_within(&a, IDLE * 10).await);
        drop(request);
        // The idle period starts when the last request ends, and is the long one from now on.
        assert!(!idles_within(&a, IDLE - Duration::from_millis(1)).await);
        assert!(idles_within(&a, IDLE + Duration::from_millis(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_starts_while_waiting_restarts_the_idle_period() {
        let a = Activity::default();
        drop(a.begin());
        let watcher = {
            let a = a.clone();
            tokio::spawn(async move { a.idle(FIRST, IDLE).await })
        };
        tokio::time::sleep(IDLE / 2).await;
        let request = a.begin();
        tokio::time::sleep(IDLE).await;
        assert!(!watcher.is_finished(), "idle while a request was in flight");
        drop(request);
        tokio::time::sleep(IDLE - Duration::from_millis(1)).await;
        assert!(!watcher.is_finished(), "the idle period did not restart");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert!(watcher.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn the_body_guard_ends_the_request() {
        let a = Activity::default();
        let body = Tracked::new(http_body_util::Empty::<bytes::Bytes>::new(), a.begin());
        assert!(!idles_within(&a, IDLE * 2).await);
        drop(body);
        assert!(idles_within(&a, IDLE + Duration::from_millis(1)).await);
    }
}
