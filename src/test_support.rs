//! Test keys: generate a key pair, publish it as a JWK, sign arbitrary header/payload bytes.
//!
//! Compiled only for tests (the `test-support` feature is switched on by the crate's own
//! dev-dependency), so unit and integration tests share one signer. Signing takes raw JSON strings
//! so tests can build tokens no well-behaved JOSE library would produce (duplicate keys, odd `alg`).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair, usize),
    Ed(Ed25519KeyPair),
}

/// A signing key with a `kid`, and the algorithm its tokens say they use by default.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    signer: Signer,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    /// An RSA key of `bits` (2048, 3072 or 4096; 1024 for refusal tests) used with RS256.
    pub fn rsa(kid: &str, bits: usize) -> TestKey {
        TestKey::rsa_alg(kid, bits, "RS256")
    }

    /// An RSA key whose tokens name `alg` (RS* or PS*).
    pub fn rsa_alg(kid: &str, bits: usize, alg: &'static str) -> TestKey {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            _ => panic!("unsupported RSA size {bits}"),
        };
        TestKey {
            kid: kid.into(),
            alg,
            signer: Signer::Rsa(RsaKeyPair::generate(size).expect("RSA key generation")),
        }
    }

    /// A P-256 (`ES256`) or P-384 (`ES384`) key.
    pub fn ec(kid: &str, alg: &'static str) -> TestKey {
        let (algorithm, size) = match alg {
            "ES256" => (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, 32),
            "ES384" => (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, 48),
            _ => panic!("unsupported EC alg {alg}"),
        };
        TestKey {
            kid: kid.into(),
            alg,
            signer: Signer::Ec(
                EcdsaKeyPair::generate(algorithm).expect("EC key generation"),
                size,
            ),
        }
    }

    /// An Ed25519 (`EdDSA`) key.
    pub fn ed25519(kid: &str) -> TestKey {
        TestKey {
            kid: kid.into(),
            alg: "EdDSA",
            signer: Signer::Ed(Ed25519KeyPair::generate().expect("Ed25519 key generation")),
        }
    }

    /// The public JWK, without `alg` (as most IdPs publish RSA keys).
    pub fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Rsa(k) => {
                let public = k.public_key();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig",
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
            Signer::Ec(k, size) => {
                let point = k.public_key().as_ref();
                let crv = if *size == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "kid": self.kid, "crv": crv, "use": "sig",
                       "x": b64(&point[1..1 + size]), "y": b64(&point[1 + size..])})
            }
            Signer::Ed(k) => json!({"kty": "OKP", "kid": self.kid, "crv": "Ed25519", "use": "sig",
                                    "x": b64(k.public_key().as_ref())}),
        }
    }

    /// The public JWK with an explicit `alg`.
    pub fn jwk_with_alg(&self) -> Value {
        let mut jwk = self.jwk();
        jwk["alg"] = json!(self.alg);
        jwk
    }

    /// The RSA public key as PKCS#1 DER (the bytes a key-confusion attacker would use as an HMAC secret).
    pub fn public_der(&self) -> Vec<u8> {
        match &self.signer {
            Signer::Rsa(k) => k.public_key().as_ref().to_vec(),
            Signer::Ec(k, _) => k.public_key().as_ref().to_vec(),
            Signer::Ed(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `header.payload` (raw JSON strings, base64url-encoded here) with the algorithm the header
    /// names if it is one this key can produce, else the key's own algorithm.
    pub fn sign(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let named = serde_json::from_str::<Value>(header)
            .ok()
            .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_string));
        let sig = self.raw_signature(named.as_deref().unwrap_or(self.alg), input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// The raw signature of `message`.
    pub fn raw_signature(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(k) => {
                let encoding: &'static dyn signature::RsaEncoding = match alg {
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    "PS512" => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(encoding, &rng, message, &mut sig).expect("RSA sign");
                sig
            }
            Signer::Ec(k, _) => k.sign(&rng, message).expect("EC sign").as_ref().to_vec(),
            Signer::Ed(k) => k.sign(message).as_ref().to_vec(),
        }
    }

    /// A token with header `{"alg", "typ": "at+jwt", "kid"}` and the given claims.
    pub fn token(&self, claims: &Value) -> String {
        self.token_as(self.alg, claims)
    }

    /// A token whose header names `alg` (for RSA keys: any RS*/PS*).
    pub fn token_as(&self, alg: &str, claims: &Value) -> String {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": self.kid});
        self.sign(&header.to_string(), &claims.to_string())
    }
}

/// A JWKS document publishing these keys (without `alg`).
pub fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

/// One key of each family (RSA-2048, P-256, P-384, Ed25519) and the key set publishing them:
/// what the property tests, the fuzz targets and the token unit tests all check against.
pub fn one_key_per_family() -> (Vec<TestKey>, crate::auth::keys::KeySet) {
    use crate::auth::keys::{parse_jwks, Alg};
    let keys = vec![
        TestKey::rsa("k1", 2048),
        TestKey::ec("e1", "ES256"),
        TestKey::ec("e2", "ES384"),
        TestKey::ed25519("d1"),
    ];
    let refs: Vec<&TestKey> = keys.iter().collect();
    let (set, _) = parse_jwks(jwks(&refs).as_bytes(), &Alg::ALL).expect("a valid JWKS");
    (keys, set)
}

/// The gate's default token rules for `issuer` and `audience`: every algorithm, any `typ`, no
/// required scope or claim, 60 s of skew, 16 KiB tokens.
pub fn default_policy(issuer: &str, audience: &str) -> crate::auth::Policy {
    use crate::auth::keys::Alg;
    use crate::auth::token::TokenType;
    crate::auth::Policy {
        issuer: issuer.into(),
        audiences: vec![audience.into()],
        algorithms: Alg::ALL.to_vec(),
        token_type: TokenType::Any,
        required_scopes: vec![],
        claim_rules: vec![],
        clock_skew_secs: 60,
        max_token_size: 16 * 1024,
    }
}
