//! The shared DPoP replay store (`DPOP_REPLAY_STORE=redis`): a proof's `jti` used once across every
//! replica, not just once per replica (RFC 9449 §11.1).
//!
//! One `SET key 1 NX PX ttl` per proof: Redis answers `OK` to the first use and nil to every later
//! one, atomically, so two replicas receiving the same proof at the same moment cannot both accept
//! it. The key is the local cache's digest of (`jkt`, `jti`), so it has a fixed size whatever the
//! client sends; it lives for twice the `iat` window, the longest a proof can be acceptable.
//!
//! The per-replica cache ([`super::dpop_replay`]) is always asked first: a replay to the same replica
//! costs no round trip, and while Redis is down (`DPOP_REPLAY_REDIS_FAILURE=local`, the default) it
//! is what remains. `closed` refuses every proof instead, with 503, until Redis answers. Every call
//! is bounded by `RATE_LIMIT_REDIS_TIMEOUT`; an outage is logged once when it starts and once when it
//! ends, and each unanswered call is counted.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::metrics::Metrics;

/// What a proof gets while Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFailure {
    /// The per-replica cache decides alone (a replay to another replica goes unnoticed).
    Local,
    /// Every DPoP request is refused with 503 until Redis answers again.
    Closed,
}

/// How to reach the shared store. The URL may carry a password, so `Debug` leaves it out.
#[derive(Clone, PartialEq)]
pub struct SharedReplaySettings {
    /// `RATE_LIMIT_REDIS_URL` (secret: may hold a password).
    pub url: String,
    /// `RATE_LIMIT_REDIS_TIMEOUT`.
    pub timeout: Duration,
    /// `DPOP_REPLAY_REDIS_FAILURE`.
    pub on_failure: ReplayFailure,
}

impl std::fmt::Debug for SharedReplaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedReplaySettings")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("on_failure", &self.on_failure)
            .finish()
    }
}

/// The answer for one proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedVerdict {
    FirstUse,
    Replayed,
    /// Redis did not answer in time; the failure mode decides.
    Unavailable(ReplayFailure),
}

/// A lazy connection to the shared store.
pub struct SharedReplay {
    connection: ConnectionManager,
    timeout: Duration,
    /// How long a key lives: twice `DPOP_IAT_WINDOW`, in milliseconds.
    ttl_ms: u64,
    on_failure: ReplayFailure,
    down: AtomicBool,
    metrics: Arc<Metrics>,
}

impl SharedReplay {
    /// Prepares the connection without sending anything, so the gate starts while Redis is down.
    pub fn new(
        settings: &SharedReplaySettings,
        iat_window: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<SharedReplay, redis::RedisError> {
        Ok(SharedReplay {
            connection: crate::limits::redis::lazy_connection(&settings.url, settings.timeout)?,
            timeout: settings.timeout,
            ttl_ms: (iat_window.as_millis() as u64).saturating_mul(2).max(1),
            on_failure: settings.on_failure,
            down: AtomicBool::new(false),
            metrics,
        })
    }

    /// Connects off the request path, so the first proofs do not pay for the handshakes inside
    /// their few-millisecond bound.
    pub fn warm_up(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut connection = self.connection.clone();
        runtime.spawn(async move {
            let ping = redis::cmd("PING");
            let ping = ping.query_async::<String>(&mut connection);
            match tokio::time::timeout(Duration::from_secs(10), ping).await {
                Ok(Ok(_)) => tracing::info!("connected to the DPoP replay store"),
                _ => tracing::warn!("the DPoP replay store does not answer yet"),
            }
        });
    }

    /// Records the proof whose replay-cache digest is `digest`.
    pub async fn first_use(&self, digest: &[u8; 32]) -> SharedVerdict {
        let mut key = String::with_capacity(14 + 64);
        key.push_str("mcp-gate:dpop:");
        for b in digest {
            let _ = write!(key, "{b:02x}");
        }
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("SET");
        command
            .arg(&key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(self.ttl_ms);
        let call = command.query_async::<Option<String>>(&mut connection);
        let answer = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within RATE_LIMIT_REDIS_TIMEOUT ({})",
                humantime::format_duration(self.timeout)
            )),
        };
        match answer {
            Ok(set) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::warn!("the DPoP replay store answers again; replays are refused across replicas again");
                }
                if set.is_some() {
                    SharedVerdict::FirstUse
                } else {
                    SharedVerdict::Replayed
                }
            }
            Err(e) => {
                self.metrics.dpop_replay_store_failure();
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, on_failure = ?self.on_failure, "the DPoP replay store is unavailable; applying DPOP_REPLAY_REDIS_FAILURE until it answers");
                }
                SharedVerdict::Unavailable(self.on_failure)
            }
        }
    }
}
