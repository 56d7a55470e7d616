//! The integration tests: one binary, one module per concern, all talking to real sockets.
//!
//! One binary instead of one per file: the shared support code and the crate are compiled and
//! linked once, not ten times.

mod support;

mod attacks;
mod binary;
mod check;
mod connection_limits;
mod dpop;
mod dpop_nonce;
mod dpop_replay;
mod exchange;
mod gate;
mod http_abuse;
mod identity;
mod idp_faults;
mod introspection;
mod issuers;
mod metrics;
mod otel;
mod policy;
mod properties;
mod rate_limit;
mod rate_limit_tool;
mod tls;
mod upstream_request;
