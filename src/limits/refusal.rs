//! The answer to a request over a limit: 429 (RFC 6585 §4) with `Retry-After` (RFC 9110 §10.2.3) and
//! the `RateLimit-Policy` / `RateLimit` fields of draft-ietf-httpapi-ratelimit-headers-10 (the
//! Structured-Fields syntax the draft has used since -08: a quoted policy name with `q` and `w` for
//! the policy, `r` and `t` for the current state).
//!
//! Status, body and log reason are the [`GateError`]'s, decided in `http/error.rs` like every other
//! answer the gate gives itself; this module only adds the fields that carry numbers.

use http::header::RETRY_AFTER;
use http::{HeaderName, HeaderValue, Response};

use super::{Quota, Refused, Verdict};
use crate::http::body::ResponseBody;
use crate::http::error::GateError;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

impl Refused {
    /// The error whose status, JSON body and log reason the response carries.
    pub fn error(self) -> GateError {
        match self {
            Refused::Limited { .. } => GateError::RateLimited,
            Refused::StoreUnavailable { .. } => GateError::RateLimitUnavailable,
        }
    }

    /// Adds the numeric fields to the response built from [`Refused::error`].
    pub fn decorate(self, response: &mut Response<ResponseBody>) {
        let Refused::Limited {
            level,
            quota,
            verdict,
        } = self
        else {
            return;
        };
        for (name, value) in fields(level.as_str(), &quota, &verdict) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
}

/// `Retry-After`, `RateLimit-Policy` and `RateLimit` for a refusal by the policy named `name`.
/// Seconds are rounded up: a client that waits what it is told must find the unit available.
fn fields(name: &str, quota: &Quota, verdict: &Verdict) -> [(HeaderName, String); 3] {
    let secs = |d: std::time::Duration| d.as_nanos().div_ceil(1_000_000_000).max(1);
    [
        (RETRY_AFTER, secs(verdict.retry_after).to_string()),
        (
            RATELIMIT_POLICY,
            format!("\"{name}\";q={};w={}", quota.count, secs(quota.period)),
        ),
        (
            RATELIMIT,
            format!(
                "\"{name}\";r={};t={}",
                verdict.remaining,
                secs(verdict.reset)
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn fields_round_seconds_up_and_name_the_policy() {
        for (quota, retry_ms, reset_ms, expect) in [
            (
                "100/1m",
                600,
                60_000,
                ["1", "\"ip\";q=100;w=60", "\"ip\";r=0;t=60"],
            ),
            (
                "1/10s",
                9_001,
                9_001,
                ["10", "\"ip\";q=1;w=10", "\"ip\";r=0;t=10"],
            ),
            (
                "5/500ms,burst=1",
                100,
                100,
                ["1", "\"ip\";q=5;w=1", "\"ip\";r=0;t=1"],
            ),
        ] {
            let verdict = Verdict {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(retry_ms),
                reset: Duration::from_millis(reset_ms),
            };
            let got = fields("ip", &Quota::parse(quota).unwrap(), &verdict).map(|(_, v)| v);
            assert_eq!(got, expect, "{quota}");
        }
    }

    #[test]
    fn a_429_carries_retry_after_and_both_ratelimit_fields() {
        let refused = Refused::Limited {
            level: super::super::Level::Subject,
            quota: Quota::parse("5/1s").unwrap(),
            verdict: Verdict {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_millis(200),
                reset: Duration::from_secs(1),
            },
        };
        let mut response = refused.error().response(http::Version::HTTP_11);
        refused.decorate(&mut response);
        assert_eq!(response.status(), 429);
        let h = response.headers();
        assert_eq!(h[RETRY_AFTER], "1");
        assert_eq!(h["ratelimit-policy"], "\"subject\";q=5;w=1");
        assert_eq!(h["ratelimit"], "\"subject\";r=0;t=1");
    }
}
