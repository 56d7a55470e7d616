//! The authentication decision for one request: find the bearer token, get the keys, check the token.
//!
//! Everything that decides is pure ([`bearer`], [`token`], [`keys`], [`binding`], [`dpop`]); after
//! the token, [`sender`] checks a DPoP-bound token's proof on every request. This module adds the
//! only two effects on the request path — reading the clock, and asking the
//! [`key_cache::KeyCache`] for fresher keys when a token names one the cache does not hold.
//!
//! With several authorization servers, each has its own key cache and its own `iss`; the token's
//! claimed `iss` picks which one decides (a token from one server can never be checked with
//! another's keys, and an unknown `iss` is refused before any key is looked at or fetched).

pub mod bearer;
pub(crate) mod binding;
pub(crate) mod challenge;
pub mod claims;
pub(crate) mod discovery;
pub mod dpop;
pub(crate) mod dpop_htu;
pub mod dpop_nonce;
pub(crate) mod dpop_replay;
pub(crate) mod dpop_replay_shared;
pub mod exchange;
pub(crate) mod exchange_answer;
pub(crate) mod fetch;
pub mod introspection;
pub(crate) mod key_cache;
pub mod keys;
pub(crate) mod refusal;
pub(crate) mod sender;
pub(crate) mod strict_json;
pub mod token;
pub(crate) mod token_cache;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use refusal::Refusal;
pub use token::{Policy, Verified};

/// One authorization server whose tokens are accepted: the policy (with its `iss`) and its keys.
pub(crate) struct Issuer {
    pub policy: Policy,
    pub keys: Arc<key_cache::KeyCache>,
    /// `policy.issuer`, shared with every access-log record of a token it accepted.
    name: Arc<str>,
}

impl Issuer {
    pub fn new(policy: Policy, keys: Arc<key_cache::KeyCache>) -> Issuer {
        Issuer {
            name: Arc::from(policy.issuer.as_str()),
            policy,
            keys,
        }
    }
}

/// Checks requests against the policy of the issuer that signed them, with that issuer's keys.
pub(crate) struct Authenticator {
    /// At least one; the first decides alone when it is the only one.
    issuers: Vec<Issuer>,
    /// Tokens longer than this are refused before anything else (the same for every issuer).
    max_token_size: usize,
    /// Outcomes of earlier checks; `None` when `TOKEN_CACHE_SIZE=0`. Shared by all issuers: an
    /// entry is keyed by the whole token, which carries its `iss`, so it is only ever consulted for
    /// the issuer it was decided by.
    cache: Option<token_cache::TokenCache>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Opaque tokens (`TOKEN_VALIDATION=introspect|auto`), asked of the first issuer's endpoint.
    introspector: Option<introspection::Introspector>,
    /// DPoP: how a token must be presented, checked after the token on every request.
    sender: sender::SenderConstraint,
}

impl Authenticator {
    /// `max_token_size` is the gate-wide bound, applied before a token picks its issuer.
    ///
    /// # Panics
    /// When `issuers` is empty (configuration guarantees at least one).
    pub fn new(
        issuers: Vec<Issuer>,
        max_token_size: usize,
        cache_size: usize,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Authenticator {
        assert!(!issuers.is_empty(), "at least one issuer");
        Authenticator {
            max_token_size,
            issuers,
            cache: token_cache::TokenCache::new(cache_size),
            metrics,
            introspector: None,
            sender: sender::SenderConstraint::none(),
        }
    }

    /// Decides opaque tokens by introspection at the (only) issuer's endpoint.
    pub fn with_introspection(
        mut self,
        introspector: introspection::Introspector,
    ) -> Authenticator {
        self.introspector = Some(introspector);
        self
    }

    /// Accepts DPoP-bound tokens with proofs under these rules (without it, none are).
    pub fn with_sender_constraint(self, sender: sender::SenderConstraint) -> Authenticator {
        Authenticator { sender, ..self }
    }

    /// The DPoP rules.
    pub fn sender_constraint(&self) -> &sender::SenderConstraint {
        &self.sender
    }

    /// The issuers, in configuration order.
    pub fn issuers(&self) -> &[Issuer] {
        &self.issuers
    }

    /// Ready when every issuer's keys have loaded: until then some valid tokens would get 503.
    pub fn is_ready(&self) -> bool {
        // Under TOKEN_VALIDATION=introspect no key decides anything.
        let keys_unused = self
            .introspector
            .as_ref()
            .is_some_and(|i| i.validation() == introspection::Validation::Introspect);
        keys_unused || self.issuers.iter().all(|i| i.keys.is_ready())
    }

    /// The issuer whose keys and policy decide `token`.
    fn issuer_for(&self, token: &str) -> Result<&Issuer, Refusal> {
        if let [only] = self.issuers.as_slice() {
            return Ok(only);
        }
        let claimed = token::claimed_issuer(token)?;
        self.issuers
            .iter()
            .find(|i| i.policy.issuer == claimed)
            .ok_or(Refusal::BadIssuer)
    }

    /// Decides on a request from its method, URI and headers.
    ///
    /// The common case (keys loaded, a Bearer token decided from the cache or by its signature)
    /// awaits nothing. The waits that are rare (introspection, a JWKS fetch, a shared DPoP replay
    /// store) are boxed: an `async fn` is as large as everything it may await, and this future
    /// is part of every request's, created and moved on every request.
    pub async fn check(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<Verified, Refusal> {
        let credentials = bearer::credentials(headers, uri.query())?;
        let token = credentials.token;
        // Refuse what no key could make acceptable before touching the key cache, so an oversized or
        // garbage token can never trigger a fetch.
        if token.len() > self.max_token_size {
            return Err(Refusal::TokenTooLarge);
        }
        if let Some(introspector) = &self.introspector {
            let opaque = introspector.validation() == introspection::Validation::Introspect
                || !introspection::looks_like_jwt(token);
            if opaque {
                // Configuration admits introspection with exactly one issuer: an opaque token
                // cannot say whose it is.
                let issuer = &self.issuers[0];
                // Boxed, like every rare wait below: see [`Authenticator::check`].
                return Box::pin(introspector.check(token, &issuer.policy, unix_now()))
                    .await
                    .map(|verified| Verified {
                        issuer: Some(issuer.name.clone()),
                        ..verified
                    });
            }
        }
        let issuer = self.issuer_for(token)?;
        let keys = match issuer.keys.current() {
            Some(keys) => keys,
            None => Box::pin(issuer.keys.keys_or_fetch())
                .await
                .ok_or(Refusal::KeysUnavailable)?,
        };
        let decided = match self.decide(&issuer.policy, token, &keys) {
            Err(refusal) if refusal.may_be_key_rotation() => {
                match Box::pin(issuer.keys.refresh_after_miss(&keys)).await {
                    Some(fresh) => self.decide(&issuer.policy, token, &fresh),
                    None => Err(refusal),
                }
            }
            decided => decided,
        };
        let verified = decided?;
        // After the token, cached or not: a bound token's proof is checked on every request.
        self.sender
            .check(&credentials, &verified, method, uri.path(), unix_now())
            .await?;
        Ok(Verified {
            issuer: Some(issuer.name.clone()),
            ..verified
        })
    }

    /// One decision with one key set, through the verified-token cache when there is one.
    fn decide(
        &self,
        policy: &Policy,
        token: &str,
        keys: &keys::KeySet,
    ) -> Result<Verified, Refusal> {
        let now = unix_now();
        match &self.cache {
            Some(cache) => {
                if let Some(decided) = cache.lookup(token, keys, policy, now) {
                    self.metrics.cache_hit();
                    self.metrics.decided_by("cache");
                    return decided.map(|verified| Verified {
                        decided_by: "cache",
                        ..verified
                    });
                }
                self.metrics.cache_miss();
                self.metrics.decided_by("jwt");
                cache.remember(
                    token,
                    token::verify_with_facts(token, keys, policy, now),
                    keys,
                )
            }
            None => {
                self.metrics.decided_by("jwt");
                token::verify(token, keys, policy, now)
            }
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
