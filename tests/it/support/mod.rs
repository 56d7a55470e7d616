//! Shared helpers for the integration tests: a controllable identity provider (metadata + JWKS), a
//! recording upstream (JSON and SSE), a gate started in-process on an ephemeral port, a client, and
//! an RFC 8693 token endpoint.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Notify};

pub use mcp_gate::test_support::{jwks, TestKey};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(b: impl Into<Bytes>) -> BoxBody {
    Full::new(b.into()).boxed()
}

mod client;
mod faulty;
mod gate;
mod idp;
mod redis_server;
mod token_endpoint;
mod upstream;

pub use client::*;
pub use faulty::*;
pub use gate::*;
pub use idp::*;
pub use redis_server::*;
pub use token_endpoint::*;
pub use upstream::*;
