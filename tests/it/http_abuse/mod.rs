//! HTTP-level abuse and upstream faults: oversized header blocks and bodies, slow clients, request
//! smuggling shapes, too many connections, and an upstream that resets, stalls or talks garbage. The
//! gate answers with the documented status, forwards nothing ambiguous, cuts off what would hold it
//! forever, and leaks neither file descriptors nor tasks.
//!
//! This module holds what the families share: [`CUT_OFF_BOUND`] and the raw request head with a
//! valid token. The tests, one file per family:
//! - `limits`: `MAX_HEADER_SIZE` (431, RFC 6585 §5, over HTTP/1.1 and HTTP/2), `MAX_REQUEST_BODY`
//!   (413) and `MAX_CONNECTIONS`;
//! - `timeouts`: clients that hold a connection without finishing a request: trickled headers,
//!   silent and half-open connections (`HEADER_READ_TIMEOUT`), idle HTTP/2 connections
//!   (`IDLE_TIMEOUT`);
//! - `framing`: ambiguous message framing and request smuggling shapes (RFC 9112 §6.3);
//! - `upstream_faults`: an upstream that refuses, resets, stalls or talks garbage, a thousand times
//!   over without a leak, and a client leaving mid-stream.

mod framing;
mod limits;
mod timeouts;
mod upstream_faults;

use std::time::Duration;

use crate::support::*;

/// A generous upper bound for "cut off after a 1 s timeout" on a loaded two-core machine.
const CUT_OFF_BOUND: Duration = Duration::from_secs(4);

impl Stack {
    /// `POST /mcp` head with a valid token and the given extra header lines (each ending in CRLF).
    fn head(&self, extra: &str) -> String {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n{extra}\r\n",
            self.gate.addr,
            self.token()
        )
    }
}
