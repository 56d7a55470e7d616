//! MCP-aware authorization (issue #10): "may *this* caller run *this* tool?", decided on the
//! JSON-RPC body, with spec-exact step-up. Everything here but [`enforce`], [`filter_body`] and
//! [`reload`] is pure (no I/O, no clock); those are where the server calls it.
//!
//! - [`jsonrpc`] — what a POST body asks for: method, id and MCP name of each message (batches too).
//! - [`headers`] — the 2026-07-28 `Mcp-Method` / `Mcp-Name` / `MCP-Protocol-Version` headers checked
//!   against the body (MCP Streamable HTTP 2026-07-28, "Request Metadata"); mismatch is -32020.
//! - [`rules`] — the rule types: method and name globs, requirements, default, scope hierarchy.
//! - [`file`] — `POLICY_FILE` (TOML) and `TOOL_SCOPES` into [`rules::Rules`]; both set is refused.
//! - [`decide`] — Allow / StepUp / Deny / BadBody for a body; `may_call`, `scopes_used`.
//! - [`tools_list`] — `tools/list` results filtered, for JSON bodies and as a streaming SSE rewriter.
//! - [`audit`] — the audit record and bounded metric labels.
//! - [`respond`] — the 403 / 400 answers to a refused request.
//! - [`enforce`] — the request side: read the body, check headers, decide, forward or answer.
//! - [`reload`] — `POLICY_FILE` re-read while serving; a bad version keeps the old rules.
//! - [`filter_body`] — `FILTER_TOOLS_LIST` on the response: JSON collected, SSE rewritten as it streams.
//!
//! # Wiring it into the request path
//!
//! At start-up (and on each reload of the file, keeping the old policy when the new one fails):
//! `let mut rules = file::from_settings(policy_file_text.as_deref(), tool_scopes.as_deref())?;`,
//! `rules.base_scopes = REQUIRED_SCOPES` (challenges must name every scope the operation needs),
//! and add `decide::scopes_used(&rules)` to the metadata's `scopes_supported`.
//!
//! Per request, after the token check succeeded (the policy needs the token's claims map, so
//! `auth::Verified` must carry it, e.g. as `Arc<Map<String, Value>>`):
//! 1. If `rules.inspects_requests()` is false and `FILTER_TOOLS_LIST` is off: do nothing here;
//!    stream the request as today (no body is read, `Mcp-*` headers are left to the upstream).
//! 2. Otherwise, for a `POST` to the MCP endpoint: read the whole body, bounded by
//!    `MAX_REQUEST_BODY` (413 beyond), then `let body = jsonrpc::inspect(&bytes);`. Other methods
//!    (GET, DELETE) carry no JSON-RPC and are forwarded untouched.
//! 3. `headers::check(req.headers(), &body)`: on `Err(m)` answer `400`,
//!    `Content-Type: application/json`, body `m.jsonrpc_body()`; never forward. Audit it
//!    ([`audit::Outcome::HeaderMismatch`]).
//! 4. `let caller = decide::Caller::new(&claims)` (a malformed `scope`/`scp` was already refused
//!    by the token check, so `Err` is a 403 `invalid_token` there), then
//!    `decide::decide(&rules, &caller, &body)`:
//!    - `Allow` → forward exactly the bytes received (`Full<Bytes>` of the buffered body).
//!    - `StepUp { scopes, call, .. }` → `403`, `WWW-Authenticate: Bearer error="insufficient_scope",
//!      scope="<scopes joined by one space>", resource_metadata="<url>"`, JSON-RPC error body with
//!      `call.id` naming `call.method` and `call.name` (never the token's contents).
//!    - `Deny { why, call, .. }` → `403`, `WWW-Authenticate: Bearer error="insufficient_scope",
//!      resource_metadata="<url>"` without `scope` (none would help), the body saying a rule refuses
//!      the method/tool (claim condition or deny rule), with `call.id`.
//!    - `BadBody(_)` → `400`, JSON-RPC error `-32700` (parse error), `id: null`.
//! 5. If `FILTER_TOOLS_LIST` is on and the body is a single `tools/list` call that was allowed:
//!    wrap the response body. For `application/json`, collect it (bounded) and apply
//!    `tools_list::filter_payload(&bytes, &|n| decide::may_call(&rules, n, &caller))`
//!    (`Unchanged` → as received, `Rewritten(b)` → `b` with a new `Content-Length`, `Withheld` →
//!    502). For `text/event-stream`, pass each chunk through a `tools_list::SseFilter` (owned claims
//!    and an `Arc` of the rules in the closure; `finish` at end of stream) and log
//!    `withheld`. Either way set `Cache-Control: private`.
//! 6. Write one audit line ([`audit::AuditRecord::for_call`], then identity, status and duration
//!    when the response ends) and count `(audit::method_label, audit::name_label, Outcome::label)`.

pub mod audit;
pub mod decide;
pub mod enforce;
pub mod file;
pub mod filter_body;
pub mod headers;
pub mod jsonrpc;
pub mod reload;
pub mod respond;
pub mod rules;
pub mod tools_list;

#[cfg(test)]
mod properties;
