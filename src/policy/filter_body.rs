//! `FILTER_TOOLS_LIST` on the response side: the upstream's answer to an allowed `tools/list` call
//! loses the tools the caller may not call ([`super::tools_list`]), so a client never offers a tool
//! the gate would refuse.
//!
//! An `application/json` body is collected (bounded by [`MAX_JSON`] and `UPSTREAM_TIMEOUT`) and
//! filtered whole; a `text/event-stream` body is rewritten event by event as it streams, holding
//! at most one event ([`MAX_EVENT`]), never the whole stream. Either way the response becomes
//! `Cache-Control: private`: the list now depends on who asked (RFC 9111 §5.2.2.7).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, Version};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Limited};
use serde_json::{Map, Value};

use super::decide::{self, Caller};
use super::rules::Rules;
use super::tools_list::{filter_payload, Filtered, SseFilter};
use crate::http::body::ResponseBody;
use crate::http::error::GateError;

/// Largest JSON `tools/list` result filtered; a larger one is withheld (502), never passed on
/// unfiltered.
pub const MAX_JSON: usize = 8 << 20;
/// Largest SSE event held while it is read.
pub const MAX_EVENT: usize = 1 << 20;

/// Who asked, and with which rules: enough to say which tools they may call.
pub struct ToolsListFilter {
    rules: Arc<Rules>,
    claims: Arc<Map<String, Value>>,
    /// Bound on reading a JSON body.
    timeout: Duration,
}

impl ToolsListFilter {
    pub fn new(
        rules: Arc<Rules>,
        claims: Arc<Map<String, Value>>,
        timeout: Duration,
    ) -> ToolsListFilter {
        ToolsListFilter {
            rules,
            claims,
            timeout,
        }
    }

    /// The response with its tools filtered; other responses (errors, non-2xx, other types) as
    /// they came.
    pub async fn apply(self, response: Response<ResponseBody>) -> Response<ResponseBody> {
        if !response.status().is_success() {
            return response;
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| ct.trim_start().to_ascii_lowercase())
            .unwrap_or_default();
        let (mut parts, body) = response.into_parts();
        parts
            .headers
            .insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        if content_type.starts_with("text/event-stream") {
            parts.headers.remove(CONTENT_LENGTH);
            let body = SseBody {
                inner: body,
                filter: SseFilter::new(self.keep(), MAX_EVENT),
                finished: false,
            };
            return Response::from_parts(parts, ResponseBody::Rewritten(body.boxed_unsync()));
        }
        if !content_type.starts_with("application/json") {
            return Response::from_parts(parts, body);
        }
        let collected = tokio::time::timeout(self.timeout, Limited::new(body, MAX_JSON).collect());
        let bytes = match collected.await {
            Ok(Ok(c)) => c.to_bytes(),
            Ok(Err(_)) | Err(_) => return GateError::ToolsListWithheld.response(Version::HTTP_11),
        };
        let keep = self.keep();
        let body = match filter_payload(&bytes, &keep) {
            Filtered::Unchanged => bytes,
            Filtered::Rewritten(b) => Bytes::from(b),
            Filtered::Withheld => return GateError::ToolsListWithheld.response(Version::HTTP_11),
        };
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        Response::from_parts(parts, ResponseBody::from(body))
    }

    /// Whether the caller may call a tool, by the rules' `tools/call` decision.
    fn keep(&self) -> impl Fn(&str) -> bool + Send + 'static {
        let (rules, claims) = (self.rules.clone(), self.claims.clone());
        move |name: &str| {
            Caller::new(&claims).is_ok_and(|caller| decide::may_call(&rules, name, &caller))
        }
    }
}

/// An SSE body passed through an [`SseFilter`] chunk by chunk.
struct SseBody<K: Fn(&str) -> bool> {
    inner: ResponseBody,
    filter: SseFilter<K>,
    finished: bool,
}

impl<K: Fn(&str) -> bool + Unpin> Body for SseBody<K> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            let mut out = Vec::new();
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => this.filter.push(&data, &mut out),
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                Poll::Ready(None) => {
                    this.finished = true;
                    this.filter.finish(&mut out);
                    if this.filter.withheld > 0 {
                        tracing::warn!(
                            withheld = this.filter.withheld,
                            "tools/list SSE events withheld: too large or ambiguous to filter"
                        );
                    }
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
        }
    }
}
