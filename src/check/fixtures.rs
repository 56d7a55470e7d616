//! Values and helpers the unit tests of several `check` stages share.

use std::sync::OnceLock;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::HeaderMap;

use super::probe::Answer;
use super::report::{Check, Status};
use crate::auth::fetch::FetchError;
use crate::test_support::TestKey;

pub const ISS: &str = "https://idp.example.com/realms/mcp";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";

pub fn statuses(checks: &[Check]) -> Vec<(&'static str, Status)> {
    checks.iter().map(|c| (c.id, c.status)).collect()
}

pub fn failing(checks: &[Check]) -> Vec<&Check> {
    checks.iter().filter(|c| c.status == Status::Fail).collect()
}

pub fn answer(status: u16, content_type: &str, body: &str) -> Result<Answer, FetchError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
    Ok(Answer {
        status,
        headers,
        body: Bytes::from(body.to_string()),
    })
}

pub fn key() -> &'static TestKey {
    static K: OnceLock<TestKey> = OnceLock::new();
    K.get_or_init(|| TestKey::rsa("k1", 2048))
}
