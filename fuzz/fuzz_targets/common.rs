//! What the targets share: a fixed issuer, audience and clock, the keys and the policies.
#![allow(dead_code)] // each target uses a different subset

use std::sync::OnceLock;

use mcp_gate::auth::keys::KeySet;
use mcp_gate::auth::token::{ClaimRule, Policy, TokenType};
use mcp_gate::test_support::{default_policy, one_key_per_family, TestKey};

pub const ISS: &str = "https://idp.example.com";
pub const AUD: &str = "https://mcp.example.com/mcp";
/// The fixed "now" of every check (2027-01-15).
pub const NOW: u64 = 1_800_000_000;

/// One key of each family; generated once per process. Tokens in the seed corpus were signed by
/// other keys, so no fuzz input to `token_verify` can carry a valid signature.
pub fn keys() -> &'static (Vec<TestKey>, KeySet) {
    static KEYS: OnceLock<(Vec<TestKey>, KeySet)> = OnceLock::new();
    KEYS.get_or_init(one_key_per_family)
}

/// The Ed25519 key (the cheapest to sign with) for targets that sign what the fuzzer writes.
pub fn signer() -> &'static TestKey {
    &keys().0[3]
}

/// A lenient policy (defaults) and a strict one (at+jwt, scopes, claim rules, no skew).
pub fn policies() -> [Policy; 2] {
    let lenient = default_policy(ISS, AUD);
    let strict = Policy {
        audiences: vec!["api://other".into(), AUD.into()],
        token_type: TokenType::AccessTokenJwt,
        required_scopes: vec!["mcp:tools".into()],
        claim_rules: vec![ClaimRule {
            path: vec!["realm_access".into(), "roles".into()],
            value: "mcp-user".into(),
        }],
        clock_skew_secs: 0,
        ..lenient.clone()
    };
    [lenient, strict]
}
