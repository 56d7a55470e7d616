//! Server-issued DPoP nonces (RFC 9449 §8–9), stateless: a nonce is the time it was issued, sealed
//! with AES-256-GCM under a key from configuration (`DPOP_NONCE_KEYS`).
//!
//! Any replica holding the key accepts any other's nonces, so replicas need no shared store; a nonce
//! is accepted until DPOP_IAT_WINDOW after it was issued. Keys rotate with an overlap: the first key
//! seals, every listed key opens. A nonce that does not open (forged, truncated, from a key no longer
//! listed) or is too old is answered with `use_dpop_nonce` and a fresh one. What a nonce adds: a proof
//! can no longer be made ahead of time, only after the server's latest nonce was seen.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Binds the ciphertext to its purpose, so no other sealed value under the same key passes as a nonce.
const AAD: &[u8] = b"mcp-gate dpop-nonce v1";

/// How far in the future an issue time may be (another replica's clock running ahead).
const FUTURE_SKEW_SECS: u64 = 60;

/// Nonces longer than this are not opened (12-byte IV + 8-byte time + 16-byte tag, base64url: 48).
const MAX_NONCE_LEN: usize = 64;

/// The keys that seal and open nonces, and how long a nonce lives.
pub struct NonceKeys {
    /// The first seals; all open.
    keys: Vec<RandomizedNonceKey>,
    lifetime_secs: u64,
}

/// A key that is not 32 bytes of base64url.
#[derive(Debug, thiserror::Error)]
#[error("a DPoP nonce key must be 32 random bytes, base64url-encoded (43 characters)")]
pub struct BadNonceKey;

impl NonceKeys {
    /// `keys` are base64url-encoded 32-byte keys, the sealing one first. At least one.
    pub fn new(keys: &[String], lifetime_secs: u64) -> Result<NonceKeys, BadNonceKey> {
        let keys = keys
            .iter()
            .map(|k| {
                // `basenc --base64url` pads; the padding carries nothing.
                let bytes = URL_SAFE_NO_PAD
                    .decode(k.trim().trim_end_matches('='))
                    .map_err(|_| BadNonceKey)?;
                if bytes.len() != 32 {
                    return Err(BadNonceKey);
                }
                RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| BadNonceKey)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(BadNonceKey);
        }
        Ok(NonceKeys {
            keys,
            lifetime_secs,
        })
    }

    /// A fresh nonce for time `now` (seconds since the epoch).
    pub fn issue(&self, now: u64) -> String {
        let mut sealed = now.to_be_bytes().to_vec();
        let iv = self.keys[0]
            .seal_in_place_append_tag(Aad::from(AAD), &mut sealed)
            .expect("AES-GCM sealing of 8 bytes cannot fail");
        let mut out = iv.as_ref().to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// Whether `nonce` was issued by a listed key and is still fresh at `now`.
    pub fn accepts(&self, nonce: &str, now: u64) -> bool {
        if nonce.len() > MAX_NONCE_LEN {
            return false;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        if bytes.len() <= NONCE_LEN {
            return false;
        }
        let (iv, sealed) = bytes.split_at(NONCE_LEN);
        self.keys.iter().any(|key| {
            let Ok(iv) = Nonce::try_assume_unique_for_key(iv) else {
                return false;
            };
            let mut buf = sealed.to_vec();
            match key.open_in_place(iv, Aad::from(AAD), &mut buf) {
                Ok(plain) => match <[u8; 8]>::try_from(&plain[..]) {
                    Ok(t) => {
                        let issued = u64::from_be_bytes(t);
                        issued <= now + FUTURE_SKEW_SECS
                            && now.saturating_sub(issued) <= self.lifetime_secs
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn key(b: u8) -> String {
        URL_SAFE_NO_PAD.encode([b; 32])
    }

    #[test]
    fn a_nonce_is_accepted_while_fresh_and_only_by_its_key() {
        let keys = NonceKeys::new(&[key(1)], 300).unwrap();
        let n = keys.issue(NOW);
        assert!(keys.accepts(&n, NOW));
        assert!(keys.accepts(&n, NOW + 300));
        assert!(!keys.accepts(&n, NOW + 301), "stale");
        assert!(!keys.accepts(&keys.issue(NOW + 61), NOW), "from the future");
        assert_ne!(keys.issue(NOW), keys.issue(NOW), "a fresh IV each time");
        let other = NonceKeys::new(&[key(2)], 300).unwrap();
        assert!(!other.accepts(&n, NOW), "another key");
    }

    #[test]
    fn rotation_opens_with_every_listed_key_and_seals_with_the_first() {
        let old = NonceKeys::new(&[key(1)], 300).unwrap();
        let rotated = NonceKeys::new(&[key(2), key(1)], 300).unwrap();
        assert!(rotated.accepts(&old.issue(NOW), NOW));
        assert!(!old.accepts(&rotated.issue(NOW), NOW));
    }

    #[test]
    fn forged_or_altered_nonces_are_refused() {
        let keys = NonceKeys::new(&[key(1)], 300).unwrap();
        let n = keys.issue(NOW);
        for i in 0..n.len() {
            let mut b = n.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            assert!(!keys.accepts(&String::from_utf8(b).unwrap(), NOW), "{i}");
        }
        for bad in ["", "AAAA", &"A".repeat(48), &"A".repeat(100), "!!!"] {
            assert!(!keys.accepts(bad, NOW), "{bad}");
        }
    }

    #[test]
    fn keys_must_be_32_base64url_bytes() {
        assert!(NonceKeys::new(&[], 300).is_err());
        assert!(NonceKeys::new(&["c2hvcnQ".into()], 300).is_err());
        assert!(NonceKeys::new(&["not base64!".into()], 300).is_err());
        let padded = format!("{}=", key(1));
        assert!(NonceKeys::new(&[padded], 300).is_ok());
    }
}
