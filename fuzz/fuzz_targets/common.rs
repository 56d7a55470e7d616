//! What the targets share: a fixed issuer, audience and clock, the keys and the policies.
#![allow(dead_code)] // each target uses a different subset

use std::sync::OnceLock;

use mcp_gate::auth::keys::{parse_jwks, Alg, KeySet};
use mcp_gate::auth::token::{ClaimRule, Policy, TokenType};
use mcp_gate::test_support::{jwks, TestKey};

pub const ISS: &str = "https://idp.example.com";
pub const AUD: &str = "https://mcp.example.com/mcp";
/// The fixed "now" of every check (2027-01-15).
pub const NOW: u64 = 1_800_000_000;

/// One key of each family; generated once per process. Tokens in the seed corpus were signed by
/// other keys, so no fuzz input to `token_verify` can carry a valid signature.
pub fn keys() -> &'static (Vec<TestKey>, KeySet) {
    static KEYS: OnceLock<(Vec<TestKey>, KeySet)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = vec![
            TestKey::rsa("k1", 2048),
            TestKey::ec("e1", "ES256"),
            TestKey::ec("e2", "ES384"),
            TestKey::ed25519("d1"),
        ];
        let refs: Vec<&TestKey> = keys.iter().collect();
        let (set, _) = parse_jwks(jwks(&refs).as_bytes(), &Alg::ALL).expect("a valid JWKS");
        (keys, set)
    })
}

/// The Ed25519 key (the cheapest to sign with) for targets that sign what the fuzzer writes.
pub fn signer() -> &'static TestKey {
    &keys().0[3]
}

/// A lenient policy (defaults) and a strict one (at+jwt, scopes, claim rules, no skew).
pub fn policies() -> [Policy; 2] {
    let lenient = Policy {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        algorithms: Alg::ALL.to_vec(),
        token_type: TokenType::Any,
        required_scopes: vec![],
        claim_rules: vec![],
        clock_skew_secs: 60,
        max_token_size: 16 * 1024,
    };
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
