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

pub mod authorization_server;
pub mod challenge;
pub mod endpoint;
pub mod probe;
pub mod report;
pub mod resource_metadata;
pub mod run;
pub mod self_check;
pub mod token;
pub mod url_diff;

#[cfg(test)]
mod fixtures;

pub use authorization_server::{evaluate_as_metadata, evaluate_issuer_transport, evaluate_jwks};
pub use challenge::{
    evaluate_challenge, parse_challenges, AuthParam, Challenge, ChallengeFindings,
};
pub use endpoint::{evaluate_endpoint, evaluate_error_body, evaluate_transport};
pub use probe::Answer;
pub use report::{Check, Report, Status};
pub use resource_metadata::{
    compare_resource, evaluate_agreement, evaluate_authorization_servers, evaluate_metadata_answer,
    evaluate_resource, find_nulls, metadata_locations, MetadataLocation,
};
pub use run::{evaluate_cross_origin, parse_target, run, Options, Target};
pub use self_check::{evaluate_audiences, self_check, startup_self_check};
pub use token::{audience_hint, evaluate_token, ServerKeys, TokenContext};
pub use url_diff::describe_difference;
