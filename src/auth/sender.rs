//! Sender constraint on the request path: the binding decision ([`super::binding`]), the proof check
//! ([`super::dpop`]) and the replay cache ([`super::dpop_replay`]) put together, with the one effect
//! they need (remembering `jti`s). Runs after the token is verified — from the verified-token cache
//! or not — so a bound token's proof is checked on every request.

use super::bearer::Credentials;
use super::binding;
use super::dpop::{self, ProofPolicy, ProofTarget};
use super::dpop_nonce::NonceKeys;
use super::dpop_replay::ReplayCache;
use super::dpop_replay_shared::{ReplayFailure, SharedReplay, SharedVerdict};
use super::refusal::Refusal;
use super::token::Verified;
use crate::config::DpopSettings;

/// What a presentation must satisfy beyond the token itself.
pub struct SenderConstraint {
    policy: ProofPolicy,
    /// `RESOURCE_URI`: its origin is the origin of every `htu` (the gate's own view of scheme and
    /// host is wrong behind a proxy). `None` when DPoP is not configured: then no proof is accepted.
    resource: Option<url::Url>,
    bearer_accepted: bool,
    replay: ReplayCache,
    /// `DPOP_REPLAY_STORE=redis`: the replay check across replicas, after the local one.
    shared: Option<SharedReplay>,
    /// Server nonces (`DPOP_NONCE=true`): every proof must carry a fresh one.
    nonces: Option<NonceKeys>,
}

impl SenderConstraint {
    pub fn new(settings: &DpopSettings, resource: &url::Url) -> SenderConstraint {
        let lifetime = settings.iat_window.as_secs();
        SenderConstraint {
            // Configuration has validated the keys.
            nonces: settings
                .nonce_keys
                .as_ref()
                .and_then(|keys| NonceKeys::new(keys.keys(), lifetime).ok()),
            policy: ProofPolicy {
                algorithms: settings.algorithms.clone(),
                iat_window_secs: settings.iat_window.as_secs(),
            },
            resource: Some(resource.clone()),
            bearer_accepted: !settings.required,
            replay: ReplayCache::new(settings.replay_cache_size),
            shared: None,
        }
    }

    /// The DPoP rules, with the replay store the replicas share when `DPOP_REPLAY_STORE=redis`.
    pub fn configured(
        settings: &DpopSettings,
        resource: &url::Url,
        metrics: &std::sync::Arc<crate::metrics::Metrics>,
    ) -> SenderConstraint {
        let sender = SenderConstraint::new(settings, resource);
        let Some(shared) = &settings.shared_replay else {
            return sender;
        };
        match SharedReplay::new(shared, settings.iat_window, metrics.clone()) {
            Ok(shared) => {
                shared.warm_up();
                sender.with_shared_replay(shared)
            }
            // The URL was validated with the same parser at start; should it still fail, replays
            // are refused per replica.
            Err(e) => {
                tracing::error!(error = %e, "DPOP_REPLAY_STORE=redis cannot be used; DPoP replays are refused per replica");
                sender
            }
        }
    }

    /// Adds the replay store shared by the replicas.
    pub fn with_shared_replay(self, shared: SharedReplay) -> SenderConstraint {
        SenderConstraint {
            shared: Some(shared),
            ..self
        }
    }

    /// No DPoP: Bearer tokens are accepted, bound tokens and proofs never.
    pub fn none() -> SenderConstraint {
        SenderConstraint {
            policy: ProofPolicy {
                algorithms: Vec::new(),
                iat_window_secs: 0,
            },
            resource: None,
            bearer_accepted: true,
            replay: ReplayCache::new(1),
            shared: None,
            nonces: None,
        }
    }

    /// A fresh nonce for a `DPoP-Nonce` response header, when nonces are on (RFC 9449 §9).
    pub fn fresh_nonce(&self, now: u64) -> Option<http::HeaderValue> {
        let nonce = self.nonces.as_ref()?.issue(now);
        http::HeaderValue::from_str(&nonce).ok()
    }

    /// Checks how `verified` was presented; for a DPoP-bound token, its proof for this request.
    pub async fn check(
        &self,
        credentials: &Credentials<'_>,
        verified: &Verified,
        method: &http::Method,
        path: &str,
        now: u64,
    ) -> Result<(), Refusal> {
        let Some(demand) =
            binding::demand(credentials, verified.binding.as_ref(), self.bearer_accepted)?
        else {
            return Ok(());
        };
        let resource = self
            .resource
            .as_ref()
            .ok_or(Refusal::DpopUnsupportedAlgorithm)?;
        let htu = dpop::expected_htu(resource, path).ok_or(Refusal::DpopWrongUri)?;
        let target = ProofTarget {
            method: method.as_str(),
            htu: &htu,
            access_token: credentials.token,
            jkt: demand.jkt,
        };
        let accepted = dpop::check(demand.proof, &target, &self.policy, now)?;
        if let Some(nonces) = &self.nonces {
            // Before the replay cache: a proof refused for its nonce is not remembered.
            if !accepted
                .nonce
                .as_deref()
                .is_some_and(|n| nonces.accepts(n, now))
            {
                return Err(Refusal::DpopNonceRequired);
            }
        }
        let key = ReplayCache::key(&accepted.jkt, &accepted.jti);
        // The local cache first: a replay to this replica costs no round trip.
        if !self.replay.first_use_of(&key) {
            return Err(Refusal::DpopReplayed);
        }
        match &self.shared {
            None => Ok(()),
            // Boxed: a Redis call's future is large; see `Authenticator::check`.
            Some(shared) => match Box::pin(shared.first_use(&key)).await {
                SharedVerdict::FirstUse | SharedVerdict::Unavailable(ReplayFailure::Local) => {
                    Ok(())
                }
                SharedVerdict::Replayed => Err(Refusal::DpopReplayed),
                SharedVerdict::Unavailable(ReplayFailure::Closed) => {
                    Err(Refusal::DpopReplayStoreUnavailable)
                }
            },
        }
    }
}
