//! The HTTP pieces the gate's routes are made of, each knowing nothing of the others' internals:
//!
//! - [`body`] — the response body: bytes the gate made, or the upstream's stream passed through.
//! - [`error`] — [`error::GateError`], the one place a non-auth failure becomes a response.
//! - [`framing`] — request framing refused before routing (RFC 9112 §6, smuggling).
//! - [`target`] — request-target forms, `Host` rules and the upstream path (RFC 9112 §3.2, RFC 3986 §5.2.4).
//! - [`forwarded`] — `X-Forwarded-*` from what the gate saw, and which peers' values to trust.
//! - [`cors`] — browser origins: preflights before auth, 403 for foreign origins.
//! - [`metadata`] — the RFC 9728 Protected Resource Metadata document and its well-known paths.
//! - [`access_log`] — one JSON line per request, written when its stream ends.
//! - [`identity`] — verified claims as upstream headers; spoofed identity headers removed.
//! - [`client`] — the outbound connector shared by the proxy, the key fetcher and `check`.

pub mod access_log;
pub mod body;
pub mod client;
pub mod coalesce;
pub mod cors;
pub mod error;
pub mod forwarded;
pub mod framing;
pub mod identity;
pub mod metadata;
pub mod target;
