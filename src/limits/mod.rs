//! Rate limits per client address, per subject and per subject and tool (`RATE_LIMIT_IP`,
//! `RATE_LIMIT_SUBJECT`, `RATE_LIMIT_TOOL`).
//!
//! - [`gcra`] — the algorithm, pure: a [`Quota`] and a stored instant decide a request.
//! - [`local`] — the in-process store (a bounded concurrent map), the default.
//! - [`redis`] — the shared store (`RATE_LIMIT_REDIS_URL`), one Lua round trip per decision, with
//!   `RATE_LIMIT_REDIS_FAILURE` saying what happens when it does not answer in time.
//! - [`refusal`] — the 429: `Retry-After` and the `RateLimit` / `RateLimit-Policy` fields, and the
//!   JSON-RPC error body when the request's calls are known.
//! - [`tool`] — which calls of a body the tool level counts, and the key of a subject's tool.
//!
//! The address limit runs *before* the token check, so a flood of garbage tokens costs a map lookup
//! and never reaches signature checks or the key fetcher; the subject limit runs after it, keyed by
//! the accepting issuer and `sub` (or `client_id` when there is no `sub`); the tool level runs last,
//! once the MCP policy has read the body and allowed it, keyed by that subject and the tool name.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod gcra;
pub mod local;
pub mod redis;
pub mod refusal;
pub mod tool;

pub use gcra::{Quota, Verdict};

use crate::auth::Verified;
use crate::metrics::Metrics;
use local::LocalStore;
use redis::RedisStore;

/// Keys remembered per level by the local store (a few MB at most).
const LOCAL_CAPACITY: usize = 100_000;

/// Which limit decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `RATE_LIMIT_IP`: per client address (IPv6 per /64).
    Ip,
    /// `RATE_LIMIT_SUBJECT`: per issuer and subject.
    Subject,
    /// `RATE_LIMIT_TOOL`: per issuer, subject and tool, for `tools/call`.
    Tool,
}

impl Level {
    /// The access log's `limit`, the metric label and the `RateLimit` policy name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ip => "ip",
            Level::Subject => "subject",
            Level::Tool => "tool",
        }
    }
}

/// `RATE_LIMIT_REDIS_FAILURE`: what a decision is when Redis does not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureMode {
    /// Decide with this replica's own limits (each replica then allows the full rate).
    Local,
    /// Allow the request.
    Open,
    /// Refuse the request (503).
    Closed,
}

/// `RATE_LIMIT_REDIS_*`. The URL may carry a password, so `Debug` leaves it out.
#[derive(Clone)]
pub struct RedisSettings {
    pub url: String,
    pub timeout: Duration,
    pub on_failure: FailureMode,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

/// The validated rate-limit settings; every limit is off by default.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub ip: Option<Quota>,
    pub subject: Option<Quota>,
    pub tool: Option<Quota>,
    pub redis: Option<RedisSettings>,
}

/// Why a request is not let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over a limit: 429.
    Limited {
        level: Level,
        quota: Quota,
        verdict: Verdict,
    },
    /// Redis did not answer and `RATE_LIMIT_REDIS_FAILURE=closed`: 503.
    StoreUnavailable { level: Level },
}

impl Refused {
    pub fn level(self) -> Level {
        match self {
            Refused::Limited { level, .. } | Refused::StoreUnavailable { level } => level,
        }
    }
}

/// Who a token names, as the subject and tool levels count it: a hash of issuer, kind and
/// identifier (see [`subject_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject([u8; 32]);

/// The limits of one gate.
pub struct RateLimiter {
    ip: Option<Quota>,
    subject: Option<Quota>,
    tool: Option<Quota>,
    by_address: LocalStore<IpAddr>,
    by_subject: LocalStore<[u8; 32]>,
    by_tool: LocalStore<[u8; 32]>,
    redis: Option<(RedisStore, FailureMode)>,
    /// The local store's clock: nanoseconds since this instant (monotonic).
    origin: Instant,
    metrics: Arc<Metrics>,
}

impl RateLimiter {
    /// Builds the limiter; with Redis configured, its connection is made on first use.
    pub fn new(settings: &Settings, metrics: Arc<Metrics>) -> RateLimiter {
        let redis = settings.redis.as_ref().and_then(|r| {
            match RedisStore::new(&r.url, r.timeout, metrics.clone()) {
                Ok(store) => {
                    store.warm_up();
                    Some((store, r.on_failure))
                }
                // The URL was validated with the same parser at start; should it still fail, the
                // limits stay on, per replica.
                Err(e) => {
                    tracing::error!(error = %e, "RATE_LIMIT_REDIS_URL cannot be used; limits are per replica");
                    None
                }
            }
        });
        if settings.ip.is_some() || settings.subject.is_some() || settings.tool.is_some() {
            let shown = |q: Option<Quota>| q.map_or_else(|| "off".to_string(), |q| q.to_string());
            tracing::info!(
                ip = %shown(settings.ip),
                subject = %shown(settings.subject),
                tool = %shown(settings.tool),
                store = if redis.is_some() { "redis" } else { "local" },
                "rate limits"
            );
        }
        RateLimiter {
            ip: settings.ip,
            subject: settings.subject,
            tool: settings.tool,
            by_address: LocalStore::new(LOCAL_CAPACITY),
            by_subject: LocalStore::new(LOCAL_CAPACITY),
            by_tool: LocalStore::new(LOCAL_CAPACITY),
            redis,
            origin: Instant::now(),
            metrics,
        }
    }

    /// The per-address limit, checked before the token.
    pub async fn check_address(&self, ip: IpAddr) -> Result<(), Refused> {
        let Some(quota) = self.ip else {
            return Ok(());
        };
        let ip = address_key(ip);
        self.decide(
            Level::Ip,
            quota,
            || format!("mcp-gate:rl:ip:{ip}"),
            |now| self.by_address.check(&quota, &ip, now),
        )
        .await
    }

    /// The per-subject limit, checked after the token; a token with neither `sub` nor `client_id`
    /// names nobody to count against and is not limited at this level.
    pub async fn check_subject(&self, verified: &Verified) -> Result<(), Refused> {
        let Some(quota) = self.subject else {
            return Ok(());
        };
        let Some(key) = subject_key(verified) else {
            return Ok(());
        };
        let redis_key = || hex_key("mcp-gate:rl:subject:", &key);
        self.decide(Level::Subject, quota, redis_key, |now| {
            self.by_subject.check(&quota, &key, now)
        })
        .await
    }

    /// Who the tool level counts against: `None` when `RATE_LIMIT_TOOL` is off (no hash is
    /// computed) or the token names nobody (not limited at this level, as at the subject level).
    pub fn tool_subject(&self, verified: &Verified) -> Option<Subject> {
        self.tool?;
        subject_key(verified).map(Subject)
    }

    /// The per-tool limit for the `tools/call` names of one body (see [`tool::counted`]), each
    /// spending one unit of its (subject, tool) budget in order. The first name over its limit
    /// refuses the whole request and is returned with the refusal; the units spent before it stay
    /// spent, as a request refused at a later level has spent its address and subject units.
    pub async fn check_tools<'a>(
        &self,
        subject: Option<Subject>,
        tools: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), (Refused, &'a str)> {
        let (Some(quota), Some(subject)) = (self.tool, subject) else {
            return Ok(());
        };
        for name in tools {
            let key = tool::key(&subject.0, name);
            let redis_key = || hex_key("mcp-gate:rl:tool:", &key);
            self.decide(Level::Tool, quota, redis_key, |now| {
                self.by_tool.check(&quota, &key, now)
            })
            .await
            .map_err(|refused| (refused, name))?;
        }
        Ok(())
    }

    async fn decide(
        &self,
        level: Level,
        quota: Quota,
        redis_key: impl FnOnce() -> String,
        local: impl FnOnce(u64) -> Verdict,
    ) -> Result<(), Refused> {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let verdict = match &self.redis {
            None => local(now),
            // Boxed: a Redis call's future is large, and every request's future would carry its
            // size (and move it) even with no Redis configured.
            Some((store, on_failure)) => match Box::pin(store.check(&quota, &redis_key())).await {
                Ok(verdict) => verdict,
                Err(_) => match on_failure {
                    FailureMode::Local => local(now),
                    FailureMode::Open => {
                        self.metrics.rate_limit_decision(level.as_str(), "allowed");
                        return Ok(());
                    }
                    FailureMode::Closed => {
                        self.metrics
                            .rate_limit_decision(level.as_str(), "unavailable");
                        return Err(Refused::StoreUnavailable { level });
                    }
                },
            },
        };
        let decision = if verdict.allowed {
            "allowed"
        } else {
            "limited"
        };
        self.metrics.rate_limit_decision(level.as_str(), decision);
        if verdict.allowed {
            Ok(())
        } else {
            Err(Refused::Limited {
                level,
                quota,
                verdict,
            })
        }
    }
}

/// IPv4 (and IPv4-mapped IPv6) per address; IPv6 per /64, the smallest block a host is given
/// (RFC 6177), so one client cannot walk its own subnet to get a fresh budget per address.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// `prefix` and the key in hex: the Redis key of a hashed subject or (subject, tool).
fn hex_key(prefix: &str, key: &[u8; 32]) -> String {
    let mut s = String::with_capacity(prefix.len() + 64);
    s.push_str(prefix);
    for b in key {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SHA-256 of issuer, kind and identifier: a fixed-size key whatever the token carried, so neither
/// store's memory depends on claim lengths, and Redis never sees a raw subject.
fn subject_key(verified: &Verified) -> Option<[u8; 32]> {
    let (kind, id) = match (&verified.sub, &verified.client_id) {
        (Some(sub), _) => ("sub", sub),
        (None, Some(client_id)) => ("client_id", client_id),
        (None, None) => return None,
    };
    let issuer = verified.issuer.as_deref().unwrap_or("");
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [issuer, kind, id.as_str()] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.finish().as_ref().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(sub: Option<&str>, client_id: Option<&str>, iss: &str) -> Verified {
        Verified {
            sub: sub.map(str::to_string),
            client_id: client_id.map(str::to_string),
            exp: 0,
            issuer: Some(iss.into()),
            claims: Default::default(),
            decided_by: "jwt",
            introspection: None,
            binding: None,
        }
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64_and_ipv4_per_address() {
        let key = |s: &str| address_key(s.parse().unwrap()).to_string();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff::9"), "2001:db8:1:2::");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn a_subject_is_its_issuer_and_sub_or_else_its_client_id() {
        let a = subject_key(&verified(Some("alice"), Some("app"), "https://a")).unwrap();
        assert_eq!(
            Some(a),
            subject_key(&verified(Some("alice"), Some("other"), "https://a"))
        );
        assert_ne!(
            Some(a),
            subject_key(&verified(Some("alice"), None, "https://b"))
        );
        // A client named like a user is not that user.
        assert_ne!(
            subject_key(&verified(None, Some("alice"), "https://a")),
            Some(a)
        );
        assert_eq!(subject_key(&verified(None, None, "https://a")), None);
    }

    #[tokio::test]
    async fn levels_that_are_not_configured_never_refuse() {
        let limiter = RateLimiter::new(&Settings::default(), Arc::new(Metrics::new()));
        for _ in 0..1000 {
            assert_eq!(limiter.check_address([192, 0, 2, 1].into()).await, Ok(()));
        }
    }

    #[tokio::test]
    async fn each_level_refuses_past_its_burst_with_its_name() {
        let settings = Settings {
            ip: Some(Quota::parse("2/1m").unwrap()),
            subject: Some(Quota::parse("1/1m").unwrap()),
            tool: Some(Quota::parse("1/1m").unwrap()),
            redis: None,
        };
        let limiter = RateLimiter::new(&settings, Arc::new(Metrics::new()));
        let ip: IpAddr = [192, 0, 2, 1].into();
        assert!(limiter.check_address(ip).await.is_ok());
        assert!(limiter.check_address(ip).await.is_ok());
        assert_eq!(
            limiter.check_address(ip).await.map_err(Refused::level),
            Err(Level::Ip)
        );
        let alice = verified(Some("alice"), None, "https://a");
        assert!(limiter.check_subject(&alice).await.is_ok());
        assert_eq!(
            limiter.check_subject(&alice).await.map_err(Refused::level),
            Err(Level::Subject)
        );
        let who = limiter.tool_subject(&alice);
        assert!(limiter.check_tools(who, ["search"]).await.is_ok());
        assert_eq!(
            limiter
                .check_tools(who, ["search"])
                .await
                .map_err(|(r, name)| (r.level(), name)),
            Err((Level::Tool, "search"))
        );
    }

    #[tokio::test]
    async fn the_tool_level_counts_per_subject_and_tool_and_a_batch_stops_at_its_first_refusal() {
        let settings = Settings {
            tool: Some(Quota::parse("2/1m").unwrap()),
            ..Settings::default()
        };
        let limiter = RateLimiter::new(&settings, Arc::new(Metrics::new()));
        let alice = limiter.tool_subject(&verified(Some("alice"), None, "https://a"));
        let bob = limiter.tool_subject(&verified(Some("bob"), None, "https://a"));
        assert!(alice.is_some());
        assert!(limiter.check_tools(alice, ["a", "b"]).await.is_ok());
        // Alice's `a` has one unit left: the batch is refused at its second `a`, and `b`, after it,
        // is not counted.
        let refused = limiter.check_tools(alice, ["a", "a", "b"]).await;
        assert_eq!(refused.map_err(|(_, name)| name), Err("a"));
        assert!(limiter.check_tools(alice, ["b"]).await.is_ok());
        assert!(limiter.check_tools(alice, ["b"]).await.is_err());
        // Bob's budgets are his own; a token naming nobody is not limited at this level.
        assert!(limiter.check_tools(bob, ["a", "a"]).await.is_ok());
        let nobody = limiter.tool_subject(&verified(None, None, "https://a"));
        assert_eq!(nobody, None);
        for _ in 0..5 {
            assert!(limiter.check_tools(nobody, ["a"]).await.is_ok());
        }
    }

    #[test]
    fn without_a_tool_limit_no_subject_is_computed() {
        let limiter = RateLimiter::new(&Settings::default(), Arc::new(Metrics::new()));
        let alice = verified(Some("alice"), None, "https://a");
        assert_eq!(limiter.tool_subject(&alice), None);
    }
}
