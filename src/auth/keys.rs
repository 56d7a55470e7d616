//! Signing keys: the key set parsed from a JWKS (RFC 7517), each key bound to JWS algorithms
//! ([`Alg`], RFC 7518 §3, defined in `keys/alg.rs` and re-exported here).
//!
//! Each JWK becomes a [`Key`] holding one ready verifier per algorithm it may be used with: the key is
//! parsed once when the set loads (a per-request parse costs more than the signature check itself), and
//! binding keys to algorithms here is what makes RS→HS key confusion impossible (RFC 8725 §3.1).
//! Parsing is pure: bytes in, key set out.

use aws_lc_rs::signature::{ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

mod alg;

pub use alg::{Alg, Family};

/// One signing key of the authorization server, bound to the algorithms it may verify.
pub struct Key {
    /// The JWK `kid`, if any.
    pub kid: Option<Box<str>>,
    /// The key's identity for verification: its `kid`, key type/curve, key material and the
    /// algorithms it is bound to (which `alg`, `use` and `key_ops` decide). Caches compare it to tell
    /// whether a refresh changed anything a token check depends on.
    pub fingerprint: u64,
    /// Ready verifiers, one per algorithm this key is allowed to be used with.
    verifiers: Vec<(Alg, ParsedPublicKey)>,
}

impl Key {
    /// The verifier for `alg`, if this key may be used with it.
    pub fn verifier(&self, alg: Alg) -> Option<&ParsedPublicKey> {
        self.verifiers
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, v)| v)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algs: Vec<_> = self.verifiers.iter().map(|(a, _)| a.name()).collect();
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algs", &algs)
            .finish()
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
    /// Distinguishes successive key sets of one cache (0 until the cache installs the set), so
    /// remembered refusals can be tied to the keys they were decided with.
    pub generation: u64,
}

/// Which keys a token may be checked against.
pub enum Candidates<'a> {
    /// Keys whose `kid` (or, without `kid`, whose algorithm) fits; usually exactly one.
    Keys(Vec<&'a Key>),
    /// The token names a `kid` the set does not hold (for this algorithm): the set may be stale.
    UnknownKid,
    /// No `kid` and not exactly one key that fits the algorithm.
    Ambiguous,
}

impl KeySet {
    /// The verifiers a token with this `kid` and `alg` may be checked against.
    pub fn candidates(&self, kid: Option<&str>, alg: Alg) -> Candidates<'_> {
        match kid {
            Some(kid) => {
                let found: Vec<_> = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid) && k.verifier(alg).is_some())
                    .collect();
                if found.is_empty() {
                    Candidates::UnknownKid
                } else {
                    Candidates::Keys(found)
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| k.verifier(alg).is_some());
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Candidates::Keys(vec![only]),
                    _ => Candidates::Ambiguous,
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether the key with this fingerprint is still in the set.
    pub fn holds(&self, fingerprint: u64) -> bool {
        self.keys.iter().any(|k| k.fingerprint == fingerprint)
    }

    /// Fingerprints of all keys, to tell whether a refresh changed anything.
    pub fn fingerprints(&self) -> Vec<u64> {
        let mut f: Vec<u64> = self.keys.iter().map(|k| k.fingerprint).collect();
        f.sort_unstable();
        f
    }
}

/// Why a JWKS document could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("not a JWKS document: {0}")]
    NotJwks(String),
    #[error("the key set holds no usable signing key ({0} keys skipped)")]
    NoUsableKey(usize),
}

#[derive(Deserialize)]
struct JwkSetDoc {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Parses a JWKS. Keys that cannot be used safely (symmetric, encryption-only, RSA under 2048 bits, an
/// algorithm outside `allowed`, malformed) are skipped, each with a reason; only an unusable document or
/// a set with no usable key at all is an error, so the caller keeps its previous keys.
pub fn parse_jwks(body: &[u8], allowed: &[Alg]) -> Result<(KeySet, Vec<String>), JwksError> {
    let doc: JwkSetDoc =
        serde_json::from_slice(body).map_err(|e| JwksError::NotJwks(e.to_string()))?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, raw) in doc.keys.into_iter().enumerate() {
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(j) => j,
            Err(e) => {
                skipped.push(format!("key #{i}: malformed JWK: {e}"));
                continue;
            }
        };
        let label = match &jwk.kid {
            Some(kid) => format!("key {kid:?}"),
            None => format!("key #{i}"),
        };
        match parse_key(&jwk, allowed) {
            Ok(key) => keys.push(key),
            Err(why) => skipped.push(format!("{label}: {why}")),
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKey(skipped.len()));
    }
    Ok((
        KeySet {
            keys,
            generation: 0,
        },
        skipped,
    ))
}

/// Parses one JWK that arrived inside a request (a DPoP proof's `jwk` header, RFC 9449 §4.2) into a
/// key bound to `alg` alone, with the same rules as a JWKS key: the family must fit the algorithm,
/// symmetric keys are refused, RSA moduli are 2048–8192 bits and EC points must lie on the curve.
pub(crate) fn parse_one_jwk(jwk: &serde_json::Value, alg: Alg) -> Result<Key, String> {
    let jwk = Jwk::deserialize(jwk).map_err(|e| format!("malformed JWK: {e}"))?;
    let key = parse_key(&jwk, &[alg])?;
    match key.verifier(alg) {
        Some(_) => Ok(key),
        None => Err(format!("the key does not fit {}", alg.name())),
    }
}

fn b64(field: &str, value: &Option<String>) -> Result<Vec<u8>, String> {
    let v = value
        .as_deref()
        .ok_or_else(|| format!("missing `{field}`"))?;
    URL_SAFE_NO_PAD
        .decode(v)
        .map_err(|_| format!("`{field}` is not base64url"))
}

fn parse_key(jwk: &Jwk, allowed: &[Alg]) -> Result<Key, String> {
    if let Some(u) = &jwk.use_ {
        if u != "sig" {
            return Err(format!("use {u:?} is not \"sig\""));
        }
    }
    if let Some(ops) = &jwk.key_ops {
        if !ops.iter().any(|o| o == "verify") {
            return Err("key_ops does not include \"verify\"".into());
        }
    }
    let family = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => Family::Rsa,
        ("EC", Some("P-256")) => Family::P256,
        ("EC", Some("P-384")) => Family::P384,
        ("OKP", Some("Ed25519")) => Family::Ed25519,
        ("oct", _) => return Err("symmetric keys are never used".into()),
        (kty, crv) => return Err(format!("unsupported key type {kty:?} / curve {crv:?}")),
    };
    // A JWK that names its algorithm is bound to exactly that one; otherwise to every allowed
    // algorithm of its family (RSA keys commonly omit `alg`).
    let algs: Vec<Alg> = match &jwk.alg {
        Some(name) => {
            let alg = Alg::from_name(name)
                .ok_or_else(|| format!("algorithm {name:?} is not supported"))?;
            if alg.family() != family {
                return Err(format!("algorithm {name} does not fit a {family:?} key"));
            }
            if !allowed.contains(&alg) {
                return Err(format!("algorithm {name} is not in ALLOWED_ALGORITHMS"));
            }
            vec![alg]
        }
        None => allowed
            .iter()
            .copied()
            .filter(|a| a.family() == family)
            .collect(),
    };
    if algs.is_empty() {
        return Err("no allowed algorithm fits this key".into());
    }

    let (material, verifiers) = match family {
        Family::Rsa => {
            let n = strip_leading_zeros(b64("n", &jwk.n)?);
            let e = strip_leading_zeros(b64("e", &jwk.e)?);
            let bits = bit_len(&n);
            if bits < 2048 {
                return Err(format!("RSA modulus of {bits} bits is under 2048"));
            }
            if bits > 8192 {
                return Err(format!("RSA modulus of {bits} bits is over 8192"));
            }
            let comps = RsaPublicKeyComponents { n: &n, e: &e };
            let mut verifiers = Vec::new();
            for alg in &algs {
                let params = alg.rsa_params().expect("RSA family");
                let parsed = comps
                    .to_parsed_public_key(params)
                    .map_err(|e| format!("bad RSA key: {e}"))?;
                verifiers.push((*alg, parsed));
            }
            ([n, e].concat(), verifiers)
        }
        Family::P256 | Family::P384 => {
            let size = if family == Family::P256 { 32 } else { 48 };
            let x = b64("x", &jwk.x)?;
            let y = b64("y", &jwk.y)?;
            if x.len() != size || y.len() != size {
                return Err("EC coordinates have the wrong length".into());
            }
            let mut point = Vec::with_capacity(1 + 2 * size);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let alg = algs[0];
            // Parsing checks that the point is on the curve (RFC 8725 §3.4).
            let parsed = ParsedPublicKey::new(alg.verification(), &point)
                .map_err(|e| format!("bad EC key: {e}"))?;
            (point, vec![(alg, parsed)])
        }
        Family::Ed25519 => {
            let x = b64("x", &jwk.x)?;
            if x.len() != 32 {
                return Err("Ed25519 key has the wrong length".into());
            }
            let parsed = ParsedPublicKey::new(Alg::EdDSA.verification(), &x)
                .map_err(|e| format!("bad Ed25519 key: {e}"))?;
            (x, vec![(Alg::EdDSA, parsed)])
        }
    };

    let bound: Vec<Alg> = verifiers.iter().map(|(a, _)| *a).collect();
    Ok(Key {
        kid: jwk.kid.clone().map(String::into_boxed_str),
        fingerprint: fingerprint(jwk.kid.as_deref(), family, &bound, &material),
        verifiers,
    })
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let nz = v.iter().position(|b| *b != 0).unwrap_or(v.len());
    v.drain(..nz);
    v
}

fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(first) => (n.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

/// Hashes everything a token check reads from a key. `alg` and `crv` enter through `family` and the
/// bound algorithms; `use` and `key_ops` either admit the key (then they do not change how it
/// verifies) or drop it from the set (then the set's fingerprints change by its absence). An IdP
/// that moves a key from RS256 to PS256 therefore changes the key's identity, and the new binding is
/// installed instead of being mistaken for "nothing changed".
fn fingerprint(kid: Option<&str>, family: Family, algs: &[Alg], material: &[u8]) -> u64 {
    let mut algs: Vec<&str> = algs.iter().map(|a| a.name()).collect();
    algs.sort_unstable();
    let binding = format!("{family:?}\0{}\0", algs.join(","));
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &[
            kid.unwrap_or("").as_bytes(),
            b"\0",
            binding.as_bytes(),
            material,
        ]
        .concat(),
    );
    u64::from_be_bytes(digest.as_ref()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_jwk(bits: usize, extra: &str) -> String {
        // A syntactically valid modulus of the requested size (odd, top bit set); validity as a
        // key is irrelevant to these checks, which stop before any signature is verified.
        let mut n = vec![0xC5u8; bits / 8];
        n[bits / 8 - 1] |= 1;
        format!(
            r#"{{"kty":"RSA","kid":"r1","n":"{}","e":"AQAB"{extra}}}"#,
            URL_SAFE_NO_PAD.encode(&n)
        )
    }

    fn set(keys: &[String]) -> String {
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    #[test]
    fn rsa_key_without_alg_is_bound_to_every_allowed_rsa_algorithm_only() {
        let (ks, skipped) = parse_jwks(set(&[rsa_jwk(2048, "")]).as_bytes(), &Alg::ALL).unwrap();
        assert!(skipped.is_empty());
        let key = &ks.keys[0];
        assert!(key.verifier(Alg::RS256).is_some());
        assert!(key.verifier(Alg::PS512).is_some());
        assert!(key.verifier(Alg::ES256).is_none());
        assert!(key.verifier(Alg::EdDSA).is_none());
    }

    #[test]
    fn key_with_alg_is_bound_to_that_algorithm_alone() {
        let (ks, _) = parse_jwks(
            set(&[rsa_jwk(2048, r#","alg":"PS256""#)]).as_bytes(),
            &Alg::ALL,
        )
        .unwrap();
        assert!(ks.keys[0].verifier(Alg::PS256).is_some());
        assert!(ks.keys[0].verifier(Alg::RS256).is_none());
    }

    #[test]
    fn unsafe_keys_are_skipped_with_a_reason() {
        let cases = [
            (rsa_jwk(1024, ""), "under 2048"),
            (rsa_jwk(2048, r#","use":"enc""#), "use"),
            (rsa_jwk(2048, r#","key_ops":["encrypt"]"#), "key_ops"),
            (rsa_jwk(2048, r#","alg":"ES256""#), "does not fit"),
            (rsa_jwk(2048, r#","alg":"HS256""#), "not supported"),
            (r#"{"kty":"oct","k":"c2VjcmV0"}"#.to_string(), "symmetric"),
            (
                r#"{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}"#.to_string(),
                "length",
            ),
            (
                r#"{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}"#.to_string(),
                "unsupported",
            ),
            (r#"{"kid":7}"#.to_string(), "malformed"),
        ];
        for (jwk, why) in cases {
            let doc = set(&[jwk.clone(), rsa_jwk(2048, "")]);
            let (ks, skipped) = parse_jwks(doc.as_bytes(), &Alg::ALL).unwrap();
            assert_eq!(ks.len(), 1, "{jwk}");
            assert_eq!(skipped.len(), 1, "{jwk}");
            assert!(skipped[0].contains(why), "{jwk}: {}", skipped[0]);
        }
    }

    #[test]
    fn rsa_key_outside_the_allow_list_is_skipped() {
        let doc = set(&[rsa_jwk(2048, "")]);
        assert!(matches!(
            parse_jwks(doc.as_bytes(), &[Alg::ES256]),
            Err(JwksError::NoUsableKey(1))
        ));
    }

    #[test]
    fn garbage_documents_are_errors() {
        for doc in [
            "",
            "<html>",
            "{\"keys\":",
            "{}",
            "[]",
            "{\"keys\":[]}",
            "{\"keys\":{}}",
        ] {
            assert!(parse_jwks(doc.as_bytes(), &Alg::ALL).is_err(), "{doc}");
        }
    }

    #[test]
    fn key_choice_follows_kid_and_refuses_guessing() {
        let a = rsa_jwk(2048, "");
        let b = a.replace("\"r1\"", "\"r2\"");
        let (ks, _) = parse_jwks(set(&[a.clone(), b]).as_bytes(), &Alg::ALL).unwrap();
        assert!(
            matches!(ks.candidates(Some("r2"), Alg::RS256), Candidates::Keys(v) if v.len() == 1)
        );
        assert!(matches!(
            ks.candidates(Some("r3"), Alg::RS256),
            Candidates::UnknownKid
        ));
        assert!(matches!(
            ks.candidates(Some("r1"), Alg::ES256),
            Candidates::UnknownKid
        ));
        assert!(matches!(
            ks.candidates(None, Alg::RS256),
            Candidates::Ambiguous
        ));
        let (one, _) = parse_jwks(set(&[a]).as_bytes(), &Alg::ALL).unwrap();
        assert!(matches!(one.candidates(None, Alg::RS256), Candidates::Keys(v) if v.len() == 1));
    }

    #[test]
    fn fingerprints_change_with_key_material_and_kid() {
        let (a, _) = parse_jwks(set(&[rsa_jwk(2048, "")]).as_bytes(), &Alg::ALL).unwrap();
        let (b, _) = parse_jwks(
            set(&[rsa_jwk(2048, "").replace("r1", "r9")]).as_bytes(),
            &Alg::ALL,
        )
        .unwrap();
        let (c, _) = parse_jwks(set(&[rsa_jwk(3072, "")]).as_bytes(), &Alg::ALL).unwrap();
        assert_ne!(a.fingerprints(), b.fingerprints());
        assert_ne!(a.fingerprints(), c.fingerprints());
        let (a2, _) = parse_jwks(
            set(&[rsa_jwk(2048, r#","use":"sig""#)]).as_bytes(),
            &Alg::ALL,
        )
        .unwrap();
        assert_eq!(a.fingerprints(), a2.fingerprints());
    }

    #[test]
    fn fingerprints_change_with_every_member_that_changes_verification() {
        let fp = |extra: &str, allowed: &[Alg]| {
            let (ks, _) = parse_jwks(set(&[rsa_jwk(2048, extra)]).as_bytes(), allowed).unwrap();
            ks.fingerprints()
        };
        let rs256 = fp(r#","alg":"RS256""#, &Alg::ALL);
        // The same key material and kid, bound to another algorithm: a different key for verification.
        assert_ne!(rs256, fp(r#","alg":"PS256""#, &Alg::ALL));
        assert_ne!(rs256, fp("", &Alg::ALL), "no alg binds every RSA algorithm");
        assert_ne!(fp("", &Alg::ALL), fp("", &[Alg::RS256, Alg::PS256]));
        // Members that admit the key without changing how it verifies leave the identity alone.
        for same in [
            r#","alg":"RS256","use":"sig""#,
            r#","alg":"RS256","key_ops":["verify"]"#,
            r#","alg":"RS256","key_ops":["verify","sign"]"#,
        ] {
            assert_eq!(rs256, fp(same, &Alg::ALL), "{same}");
        }
    }
}
