//! The verified-token cache: remembers the outcome of checking a token so its next use skips the
//! signature check, which dominates the cost of a request (RS256 ~26 µs, ES256 ~75 µs).
//!
//! Entries are keyed by the token itself. The maps hash it with the cache's fast keyed hasher (a
//! random per-process seed; see [`quick_cache::DefaultHashBuilder`]) and then compare the stored
//! token with the presented one byte for byte. That comparison, not the hash, is what makes an entry
//! answer for a token: two tokens whose hashes collide are two entries, so a forged token can never
//! land on a verified token's entry, however the hash is chosen or attacked. (It was the SHA-256 of
//! the token until issue 15: ~1 µs per request for a 1 KiB token, which the profile of a
//! cached request listed beside hyper and tokio.) The comparison need not be constant-time: it compares a token the
//! client sent with a token some client sent before; the timing says at most whether that token is
//! cached, which its own answer already says.
//!
//! A hit is exactly as strict as a full check: every rule but the signature runs again with the
//! current policy and clock ([`token::recheck`]), and the key that signed the token must still be in
//! the key set — a refresh that drops it drops the entry. Refusals are remembered too, tied to the
//! key set they were decided with, so replaying one forged or expired token costs a hash and a
//! lookup instead of a signature check.
//!
//! Memory: both maps are bounded by weight, not only by count. Each entry weighs one unit per
//! started [`ENTRY_TOKEN_BYTES`] of its token, and each map holds at most `capacity` units, so with
//! tokens up to 2 KiB (nearly all JWTs) `TOKEN_CACHE_SIZE` is the number of tokens it holds, as
//! before, and whatever their size the tokens stored take at most `capacity` × 2 KiB per map (20 MiB
//! each at the default 10,000).

use std::hash::BuildHasher;
use std::sync::Arc;

use aws_lc_rs::digest;
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, Weighter};

use super::keys::KeySet;
use super::token::{self, Facts, Policy, Verified};
use super::Refusal;

/// SHA-256 of a token: the introspection cache's key (an opaque token's check is a network call, so
/// the hash is not what it costs).
pub type TokenDigest = [u8; 32];

/// Token bytes one unit of capacity pays for.
pub const ENTRY_TOKEN_BYTES: usize = 2048;

/// Charges an entry one unit per started [`ENTRY_TOKEN_BYTES`] of its token.
#[derive(Clone, Copy)]
struct TokenBytes;

impl<V> Weighter<Box<str>, V> for TokenBytes {
    fn weight(&self, token: &Box<str>, _: &V) -> u64 {
        token.len().div_ceil(ENTRY_TOKEN_BYTES).max(1) as u64
    }
}

type Map<V, S> = Cache<Box<str>, V, TokenBytes, S, DefaultLifecycle<Box<str>, V>>;

/// A map of at most `capacity` units of [`TokenBytes`].
fn map<V: Clone, S: BuildHasher + Clone>(capacity: usize, hasher: S) -> Map<V, S> {
    Cache::with(
        capacity,
        capacity as u64,
        TokenBytes,
        hasher,
        DefaultLifecycle::default(),
    )
}

/// Bounded caches of verified tokens and of refusals, keyed by the token.
pub struct TokenCache<S = DefaultHashBuilder> {
    accepted: Map<Arc<Facts>, S>,
    refused: Map<(Refusal, u64), S>,
}

impl TokenCache {
    /// A cache of at most `capacity` accepted and `capacity` refused tokens (of up to
    /// [`ENTRY_TOKEN_BYTES`] each); `None` when 0 (disabled).
    pub fn new(capacity: usize) -> Option<TokenCache> {
        TokenCache::with_hasher(capacity, DefaultHashBuilder::default())
    }

    pub fn digest(token: &str) -> TokenDigest {
        let d = digest::digest(&digest::SHA256, token.as_bytes());
        d.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }
}

impl<S: BuildHasher + Clone> TokenCache<S> {
    /// As [`TokenCache::new`], hashing with `hasher` (the tests use one under which every token
    /// collides).
    fn with_hasher(capacity: usize, hasher: S) -> Option<TokenCache<S>> {
        (capacity > 0).then(|| TokenCache {
            accepted: map(capacity, hasher.clone()),
            refused: map(capacity, hasher),
        })
    }

    /// The decision for a token seen before, or `None` when it must be checked in full.
    pub fn lookup(
        &self,
        token: &str,
        keys: &KeySet,
        policy: &Policy,
        now: u64,
    ) -> Option<Result<Verified, Refusal>> {
        if let Some(facts) = self.accepted.get(token) {
            return match token::recheck(&facts, keys, policy, now) {
                // The signing key left the key set: forget the token and check it in full.
                Err(Refusal::UnknownKid) => {
                    self.accepted.remove(token);
                    None
                }
                Err(refusal) => {
                    if refusal == Refusal::Expired {
                        self.accepted.remove(token);
                    }
                    Some(Err(refusal))
                }
                ok => Some(ok),
            };
        }
        match self.refused.get(token) {
            Some((refusal, generation)) if generation == keys.generation => Some(Err(refusal)),
            Some(_) => {
                self.refused.remove(token);
                None
            }
            None => None,
        }
    }

    /// Records the outcome of a full check of `token` made with `keys` and passes its decision on.
    pub fn remember(
        &self,
        token: &str,
        outcome: Result<(Verified, Facts), Refusal>,
        keys: &KeySet,
    ) -> Result<Verified, Refusal> {
        match outcome {
            Ok((verified, facts)) => {
                self.accepted.insert(token.into(), Arc::new(facts));
                Ok(verified)
            }
            Err(refusal) => {
                if is_lasting(refusal) {
                    self.refused
                        .insert(token.into(), (refusal, keys.generation));
                }
                Err(refusal)
            }
        }
    }

    /// Number of remembered accepted and refused tokens (for metrics and tests).
    #[cfg(test)]
    pub fn len(&self) -> (usize, usize) {
        (self.accepted.len(), self.refused.len())
    }
}

/// Refusals that stay true for as long as the key set does not change: the token's bytes decide
/// them. Time-dependent ones that can become acceptance (`nbf`, `iat` in the future) and those a key
/// refresh may change are not remembered.
fn is_lasting(refusal: Refusal) -> bool {
    !matches!(
        refusal,
        Refusal::NotYetValid
            | Refusal::IssuedInFuture
            | Refusal::UnknownKid
            | Refusal::AmbiguousKey
            | Refusal::KeysUnavailable
            | Refusal::IntrospectionUnavailable
            | Refusal::DpopReplayStoreUnavailable
            | Refusal::MissingToken
            | Refusal::MultipleTokens
            | Refusal::TokenInQuery
            | Refusal::MalformedAuthorization
            | Refusal::TokenTooLarge
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{parse_jwks, Alg};
    use crate::auth::token::{verify_with_facts, TokenType};
    use crate::test_support::{jwks, TestKey};
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn policy() -> Policy {
        Policy {
            issuer: "https://idp".into(),
            audiences: vec!["https://rs/mcp".into()],
            algorithms: Alg::ALL.to_vec(),
            token_type: TokenType::Any,
            required_scopes: vec![],
            claim_rules: vec![],
            clock_skew_secs: 0,
            max_token_size: 16384,
        }
    }

    fn keyset(keys: &[&TestKey], generation: u64) -> KeySet {
        let mut set = parse_jwks(jwks(keys).as_bytes(), &Alg::ALL).unwrap().0;
        set.generation = generation;
        set
    }

    fn token(key: &TestKey, exp: u64, scope: &str) -> String {
        key.token(&json!({"iss": "https://idp", "aud": "https://rs/mcp", "sub": "alice", "exp": exp, "scope": scope}))
    }

    /// What the authenticator does: look up, else check in full and remember.
    fn decide<S: BuildHasher + Clone>(
        cache: &TokenCache<S>,
        t: &str,
        keys: &KeySet,
        policy: &Policy,
        now: u64,
    ) -> (Result<Verified, Refusal>, bool) {
        if let Some(hit) = cache.lookup(t, keys, policy, now) {
            return (hit, true);
        }
        (
            cache.remember(t, verify_with_facts(t, keys, policy, now), keys),
            false,
        )
    }

    #[test]
    fn second_use_of_a_valid_token_is_a_hit_with_the_same_identity() {
        let key = TestKey::ec("e1", "ES256");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::new(16).unwrap();
        let t = token(&key, NOW + 60, "a");
        let (first, hit1) = decide(&cache, &t, &keys, &policy(), NOW);
        let (second, hit2) = decide(&cache, &t, &keys, &policy(), NOW);
        assert!(!hit1 && hit2);
        assert_eq!(first, second);
        let second = second.unwrap();
        assert_eq!(second.sub.as_deref(), Some("alice"));
        // The policy reads the claims of a cached token as it reads a freshly verified one's.
        assert_eq!(second.claims["scope"], "a");
        assert_eq!(cache.len(), (1, 0));
    }

    #[test]
    fn a_different_token_is_a_miss() {
        let key = TestKey::ec("e1", "ES256");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::new(16).unwrap();
        let _ = decide(&cache, &token(&key, NOW + 60, "a"), &keys, &policy(), NOW);
        let (_, hit) = decide(&cache, &token(&key, NOW + 61, "a"), &keys, &policy(), NOW);
        assert!(!hit);
    }

    #[test]
    fn a_cached_token_expires_exactly_when_a_full_check_would_refuse_it() {
        let key = TestKey::ec("e1", "ES256");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::new(16).unwrap();
        let t = token(&key, NOW + 60, "a");
        assert!(decide(&cache, &t, &keys, &policy(), NOW).0.is_ok());
        assert!(decide(&cache, &t, &keys, &policy(), NOW + 59).0.is_ok());
        let (later, hit) = decide(&cache, &t, &keys, &policy(), NOW + 60);
        assert!(hit);
        assert_eq!(later, Err(Refusal::Expired));
        assert_eq!(
            verify_with_facts(&t, &keys, &policy(), NOW + 60).map(|_| ()),
            Err(Refusal::Expired)
        );
        assert_eq!(cache.len().0, 0, "expired entries are dropped");
    }

    #[test]
    fn removing_the_signing_key_drops_the_entry() {
        let key = TestKey::ec("e1", "ES256");
        let other = TestKey::ec("e2", "ES256");
        let cache = TokenCache::new(16).unwrap();
        let t = token(&key, NOW + 60, "a");
        assert!(decide(&cache, &t, &keyset(&[&key], 1), &policy(), NOW)
            .0
            .is_ok());
        // A refresh that keeps the key keeps the entry.
        assert!(decide(&cache, &t, &keyset(&[&key, &other], 2), &policy(), NOW).1);
        let (after, hit) = decide(&cache, &t, &keyset(&[&other], 3), &policy(), NOW);
        assert!(!hit, "the entry is not used once its key is gone");
        assert_eq!(after, Err(Refusal::UnknownKid));
        assert_eq!(cache.len().0, 0);
    }

    #[test]
    fn a_hit_applies_the_current_policy() {
        let key = TestKey::ec("e1", "ES256");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::new(16).unwrap();
        let t = token(&key, NOW + 60, "read");
        assert!(decide(&cache, &t, &keys, &policy(), NOW).0.is_ok());
        let stricter = Policy {
            required_scopes: vec!["write".into()],
            ..policy()
        };
        assert_eq!(
            decide(&cache, &t, &keys, &stricter, NOW),
            (Err(Refusal::InsufficientScope), true)
        );
        let other_audience = Policy {
            audiences: vec!["https://other".into()],
            ..policy()
        };
        assert_eq!(
            decide(&cache, &t, &keys, &other_audience, NOW).0,
            Err(Refusal::BadAudience)
        );
        let rsa_only = Policy {
            algorithms: vec![Alg::RS256],
            ..policy()
        };
        assert_eq!(
            decide(&cache, &t, &keys, &rsa_only, NOW).0,
            Err(Refusal::UnsupportedAlgorithm)
        );
        let strict_typ = Policy {
            token_type: TokenType::AccessTokenJwt,
            ..policy()
        };
        assert!(
            decide(&cache, &t, &keys, &strict_typ, NOW).0.is_ok(),
            "the test token is at+jwt"
        );
    }

    #[test]
    fn refusals_are_remembered_per_key_set_and_never_turn_into_acceptance() {
        let key = TestKey::ec("e1", "ES256");
        let forger = TestKey::ec("e1", "ES256");
        let cache = TokenCache::new(16).unwrap();
        let forged = token(&forger, NOW + 60, "a");
        let keys = keyset(&[&key], 1);
        assert_eq!(
            decide(&cache, &forged, &keys, &policy(), NOW),
            (Err(Refusal::BadSignature), false)
        );
        assert_eq!(
            decide(&cache, &forged, &keys, &policy(), NOW),
            (Err(Refusal::BadSignature), true)
        );
        // A new key set decides afresh (a key replaced under the same kid may now verify it).
        let rotated = keyset(&[&forger], 2);
        let (after, hit) = decide(&cache, &forged, &rotated, &policy(), NOW);
        assert!(!hit);
        assert!(after.is_ok());
        // Not-yet-valid tokens are not remembered: they become valid with time.
        let early = key.token(&json!({"iss": "https://idp", "aud": "https://rs/mcp", "exp": NOW + 600, "nbf": NOW + 100}));
        assert_eq!(
            decide(&cache, &early, &keys, &policy(), NOW).0,
            Err(Refusal::NotYetValid)
        );
        assert!(decide(&cache, &early, &keys, &policy(), NOW + 100)
            .0
            .is_ok());
    }

    #[test]
    fn the_cache_is_bounded() {
        let key = TestKey::ed25519("d1");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::new(10).unwrap();
        for i in 0..200 {
            let _ = decide(
                &cache,
                &token(&key, NOW + 60 + i, "a"),
                &keys,
                &policy(),
                NOW,
            );
        }
        assert!(cache.len().0 <= 20, "{:?}", cache.len());
        assert!(TokenCache::new(0).is_none());
    }

    /// A hasher under which every token has the same hash: the worst an attacker could achieve.
    #[derive(Clone, Default)]
    struct EverythingCollides;

    impl BuildHasher for EverythingCollides {
        type Hasher = Constant;
        fn build_hasher(&self) -> Constant {
            Constant
        }
    }

    struct Constant;

    impl std::hash::Hasher for Constant {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn a_forged_token_whose_hash_collides_with_a_cached_one_is_still_checked_in_full() {
        let key = TestKey::ec("e1", "ES256");
        let forger = TestKey::ec("e1", "ES256");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::with_hasher(16, EverythingCollides).unwrap();
        let valid = token(&key, NOW + 60, "a");
        assert!(decide(&cache, &valid, &keys, &policy(), NOW).0.is_ok());
        // Same claims, same kid, another key's signature: only the stored token's bytes tell it apart.
        let forged = token(&forger, NOW + 60, "a");
        assert_eq!(
            decide(&cache, &forged, &keys, &policy(), NOW),
            (Err(Refusal::BadSignature), false)
        );
        // Both stay, each answering for its own bytes only.
        assert_eq!(
            decide(&cache, &forged, &keys, &policy(), NOW),
            (Err(Refusal::BadSignature), true)
        );
        let (again, hit) = decide(&cache, &valid, &keys, &policy(), NOW);
        assert!(hit && again.is_ok());
        assert_eq!(cache.len(), (1, 1));
    }

    #[test]
    fn a_token_that_is_a_prefix_of_a_cached_one_is_a_miss() {
        let key = TestKey::ec("e1", "ES256");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::with_hasher(16, EverythingCollides).unwrap();
        let valid = token(&key, NOW + 60, "a");
        assert!(decide(&cache, &valid, &keys, &policy(), NOW).0.is_ok());
        let cut = &valid[..valid.len() - 1];
        assert_eq!(
            decide(&cache, cut, &keys, &policy(), NOW),
            (Err(Refusal::BadSignature), false)
        );
    }

    #[test]
    fn large_tokens_count_for_their_size_so_stored_bytes_stay_bounded() {
        let w = |len: usize| {
            Weighter::<Box<str>, ()>::weight(&TokenBytes, &"x".repeat(len).into(), &())
        };
        assert_eq!(w(1), 1);
        assert_eq!(w(ENTRY_TOKEN_BYTES), 1);
        assert_eq!(w(ENTRY_TOKEN_BYTES + 1), 2);
        assert_eq!(w(16 * 1024), 8);
        // A cache of 64 units holds far fewer 16 KiB tokens than 64.
        let key = TestKey::ed25519("d1");
        let keys = keyset(&[&key], 1);
        let cache = TokenCache::new(64).unwrap();
        let pad = "p".repeat(12 * 1024 - 300); // base64 makes it 4/3 as long
        for i in 0..64 {
            let t = key.token(&json!({"iss": "https://idp", "aud": "https://rs/mcp", "exp": NOW + 60 + i, "pad": pad}));
            assert!(t.len() > 15 * 1024 && t.len() <= 16 * 1024, "{}", t.len());
            let _ = decide(&cache, &t, &keys, &policy(), NOW);
        }
        assert!(cache.len().0 <= 64 / 8 + 1, "{:?}", cache.len());
    }
}
