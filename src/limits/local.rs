//! The in-process store: a bounded concurrent map from key to GCRA theoretical arrival time.
//!
//! Each decision reads and writes its key under the map's shard lock (quick_cache's `entry`), so two
//! concurrent requests for one key can never both spend the last unit. The lock covers a few integer
//! operations and never an await or any I/O. The map is bounded: when it is full the least useful
//! keys are forgotten, which can only ever *reset* a key to a fresh burst (it never refuses anyone
//! more), so an attacker spraying keys cannot make the gate grow or lock out others.

use std::hash::Hash;

use quick_cache::sync::{Cache, EntryAction, EntryResult};

use super::gcra::{Quota, Verdict};

/// Key → TAT (nanoseconds on the limiter's monotonic clock).
pub struct LocalStore<K: Eq + Hash + Clone> {
    tats: Cache<K, u64>,
}

impl<K: Eq + Hash + Clone> LocalStore<K> {
    /// A store that remembers at most about `capacity` keys.
    pub fn new(capacity: usize) -> LocalStore<K> {
        LocalStore {
            tats: Cache::new(capacity.max(1)),
        }
    }

    /// Decides one request for `key` at `now` and records it when allowed.
    pub fn check(&self, quota: &Quota, key: &K, now: u64) -> Verdict {
        let seen = self.tats.entry(key, None, |_, tat| {
            let (verdict, stored) = quota.check(Some(*tat), now);
            if let Some(stored) = stored {
                *tat = stored;
            }
            EntryAction::Retain(verdict)
        });
        match seen {
            EntryResult::Retained(verdict) => verdict,
            EntryResult::Vacant(slot) => {
                let (verdict, stored) = quota.check(None, now);
                // A burst is at least 1, so a fresh key is always allowed and has a TAT to store;
                // if the slot was taken meanwhile, the other writer's value is as good as ours.
                if let Some(stored) = stored {
                    let _ = slot.insert(stored);
                }
                verdict
            }
            // Not produced by a `Retain` callback without a timeout; decide as for a fresh key
            // rather than panic on the request path.
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => {
                quota.check(None, now).0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn each_key_has_its_own_budget() {
        let store = LocalStore::new(100);
        let quota = Quota::parse("2/1s").unwrap();
        let allowed = |key: &str| store.check(&quota, &key.to_string(), 0).allowed;
        assert!(allowed("a") && allowed("a"));
        assert!(!allowed("a"));
        assert!(allowed("b"));
    }

    #[test]
    fn concurrent_requests_for_one_key_never_exceed_the_burst() {
        let store = Arc::new(LocalStore::new(100));
        let quota = Quota::parse("50/1h").unwrap();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .filter(|_| store.check(&quota, &1u8, 1_000).allowed)
                        .count()
                })
            })
            .collect();
        let passed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(passed, 50);
    }
}
