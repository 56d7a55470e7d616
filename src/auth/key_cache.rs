//! The JWKS cache: the authorization server's signing keys (RFC 7517 §5), kept fresh in the background.
//!
//! - Requests read the current [`KeySet`] lock-free (`arc-swap`); only refreshes write it.
//! - A background task refreshes every `JWKS_REFRESH_INTERVAL` (a `max-age` may shorten it, never
//!   below [`schedule::MAX_AGE_FLOOR`]), with jitter, and retries with backoff while the IdP fails.
//! - A request may trigger a fetch in two cases only, each single-flight (concurrent requests share one
//!   fetch, so a flood of random `kid`s cannot make the gate hammer the IdP) and bounded in time:
//!   - no key set has loaded yet: the request waits for the next allowed attempt (at most one per
//!     [`schedule::FIRST_LOAD_MIN_GAP`], the wait itself at most `JWKS_FETCH_TIMEOUT`) and shares its outcome;
//!   - its `kid` is unknown or its signature fails under the cached key: at most one such fetch per
//!     `JWKS_MIN_REFRESH_INTERVAL`, a budget of its own that scheduled refreshes do not spend, so a
//!     rotated key is seen on its first use.
//! - A failed refresh, or one that returns garbage or an empty set, keeps the last good keys. A
//!   refresh installs a new set when any key's identity changed: `kid`, material, or the algorithms
//!   it is bound to (see [`super::keys::Key::fingerprint`]).
//!
//! When a fetch may happen is decided by the pure functions in `key_cache/schedule.rs`; this module
//! performs the fetches and holds their state. Both run on tokio's clock, so the tests use the paused
//! clock instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::discovery;
use super::fetch::{DocumentSource, Fetcher};
use super::keys::{parse_jwks, Alg, KeySet};
use crate::metrics::Metrics;

mod schedule;
#[cfg(test)]
mod scripted_idp;

pub use schedule::scheduled_interval;
#[cfg(test)]
use schedule::FIRST_LOAD_MIN_GAP;
use schedule::{failure_backoff, first_load_wait, jitter, kid_budget_allows};

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

impl RefreshError {
    /// A short, fixed label for traces (`error.type`).
    pub fn kind(&self) -> &'static str {
        match self {
            RefreshError::Discovery(_) => "discovery_failed",
            RefreshError::Fetch { .. } => "fetch_failed",
            RefreshError::Jwks { .. } => "unusable_jwks",
        }
    }
}

/// Settings of the cache.
#[derive(Debug, Clone)]
pub struct KeyCacheSettings {
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
    /// When the last fetch of any kind started (successful or not): paces first-load attempts.
    last_attempt: Option<Instant>,
    /// When the last fetch triggered by an unknown `kid` started: that trigger's own budget, which
    /// scheduled refreshes do not spend.
    last_kid_fetch: Option<Instant>,
    /// The discovered `jwks_uri`, kept until a fetch from it fails.
    jwks_uri: Option<String>,
}

/// Slack on top of the fetch timeout for queueing on the single-flight lock.
const LOCK_SLACK: Duration = Duration::from_millis(250);

/// Numbers the installed key sets (see [`KeySet::generation`]) across every cache in the process,
/// so that a generation names one key set of one issuer.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

/// The cache; shared by all requests through an `Arc`. `S` is where documents come from: HTTP in
/// the gate, a script in unit tests.
pub struct KeyCache<S = Fetcher> {
    keys: ArcSwapOption<KeySet>,
    settings: KeyCacheSettings,
    source: S,
    /// Held for the duration of one fetch: this is what makes refreshes single-flight. The hot path
    /// never takes it; only requests that need fresh keys wait on it, bounded by the fetch timeout.
    flight: Mutex<Flight>,
    /// Fetches finished so far, whatever their outcome: a request waiting for the first key set
    /// shares the first attempt that finishes after it arrived instead of queueing another.
    finished: AtomicU64,
    metrics: Arc<Metrics>,
}

impl KeyCache {
    pub fn new(settings: KeyCacheSettings, metrics: Arc<Metrics>) -> KeyCache {
        let fetcher = Fetcher::new(settings.fetch_timeout);
        KeyCache::with_source(settings, fetcher, metrics)
    }
}

impl<S: DocumentSource> KeyCache<S> {
    pub fn with_source(
        settings: KeyCacheSettings,
        source: S,
        metrics: Arc<Metrics>,
    ) -> KeyCache<S> {
        metrics.issuer_configured(&settings.issuer);
        KeyCache {
            keys: ArcSwapOption::empty(),
            source,
            settings,
            flight: Mutex::new(Flight {
                last_attempt: None,
                last_kid_fetch: None,
                jwks_uri: None,
            }),
            finished: AtomicU64::new(0),
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

    /// The key set, fetching it on the request path if none has loaded yet. A request that arrives
    /// between two attempts waits for the next one (at most `JWKS_FETCH_TIMEOUT`) and shares it, so a
    /// gate started before its IdP answers its first requests as soon as the IdP does. `None` means
    /// no keys could be had within that bound: the request must get 503.
    pub async fn keys_or_fetch(&self) -> Option<Arc<KeySet>> {
        if let Some(keys) = self.current() {
            return Some(keys);
        }
        // Waiting for a slot and the attempt itself are each bounded by the fetch timeout.
        let bound = self.settings.fetch_timeout * 2 + LOCK_SLACK;
        tokio::time::timeout(bound, self.first_load())
            .await
            .ok()
            .flatten()
    }

    async fn first_load(&self) -> Option<Arc<KeySet>> {
        let arrived = Instant::now();
        let finished_before = self.finished.load(Ordering::Acquire);
        loop {
            let mut flight = self.flight.lock().await;
            if let Some(keys) = self.current() {
                return Some(keys);
            }
            if self.finished.load(Ordering::Acquire) != finished_before {
                // An attempt ended since this request arrived and loaded nothing: share its failure
                // rather than queue another one behind it.
                return None;
            }
            let now = Instant::now();
            let wait = first_load_wait(flight.last_attempt, now);
            if !wait.is_zero() {
                if now + wait > arrived + self.settings.fetch_timeout {
                    return None;
                }
                // Let the background task (or another request) take the slot meanwhile.
                drop(flight);
                tokio::time::sleep(wait).await;
                continue;
            }
            return match self.fetch_locked(&mut flight).await {
                Ok(_) => self.current(),
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, "on-demand JWKS refresh failed");
                    None
                }
            };
        }
    }

    /// A token did not verify under `seen` for a reason a key rotation explains. Returns a newer key
    /// set to decide with, or `None` when nothing newer can be had now (the `kid` budget is spent,
    /// or the IdP failed).
    pub async fn refresh_after_miss(&self, seen: &Arc<KeySet>) -> Option<Arc<KeySet>> {
        let attempt = async {
            let mut flight = self.flight.lock().await;
            // Another request (or the background task) installed new keys while this one queued.
            let current = self.current();
            if current.as_ref().is_some_and(|now| !Arc::ptr_eq(now, seen)) {
                return current;
            }
            let now = Instant::now();
            if !kid_budget_allows(
                flight.last_kid_fetch,
                self.settings.min_refresh_interval,
                now,
            ) {
                return None;
            }
            flight.last_kid_fetch = Some(now);
            match self.fetch_locked(&mut flight).await {
                Ok(_) => self.current().filter(|fresh| !Arc::ptr_eq(fresh, seen)),
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, error = %e, "on-demand JWKS refresh failed");
                    None
                }
            }
        };
        let bound = self.settings.fetch_timeout + LOCK_SLACK;
        tokio::time::timeout(bound, attempt).await.ok().flatten()
    }

    /// Fetches and installs the key set; the caller holds the single-flight lock. Returns the
    /// server's `max-age`, if it gave one.
    async fn fetch_locked(&self, flight: &mut Flight) -> Result<Option<Duration>, RefreshError> {
        // A child span of the request that waits for these keys (none for a background refresh).
        let span = crate::telemetry::child("jwks fetch", opentelemetry::trace::SpanKind::Client);
        let result = self.fetch_and_install(flight).await;
        if let Some(span) = &span {
            let issuer =
                opentelemetry::KeyValue::new("mcp_gate.issuer", self.settings.issuer.clone());
            span.set(issuer);
            if let Err(e) = &result {
                span.fail(e.kind());
            }
        }
        self.finished.fetch_add(1, Ordering::Release);
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
                let uri = discovery::jwks_uri(&self.source, issuer, *allow_insecure).await?;
                tracing::info!(issuer = %self.settings.issuer, jwks_uri = %uri, "discovered the authorization server's JWKS");
                flight.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let fetched = match self.source.get(&uri).await {
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
                jitter(scheduled_interval(max_age, self.settings.refresh_interval))
            }
            Err(e) => {
                *failures = failures.saturating_add(1);
                let backoff = failure_backoff(*failures);
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

#[cfg(test)]
mod tests {
    use super::scripted_idp::{rsa, Script, LATENCY};
    use super::*;

    const MIN_REFRESH: Duration = Duration::from_secs(10);

    fn cache_with(script: &Arc<Script>, fetch_timeout: Duration) -> Arc<KeyCache<Arc<Script>>> {
        let settings = KeyCacheSettings {
            issuer: "https://idp.example.com".into(),
            source: KeySource::Fixed("https://idp.example.com/jwks".into()),
            algorithms: Alg::ALL.to_vec(),
            refresh_interval: Duration::from_secs(300),
            min_refresh_interval: MIN_REFRESH,
            fetch_timeout,
        };
        let metrics = Arc::new(Metrics::new());
        Arc::new(KeyCache::with_source(settings, script.clone(), metrics))
    }

    fn cache(script: &Arc<Script>) -> Arc<KeyCache<Arc<Script>>> {
        cache_with(script, Duration::from_secs(1))
    }

    /// Runs `n` concurrent first-load requests; returns how many got keys.
    async fn first_loads(cache: &Arc<KeyCache<Arc<Script>>>, n: usize) -> usize {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.keys_or_fetch().await.is_some() })
            })
            .collect();
        let mut loaded = 0;
        for t in tasks {
            loaded += usize::from(t.await.unwrap());
        }
        loaded
    }

    #[tokio::test(start_paused = true)]
    async fn requests_before_the_first_load_wait_for_the_next_attempt_and_share_it() {
        let script = Arc::new(Script::default());
        let cache = cache(&script);
        assert!(cache.keys_or_fetch().await.is_none(), "the IdP is down");
        assert_eq!(script.fetches(), 1);
        // The IdP comes up right after that failed attempt: requests wait for the next one.
        script.serve(&[rsa("k1", None)]);
        let started = Instant::now();
        assert_eq!(first_loads(&cache, 20).await, 20);
        assert_eq!(script.fetches(), 2, "one attempt, shared by every request");
        let waited = started.elapsed();
        assert!(waited <= FIRST_LOAD_MIN_GAP + LATENCY, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_load_attempt_fails_every_request_that_shared_it() {
        let script = Arc::new(Script::default());
        let cache = cache(&script);
        assert!(cache.keys_or_fetch().await.is_none());
        let started = Instant::now();
        assert_eq!(first_loads(&cache, 20).await, 0);
        assert_eq!(script.fetches(), 2, "one more attempt, not one per request");
        assert!(started.elapsed() <= FIRST_LOAD_MIN_GAP + LATENCY);
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_for_the_next_first_load_attempt_is_bounded_by_the_fetch_timeout() {
        let script = Arc::new(Script::default());
        let cache = cache_with(&script, FIRST_LOAD_MIN_GAP / 4);
        assert!(cache.keys_or_fetch().await.is_none());
        script.serve(&[rsa("k1", None)]);
        let started = Instant::now();
        assert!(cache.keys_or_fetch().await.is_none());
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "the next attempt is too far"
        );
        assert_eq!(script.fetches(), 1);
        tokio::time::advance(FIRST_LOAD_MIN_GAP).await;
        assert!(cache.keys_or_fetch().await.is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_kid_refetch_has_a_budget_that_scheduled_refreshes_do_not_spend() {
        let script = Arc::new(Script::default());
        let cache = cache(&script);
        script.serve(&[rsa("k1", None)]);
        let first = cache.keys_or_fetch().await.unwrap();
        // A scheduled refresh has just run, then the IdP rotates to k2.
        cache.scheduled_refresh(&mut 0).await;
        script.serve(&[rsa("k1", None), rsa("k2", None)]);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, first) = (cache.clone(), first.clone());
                tokio::spawn(async move { cache.refresh_after_miss(&first).await })
            })
            .collect();
        for t in tasks {
            let fresh = t.await.unwrap().expect("the rotation is seen on first use");
            assert_eq!(fresh.len(), 2);
        }
        assert_eq!(script.fetches(), 3, "one shared kid-triggered fetch");
        // Within the budget's interval, another unknown kid fetches nothing.
        let second = cache.current().unwrap();
        script.serve(&[rsa("k2", None), rsa("k3", None)]);
        assert!(cache.refresh_after_miss(&second).await.is_none());
        assert_eq!(script.fetches(), 3);
        tokio::time::advance(MIN_REFRESH).await;
        let third = cache.refresh_after_miss(&second).await.unwrap();
        assert!(matches!(
            third.candidates(Some("k3"), Alg::RS256),
            super::super::keys::Candidates::Keys(_)
        ));
        assert_eq!(script.fetches(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_alg_installs_a_new_key_set_and_an_unchanged_document_does_not() {
        let script = Arc::new(Script::default());
        let cache = cache(&script);
        script.serve(&[rsa("k1", Some("RS256"))]);
        let before = cache.keys_or_fetch().await.unwrap();
        script.serve(&[rsa("k1", Some("PS256"))]);
        cache.scheduled_refresh(&mut 0).await;
        let after = cache.current().unwrap();
        assert!(!Arc::ptr_eq(&before, &after));
        assert!(after.generation > before.generation);
        assert!(after.keys[0].verifier(Alg::PS256).is_some());
        assert!(after.keys[0].verifier(Alg::RS256).is_none());
        cache.scheduled_refresh(&mut 0).await;
        assert!(Arc::ptr_eq(&after, &cache.current().unwrap()));
    }
}
