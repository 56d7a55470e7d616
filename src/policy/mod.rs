//! MCP-aware authorization (issue #10).

pub mod headers;
pub mod jsonrpc;
