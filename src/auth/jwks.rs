//! The JWKS cache: the authorization server's signing keys, kept fresh in the background.
//!
//! - Requests read the current [`KeySet`] lock-free (`arc-swap`); only refreshes write it.
//! - A background task refreshes every `JWKS_REFRESH_INTERVAL` (shortened by the response's
//!   `Cache-Control: max-age`), with jitter, and retries with backoff while no keys are loaded.
//! - A request may trigger a refresh in two cases only: no key set has been loaded yet (at most about
//!   once a second), or its `kid` is unknown / its signature fails under the cached key (at most once
//!   per `JWKS_MIN_REFRESH_INTERVAL`). Refreshes are single-flight: concurrent requests share one fetch,
//!   so a flood of random `kid`s cannot make the gate hammer the IdP. Waiting is bounded by the fetch
//!   timeout.
//! - A failed refresh, or one that returns garbage or an empty set, keeps the last good keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::Mutex;

use super::discovery;
use super::fetch::Fetcher;
use super::keys::{parse_jwks, Alg, KeySet};
use crate::metrics::Metrics;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A configured `JWKS_URI`.
    Fixed(String),
    /// The `jwks_uri` in this issuer's metadata.
    Discover {
        issuer: String,
        allow_insecure: bool,
    },
}

/// Why a refresh did not produce keys.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("discovery failed: {0}")]
    Discovery(#[from] discovery::DiscoveryError),
    #[error("fetching {uri} failed: {source}")]
    Fetch {
        uri: String,
        #[source]
        source: super::fetch::FetchError,
    },
    #[error("{uri}: {source}")]
    Jwks {
        uri: String,
        #[source]
        source: super::keys::JwksError,
    },
}

/// Settings of the cache.
#[derive(Debug, Clone)]
pub struct JwksSettings {
    /// The `iss` whose keys these are: names the cache in logs and metrics.
    pub issuer: String,
    pub source: KeySource,
    pub algorithms: Vec<Alg>,
    pub refresh_interval: Duration,
    pub min_refresh_interval: Duration,
    pub fetch_timeout: Duration,
}

/// State only the refresher holding the single-flight lock touches.
struct Flight {
    /// When the last fetch started (successful or not); drives the rate limits.
    last_attempt: Option<Instant>,
    /// The discovered `jwks_uri`, kept until a fetch from it fails.
    jwks_uri: Option<String>,
}

/// How often a request may trigger a fetch while no keys have ever loaded.
const FIRST_LOAD_MIN_GAP: Duration = Duration::from_secs(1);
/// The longest gap between retries while the IdP is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Numbers the installed key sets (see [`KeySet::generation`]) across every cache in the process,
/// so that a generation names one key set of one issuer.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// The cache; shared by all requests through an `Arc`.
pub struct JwksCache {
    keys: ArcSwapOption<KeySet>,
    settings: JwksSettings,
    fetcher: Fetcher,
    /// Held for the duration of one fetch: this is what makes refreshes single-flight. The hot path
    /// never takes it; only requests that need fresh keys wait on it, bounded by the fetch timeout.
    flight: Mutex<Flight>,
    metrics: Arc<Metrics>,
}

impl JwksCache {
    pub fn new(settings: JwksSettings, metrics: Arc<Metrics>) -> JwksCache {
        metrics.issuer_configured(&settings.issuer);
        JwksCache {
            keys: ArcSwapOption::empty(),
            fetcher: Fetcher::new(settings.fetch_timeout),
            settings,
            flight: Mutex::new(Flight {
                last_attempt: None,
                jwks_uri: None,
            }),
            metrics,
        }
    }

    /// The current key set, if any has loaded.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// Whether a key set has loaded (readiness).
    pub fn is_ready(&self) -> bool {
        self.keys.load().is_some()
    }

    /// The key set, fetching it on the request path if none has loaded yet (single flight, at most
    /// about once a second). `None` means the IdP could not be reached: the request must get 503.
    pub async fn keys_or_fetch(&self) -> Option<Arc<KeySet>> {
        if let Some(keys) = self.current() {
            return Some(keys);
        }
        self.refresh_shared(None, FIRST_LOAD_MIN_GAP).await
    }

    /// A token did not verify under `seen` for a reason a key rotation explains. Returns a newer key
    /// set to decide with, or `None` when nothing newer can be had now (rate limit, IdP failure).
    pub async fn refresh_after_miss(&self, seen: &Arc<KeySet>) -> Option<Arc<KeySet>> {
        self.refresh_shared(Some(seen), self.settings.min_refresh_interval)
            .await
    }

    async fn refresh_shared(
        &self,
        seen: Option<&Arc<KeySet>>,
        min_gap: Duration,
    ) -> Option<Arc<KeySet>> {
        let wait = self.settings.fetch_timeout + Duration::from_millis(250);
        let attempt = async {
            let mut flight = self.flight.lock().await;
            // Another request (or the background task) refreshed while this one queued.
            let current = self.current();
            match (&current, seen) {
                (Some(now), Some(seen)) if !Arc::ptr_eq(now, seen) => return current,
                (Some(_), None) => return current,
                _ => {}
            }
            if flight.last_attempt.is_some_and(|t| t.elapsed() < min_gap) {
                return None;
            }
            match self.fetch_locked(&mut flight).await {
                Ok(_) => {
                    let fresh = self.current();
                    match (&fresh, seen) {
                        (Some(f), Some(s)) if Arc::ptr_eq(f, s) => None,
                        _ => fresh,
                    }
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, "on-demand JWKS refresh failed");
                    None
                }
            }
        };
        tokio::time::timeout(wait, attempt).await.ok().flatten()
    }

    /// Fetches and installs the key set; the caller holds the single-flight lock. Returns the
    /// server's `max-age`, if it gave one.
    async fn fetch_locked(&self, flight: &mut Flight) -> Result<Option<Duration>, RefreshError> {
        let result = self.fetch_and_install(flight).await;
        self.metrics.jwks_fetch(
            &self.settings.issuer,
            result.is_ok(),
            self.current().map(|k| k.len()),
        );
        result
    }

    async fn fetch_and_install(
        &self,
        flight: &mut Flight,
    ) -> Result<Option<Duration>, RefreshError> {
        flight.last_attempt = Some(Instant::now());
        let uri = match (&self.settings.source, &flight.jwks_uri) {
            (KeySource::Fixed(uri), _) => uri.clone(),
            (KeySource::Discover { .. }, Some(uri)) => uri.clone(),
            (
                KeySource::Discover {
                    issuer,
                    allow_insecure,
                },
                None,
            ) => {
                let uri = discovery::jwks_uri(&self.fetcher, issuer, *allow_insecure).await?;
                tracing::info!(issuer = %self.settings.issuer, jwks_uri = %uri, "discovered the authorization server's JWKS");
                flight.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let fetched = match self.fetcher.get(&uri).await {
            Ok(f) => f,
            Err(source) => {
                // The metadata may have moved the keys; look again next time.
                flight.jwks_uri = None;
                return Err(RefreshError::Fetch { uri, source });
            }
        };
        let (mut set, skipped) =
            parse_jwks(&fetched.body, &self.settings.algorithms).map_err(|source| {
                RefreshError::Jwks {
                    uri: uri.clone(),
                    source,
                }
            })?;
        let previous = self.current();
        let changed = previous
            .as_ref()
            .is_none_or(|p| p.fingerprints() != set.fingerprints());
        if changed {
            for why in &skipped {
                tracing::warn!(issuer = %self.settings.issuer, jwks_uri = %uri, skipped = %why, "ignoring a key in the JWKS");
            }
            let kids: Vec<&str> = set
                .keys
                .iter()
                .map(|k| k.kid.as_deref().unwrap_or("-"))
                .collect();
            tracing::info!(issuer = %self.settings.issuer, jwks_uri = %uri, keys = set.len(), kids = %kids.join(","), "loaded signing keys");
            set.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1;
            self.keys.store(Some(Arc::new(set)));
        }
        Ok(fetched.max_age)
    }

    /// One scheduled refresh; returns how long to wait before the next one.
    async fn scheduled_refresh(&self, failures: &mut u32) -> Duration {
        let mut flight = self.flight.lock().await;
        match self.fetch_locked(&mut flight).await {
            Ok(max_age) => {
                *failures = 0;
                let floor = self
                    .settings
                    .min_refresh_interval
                    .max(Duration::from_secs(1));
                let interval = match max_age {
                    Some(age) => age.max(floor).min(self.settings.refresh_interval),
                    None => self.settings.refresh_interval,
                };
                jitter(interval)
            }
            Err(e) => {
                *failures = failures.saturating_add(1);
                let backoff = Duration::from_secs(1 << (*failures - 1).min(5)).min(MAX_BACKOFF);
                if self.is_ready() {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, retry_in = ?backoff, "JWKS refresh failed; keeping the last good keys");
                } else {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, retry_in = ?backoff, "cannot load signing keys yet; refusing requests with 503 until they load");
                }
                backoff.min(self.settings.refresh_interval)
            }
        }
    }

    /// The background refresher; runs until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures = 0;
        loop {
            let next = tokio::select! {
                next = self.scheduled_refresh(&mut failures) => next,
                _ = &mut shutdown => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = &mut shutdown => return,
            }
        }
    }
}

/// ±10 % so that a fleet of gates does not refresh in lockstep.
fn jitter(d: Duration) -> Duration {
    let factor = 0.9 + rand::random::<f64>() * 0.2;
    d.mul_f64(factor)
}
