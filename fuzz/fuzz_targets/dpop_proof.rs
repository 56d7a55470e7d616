//! The DPoP proof check (RFC 9449 §4.3): never panics on any proof, and never accepts one — the
//! fuzzer cannot sign with the bound key, so any acceptance is a bug. Arbitrary bytes also go through
//! the `htu` normaliser, which must be idempotent.
//!
//! Input: the proof (UTF-8 or not), as sent in the `DPoP` header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gate::auth::dpop::{check, normalize_htu, ProofPolicy, ProofTarget};
use mcp_gate::auth::keys::Alg;

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = std::str::from_utf8(data) else {
        return;
    };
    let policy = ProofPolicy {
        algorithms: Alg::ALL.to_vec(),
        iat_window_secs: 300,
    };
    let target = ProofTarget {
        method: "POST",
        htu: "https://mcp.example.com/mcp",
        access_token: "a.b.c",
        // The thumbprint of a key nobody holds (SHA-256 of nothing in particular).
        jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
    };
    assert!(check(proof, &target, &policy, 1_800_000_000).is_err());
    if let Some(once) = normalize_htu(proof) {
        assert_eq!(normalize_htu(&once).as_deref(), Some(once.as_str()), "{proof:?}");
    }
});
