//! The signature bytes themselves: psychic and out-of-range ECDSA values (CVE-2022-21449), the DER
//! form JWS forbids (RFC 7518 §3.4), Ed25519 `S + L` malleability and degenerate RSA values; and
//! the one malleation that is no forgery, the high-S twin of a genuine ECDSA signature.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::*;

/// Big-endian `a - b` for equal-length unsigned integers with `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// Little-endian `a + b` (Ed25519 scalars are little-endian).
fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in 0..a.len() {
        let s = a[i] as u16 + b[i] as u16 + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const P256_ORDER: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
const P384_ORDER: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973";
/// The order of the Ed25519 group, little-endian.
const ED25519_ORDER_LE: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

/// DER `ECDSA-Sig-Value` of a fixed-length `r || s` (the form JWS forbids, RFC 7518 §3.4).
fn ecdsa_der(fixed: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let v = if v.first().is_some_and(|b| b & 0x80 != 0) {
            [vec![0], v].concat()
        } else {
            v
        };
        der(0x02, &v)
    };
    let (r, s) = fixed.split_at(fixed.len() / 2);
    der(0x30, &[int(r), int(s)].concat())
}

#[tokio::test]
async fn psychic_and_malformed_ecdsa_signatures_are_refused() {
    let s = battery(&[]).await;
    let c = s.claims();
    for (key, order) in [(&s.ec, hex(P256_ORDER)), (&s.ec384, hex(P384_ORDER))] {
        let size = order.len();
        let token = key.token(&c);
        let genuine = signature_of(&token);
        let (r, sig_s) = genuine.split_at(size);
        let zero = vec![0u8; size];
        let mut one = vec![0u8; size];
        one[size - 1] = 1;
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("r=0, s=0", [&zero[..], &zero].concat()),
            ("r=0, s genuine", [&zero[..], sig_s].concat()),
            ("r genuine, s=0", [r, &zero[..]].concat()),
            ("r=n, s=n", [&order[..], &order].concat()),
            ("r=n, s genuine", [&order[..], sig_s].concat()),
            ("r genuine, s=n", [r, &order[..]].concat()),
            ("r=1, s=1", [&one[..], &one].concat()),
            ("all ones", vec![0xff; 2 * size]),
            ("one byte short", genuine[..2 * size - 1].to_vec()),
            ("one byte long", [&genuine[..], &[0]].concat()),
            ("leading zero added", [&[0u8][..], &genuine].concat()),
            ("empty", vec![]),
            ("DER-encoded genuine signature", ecdsa_der(&genuine)),
            (
                "high-S twin of a forged signature",
                [&[7u8; 1][..], &r[1..], &sub_be(&order, sig_s)].concat(),
            ),
        ];
        for (what, sig) in bad {
            s.token_refused(
                &format!("{} {what}", key.alg),
                &with_signature(&token, &sig),
                INVALID,
            )
            .await;
        }
    }
    // Ed25519: the all-zero signature, S pushed out of range by adding the group order (the classic
    // malleability), and wrong lengths.
    let token = s.ed.token(&c);
    let genuine = signature_of(&token);
    let (big_r, small_s) = genuine.split_at(32);
    let s_plus_l = add_le(small_s, &hex(ED25519_ORDER_LE));
    for (what, sig) in [
        ("all zero", vec![0u8; 64]),
        ("S + L", [big_r, &s_plus_l].concat()),
        ("63 bytes", genuine[..63].to_vec()),
        ("65 bytes", [&genuine[..], &[0]].concat()),
    ] {
        s.token_refused(
            &format!("EdDSA {what}"),
            &with_signature(&token, &sig),
            INVALID,
        )
        .await;
    }
    // RSA: zero, one, the modulus itself, wrong lengths, longer than any allowed key.
    let token = s.rsa.token(&c);
    let genuine = signature_of(&token);
    let n = URL_SAFE_NO_PAD
        .decode(s.rsa.jwk()["n"].as_str().unwrap())
        .unwrap();
    let mut one = vec![0u8; 256];
    one[255] = 1;
    for (what, sig) in [
        ("zero", vec![0u8; 256]),
        ("one", one),
        ("the modulus", n.clone()),
        ("modulus minus genuine", sub_be(&n, &genuine)),
        ("255 bytes", genuine[1..].to_vec()),
        ("257 bytes", [&[0u8][..], &genuine].concat()),
        ("empty", vec![]),
        ("2 KiB", vec![0x5a; 2048]),
    ] {
        s.token_refused(
            &format!("RS256 {what}"),
            &with_signature(&token, &sig),
            INVALID,
        )
        .await;
    }
}

/// ECDSA signatures are malleable: if `(r, s)` verifies, so does `(r, n - s)`. The high-S twin of a
/// genuine signature is therefore still a signature by the IdP's key over the very same bytes — not
/// a forgery — and the gate, which keeps no replay cache keyed on signature bytes, accepts it like
/// the original. What must never pass is a high-S form of anything the IdP did not sign (see
/// `psychic_and_malformed_ecdsa_signatures_are_refused`).
#[tokio::test]
async fn the_high_s_twin_of_a_genuine_ecdsa_signature_is_accepted_as_no_forgery() {
    let s = battery(&[]).await;
    for (key, order) in [(&s.ec, hex(P256_ORDER)), (&s.ec384, hex(P384_ORDER))] {
        let token = key.token(&s.claims());
        let genuine = signature_of(&token);
        let (r, low) = genuine.split_at(order.len());
        let twin = with_signature(&token, &[r, &sub_be(&order, low)].concat());
        assert_ne!(twin, token);
        for t in [&token, &twin] {
            let a = post(&s.gate.resource(), &[("authorization", &bearer(t))], "").await;
            assert_eq!(a.status, 200, "{}", key.alg);
        }
    }
    assert_eq!(s.upstream.count(), 4);
}
