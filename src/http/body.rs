//! The response body type: either bytes the gate made itself, or the upstream's stream passed through.
//!
//! An enum rather than a boxed trait object, so the proxied path costs no allocation for the body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::Full;
use hyper::body::Incoming;

use crate::http::coalesce::Coalesce;

/// A response body.
pub enum ResponseBody {
    /// A complete body built by the gate (metadata, challenges, errors).
    Full(Full<Bytes>),
    /// The upstream's body, streamed as it arrives (small frames that arrive together are sent
    /// together: [`Coalesce`]).
    Upstream(Coalesce<Incoming>),
    /// The upstream's body rewritten as it streams (a filtered `tools/list` SSE stream): boxed,
    /// since only that rare path pays for it.
    Rewritten(UnsyncBoxBody<Bytes, hyper::Error>),
}

impl ResponseBody {
    pub fn empty() -> ResponseBody {
        ResponseBody::Full(Full::new(Bytes::new()))
    }
}

impl From<Bytes> for ResponseBody {
    fn from(b: Bytes) -> Self {
        ResponseBody::Full(Full::new(b))
    }
}

impl From<&'static str> for ResponseBody {
    fn from(s: &'static str) -> Self {
        ResponseBody::Full(Full::new(Bytes::from_static(s.as_bytes())))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Full(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
            ResponseBody::Upstream(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Rewritten(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(b) => b.is_end_stream(),
            ResponseBody::Upstream(b) => b.is_end_stream(),
            ResponseBody::Rewritten(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(b) => b.size_hint(),
            ResponseBody::Upstream(b) => b.size_hint(),
            ResponseBody::Rewritten(b) => b.size_hint(),
        }
    }
}

/// A request body on its way upstream: the client's stream, or the bytes the gate read whole to
/// inspect them (MCP authorization rules), forwarded exactly as received.
///
/// An enum for the same reason as [`ResponseBody`]: the streamed case, which every request takes
/// when no rule reads bodies, costs one match per frame and no allocation.
pub enum RequestBody {
    /// The client's body, streamed frame by frame.
    Streamed(Incoming),
    /// The client's body, already read (and bounded by `MAX_REQUEST_BODY`).
    Buffered(Full<Bytes>),
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RequestBody::Streamed(b) => Pin::new(b).poll_frame(cx),
            RequestBody::Buffered(b) => Pin::new(b).poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Streamed(b) => b.is_end_stream(),
            RequestBody::Buffered(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Streamed(b) => b.size_hint(),
            RequestBody::Buffered(b) => b.size_hint(),
        }
    }
}
