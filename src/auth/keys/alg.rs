//! JWS algorithms (RFC 7518 §3): the names the gate accepts in a token's `alg` and a JWK's `alg`,
//! the key family each one needs, and the aws-lc-rs parameters that verify it.
//!
//! The set is closed: HMAC and `none` are not algorithms here (RFC 8725 §3.1), and each RSA name is
//! paired with its padding and hash in exactly one table, [`RSA_ALGORITHMS`].

use aws_lc_rs::signature::{self, VerificationAlgorithm};

/// A JWS algorithm the gate can verify. HMAC and `none` are deliberately absent: a resource server
/// verifying an authorization server's tokens must never share a secret with it (RFC 8725 §3.1).
#[allow(clippy::upper_case_acronyms)] // the names are the RFC 7518 identifiers
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The kind of key an algorithm needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Alg {
    pub const ALL: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    /// Exact, case-sensitive match on the RFC 7518 name (`"none"`, `"None"` and `"HS256"` are not algorithms here).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn family(self) -> Family {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                Family::Rsa
            }
            Alg::ES256 => Family::P256,
            Alg::ES384 => Family::P384,
            Alg::EdDSA => Family::Ed25519,
        }
    }

    /// The aws-lc-rs verification parameters. RSA ones refuse moduli under 2048 bits at verify time too;
    /// ECDSA uses the fixed-length `r || s` encoding JWS mandates (RFC 7518 §3.4).
    pub(super) fn verification(self) -> &'static dyn VerificationAlgorithm {
        match (self.rsa_params(), self) {
            (Some(rsa), _) => rsa,
            (None, Alg::ES256) => &signature::ECDSA_P256_SHA256_FIXED,
            (None, Alg::ES384) => &signature::ECDSA_P384_SHA384_FIXED,
            (None, _) => &signature::ED25519,
        }
    }

    /// The RSA parameters of this algorithm, from [`RSA_ALGORITHMS`]; `None` for non-RSA algorithms.
    pub(crate) fn rsa_params(self) -> Option<&'static signature::RsaParameters> {
        RSA_ALGORITHMS
            .iter()
            .find(|(a, _)| *a == self)
            .map(|(_, params)| *params)
    }
}

/// The RSA algorithms (RFC 7518 §3.3, §3.5) and the aws-lc-rs parameters that verify them: the one
/// table of the crate, so a PKCS#1 v1.5 name can never be paired with PSS parameters in one place
/// and not another. All refuse moduli under 2048 bits (RFC 7518 §3.3).
pub(crate) static RSA_ALGORITHMS: [(Alg, &signature::RsaParameters); 6] = [
    (Alg::RS256, &signature::RSA_PKCS1_2048_8192_SHA256),
    (Alg::RS384, &signature::RSA_PKCS1_2048_8192_SHA384),
    (Alg::RS512, &signature::RSA_PKCS1_2048_8192_SHA512),
    (Alg::PS256, &signature::RSA_PSS_2048_8192_SHA256),
    (Alg::PS384, &signature::RSA_PSS_2048_8192_SHA384),
    (Alg::PS512, &signature::RSA_PSS_2048_8192_SHA512),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::parse_jwks;

    #[test]
    fn algorithm_names_are_exact_and_exclude_none_and_hmac() {
        assert_eq!(Alg::from_name("RS256"), Some(Alg::RS256));
        for bad in [
            "none", "None", "NONE", "", "HS256", "HS384", "HS512", "rs256", "ES512",
        ] {
            assert_eq!(Alg::from_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_rsa_table_binds_each_rsa_name_to_its_own_padding_and_hash() {
        let key = crate::test_support::TestKey::rsa("r1", 2048);
        let doc = format!(r#"{{"keys":[{}]}}"#, key.jwk());
        let (ks, _) = parse_jwks(doc.as_bytes(), &Alg::ALL).unwrap();
        let names: Vec<&str> = RSA_ALGORITHMS.iter().map(|(a, _)| a.name()).collect();
        assert_eq!(
            names,
            ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
        );
        for (signed_as, _) in &RSA_ALGORITHMS {
            let sig = key.raw_signature(signed_as.name(), b"input");
            for (checked_as, _) in &RSA_ALGORITHMS {
                let verifier = ks.keys[0].verifier(*checked_as).unwrap();
                assert_eq!(
                    verifier.verify_sig(b"input", &sig).is_ok(),
                    signed_as == checked_as,
                    "signed {signed_as:?}, checked {checked_as:?}"
                );
            }
        }
        assert!(Alg::ES256.rsa_params().is_none());
        assert!(Alg::EdDSA.rsa_params().is_none());
    }
}
