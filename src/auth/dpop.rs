//! DPoP proofs (RFC 9449): checking the proof JWT a client sends in the `DPoP` header beside a
//! DPoP-bound access token. Pure: proof, request facts, policy and `now` in; the proof's key
//! thumbprint and `jti` (for the replay cache) or a [`Refusal`] out.
//!
//! Implements the checks of RFC 9449 §4.3 in order: one well-formed compact JWS (the header count is
//! the extractor's, [`super::bearer`]); `typ` `dpop+jwt`; an asymmetric `alg` from the allow-list;
//! a public `jwk` (any private member is a refusal) that verifies the signature; `htm`, `htu` (RFC
//! 3986 normalised, without query and fragment), `iat` within the window, `ath` (§4.2), and a
//! `jti`. The key binding (the token's `cnf.jkt` equals the RFC 7638 thumbprint of `jwk`, §6.1) is
//! checked by [`check`] too, so a proof can never be accepted apart from its token.

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};

pub use super::dpop_htu::{expected_htu, normalize_htu};
use super::keys::{parse_one_jwk, Alg};
use super::refusal::Refusal;
use super::strict_json;

/// The algorithms accepted in proofs unless `DPOP_ALGORITHMS` says otherwise: what the DPoP clients
/// in the field sign with (RFC 9449 leaves the choice to the server, §7.1 `algs`).
pub const DEFAULT_ALGORITHMS: &str = "ES256,ES384,EdDSA,PS256,RS256";

/// The largest proof parsed. An RSA-8192 `jwk` and signature fit in ~3.5 KiB; anything larger is
/// refused unread.
pub const MAX_PROOF_SIZE: usize = 8 * 1024;

/// The longest `jti` kept: enough for any UUID or random string, short enough that the replay cache
/// stays small.
pub const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// What a proof must satisfy; built once from configuration.
#[derive(Debug, Clone)]
pub struct ProofPolicy {
    /// Accepted proof `alg` values (asymmetric only: [`Alg`] has no HMAC or `none`).
    pub algorithms: Vec<Alg>,
    /// How far `iat` may be from `now`, either way (RFC 9449 §11.1).
    pub iat_window_secs: u64,
}

/// The request a proof must have been made for.
pub struct ProofTarget<'a> {
    /// The request method, e.g. `POST`.
    pub method: &'a str,
    /// The URI the client used, already [`normalize_htu`]-ed.
    pub htu: &'a str,
    /// The access token sent with the proof (its hash is `ath`).
    pub access_token: &'a str,
    /// The token's `cnf.jkt`: the thumbprint of the only key that may sign proofs for it.
    pub jkt: &'a str,
}

/// An accepted proof: what the replay cache needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedProof {
    /// The RFC 7638 thumbprint of the proof key (equal to the token's `cnf.jkt`).
    pub jkt: String,
    /// The proof's unique identifier.
    pub jti: String,
    /// The server nonce the proof carries (RFC 9449 §4.2), checked by the caller when nonces are on.
    pub nonce: Option<String>,
}

/// Checks `proof` for the request `target` at `now` (seconds since the Unix epoch).
pub fn check(
    proof: &str,
    target: &ProofTarget<'_>,
    policy: &ProofPolicy,
    now: u64,
) -> Result<AcceptedProof, Refusal> {
    if proof.len() > MAX_PROOF_SIZE {
        return Err(Refusal::DpopProofTooLarge);
    }
    let (header_b64, payload_b64, signature_b64) = split(proof)?;
    let header = decode_object(header_b64)?;
    match header.get("typ") {
        // Media type names compare case-insensitively (RFC 7515 §4.1.9).
        Some(Value::String(t)) if t.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(Refusal::DpopBadType),
    }
    let alg = match header.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name)
            .filter(|a| policy.algorithms.contains(a))
            .ok_or(Refusal::DpopUnsupportedAlgorithm)?,
        _ => return Err(Refusal::DpopUnsupportedAlgorithm),
    };
    if header.contains_key("crit") {
        return Err(Refusal::DpopMalformedProof);
    }
    let jwk = match header.get("jwk") {
        Some(Value::Object(jwk)) => jwk,
        _ => return Err(Refusal::DpopBadKey),
    };
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(Refusal::DpopBadKey);
    }
    let key = parse_one_jwk(&Value::Object(jwk.clone()), alg).map_err(|_| Refusal::DpopBadKey)?;
    let verifier = key.verifier(alg).ok_or(Refusal::DpopBadKey)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| Refusal::DpopBadSignature)?;
    let signing_input = &proof.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    verifier
        .verify_sig(signing_input, &signature)
        .map_err(|_| Refusal::DpopBadSignature)?;

    let claims = decode_object(payload_b64)?;
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= MAX_JTI_LEN => jti,
        _ => return Err(Refusal::DpopMalformedProof),
    };
    match claims.get("htm") {
        Some(Value::String(htm)) if htm == target.method => {}
        Some(Value::String(_)) => return Err(Refusal::DpopWrongMethod),
        _ => return Err(Refusal::DpopMalformedProof),
    }
    match claims.get("htu") {
        Some(Value::String(htu)) if normalize_htu(htu).as_deref() == Some(target.htu) => {}
        Some(Value::String(_)) => return Err(Refusal::DpopWrongUri),
        _ => return Err(Refusal::DpopMalformedProof),
    }
    let iat = match claims.get("iat") {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or(Refusal::DpopMalformedProof)?,
        _ => return Err(Refusal::DpopMalformedProof),
    };
    if (iat - now as f64).abs() > policy.iat_window_secs as f64 {
        return Err(Refusal::DpopStale);
    }
    match claims.get("ath") {
        Some(Value::String(ath)) if *ath == access_token_hash(target.access_token) => {}
        Some(Value::String(_)) | None => return Err(Refusal::DpopWrongAth),
        Some(_) => return Err(Refusal::DpopMalformedProof),
    }
    let nonce = match claims.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.clone()),
        Some(_) => return Err(Refusal::DpopMalformedProof),
    };
    let jkt = thumbprint(jwk).ok_or(Refusal::DpopBadKey)?;
    if jkt != target.jkt {
        return Err(Refusal::DpopKeyMismatch);
    }
    Ok(AcceptedProof {
        jkt,
        jti: jti.clone(),
        nonce,
    })
}

/// `ath`: base64url(SHA-256(ASCII access token)) (RFC 9449 §4.2).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()))
}

/// The RFC 7638 JWK thumbprint: SHA-256 over the required members, in lexicographic order, without
/// whitespace (§3.2), base64url-encoded (RFC 9449 §6.1). `None` for a key type without a definition
/// or with a required member missing.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty")?.as_str()? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in members.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json escapes exactly as RFC 7638 §3.3 requires (JSON string, no extra whitespace).
        canonical.push_str(&Value::String((*name).to_string()).to_string());
        canonical.push(':');
        canonical.push_str(&Value::String(value.to_string()).to_string());
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())))
}

/// Splits a compact JWS into its three non-empty segments.
fn split(proof: &str) -> Result<(&str, &str, &str), Refusal> {
    let mut parts = proof.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => {
            Ok((h, p, s))
        }
        _ => Err(Refusal::DpopMalformedProof),
    }
}

/// Canonical base64url → JSON object without duplicate member names (RFC 7515 §5.2).
fn decode_object(segment: &str) -> Result<Map<String, Value>, Refusal> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Refusal::DpopMalformedProof)?;
    match strict_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Refusal::DpopMalformedProof),
    }
}

#[cfg(test)]
mod tests;
