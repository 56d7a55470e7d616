//! The authentication decision for one request: find the bearer token, get the keys, check the token.
//!
//! Everything that decides is pure ([`bearer`], [`token`], [`keys`]); this module adds the only two
//! effects on the request path — reading the clock, and asking the [`jwks::JwksCache`] for fresher
//! keys when a token names one the cache does not hold.

pub mod bearer;
pub mod cache;
pub mod discovery;
pub mod fetch;
pub mod jwks;
pub mod keys;
pub mod refusal;
pub mod strict_json;
pub mod token;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use refusal::Refusal;
pub use token::{Policy, Verified};

/// Checks requests against a policy with keys from a JWKS cache.
pub struct Authenticator {
    policy: Policy,
    keys: Arc<jwks::JwksCache>,
    /// Outcomes of earlier checks; `None` when `TOKEN_CACHE_SIZE=0`.
    cache: Option<cache::TokenCache>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Authenticator {
    pub fn new(
        policy: Policy,
        keys: Arc<jwks::JwksCache>,
        cache_size: usize,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Authenticator {
        Authenticator {
            policy,
            keys,
            cache: cache::TokenCache::new(cache_size),
            metrics,
        }
    }

    pub fn cache(&self) -> Option<&cache::TokenCache> {
        self.cache.as_ref()
    }

    pub fn keys(&self) -> &Arc<jwks::JwksCache> {
        &self.keys
    }

    /// Decides on a request from its headers and query string.
    pub async fn check(
        &self,
        headers: &http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Verified, Refusal> {
        let token = bearer::extract(headers, query)?;
        // Refuse what no key could make acceptable before touching the key cache, so an oversized or
        // garbage token can never trigger a fetch.
        if token.len() > self.policy.max_token_size {
            return Err(Refusal::TokenTooLarge);
        }
        let keys = self
            .keys
            .keys_or_fetch()
            .await
            .ok_or(Refusal::KeysUnavailable)?;
        let digest = self
            .cache
            .as_ref()
            .map(|_| cache::TokenCache::digest(token));
        match self.decide(token, digest.as_ref(), &keys) {
            Err(refusal) if refusal.may_be_key_rotation() => {
                match self.keys.refresh_after_miss(&keys).await {
                    Some(fresh) => self.decide(token, digest.as_ref(), &fresh),
                    None => Err(refusal),
                }
            }
            decided => decided,
        }
    }

    /// One decision with one key set, through the verified-token cache when there is one.
    fn decide(
        &self,
        token: &str,
        digest: Option<&cache::TokenDigest>,
        keys: &keys::KeySet,
    ) -> Result<Verified, Refusal> {
        let now = unix_now();
        match (&self.cache, digest) {
            (Some(cache), Some(d)) => {
                if let Some(decided) = cache.lookup(d, keys, &self.policy, now) {
                    self.metrics.cache_hit();
                    return decided;
                }
                self.metrics.cache_miss();
                cache.remember(
                    *d,
                    token::verify_with_facts(token, keys, &self.policy, now),
                    keys,
                )
            }
            _ => token::verify(token, keys, &self.policy, now),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
