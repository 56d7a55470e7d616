//! The request side of MCP authorization (issue #10): after the token check, read the POST body
//! (bounded by `MAX_REQUEST_BODY`), check the 2026-07-28 `Mcp-*` headers against it, decide it
//! with the rules, and either forward exactly the bytes received or answer the client
//! ([`super::respond`]). This is the only part of the policy module that does I/O.
//!
//! Only built when a policy is configured ([`crate::config::McpPolicy::is_active`]) or
//! `RATE_LIMIT_TOOL` is set (which needs each call's tool name: then every POST body is read and
//! parsed here, once, for both): a gate with neither never reaches this code, and its requests
//! stream as they always did. Every `POST`
//! is inspected, whatever its path: the gate cannot know which paths the upstream serves MCP on,
//! and a rule that a different path could bypass would be no rule. `GET` and `DELETE` carry no
//! JSON-RPC and pass untouched.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value};

use super::audit::{self, AuditRecord, Outcome};
use super::decide::{self, Caller, Decision};
use super::filter_body::ToolsListFilter;
use super::jsonrpc::{self, Body, Message};
use super::rules::Rules;
use super::{headers, respond};
use crate::http::access_log::AccessRecord;
use crate::http::body::{RequestBody, ResponseBody};
use crate::http::error::GateError;
use crate::metrics::Metrics;

/// The policy in force and what applying it needs; shared by all connections.
pub struct Enforcer {
    /// Swapped whole when the policy file changes; each request decides with one version.
    rules: ArcSwap<Rules>,
    filter_tools_list: bool,
    max_body: u64,
    /// The metadata URL, for `resource_metadata` in challenges.
    resource_metadata: String,
    /// `UPSTREAM_TIMEOUT`, also the bound on reading a JSON `tools/list` result to filter it.
    upstream_timeout: Duration,
    /// `RATE_LIMIT_TOOL` is set: every POST body is read, and one the gate cannot parse is refused
    /// (the upstream might find a `tools/call` in it that was never counted).
    counts_tools: bool,
}

/// What to do with a request after the rules looked at it.
pub enum Verdict {
    /// Forward it; `Some` when its body was inspected (then the bytes are the ones received).
    Forward(Request<RequestBody>, Option<Inspected>),
    /// Answer the client; the upstream never sees the request.
    Refuse(Refused),
    /// The body could not be read (413 beyond `MAX_REQUEST_BODY`, 400 when it broke off).
    Fail(GateError),
    /// The token's `scope`/`scp` claim is not a string or list (only possible when no
    /// `REQUIRED_SCOPES` made the token check read it): the token is malformed.
    MalformedScopes,
}

/// A refusal, with its access-log reason and its audit line.
pub struct Refused {
    pub response: Response<ResponseBody>,
    /// The access log's `reason`.
    pub reason: &'static str,
    pub audit: Inspected,
}

/// An inspected request, until its status is known and its audit line written.
pub struct Inspected {
    record: AuditRecord,
    /// Set for an allowed single `tools/list` call when `FILTER_TOOLS_LIST` is on.
    filter: Option<ToolsListFilter>,
    /// The metric's bounded `name` label, taken from the rules that decided.
    name_label: String,
    /// What the body asks for (for the tool rate limit and its JSON-RPC 429).
    body: Body,
}

impl Inspected {
    /// Writes the audit line: one JSON line per inspected MCP request, target `mcp_gate::audit`.
    /// Identity comes from the access record; tool arguments were never read into the record.
    /// Also counts `mcp_gate_mcp_requests_total{method,name,decision}`.
    pub fn finish(mut self, access: &AccessRecord, status: u16, metrics: &Metrics) {
        let r = &mut self.record;
        r.sub = access.sub.clone();
        r.client_id = access.client_id.clone();
        r.iss = access.iss.as_deref().map(str::to_string);
        r.status = status;
        r.duration_us = u64::try_from(access.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "mcp_gate::audit",
            sub = r.sub.as_deref(),
            client_id = r.client_id.as_deref(),
            iss = r.iss.as_deref(),
            method = r.method.as_deref(),
            name = r.name.as_deref(),
            id = r.id.as_deref(),
            messages = r.messages,
            decision = r.decision.label(),
            rule = r.rule.as_deref(),
            status = r.status,
            duration_us = r.duration_us,
            "mcp"
        );
        metrics.mcp_request(
            audit::method_label(r.method.as_deref().unwrap_or("")),
            self.name_label,
            r.decision.label(),
        );
    }

    fn new(rules: &Rules, record: AuditRecord, body: Body) -> Inspected {
        let method = record.method.as_deref().unwrap_or("");
        let name_label = audit::name_label(rules, method, record.name.as_deref()).to_string();
        Inspected {
            record,
            filter: None,
            name_label,
            body,
        }
    }

    /// What the body asks for.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Records that a rate limit refused the request the rules allowed (its audit decision).
    pub fn rate_limited(&mut self) {
        self.record.decision = Outcome::RateLimited;
        self.filter = None;
    }

    /// The upstream's response, its `tools/list` result filtered when this call asks for it.
    pub async fn filter(&mut self, response: Response<ResponseBody>) -> Response<ResponseBody> {
        match self.filter.take() {
            Some(filter) => filter.apply(response).await,
            None => response,
        }
    }
}

impl Enforcer {
    pub fn new(
        rules: Rules,
        filter_tools_list: bool,
        max_body: u64,
        resource_metadata: &str,
        upstream_timeout: Duration,
        counts_tools: bool,
    ) -> Enforcer {
        Enforcer {
            rules: ArcSwap::from_pointee(rules),
            filter_tools_list,
            max_body,
            resource_metadata: resource_metadata.to_string(),
            upstream_timeout,
            counts_tools,
        }
    }

    /// The rules in force now.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.load_full()
    }

    /// Puts new rules in force for the requests that arrive from now on.
    pub fn replace(&self, rules: Rules) {
        self.rules.store(Arc::new(rules));
    }

    /// Applies the rules to an authenticated request; `claims` are its verified token's.
    pub async fn enforce(
        &self,
        request: Request<Incoming>,
        claims: &Arc<Map<String, Value>>,
    ) -> Verdict {
        let rules = self.rules.load_full();
        if request.method() != Method::POST
            || !(rules.inspects_requests() || self.filter_tools_list || self.counts_tools)
        {
            return Verdict::Forward(request.map(RequestBody::Streamed), None);
        }
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body) {
            return Verdict::Fail(GateError::BodyTooLarge);
        }
        let limit = usize::try_from(self.max_body).unwrap_or(usize::MAX);
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<LengthLimitError>() => return Verdict::Fail(GateError::BodyTooLarge),
            Err(_) => return Verdict::Fail(GateError::MalformedBody),
        };
        let inspected = jsonrpc::inspect(&bytes);
        if let Some(call) = inspected.calls().next() {
            // The request's span learns the MCP method and tool, and `_meta`'s trace context.
            crate::telemetry::mcp_call(call);
        }
        let messages = match &inspected {
            Body::Single(_) => 1,
            Body::Batch(all) => all.len(),
            Body::Unparsable(_) => 0,
        };

        if let Err(mismatch) = headers::check(&parts.headers, &inspected) {
            let record = AuditRecord::for_call(
                inspected.calls().next(),
                messages,
                Outcome::HeaderMismatch,
                None,
            );
            return Verdict::Refuse(Refused {
                response: respond::header_mismatch(&mismatch),
                reason: "header_mismatch",
                audit: Inspected::new(&rules, record, inspected),
            });
        }
        let Ok(caller) = Caller::new(claims) else {
            return Verdict::MalformedScopes;
        };
        let decision = match (decide::decide(&rules, &caller, &inspected), &inspected) {
            (Decision::Allow { .. }, Body::Unparsable(why)) if self.counts_tools => {
                Decision::BadBody(*why)
            }
            (decision, _) => decision,
        };
        let outcome = Outcome::of(&decision);
        let (response, reason, call, rule) = match &decision {
            Decision::Allow { rule } => {
                let record =
                    AuditRecord::for_call(inspected.calls().next(), messages, outcome, Some(*rule));
                let single_tools_list = is_single_tools_list(&inspected);
                let mut audit = Inspected::new(&rules, record, inspected);
                if self.filter_tools_list && single_tools_list {
                    audit.filter = Some(ToolsListFilter::new(
                        rules.clone(),
                        claims.clone(),
                        self.upstream_timeout,
                    ));
                }
                let request = Request::from_parts(parts, RequestBody::Buffered(Full::new(bytes)));
                return Verdict::Forward(request, Some(audit));
            }
            Decision::StepUp { scopes, rule, call } => (
                respond::step_up(&self.resource_metadata, scopes, call),
                "policy_step_up",
                Some(call),
                Some(*rule),
            ),
            Decision::Deny { rule, why, call } => (
                respond::deny(&self.resource_metadata, *why, call),
                "policy_denied",
                Some(call),
                Some(*rule),
            ),
            Decision::BadBody(why) => (respond::bad_body(*why), "bad_jsonrpc", None, None),
        };
        Verdict::Refuse(Refused {
            response,
            reason,
            audit: Inspected::new(
                &rules,
                AuditRecord::for_call(call, messages, outcome, rule),
                inspected,
            ),
        })
    }
}

/// Whether the body is one `tools/list` request (a batch's responses are not rewritten: the
/// filter answers for one call).
fn is_single_tools_list(body: &Body) -> bool {
    matches!(body, Body::Single(Message::Call(call)) if call.method == "tools/list")
}
