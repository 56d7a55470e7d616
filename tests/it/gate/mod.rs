//! The gate end to end over real sockets: metadata, challenges, token checks, proxying, streaming,
//! key rotation and IdP faults. Each test starts its own identity provider, upstream and gate, so
//! nothing is shared here beyond `crate::support`. The tests, one file per concern:
//! - `public_routes`: what is answered without a token: the protected resource metadata
//!   (RFC 9728 §3), the health paths, CORS preflights;
//! - `challenges`: every refusal's status and `WWW-Authenticate` challenge (RFC 6750 §3): no
//!   token, a bad token, a malformed request, a missing scope, a failed claim rule;
//! - `proxying`: what reaches the upstream and what comes back: path, query, headers, methods,
//!   statuses, the upstream's base path, an unreachable or stalling upstream, an oversized body;
//! - `streaming`: SSE passed through event by event, a client hanging up, shutdown with an open
//!   stream;
//! - `keys`: key rotation and identity provider faults: new and replaced keys without a restart,
//!   an unknown-`kid` flood, an IdP down at start or failing later.

mod challenges;
mod keys;
mod proxying;
mod public_routes;
mod streaming;
