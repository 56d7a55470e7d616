//! mcp-gate: an authentication gate for MCP servers.
//!
//! It sits in front of an MCP server and lets through only requests that carry an access token the
//! configured authorization server issued for this resource. The map of the crate (docs/DESIGN.md
//! follows one request through it):
//!
//! - [`cli`] — the commands: `serve` (default), `healthcheck`, `check`; `main.rs` only calls it.
//! - [`config`] — every setting (typed variable names, defaults, validation), the trusted issuers
//!   each with its own policy; parsed once into [`Config`].
//! - [`server`] — accept, connection timeouts, graceful shutdown, the route of one request
//!   ([`server::gate`]), the `/metrics` listener; [`serve`] is the entry point.
//! - [`http`] — the route's parts: response body, [`http::error::GateError`] (every non-auth
//!   answer), framing, CORS, RFC 9728 metadata, the access log, the outbound connector.
//! - [`auth`] — the decision: [`auth::bearer`] finds the token, [`auth::token`] checks it (pure),
//!   [`auth::keys`] parses the JWKS, [`auth::key_cache`] keeps it fresh, [`auth::token_cache`]
//!   remembers verdicts, [`auth::challenge`] turns an [`auth::Refusal`] into its response;
//!   [`auth::sender`] holds DPoP-bound tokens to their key (RFC 9449): [`auth::binding`] reads
//!   `cnf`, [`auth::dpop`] checks the proof (pure), [`auth::dpop_replay`] and [`auth::dpop_nonce`];
//!   [`auth::exchange`] obtains the upstream's own token by RFC 8693 token exchange.
//! - [`policy`] — MCP-aware authorization (pure): the JSON-RPC body and its `Mcp-*` headers, ordered
//!   rules from `POLICY_FILE` / `TOOL_SCOPES`, allow / step-up / deny, `tools/list` filtering, audit.
//! - [`limits`] — rate limits per client address, per subject and per subject and tool (GCRA;
//!   local or Redis).
//! - [`proxy`] — the streaming reverse proxy to the upstream MCP server.
//! - [`logging`] and [`metrics`] — JSON logs, Prometheus counters and histograms.
//! - [`telemetry`] — OpenTelemetry traces (`OTEL_*`): request spans, W3C Trace Context, OTLP export.
//! - [`check`] — `mcp-gate check`: discovery as a client sees it, and the start-up self-check.

pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub(crate) mod http;
pub(crate) mod limits;
pub(crate) mod logging;
pub mod metrics;
pub mod policy;
pub(crate) mod proxy;
pub(crate) mod server;
pub mod telemetry;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use config::{Config, ConfigError};
pub use server::serve;
