//! What one client connection is doing: how many of its requests are in flight, so that a
//! connection with nothing in flight can be closed after a while, and whether its responses are
//! being taken by the client, so that a connection whose client stopped reading can be cut.
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
//!
//! **Send progress.** A request in flight is not idle, so a client that asks and then never reads
//! (an HTTP/2 client announcing `SETTINGS_INITIAL_WINDOW_SIZE=0`, RFC 9113 §6.9.2, or an HTTP/1.1
//! client whose TCP window stays shut) would hold its slot for ever. hyper polls a response body
//! only when it can send what the body yields (flow-control window open, write buffer drained), so
//! the body wrapper sees the client's pace: a body is *waiting* from the moment it has bytes ready
//! (it was handed to hyper, or it just yielded a frame) until hyper comes back for the next frame.
//! A body that answered "nothing yet" (`Pending`) is not waiting — that is a quiet SSE stream, whose
//! connection is healthy however long the silence. [`Activity::stalled`] resolves once something
//! has been waiting and no body of the connection has been polled for the whole send timeout.

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
    /// Response bodies with bytes ready that hyper has not come back for.
    waiting: AtomicUsize,
    /// Response bodies handed to hyper or polled by it so far: a count that moves while the
    /// client takes what it is sent.
    progress: AtomicU64,
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

impl Activity {
    /// Resolves once some response of this connection has had bytes ready for `timeout` (at most a
    /// quarter more) without the client taking any: no response body of the connection was polled
    /// in that time. Never resolves while every body is waiting on its own source (a quiet stream).
    pub async fn stalled(&self, timeout: Duration) {
        let tick = timeout / CHECKS_PER_PERIOD;
        let mut seen = self.0.progress.load(Ordering::Relaxed);
        let mut stalled_ticks = 0;
        loop {
            tokio::time::sleep(tick).await;
            let progress = std::mem::replace(&mut seen, self.0.progress.load(Ordering::Relaxed));
            // A body starts waiting only together with a step of `progress`, so a stall that began
            // within the tick just gone is not counted until the next: the cut comes no sooner
            // than `timeout` after the last progress.
            if progress != seen || self.0.waiting.load(Ordering::Relaxed) == 0 {
                stalled_ticks = 0;
                continue;
            }
            stalled_ticks += 1;
            if stalled_ticks >= CHECKS_PER_PERIOD {
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

/// A response body that keeps its request in flight until it has been sent or dropped, and tells
/// its connection whether it has bytes the client has not taken.
pub struct Tracked<B> {
    inner: B,
    in_flight: InFlight,
    /// Whether this body counts in `waiting`.
    waiting: bool,
}

impl<B> Tracked<B> {
    /// A response about to be handed to hyper: it has bytes (at least its head) ready to send.
    pub fn new(inner: B, in_flight: InFlight) -> Tracked<B> {
        let mut tracked = Tracked {
            inner,
            in_flight,
            waiting: false,
        };
        tracked.step(true);
        tracked
    }

    /// Counts one step of progress and whether the body now waits for the client.
    fn step(&mut self, waiting: bool) {
        let inner = &self.in_flight.0;
        inner.progress.fetch_add(1, Ordering::Relaxed);
        if waiting != self.waiting {
            self.waiting = waiting;
            if waiting {
                inner.waiting.fetch_add(1, Ordering::Relaxed);
            } else {
                inner.waiting.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if self.waiting {
            self.in_flight.0.waiting.fetch_sub(1, Ordering::Relaxed);
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
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // Ready with a frame: hyper must come back for the next one once the client takes this.
        // Pending or the end: nothing is waiting on the client.
        let waiting = matches!(polled, Poll::Ready(Some(Ok(_))));
        self.step(waiting);
        polled
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

    const SEND: Duration = Duration::from_secs(30);

    fn watch_sends(a: &Activity) -> JoinHandle<()> {
        let a = a.clone();
        tokio::spawn(async move { a.stalled(SEND).await })
    }

    /// A body that yields `frames` one-byte frames, then (if `then_quiet`) stays pending for ever.
    struct Frames {
        frames: usize,
        then_quiet: bool,
    }

    impl Body for Frames {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<bytes::Bytes>, Self::Error>>> {
            if self.frames > 0 {
                self.frames -= 1;
                return Poll::Ready(Some(Ok(Frame::data(bytes::Bytes::from_static(b"x")))));
            }
            if self.then_quiet {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        }
    }

    fn poll_once<B: Body + Unpin>(body: &mut Tracked<B>) {
        let waker = std::task::Waker::noop();
        let _ = Pin::new(body).poll_frame(&mut Context::from_waker(waker));
    }

    /// Asserts that `watcher` cuts the connection no sooner than SEND and no later than 5/4 of it.
    async fn stalls_within_the_send_bounds(watcher: &JoinHandle<()>) {
        sleep(SEND - MS).await;
        assert!(!watcher.is_finished(), "cut before SEND_TIMEOUT");
        sleep(SEND / 4 + 2 * MS).await;
        assert!(
            watcher.is_finished(),
            "not cut a quarter after SEND_TIMEOUT"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_response_the_client_never_takes_is_a_stall() {
        let a = Activity::default();
        let watcher = watch_sends(&a);
        sleep(SEND / 3).await;
        // Handed to hyper, never polled: the client's window is shut.
        let _body = Tracked::new(
            Frames {
                frames: 3,
                then_quiet: false,
            },
            a.begin(),
        );
        stalls_within_the_send_bounds(&watcher).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_not_taken_after_earlier_ones_were_is_a_stall() {
        let a = Activity::default();
        let watcher = watch_sends(&a);
        let mut body = Tracked::new(
            Frames {
                frames: 3,
                then_quiet: false,
            },
            a.begin(),
        );
        for _ in 0..2 {
            sleep(SEND / 2).await;
            poll_once(&mut body);
        }
        assert!(
            !watcher.is_finished(),
            "cut while the client kept taking frames"
        );
        stalls_within_the_send_bounds(&watcher).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_with_nothing_to_send_is_never_a_stall() {
        let a = Activity::default();
        let watcher = watch_sends(&a);
        let mut body = Tracked::new(
            Frames {
                frames: 1,
                then_quiet: true,
            },
            a.begin(),
        );
        poll_once(&mut body);
        poll_once(&mut body);
        sleep(SEND * 20).await;
        assert!(!watcher.is_finished(), "a quiet stream was cut");
        drop(body);
        sleep(SEND * 2).await;
        assert!(!watcher.is_finished(), "a finished response was cut");
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
