//! An upstream that refuses, resets, stalls or talks garbage: the client gets 502 or 504, or a
//! stream that ends in an error, and the gate keeps serving; a thousand faults leak no file
//! descriptors, connections or tasks; and a client leaving mid-SSE closes the upstream connection.

use std::time::{Duration, Instant};

use crate::support::*;
use http::Method;
use http_body_util::BodyExt;

use super::*;

#[tokio::test]
async fn upstream_faults_give_502_or_504_or_a_cut_stream_and_the_gate_keeps_serving() {
    let stack = FaultyStack::start(&[("UPSTREAM_TIMEOUT", "300ms")]).await;
    let (gate, auth) = (&stack.gate, stack.auth.clone());
    for (path, status) in [
        ("/reset", 502),
        ("/close", 502),
        ("/garbage", 502),
        ("/bad-length", 502),
        ("/huge-headers", 502),
        ("/stall", 504),
    ] {
        let started = Instant::now();
        let a = post(&gate.url(path), &[("authorization", &auth)], "").await;
        assert_eq!(a.status, status, "{path}");
        assert!(started.elapsed() < CUT_OFF_BOUND, "{path}");
        assert_eq!(
            post(&gate.url("/"), &[("authorization", &auth)], "")
                .await
                .status,
            200
        );
    }
    // Failures after the head: the client sees the head, then a stream that ends in an error (not a
    // clean end, which would pass a truncated body off as complete).
    for path in ["/truncated", "/sse-reset"] {
        let mut response = open(Method::GET, &gate.url(path), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200, "{path}");
        let body = response.body_mut();
        let mut ended_in_error = false;
        loop {
            match tokio::time::timeout(CUT_OFF_BOUND, body.frame()).await {
                Err(_) => panic!("{path}: the stream was left hanging"),
                Ok(None) => break,
                Ok(Some(Err(_))) => {
                    ended_in_error = true;
                    break;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
        assert!(
            ended_in_error,
            "{path}: a cut upstream body must not end cleanly"
        );
        assert_eq!(
            post(&gate.url("/"), &[("authorization", &auth)], "")
                .await
                .status,
            200
        );
    }
}

#[tokio::test]
async fn a_thousand_upstream_faults_leak_no_file_descriptors_connections_or_tasks() {
    let stack = FaultyStack::start(&[("UPSTREAM_TIMEOUT", "200ms")]).await;
    let (faulty, gate, auth) = (&stack.faulty, &stack.gate, stack.auth.clone());
    let faults = [
        "/reset",
        "/close",
        "/garbage",
        "/bad-length",
        "/stall",
        "/truncated",
        "/sse-reset",
        "/huge-headers",
    ];
    let round = |n: usize| {
        let (url, auth) = (gate.url(""), auth.clone());
        async move {
            let mut tasks = Vec::new();
            for worker in 0..20 {
                let (url, auth) = (url.clone(), auth.clone());
                tasks.push(tokio::spawn(async move {
                    for i in (worker..n).step_by(20) {
                        let path = faults[i % faults.len()];
                        let a =
                            post(&format!("{url}{path}"), &[("authorization", &auth)], "").await;
                        assert!(matches!(a.status, 200 | 502 | 504), "{path}: {}", a.status);
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };
    // Warm up (connection pools, lazily created runtime parts), then measure.
    round(faults.len() * 5).await;
    let settle = || async {
        for _ in 0..100 {
            if faulty.open_connections() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    settle().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let fds_before = open_fds();
    let tasks_before = metrics.num_alive_tasks();
    let accepted_before = faulty.accepted();
    round(1000).await;
    settle().await;
    assert!(
        faulty.accepted() - accepted_before >= 1000,
        "every request reached the faulty upstream"
    );
    assert_eq!(
        faulty.open_connections(),
        0,
        "the gate left upstream connections open"
    );
    let mut fds_after = open_fds();
    for _ in 0..40 {
        if fds_after <= fds_before + 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fds_after = open_fds();
    }
    let tasks_after = metrics.num_alive_tasks();
    assert!(
        fds_after <= fds_before + 10,
        "file descriptors: {fds_before} before, {fds_after} after 1,000 upstream faults"
    );
    assert!(
        tasks_after <= tasks_before + 10,
        "tasks: {tasks_before} before, {tasks_after} after 1,000 upstream faults"
    );
    assert_eq!(
        post(&gate.url("/"), &[("authorization", &auth)], "")
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_client_leaving_mid_sse_closes_the_upstream_connection_within_a_second() {
    let stack = FaultyStack::start(&[]).await;
    let (faulty, gate, auth) = (&stack.faulty, &stack.gate, stack.auth.clone());
    for _ in 0..3 {
        let mut closures = faulty.closures();
        let mut response = open(Method::GET, &gate.url("/sse"), &[("authorization", &auth)]).await;
        assert_eq!(response.status(), 200);
        next_chunk(response.body_mut(), Duration::from_secs(5))
            .await
            .expect("the first event");
        // The upstream now sends nothing more; the client hangs up in the silence.
        let left = Instant::now();
        drop(response);
        let closed = tokio::time::timeout(Duration::from_secs(5), closures.recv())
            .await
            .expect("the upstream connection was closed")
            .unwrap();
        assert_eq!(closed, "/sse");
        let took = left.elapsed();
        // "Within a second", with a margin for a loaded machine.
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
    assert_eq!(faulty.open_connections(), 0);
}
