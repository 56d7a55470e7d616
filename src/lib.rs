//! mcp-gate: an authentication gate for MCP servers.
//!
//! It sits in front of an MCP server and lets through only requests that carry an access token the
//! configured authorization server issued for this resource. The map of the crate:
//!
//! - [`config`] — every setting, its variable, default and validation; parsed once into [`Config`].
//! - [`server`] — the listener, the path of a request, graceful shutdown; [`serve`] is the entry point.
//! - [`metadata`] — the RFC 9728 Protected Resource Metadata document and its well-known paths.
//! - [`auth`] — the decision: [`auth::bearer`] finds the token, [`auth::token`] checks it (pure),
//!   [`auth::keys`] parses the JWKS, [`auth::jwks`] keeps it fresh, [`auth::discovery`] finds it.
//! - [`policy`] — MCP-aware authorization (pure): the JSON-RPC body and its `Mcp-*` headers, ordered
//!   rules from `POLICY_FILE` / `TOOL_SCOPES`, allow / step-up / deny, `tools/list` filtering, audit.
//! - [`challenge`] — the one place that turns an [`auth::Refusal`] into a 400/401/403/503 response.
//! - [`cors`] — browser origins: preflights before auth, 403 for foreign origins.
//! - [`tls`] — optional TLS termination with certificate reload.
//! - [`proxy`] — the streaming reverse proxy to the upstream MCP server.
//! - [`access_log`] and [`logging`] — one JSON line per request, written when its stream ends.
//! - [`metrics`] — Prometheus counters and histograms on a separate listener (`METRICS_ADDR`).
//! - [`healthcheck`] — the `mcp-gate healthcheck` probe for container health checks.
//! - [`check`] — `mcp-gate check`: discovery as a client sees it, and the start-up self-check.

pub mod access_log;
pub mod activity;
pub mod auth;
pub mod body;
pub mod challenge;
pub mod check;
pub mod config;
pub mod connector;
pub mod cors;
pub mod healthcheck;
pub mod logging;
pub mod metadata;
pub mod metrics;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod tls;

#[cfg(any(test, feature = "test-support"))]
pub mod test_support;

pub use config::{Config, ConfigError};
pub use server::serve;
