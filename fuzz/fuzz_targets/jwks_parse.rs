//! The JWKS parser on whatever an identity provider (or someone impersonating one) might send: never
//! panics, and every key it keeps can verify with at least one allowed algorithm.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gate::auth::keys::{parse_jwks, Alg};

fuzz_target!(|data: &[u8]| {
    for allowed in [&Alg::ALL[..], &[Alg::ES256, Alg::EdDSA][..]] {
        if let Ok((set, _skipped)) = parse_jwks(data, allowed) {
            assert!(!set.is_empty());
            for key in &set.keys {
                assert!(
                    allowed.iter().any(|a| key.verifier(*a).is_some()),
                    "{key:?}"
                );
                assert!(
                    Alg::ALL
                        .iter()
                        .filter(|a| !allowed.contains(a))
                        .all(|a| key.verifier(*a).is_none()),
                    "{key:?} usable outside the allow-list"
                );
            }
        }
    }
});
