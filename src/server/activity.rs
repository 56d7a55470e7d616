//! What one client connection is doing: how many of its requests are in flight, so that a
//! connection with nothing in flight can be closed after a while.
//!
//! hyper bounds the wait for the next request on HTTP/1.1 (the header read timeout) but has no idle
//! timeout for HTTP/2, where a client may open a connection, send one request and then hold the
//! connection — and one of `MAX_CONNECTIONS` slots — for ever. A request counts as in flight from
//! the moment the service sees it until its response body has been sent or dropped, so an open SSE
//! stream keeps its connection busy however quiet the stream is.
//!
//! The request path only bumps two counters; nothing is woken per request. The watcher reads the
//! counters a few times per idle period instead, so a connection is closed between `idle` and
//! `idle` plus a quarter of it after its last request ended.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};

/// The activity of one connection; cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct Activity(Arc<Inner>);

#[derive(Default)]
struct Inner {
    in_flight: AtomicUsize,
    /// Requests started on this connection so far.
    begun: AtomicU64,
}

/// How many times per idle period the watcher looks.
const CHECKS_PER_PERIOD: u32 = 4;

impl Activity {
    /// A request has started; it is in flight until the returned guard is dropped.
    pub fn begin(&self) -> InFlight {
        self.0.begun.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.0.clone())
    }

    /// Resolves when no request has started within `first` of the call, or once the connection
    /// has had nothing in flight for at least `idle` (each at most a quarter more). Never resolves
    /// while a request is in flight.
    pub async fn idle(&self, first: Duration, idle: Duration) {
        // Until the first request: look every quarter of the shorter period (so the idle count
        // starts soon after it) and give up once `first` has passed.
        let look = first.min(idle) / CHECKS_PER_PERIOD;
        let looks = first.as_nanos().div_ceil(look.as_nanos().max(1));
        let mut seen = 0;
        for _ in 0..looks {
            tokio::time::sleep(look).await;
            seen = self.0.begun.load(Ordering::Relaxed);
            if seen > 0 {
                break;
            }
        }
        if seen == 0 {
            return;
        }
        let tick = idle / CHECKS_PER_PERIOD;
        // The look that saw the first request counts like a tick in which the last one ended.
        let mut quiet_ticks = u32::from(self.0.in_flight.load(Ordering::Relaxed) == 0);
        loop {
            tokio::time::sleep(tick).await;
            let begun = std::mem::replace(&mut seen, self.0.begun.load(Ordering::Relaxed));
            if self.0.in_flight.load(Ordering::Relaxed) > 0 {
                quiet_ticks = 0;
                continue;
            }
            // Nothing in flight now. The last request ended somewhere in the tick just gone (it
            // may have started there too: only the count shows that) or earlier; only the ticks
            // after the first quiet one are surely whole, so a period takes one tick more.
            quiet_ticks = if begun != seen { 1 } else { quiet_ticks + 1 };
            if quiet_ticks > CHECKS_PER_PERIOD {
                return;
            }
        }
    }
}

/// One request in flight; dropping it ends it.
pub struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
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
    use tokio::task::JoinHandle;
    use tokio::time::sleep;

    const FIRST: Duration = Duration::from_secs(5);
    const IDLE: Duration = Duration::from_secs(60);
    const MS: Duration = Duration::from_millis(1);

    /// The connection's watcher, started now (the gate starts it when it accepts the connection).
    fn watch(a: &Activity) -> JoinHandle<()> {
        let a = a.clone();
        tokio::spawn(async move { a.idle(FIRST, IDLE).await })
    }

    /// Asserts that `watcher` closes the connection no sooner than IDLE and no later than 5/4 of
    /// IDLE from now (the moment the last request ended).
    async fn closes_within_the_idle_bounds(watcher: &JoinHandle<()>) {
        sleep(IDLE - MS).await;
        assert!(!watcher.is_finished(), "closed before IDLE_TIMEOUT");
        sleep(IDLE / 4 + 2 * MS).await;
        assert!(
            watcher.is_finished(),
            "still open a quarter after IDLE_TIMEOUT"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_without_requests_is_idle_after_the_first_timeout() {
        let watcher = watch(&Activity::default());
        sleep(FIRST - MS).await;
        assert!(!watcher.is_finished());
        sleep(2 * MS).await;
        assert!(watcher.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_busy_however_long() {
        let a = Activity::default();
        let watcher = watch(&a);
        let request = a.begin();
        sleep(IDLE * 10 + Duration::from_secs(7)).await;
        assert!(
            !watcher.is_finished(),
            "closed while a request was in flight"
        );
        drop(request);
        closes_within_the_idle_bounds(&watcher).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_comes_and_goes_between_two_looks_restarts_the_idle_period() {
        let a = Activity::default();
        let watcher = watch(&a);
        drop(a.begin());
        sleep(IDLE * 3 / 4).await;
        // Begun and ended within one tick: only the count of requests shows it happened.
        drop(a.begin());
        closes_within_the_idle_bounds(&watcher).await;
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_longer_first_timeout_the_idle_count_still_starts_with_the_first_request() {
        let a = Activity::default();
        let watcher = {
            let a = a.clone();
            tokio::spawn(async move { a.idle(IDLE * 10, IDLE).await })
        };
        drop(a.begin());
        closes_within_the_idle_bounds(&watcher).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_body_guard_ends_the_request() {
        let a = Activity::default();
        let watcher = watch(&a);
        let body = Tracked::new(http_body_util::Empty::<bytes::Bytes>::new(), a.begin());
        sleep(IDLE * 2).await;
        assert!(!watcher.is_finished());
        drop(body);
        closes_within_the_idle_bounds(&watcher).await;
    }
}
