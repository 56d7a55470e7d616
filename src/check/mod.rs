//! `mcp-gate check`: the discovery a spec-following MCP client (Claude.ai, the MCP SDKs) performs,
//! run from outside against a deployed endpoint, reported as ✓ / ! / ✗ with the likely cause and fix.
//!
//! The steps follow the client's order, one module each:
//! - [`endpoint`]: https on port 443, and an unauthenticated `initialize` that gets a 401 with a JSON
//!   body;
//! - [`challenge`]: one well-formed `Bearer` challenge (RFC 6750 §3, RFC 9110 §11.6.1) naming an
//!   absolute `resource_metadata` (RFC 9728 §5.1);
//! - [`resource_metadata`]: the Protected Resource Metadata answers at that URL, the path-inserted
//!   and the root well-known URL (RFC 9728 §3.1), the same everywhere, without nulls, with
//!   `resource` identical to the URL used (§3.3; [`url_diff`] says how two URLs differ);
//! - [`authorization_server`]: each authorization server's metadata (RFC 8414 §3, then OpenID
//!   Connect Discovery §4) carries its exact `issuer` (RFC 8414 §3.3), the authorization code grant
//!   with PKCE `S256` (MCP authorization; OAuth 2.1 §4.1.1), a way to register (RFC 7591 or client
//!   ID metadata documents), and a `jwks_uri` with usable signing keys;
//! - [`token`]: a token given with `--token` goes through the gate's own validator with a policy
//!   built from what was discovered, and its refusal is explained in one sentence.
//!
//! Deciding is kept apart from fetching: the `evaluate_*` functions are pure (headers, documents and
//! the clock in, [`Check`]s out) and tested beside the code; [`probe`] makes the requests, [`run`]
//! walks them in a client's order, and [`self_check`] runs the configuration's share at start-up.
//! [`report`] holds the result.

pub(crate) mod authorization_server;
pub(crate) mod challenge;
pub(crate) mod endpoint;
pub(crate) mod probe;
pub(crate) mod report;
pub(crate) mod resource_metadata;
pub(crate) mod run;
pub(crate) mod self_check;
pub(crate) mod token;
pub(crate) mod url_diff;

#[cfg(test)]
mod fixtures;

pub use report::{Check, Report, Status};
pub use run::{parse_target, run, Options, Target};
pub use self_check::{self_check, startup_self_check};
