//! Header and claims the fuzzer writes, genuinely signed, through the whole check: never panics; what
//! is accepted really meets the policy; and the verified-token cache's re-decision (`recheck`) agrees
//! with a full check at every instant — a cache hit is never more lenient than a miss.
//!
//! Input: header bytes, a NUL, claims bytes (both base64url-encoded here, then signed with Ed25519).
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mcp_gate::auth::token::{recheck, verify, verify_with_facts};
use serde_json::Value;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |b| *b == 0);
    let header = parts.next().unwrap_or_default();
    let payload = parts.next().unwrap_or_default();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = common::signer().raw_signature("EdDSA", input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    let (_, set) = common::keys();
    for policy in common::policies() {
        let Ok((verified, facts)) = verify_with_facts(&token, set, &policy, common::NOW) else {
            continue;
        };
        // Accepted: check the decision independently of the validator.
        let h: Value = serde_json::from_slice(header).expect("accepted header is JSON");
        assert_eq!(h["alg"], "EdDSA");
        let c: Value = serde_json::from_slice(payload).expect("accepted claims are JSON");
        assert_eq!(c["iss"], common::ISS);
        let aud_ok = match &c["aud"] {
            Value::String(a) => policy.audiences.contains(a),
            Value::Array(list) => list.iter().any(|a| {
                a.as_str()
                    .is_some_and(|a| policy.audiences.iter().any(|p| p == a))
            }),
            _ => false,
        };
        assert!(aud_ok, "accepted with aud {}", c["aud"]);
        let exp = c["exp"].as_f64().expect("accepted exp is a number");
        assert!((common::NOW as f64) < exp + policy.clock_skew_secs as f64);
        assert_eq!(verified.exp, exp as u64);
        // The cache's re-decision equals a full check, before, at and after every boundary.
        let mut instants = vec![0, common::NOW, common::NOW + 3600, u64::MAX];
        for claim in ["exp", "nbf", "iat"] {
            if let Some(t) = c[claim].as_f64() {
                let t = t as u64;
                for d in [0, 1, policy.clock_skew_secs, policy.clock_skew_secs + 1] {
                    instants.push(t.saturating_add(d));
                    instants.push(t.saturating_sub(d));
                }
            }
        }
        for now in instants {
            assert_eq!(
                recheck(&facts, set, &policy, now),
                verify(&token, set, &policy, now),
                "recheck and verify disagree at {now}"
            );
        }
    }
});
