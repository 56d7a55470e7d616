//! The DPoP replay cache (RFC 9449 §11.1): a proof's `jti` may be used once per key.
//!
//! Bounded and in memory, per replica: entries are keyed by SHA-256(`jkt`, `jti`) so every entry has
//! the same small size whatever the client sends, and the capacity (`DPOP_REPLAY_CACHE_SIZE`) bounds
//! the memory. A proof older than the `iat` window is refused before it gets here, so the cache only
//! has to remember proofs for the window; size it above the rate of DPoP requests times twice the
//! window (a proof is acceptable from `iat - window` to `iat + window`). Replicas do not share the
//! cache: a proof replayed to another replica within the window is not detected unless
//! `DPOP_REPLAY_STORE=redis` adds the shared store ([`super::dpop_replay_shared`]).

use std::time::Duration;

use aws_lc_rs::digest::{Context, SHA256};
use quick_cache::sync::GuardResult;

/// Proofs seen, by key and `jti`.
pub struct ReplayCache {
    seen: quick_cache::sync::Cache<[u8; 32], ()>,
}

impl ReplayCache {
    /// A cache remembering up to `capacity` proofs (at least one).
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// Records a proof; `false` when the same key already used this `jti` (or is using it right now
    /// on another request: the second of two concurrent uses loses, never both win).
    #[cfg(test)]
    pub fn first_use(&self, jkt: &str, jti: &str) -> bool {
        self.first_use_of(&Self::key(jkt, jti))
    }

    /// [`ReplayCache::first_use`] for a proof whose [`ReplayCache::key`] is already known.
    pub fn first_use_of(&self, key: &[u8; 32]) -> bool {
        match self.seen.get_value_or_guard(key, Some(Duration::ZERO)) {
            GuardResult::Guard(guard) => {
                let _ = guard.insert(());
                true
            }
            GuardResult::Value(()) | GuardResult::Timeout => false,
        }
    }

    /// SHA-256 over the thumbprint, a separator no thumbprint contains, and the `jti`: a fixed-size
    /// key whatever the client sends, also the shared store's ([`super::dpop_replay_shared`]).
    pub fn key(jkt: &str, jti: &str) -> [u8; 32] {
        let mut ctx = Context::new(&SHA256);
        ctx.update(jkt.as_bytes());
        ctx.update(b"\0");
        ctx.update(jti.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_per_key() {
        let cache = ReplayCache::new(100);
        assert!(cache.first_use("key-a", "j1"));
        assert!(!cache.first_use("key-a", "j1"), "replay");
        assert!(
            cache.first_use("key-b", "j1"),
            "another key may use the same jti"
        );
        assert!(cache.first_use("key-a", "j2"));
        // The separator keeps (jkt, jti) pairs apart.
        assert!(cache.first_use("key-a\0j", "1"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ReplayCache::new(10);
        for i in 0..1000 {
            assert!(cache.first_use("k", &i.to_string()));
        }
        assert!(cache.seen.len() <= 20, "{}", cache.seen.len());
    }
}
