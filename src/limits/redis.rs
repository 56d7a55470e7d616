//! The shared store: GCRA in Redis (or Valkey), one round trip per decision, bounded in time.
//!
//! The whole read-decide-write runs inside Redis as one Lua script (sent by `EVALSHA`; the client
//! loads it on a `NOSCRIPT` reply), so replicas sharing a key can never both spend its last unit, and
//! it reads the time from Redis's own clock (`TIME`) so replicas whose clocks disagree still agree on
//! a budget. Redis ≥ 5 replicates the script's effects, not the script, so `TIME` inside it is safe.
//!
//! Every call is bounded by `RATE_LIMIT_REDIS_TIMEOUT`; a failure or a timeout is an [`Unavailable`]
//! the caller turns into the `RATE_LIMIT_REDIS_FAILURE` behaviour. The connection manager reconnects
//! in the background; an outage is logged once when it starts and once when it ends.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra::{Quota, Verdict};
use crate::metrics::Metrics;

/// KEYS[1]: the key's TAT in µs since the epoch on Redis's clock. ARGV: T and τ in µs.
/// Returns `{allowed, backlog}`: the verdict is computed by [`Quota::verdict_micros`] from them.
const GCRA_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
local backlog = 0
if tat and tat > now then backlog = tat - now end
if backlog + interval <= tolerance then
  local ahead = backlog + interval
  redis.call('SET', KEYS[1], string.format('%d', now + ahead), 'PX', math.ceil(ahead / 1000) + 1000)
  return {1, backlog}
end
return {0, backlog}
";

/// A connection that sends nothing until first used (so the gate starts while Redis is down), each
/// call bounded by `timeout`, reconnecting in the background. Shared by every Redis store the gate
/// has (rate limits, the DPoP replay store).
pub(crate) fn lazy_connection(
    url: &str,
    timeout: Duration,
) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout.max(Duration::from_millis(100))))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
}

/// Redis could not decide in time (down, slow, or answered with an error).
#[derive(Debug, thiserror::Error)]
#[error("the rate-limit store did not answer: {0}")]
pub struct Unavailable(String);

/// A connection to the shared store.
pub struct RedisStore {
    connection: ConnectionManager,
    script: redis::Script,
    /// `RATE_LIMIT_REDIS_TIMEOUT`: the longest a request waits for a decision.
    timeout: Duration,
    /// Whether the last call failed: the outage is logged on the edge, not on every request.
    down: AtomicBool,
    metrics: Arc<Metrics>,
}

impl RedisStore {
    /// Prepares a lazy connection (nothing is sent until the first decision), so a gate starts even
    /// while Redis is down and uses its fallback until Redis answers.
    pub fn new(
        url: &str,
        timeout: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<RedisStore, redis::RedisError> {
        Ok(RedisStore {
            connection: lazy_connection(url, timeout)?,
            script: redis::Script::new(GCRA_SCRIPT),
            timeout,
            down: AtomicBool::new(false),
            metrics,
        })
    }

    /// Connects (and loads nothing: `EVALSHA` loads the script on first use) off the request path,
    /// so the first requests do not pay for the TCP and TLS handshakes inside their few-ms bound.
    pub fn warm_up(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut connection = self.connection.clone();
        runtime.spawn(async move {
            let command = redis::cmd("PING");
            let ping = command.query_async::<String>(&mut connection);
            match tokio::time::timeout(Duration::from_secs(10), ping).await {
                Ok(Ok(_)) => tracing::info!("connected to the rate-limit store"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "the rate-limit store does not answer yet")
                }
                Err(_) => tracing::warn!("the rate-limit store does not answer yet"),
            }
        });
    }

    /// Decides one request for `key` (already namespaced by the caller).
    pub async fn check(&self, quota: &Quota, key: &str) -> Result<Verdict, Unavailable> {
        let (interval, tolerance) = quota.micros();
        let mut connection = self.connection.clone();
        let started = Instant::now();
        let mut invocation = self.script.key(key);
        invocation.arg(interval).arg(tolerance);
        let call = invocation.invoke_async::<(u8, u64)>(&mut connection);
        let answer = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(Unavailable(e.to_string())),
            Err(_) => Err(Unavailable(format!(
                "no answer within RATE_LIMIT_REDIS_TIMEOUT ({})",
                humantime::format_duration(self.timeout)
            ))),
        };
        match answer {
            Ok((allowed, backlog)) => {
                self.metrics.rate_limit_redis(started.elapsed());
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the rate-limit store answers again; limits are shared again");
                }
                let verdict = quota.verdict_micros(backlog);
                // The script and `verdict_micros` apply one rule to one backlog; should they ever
                // disagree, the script's word is the one that was recorded.
                Ok(Verdict {
                    allowed: allowed == 1,
                    ..verdict
                })
            }
            Err(e) => {
                self.metrics.rate_limit_redis_failure();
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "the rate-limit store is unavailable; applying RATE_LIMIT_REDIS_FAILURE until it answers");
                }
                Err(e)
            }
        }
    }
}
