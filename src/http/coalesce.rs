//! Merges the small frames of an upstream body that arrive together into one, so a burst of
//! Server-Sent Events leaves the gate in one write instead of one write per event.
//!
//! Why it is needed: hyper's client hands the response body over one frame at a time (its body
//! channel holds a single chunk), and hyper's server writes out what it has whenever the body it
//! is sending answers `Pending`. An upstream that writes many small events therefore costs the gate
//! a channel hand-off *and* a `writev` per event, even when the events arrived in one read. Holding
//! a small frame while the upstream connection's task gets one more turn to pass on what it has
//! already read (never waiting for the network) makes that a `writev` per burst.
//!
//! Bounded both ways: a frame is held only while it is small (under [`HOLD_BELOW`]), the merged
//! frame never grows past [`MAX_MERGED`], and it is sent after at most [`MAX_TURNS`] turns even if
//! the upstream keeps sending. A lone event is sent after [`EMPTY_TURNS`] turns of the scheduler
//! (microseconds), and a body that has ended is never held.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// Frames this large or larger go out as they are: they are not the per-event case, and copying
/// them would cost more than the write it saves.
pub const HOLD_BELOW: usize = 4 * 1024;
/// The merged frame is sent once it reaches this size.
pub const MAX_MERGED: usize = 32 * 1024;
/// The most scheduler turns a held frame waits for more.
pub const MAX_TURNS: u8 = 64;
/// A held frame is sent after this many turns in a row bring nothing. One is not enough: measured
/// on tokio's current-thread runtime, the upstream connection's task passes on its next chunk one
/// turn late (the frame arrives on every second turn).
pub const EMPTY_TURNS: u8 = 2;

/// A body whose small data frames are merged while more are ready.
pub struct Coalesce<B: Body> {
    inner: B,
    held: BytesMut,
    /// Turns given up since the first held byte.
    turns: u8,
    /// How much was held when the last turn was given up.
    held_at_turn: usize,
    /// Turns in a row that brought nothing.
    empty_turns: u8,
    /// A frame taken from `inner` that could not join `held` (trailers, an error, the end, a large
    /// frame): returned after `held` is sent.
    next: Option<Option<Result<Frame<Bytes>, B::Error>>>,
}

impl<B: Body<Data = Bytes>> Coalesce<B> {
    pub fn new(inner: B) -> Coalesce<B> {
        Coalesce {
            inner,
            held: BytesMut::new(),
            turns: 0,
            held_at_turn: 0,
            empty_turns: 0,
            next: None,
        }
    }

    fn take_held(&mut self) -> Frame<Bytes> {
        self.turns = 0;
        self.empty_turns = 0;
        Frame::data(self.held.split().freeze())
    }
}

impl<B> Body for Coalesce<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        if let Some(next) = this.next.take() {
            return Poll::Ready(next);
        }
        loop {
            let polled = Pin::new(&mut this.inner).poll_frame(cx);
            let frame = match polled {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(other) => {
                    // The end, or an error: what is held goes first.
                    if this.held.is_empty() {
                        return Poll::Ready(other);
                    }
                    this.next = Some(other);
                    return Poll::Ready(Some(Ok(this.take_held())));
                }
                Poll::Pending if this.held.is_empty() => return Poll::Pending,
                Poll::Pending => {
                    if this.turns >= MAX_TURNS {
                        return Poll::Ready(Some(Ok(this.take_held())));
                    }
                    if this.held.len() == this.held_at_turn {
                        this.empty_turns += 1;
                        if this.empty_turns >= EMPTY_TURNS {
                            // The upstream has no more for now.
                            return Poll::Ready(Some(Ok(this.take_held())));
                        }
                    } else {
                        this.empty_turns = 0;
                    }
                    this.turns += 1;
                    this.held_at_turn = this.held.len();
                    // One more turn for the upstream connection's task, then look again. Not a
                    // plain self-wake: tokio's multi-thread scheduler would run this task again at
                    // once (its LIFO slot), before that task. `yield_now` defers the wake until the
                    // runtime has run the other ready tasks and polled for I/O (more events may
                    // have arrived); outside a runtime it wakes at once.
                    let _ = pin!(tokio::task::yield_now()).poll(cx);
                    return Poll::Pending;
                }
            };
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(other) => {
                    // Trailers: they end the body, after what is held.
                    let other = Some(Ok(other));
                    if this.held.is_empty() {
                        return Poll::Ready(other);
                    }
                    this.next = Some(other);
                    return Poll::Ready(Some(Ok(this.take_held())));
                }
            };
            if this.held.is_empty() {
                if data.len() >= HOLD_BELOW || this.inner.is_end_stream() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                this.held.extend_from_slice(&data);
                this.turns = 0;
                this.empty_turns = 0;
                // A turn that brings nothing must be told from one that does.
                this.held_at_turn = 0;
                continue;
            }
            if data.len() >= HOLD_BELOW || this.held.len() + data.len() > MAX_MERGED {
                this.next = Some(Some(Ok(Frame::data(data))));
                return Poll::Ready(Some(Ok(this.take_held())));
            }
            this.held.extend_from_slice(&data);
            if this.inner.is_end_stream() || this.held.len() >= MAX_MERGED {
                return Poll::Ready(Some(Ok(this.take_held())));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_empty() && self.next.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let held = self.held.len() as u64;
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint.set_lower(inner.lower() + held);
        hint
    }
}

#[cfg(test)]
mod tests;
