//! Streams: SSE events reach the client as the upstream sends them, a client hanging up closes the
//! upstream stream, shutdown drains within its timeout even with a stream open, and a burst of small
//! events is passed on whole and in order, in fewer, merged chunks.

use std::time::Duration;

use crate::support::*;
use http::Method;

#[tokio::test]
async fn sse_events_reach_the_client_before_the_upstream_sends_the_next_one() {
    let s = stack(&[]).await;
    let token = s.token();
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse"),
        &[
            ("authorization", &bearer(&token)),
            ("accept", "text/event-stream"),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["mcp-session-id"], "sess-sse");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let body = response.body_mut();
    // Event 2 is only sent once the test has seen event 1: a buffering proxy would deadlock here.
    let first = next_chunk(body, Duration::from_secs(5))
        .await
        .expect("first event arrives on its own");
    assert_eq!(first, "data: event 1\n\n");
    s.upstream.release();
    let second = next_chunk(body, Duration::from_secs(5))
        .await
        .expect("second event");
    assert_eq!(second, "data: event 2\n\n");
}

#[tokio::test]
async fn client_hanging_up_closes_the_upstream_stream() {
    let s = stack(&[]).await;
    let token = s.token();
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse"),
        &[("authorization", &bearer(&token))],
    )
    .await;
    next_chunk(response.body_mut(), Duration::from_secs(5))
        .await
        .unwrap();
    drop(response);
    tokio::time::timeout(Duration::from_secs(2), s.upstream.sse_closed.notified())
        .await
        .expect("upstream stream closed within a second or two of the client leaving");
}

#[tokio::test]
async fn shutdown_drains_within_the_timeout_even_with_an_open_stream() {
    let s = stack(&[("SHUTDOWN_TIMEOUT", "500ms")]).await;
    let token = s.token();
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse"),
        &[("authorization", &bearer(&token))],
    )
    .await;
    next_chunk(response.body_mut(), Duration::from_secs(5))
        .await
        .unwrap();
    let took = s.gate.shutdown().await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(
        took >= Duration::from_millis(400),
        "waited for the open stream: {took:?}"
    );
}

#[tokio::test]
async fn a_burst_of_small_events_arrives_whole_in_order_and_merged() {
    let s = FaultyStack::start(&[]).await;
    let mut response = open(
        Method::GET,
        &s.gate.url("/sse-burst"),
        &[("authorization", &s.auth), ("accept", "text/event-stream")],
    )
    .await;
    assert_eq!(response.status(), 200);
    let body = response.body_mut();
    let mut received = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = next_chunk(body, Duration::from_secs(5)).await {
        received.extend_from_slice(&chunk);
        chunks += 1;
    }
    let expected: String = (0..BURST_EVENTS)
        .map(|i| format!("data: {i}\n\n"))
        .collect();
    assert_eq!(String::from_utf8(received).unwrap(), expected);
    // The upstream wrote its 2,000 chunks in one write: the gate passes on what arrived together as
    // merged chunks (a write each), not one chunk (and one write) per event.
    assert!(
        chunks <= BURST_EVENTS / 10,
        "{chunks} chunks for {BURST_EVENTS} events"
    );
}
