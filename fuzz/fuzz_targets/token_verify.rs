//! The whole token check on attacker-controlled strings: never panics, and never accepts — no input
//! the fuzzer can write carries a signature by the fixed keys, so any acceptance is a forgery.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gate::auth::token::verify;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let (_, set) = common::keys();
    for policy in common::policies() {
        let outcome = verify(&token, set, &policy, common::NOW);
        assert!(
            outcome.is_err(),
            "forgery accepted: {token:?} -> {outcome:?}"
        );
    }
});
