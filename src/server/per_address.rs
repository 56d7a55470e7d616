//! `MAX_CONNECTIONS_PER_IP`: how many connections one client address may hold at once, so that a
//! handful of clients cannot take every one of `MAX_CONNECTIONS` slots.
//!
//! Counted by the socket's peer address, never by a header. An IPv6 client is counted by its /64:
//! one subscriber line or host is routinely handed a whole /64 (RFC 6177), so counting single
//! addresses would give one attacker 2^64 separate caps. An IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`, a dual-stack listener) counts as its IPv4 address.
//!
//! The counts live in a few dozen independently locked shards, so connections from different
//! clients rarely meet on one lock, and a lock is held only for one map update at accept and at
//! close. An address's entry is removed when its count returns to zero, so memory is bounded by the
//! connections open, not by the addresses ever seen.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Independently locked parts of the count map.
const SHARDS: usize = 32;

/// What one client is counted as: its IPv4 address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// Open connections per client, each at most `cap`.
pub(crate) struct AddressCaps {
    cap: usize,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted against its client's cap; dropping it gives the slot back.
pub(crate) struct AddressSlot {
    caps: Arc<AddressCaps>,
    key: IpAddr,
}

impl AddressCaps {
    /// At most `cap` connections per client (`cap` above zero).
    pub(crate) fn new(cap: usize) -> Arc<AddressCaps> {
        Arc::new(AddressCaps {
            cap,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        })
    }

    fn shard(&self, key: &IpAddr) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        // A panic while holding the lock cannot leave a count half-written (one integer update).
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a new connection from `ip`, or `None` when its client already holds `cap`.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = client_key(ip);
        let mut counts = self.shard(&key);
        let count = counts.entry(key).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            caps: self.clone(),
            key,
        })
    }

    /// Connections open for `ip`'s client (for tests and diagnostics).
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> usize {
        let key = client_key(ip);
        self.shard(&key).get(&key).copied().unwrap_or(0)
    }

    /// Clients with at least one connection open.
    #[cfg(test)]
    fn clients(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .len()
            })
            .sum()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.caps.shard(&self.key);
        if let Some(count) = counts.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_slash_64s() {
        for (address, client) in [
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
            ("2001:db8:1:2::1", "2001:db8:1:2::"),
            ("2001:db8:1:3::1", "2001:db8:1:3::"),
            ("::1", "::"),
        ] {
            assert_eq!(client_key(ip(address)), ip(client), "{address}");
        }
    }

    #[test]
    fn a_client_at_its_cap_gets_no_slot_until_one_is_given_back() {
        let caps = AddressCaps::new(2);
        let a = ip("192.0.2.1");
        let first = caps.try_acquire(a).expect("first");
        let _second = caps.try_acquire(a).expect("second");
        assert!(caps.try_acquire(a).is_none(), "a third beyond the cap");
        // Other clients are unaffected; an IPv6 neighbour in the same /64 shares the cap.
        let _other = caps.try_acquire(ip("192.0.2.2")).expect("another address");
        let _v6 = caps.try_acquire(ip("2001:db8::1")).unwrap();
        let _v6b = caps.try_acquire(ip("2001:db8::2")).unwrap();
        assert!(caps.try_acquire(ip("2001:db8::3")).is_none());
        drop(first);
        assert_eq!(caps.open(a), 1);
        assert!(caps.try_acquire(a).is_some());
    }

    #[test]
    fn entries_are_removed_when_their_last_connection_closes() {
        let caps = AddressCaps::new(3);
        let slots: Vec<_> = (0..100u8)
            .flat_map(|i| {
                let a = IpAddr::from([10, 0, 0, i]);
                [caps.try_acquire(a).unwrap(), caps.try_acquire(a).unwrap()]
            })
            .collect();
        assert_eq!(caps.clients(), 100);
        drop(slots);
        assert_eq!(caps.clients(), 0, "memory bounded by open connections");
    }
}
