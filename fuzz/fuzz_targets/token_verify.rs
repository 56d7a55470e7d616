//! The whole token check on attacker-controlled strings: never panics, and never accepts — no input
//! the fuzzer can write carries a signature by the fixed keys, so any acceptance is a forgery. The
//! unverified `iss` peek that picks an issuer when several are configured runs on the same input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gate::auth::token::{claimed_issuer, verify};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let _ = claimed_issuer(&token);
    let (_, set) = common::keys();
    for policy in common::policies() {
        let outcome = verify(&token, set, &policy, common::NOW);
        assert!(
            outcome.is_err(),
            "forgery accepted: {token:?} -> {outcome:?}"
        );
    }
});
