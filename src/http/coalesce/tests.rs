use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

use http::HeaderMap;

use super::*;

/// What the scripted upstream body does on each poll.
enum Step {
    Data(Bytes),
    /// Nothing ready on this poll (the next poll goes on with the script).
    Pending,
    Trailers,
    Error,
}

#[derive(Debug, PartialEq)]
struct Broken;

/// A body that plays a script, then ends.
struct Script(VecDeque<Step>);

impl Body for Script {
    type Data = Bytes;
    type Error = Broken;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Broken>>> {
        match self.0.pop_front() {
            None => Poll::Ready(None),
            Some(Step::Data(b)) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Some(Step::Pending) => Poll::Pending,
            Some(Step::Trailers) => Poll::Ready(Some(Ok(Frame::trailers(HeaderMap::new())))),
            Some(Step::Error) => Poll::Ready(Some(Err(Broken))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Default)]
struct CountWakes(AtomicUsize);

impl Wake for CountWakes {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// What came out of each poll, until the end: `Some(bytes)` for a data frame, `None` for a Pending.
#[derive(Debug, PartialEq)]
enum Out {
    Data(Vec<u8>),
    Pending,
    Trailers,
    Error,
}

fn run(steps: Vec<Step>) -> (Vec<Out>, usize) {
    let wakes = Arc::new(CountWakes::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let mut body = Coalesce::new(Script(steps.into()));
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Pending => out.push(Out::Pending),
            Poll::Ready(None) => {
                assert!(body.is_end_stream());
                return (out, wakes.0.load(Ordering::Relaxed));
            }
            Poll::Ready(Some(Err(Broken))) => out.push(Out::Error),
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => out.push(Out::Data(data.to_vec())),
                Err(_) => out.push(Out::Trailers),
            },
        }
    }
    panic!("the body never ended: {out:?}");
}

fn data(s: &str) -> Step {
    Step::Data(Bytes::copy_from_slice(s.as_bytes()))
}

fn out(s: &str) -> Out {
    Out::Data(s.as_bytes().to_vec())
}

#[test]
fn a_burst_that_is_ready_together_leaves_as_one_frame() {
    let (got, _) = run(vec![
        data("a"),
        data("b"),
        data("c"),
        Step::Pending,
        Step::Pending,
        Step::Pending,
        data("d"),
    ]);
    // A turn given up, then EMPTY_TURNS turns that bring nothing: abc goes out. d, the last frame,
    // is not held.
    assert_eq!(EMPTY_TURNS, 2);
    assert_eq!(got, vec![Out::Pending, Out::Pending, out("abc"), out("d")]);
}

#[test]
fn a_lone_event_waits_two_empty_turns_and_wakes_itself_for_each() {
    let (got, wakes) = run(vec![
        data("event"),
        Step::Pending,
        Step::Pending,
        Step::Pending,
        Step::Pending,
    ]);
    // Held, two turns given up (each with a self-wake), nothing came: sent; then the upstream's own
    // Pending.
    assert_eq!(
        got,
        vec![Out::Pending, Out::Pending, out("event"), Out::Pending]
    );
    assert_eq!(wakes, 2, "one self-wake per turn");
}

#[test]
fn a_frame_every_second_turn_keeps_the_burst_together() {
    let mut steps = vec![data("x")];
    for _ in 0..10 {
        steps.extend([Step::Pending, Step::Pending, data("x")]);
    }
    let (got, _) = run(steps);
    assert_eq!(got.iter().filter(|o| matches!(o, Out::Data(_))).count(), 1);
}

#[test]
fn each_turn_that_brings_more_earns_another_and_they_are_bounded() {
    let mut steps = vec![data("x")];
    for _ in 0..100 {
        steps.push(Step::Pending);
        steps.push(data("x"));
    }
    let (got, _) = run(steps);
    let frames: Vec<usize> = got
        .iter()
        .filter_map(|o| match o {
            Out::Data(d) => Some(d.len()),
            _ => None,
        })
        .collect();
    assert_eq!(frames.iter().sum::<usize>(), 101);
    // A held frame waits at most MAX_TURNS turns: 1 held + MAX_TURNS turns that each brought one.
    assert_eq!(frames[0], usize::from(MAX_TURNS) + 1, "{frames:?}");
    assert!(frames.iter().all(|&n| n <= usize::from(MAX_TURNS) + 1));
}

#[test]
fn large_frames_pass_as_they_are_and_flush_what_is_held() {
    let big = "B".repeat(HOLD_BELOW);
    let (got, _) = run(vec![data("s1"), data("s2"), data(&big), data("s3")]);
    assert_eq!(got, vec![out("s1s2"), out(&big), out("s3")]);
}

#[test]
fn the_merged_frame_never_passes_max_merged() {
    let piece = "p".repeat(HOLD_BELOW - 1);
    let steps: Vec<Step> = (0..40).map(|_| data(&piece)).collect();
    let (got, _) = run(steps);
    let mut total = 0;
    for o in &got {
        if let Out::Data(d) = o {
            assert!(d.len() <= MAX_MERGED, "{}", d.len());
            total += d.len();
        }
    }
    assert_eq!(total, 40 * piece.len());
}

#[test]
fn the_end_trailers_and_errors_come_after_what_is_held() {
    let (got, _) = run(vec![data("a"), data("b"), Step::Trailers]);
    assert_eq!(got, vec![out("ab"), Out::Trailers]);
    let (got, _) = run(vec![data("a"), data("b"), Step::Error]);
    assert_eq!(got, vec![out("ab"), Out::Error]);
    let (got, _) = run(vec![data("a"), data("b")]);
    assert_eq!(got, vec![out("ab")]);
}

#[test]
fn a_body_that_ends_with_its_one_frame_is_not_held() {
    let (got, wakes) = run(vec![data("{\"jsonrpc\":\"2.0\"}")]);
    assert_eq!(got, vec![out("{\"jsonrpc\":\"2.0\"}")]);
    assert_eq!(wakes, 0);
}

#[test]
fn every_byte_arrives_in_order_whatever_the_frames_and_pauses() {
    // A deterministic pseudo-random mix of sizes and pauses.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..200 {
        let mut steps = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..(next() % 60) {
            if next() % 3 == 0 {
                steps.push(Step::Pending);
                continue;
            }
            let len = match next() % 10 {
                0 => HOLD_BELOW + (next() % 1000) as usize,
                _ => (next() % 300) as usize,
            };
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            expected.extend_from_slice(&bytes);
            steps.push(Step::Data(Bytes::from(bytes)));
        }
        let (got, _) = run(steps);
        let mut all = Vec::new();
        for o in got {
            match o {
                Out::Data(d) => {
                    assert!(d.len() <= MAX_MERGED.max(HOLD_BELOW + 1000));
                    all.extend_from_slice(&d);
                }
                Out::Pending => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(all, expected);
    }
}

#[test]
fn empty_script_ends_at_once() {
    let (got, _) = run(vec![]);
    assert!(got.is_empty());
}
