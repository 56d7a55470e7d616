//! MCP-aware authorization (issue #10).

pub mod decide;
pub mod file;
pub mod headers;
pub mod jsonrpc;
pub mod rules;
pub mod tools_list;
