//! Why a request was not let through: one value per reason, each with exactly one HTTP meaning.
//!
//! The status and error code follow RFC 6750 §3.1: a malformed request is `400 invalid_request`, a
//! missing token is a bare `401` challenge, any token the gate cannot accept is `401 invalid_token`,
//! a valid token without the needed rights is `403 insufficient_scope`. The log reason is precise; the
//! description sent to the client is deliberately generic (no key ids, no timing hints).

/// The outcome of a refused authentication, carried to the one place that builds responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No `Authorization: Bearer` credential at all.
    MissingToken,
    /// The token was sent twice (two headers, or header and query).
    MultipleTokens,
    /// The token was sent in the URL (`?access_token=`), which MCP forbids.
    TokenInQuery,
    /// An `Authorization: Bearer` header that does not follow RFC 6750 §2.1.
    MalformedAuthorization,
    /// The token is larger than `MAX_TOKEN_SIZE`; it was not parsed.
    TokenTooLarge,
    /// Not a compact JWS: wrong segment count, bad base64url, bad JSON, duplicate JSON keys.
    MalformedToken,
    /// A JWE (five segments); the gate accepts signed tokens only.
    EncryptedToken,
    /// `alg` missing, `none`, HMAC, or outside `ALLOWED_ALGORITHMS`.
    UnsupportedAlgorithm,
    /// `typ` not acceptable under `ACCESS_TOKEN_TYPE`.
    BadType,
    /// A `crit` header the gate does not understand (RFC 7515 §4.1.11).
    UnknownCritical,
    /// No key with the token's `kid` fits its algorithm, even after a refresh.
    UnknownKid,
    /// No `kid`, and not exactly one key fits the algorithm.
    AmbiguousKey,
    /// The signature does not verify.
    BadSignature,
    /// A registered claim has the wrong type (`exp` as a string, `aud` as a number, …).
    MalformedClaims,
    /// No `exp`; access tokens must expire (RFC 9068 §2.2).
    MissingExpiry,
    /// `exp` is past (beyond the clock skew).
    Expired,
    /// `nbf` is in the future (beyond the clock skew).
    NotYetValid,
    /// `iat` is in the future (beyond the clock skew).
    IssuedInFuture,
    /// `iss` differs from `EXPECTED_ISSUER`.
    BadIssuer,
    /// `aud` holds none of `EXPECTED_AUDIENCE`.
    BadAudience,
    /// A required scope is missing.
    InsufficientScope,
    /// A `REQUIRED_CLAIMS` rule is not met.
    ClaimRuleFailed,
    /// No signing keys could be loaded from the authorization server.
    KeysUnavailable,
    /// The introspection endpoint said `active: false` (RFC 7662 §2.2).
    InactiveToken,
    /// The introspection endpoint gave no usable answer (down, slow, garbage).
    IntrospectionUnavailable,
    /// The shared DPoP replay store did not answer and `DPOP_REPLAY_REDIS_FAILURE=closed`.
    DpopReplayStoreUnavailable,
    /// `Authorization: DPoP` without a `DPoP` proof header.
    DpopProofMissing,
    /// More than one `DPoP` header (RFC 9449 §4.3 item 1).
    DpopMultipleProofs,
    /// A `DPoP` proof beside an `Authorization: Bearer` token that is not bound.
    DpopProofWithoutScheme,
    /// The proof is larger than `dpop::MAX_PROOF_SIZE`; it was not parsed.
    DpopProofTooLarge,
    /// Not a compact JWS, bad JSON, a `crit`, or `jti`/`htm`/`htu`/`iat` missing or mistyped.
    DpopMalformedProof,
    /// The proof's `typ` is not `dpop+jwt`.
    DpopBadType,
    /// The proof's `alg` is missing, symmetric, `none` or outside `DPOP_ALGORITHMS`.
    DpopUnsupportedAlgorithm,
    /// The proof's `jwk` is missing, private, unusable, or does not fit its `alg`.
    DpopBadKey,
    /// The proof's signature does not verify with its own `jwk`.
    DpopBadSignature,
    /// The proof's `htm` is not the request method.
    DpopWrongMethod,
    /// The proof's `htu` is not the URI of this request.
    DpopWrongUri,
    /// The proof's `iat` is outside `DPOP_IAT_WINDOW` (too old or in the future).
    DpopStale,
    /// The proof's `ath` is missing or is not the hash of the access token.
    DpopWrongAth,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    DpopKeyMismatch,
    /// The proof's `jti` was already used with this key within the window.
    DpopReplayed,
    /// `Authorization: DPoP` with a token that carries no `cnf.jkt`.
    DpopUnboundToken,
    /// A DPoP-bound token (`cnf.jkt`) sent as `Bearer` (RFC 9449 §7.2).
    BoundTokenAsBearer,
    /// A token bound to something the gate does not verify (`cnf.x5t#S256`, RFC 8705; other `cnf`).
    CertificateBoundToken,
    /// A `Bearer` token while `DPOP_REQUIRED=true`.
    BearerNotAccepted,
    /// `DPOP_NONCE=true` and the proof has no `nonce`, or one that is stale or not the gate's.
    DpopNonceRequired,
}

impl Refusal {
    /// Every variant, for building the response table once.
    pub const ALL: [Refusal; 46] = [
        Refusal::MissingToken,
        Refusal::MultipleTokens,
        Refusal::TokenInQuery,
        Refusal::MalformedAuthorization,
        Refusal::TokenTooLarge,
        Refusal::MalformedToken,
        Refusal::EncryptedToken,
        Refusal::UnsupportedAlgorithm,
        Refusal::BadType,
        Refusal::UnknownCritical,
        Refusal::UnknownKid,
        Refusal::AmbiguousKey,
        Refusal::BadSignature,
        Refusal::MalformedClaims,
        Refusal::MissingExpiry,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::IssuedInFuture,
        Refusal::BadIssuer,
        Refusal::BadAudience,
        Refusal::InsufficientScope,
        Refusal::ClaimRuleFailed,
        Refusal::KeysUnavailable,
        Refusal::InactiveToken,
        Refusal::IntrospectionUnavailable,
        Refusal::DpopReplayStoreUnavailable,
        Refusal::DpopProofMissing,
        Refusal::DpopMultipleProofs,
        Refusal::DpopProofWithoutScheme,
        Refusal::DpopProofTooLarge,
        Refusal::DpopMalformedProof,
        Refusal::DpopBadType,
        Refusal::DpopUnsupportedAlgorithm,
        Refusal::DpopBadKey,
        Refusal::DpopBadSignature,
        Refusal::DpopWrongMethod,
        Refusal::DpopWrongUri,
        Refusal::DpopStale,
        Refusal::DpopWrongAth,
        Refusal::DpopKeyMismatch,
        Refusal::DpopReplayed,
        Refusal::DpopUnboundToken,
        Refusal::BoundTokenAsBearer,
        Refusal::CertificateBoundToken,
        Refusal::BearerNotAccepted,
        Refusal::DpopNonceRequired,
    ];

    /// Position in [`Refusal::ALL`].
    pub fn index(self) -> usize {
        Refusal::ALL
            .iter()
            .position(|r| *r == self)
            .expect("listed in ALL")
    }

    /// The machine-readable reason written to the access log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::MissingToken => "missing_token",
            Refusal::MultipleTokens => "multiple_tokens",
            Refusal::TokenInQuery => "token_in_query",
            Refusal::MalformedAuthorization => "malformed_authorization",
            Refusal::TokenTooLarge => "token_too_large",
            Refusal::MalformedToken => "malformed_token",
            Refusal::EncryptedToken => "encrypted_token",
            Refusal::UnsupportedAlgorithm => "unsupported_alg",
            Refusal::BadType => "bad_typ",
            Refusal::UnknownCritical => "unknown_crit",
            Refusal::UnknownKid => "unknown_kid",
            Refusal::AmbiguousKey => "ambiguous_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::MalformedClaims => "malformed_claims",
            Refusal::MissingExpiry => "missing_exp",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::IssuedInFuture => "iat_in_future",
            Refusal::BadIssuer => "bad_issuer",
            Refusal::BadAudience => "bad_audience",
            Refusal::InsufficientScope => "insufficient_scope",
            Refusal::ClaimRuleFailed => "claim_rule_failed",
            Refusal::KeysUnavailable => "keys_unavailable",
            Refusal::InactiveToken => "inactive_token",
            Refusal::IntrospectionUnavailable => "introspection_unavailable",
            Refusal::DpopReplayStoreUnavailable => "dpop_replay_store_unavailable",
            Refusal::DpopProofMissing => "dpop_proof_missing",
            Refusal::DpopMultipleProofs => "dpop_multiple_proofs",
            Refusal::DpopProofWithoutScheme => "dpop_proof_without_scheme",
            Refusal::DpopProofTooLarge => "dpop_proof_too_large",
            Refusal::DpopMalformedProof => "dpop_malformed_proof",
            Refusal::DpopBadType => "dpop_bad_typ",
            Refusal::DpopUnsupportedAlgorithm => "dpop_unsupported_alg",
            Refusal::DpopBadKey => "dpop_bad_key",
            Refusal::DpopBadSignature => "dpop_bad_signature",
            Refusal::DpopWrongMethod => "dpop_wrong_htm",
            Refusal::DpopWrongUri => "dpop_wrong_htu",
            Refusal::DpopStale => "dpop_iat_out_of_window",
            Refusal::DpopWrongAth => "dpop_wrong_ath",
            Refusal::DpopKeyMismatch => "dpop_key_mismatch",
            Refusal::DpopReplayed => "dpop_replayed",
            Refusal::DpopUnboundToken => "dpop_unbound_token",
            Refusal::BoundTokenAsBearer => "bound_token_as_bearer",
            Refusal::CertificateBoundToken => "certificate_bound_token",
            Refusal::BearerNotAccepted => "bearer_not_accepted",
            Refusal::DpopNonceRequired => "dpop_use_nonce",
        }
    }

    /// HTTP status of the refusal.
    pub fn status(self) -> u16 {
        match self {
            Refusal::MultipleTokens
            | Refusal::TokenInQuery
            | Refusal::MalformedAuthorization
            | Refusal::DpopMultipleProofs
            | Refusal::DpopProofWithoutScheme => 400,
            Refusal::InsufficientScope | Refusal::ClaimRuleFailed => 403,
            Refusal::KeysUnavailable
            | Refusal::IntrospectionUnavailable
            | Refusal::DpopReplayStoreUnavailable => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 `error` code; none for a request that simply carried no token (RFC 6750 §3.1).
    pub fn error_code(self) -> Option<&'static str> {
        if self == Refusal::DpopNonceRequired {
            return Some("use_dpop_nonce");
        }
        if self.is_proof_failure() {
            return Some("invalid_dpop_proof");
        }
        match self.status() {
            400 => Some("invalid_request"),
            403 => Some("insufficient_scope"),
            503 => None,
            _ if self == Refusal::MissingToken => None,
            _ => Some("invalid_token"),
        }
    }

    /// The short, generic `error_description` sent to the client.
    pub fn description(self) -> &'static str {
        match self {
            Refusal::MissingToken => "An access token is required",
            Refusal::MultipleTokens => "The request carries more than one access token",
            Refusal::TokenInQuery => {
                "Access tokens must be sent in the Authorization header, not the URL"
            }
            Refusal::MalformedAuthorization => "The Authorization header is malformed",
            Refusal::Expired => "The access token expired",
            Refusal::NotYetValid | Refusal::IssuedInFuture => "The access token is not valid yet",
            Refusal::BadAudience => "The access token was not issued for this resource",
            Refusal::BadIssuer => {
                "The access token was not issued by a trusted authorization server"
            }
            Refusal::InsufficientScope => "The access token lacks a required scope",
            Refusal::ClaimRuleFailed => {
                "The access token does not meet this resource's access policy"
            }
            Refusal::KeysUnavailable => {
                "The authorization server's signing keys are unavailable; retry shortly"
            }
            Refusal::IntrospectionUnavailable => {
                "The authorization server cannot confirm the access token now; retry shortly"
            }
            Refusal::DpopReplayStoreUnavailable => {
                "The DPoP proof cannot be checked for replay now; retry shortly"
            }
            Refusal::DpopMultipleProofs => "The request carries more than one DPoP proof",
            Refusal::DpopProofWithoutScheme => {
                "A DPoP proof must be sent with the DPoP authorization scheme"
            }
            Refusal::DpopUnboundToken => "The access token is not bound to a DPoP key",
            Refusal::BoundTokenAsBearer => {
                "The access token is DPoP-bound: send it with the DPoP scheme and a proof"
            }
            Refusal::CertificateBoundToken => {
                "The access token is bound to a client certificate, which this resource does not verify"
            }
            Refusal::BearerNotAccepted => "This resource accepts DPoP-bound access tokens only",
            Refusal::DpopNonceRequired => "Resend the DPoP proof with the nonce in DPoP-Nonce",
            _ if self.is_proof_failure() => "The DPoP proof is invalid",
            _ => "The access token is invalid",
        }
    }

    /// Whether the DPoP proof itself failed (RFC 9449 §7.1 `invalid_dpop_proof`).
    pub fn is_proof_failure(self) -> bool {
        matches!(
            self,
            Refusal::DpopProofMissing
                | Refusal::DpopProofTooLarge
                | Refusal::DpopMalformedProof
                | Refusal::DpopBadType
                | Refusal::DpopUnsupportedAlgorithm
                | Refusal::DpopBadKey
                | Refusal::DpopBadSignature
                | Refusal::DpopWrongMethod
                | Refusal::DpopWrongUri
                | Refusal::DpopStale
                | Refusal::DpopWrongAth
                | Refusal::DpopKeyMismatch
                | Refusal::DpopReplayed
        )
    }

    /// Whether the refusal is about sender constraint, so the `DPoP` challenge carries its error
    /// (RFC 9449 §7.1) rather than the `Bearer` one.
    pub fn concerns_dpop(self) -> bool {
        self.is_proof_failure()
            || matches!(
                self,
                Refusal::DpopMultipleProofs
                    | Refusal::DpopProofWithoutScheme
                    | Refusal::DpopUnboundToken
                    | Refusal::BoundTokenAsBearer
                    | Refusal::CertificateBoundToken
                    | Refusal::BearerNotAccepted
                    | Refusal::DpopNonceRequired
            )
    }

    /// Whether a refreshed key set could turn this refusal into an acceptance (key rotation).
    pub fn may_be_key_rotation(self) -> bool {
        matches!(
            self,
            Refusal::UnknownKid | Refusal::BadSignature | Refusal::AmbiguousKey
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_distinct_reason_and_a_status_that_never_lets_through() {
        let mut reasons: Vec<_> = Refusal::ALL.iter().map(|r| r.reason()).collect();
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), Refusal::ALL.len());
        for r in Refusal::ALL {
            assert!(matches!(r.status(), 400 | 401 | 403 | 503), "{r:?}");
            assert_eq!(Refusal::ALL[r.index()], r);
        }
    }

    #[test]
    fn descriptions_are_safe_to_quote_in_a_challenge() {
        for r in Refusal::ALL {
            assert!(!r.description().contains(['"', '\\', '\r', '\n']), "{r:?}");
        }
    }

    #[test]
    fn error_codes_follow_rfc_6750() {
        assert_eq!(Refusal::MissingToken.error_code(), None);
        assert_eq!(Refusal::TokenInQuery.error_code(), Some("invalid_request"));
        assert_eq!(Refusal::Expired.error_code(), Some("invalid_token"));
        assert_eq!(
            Refusal::InsufficientScope.error_code(),
            Some("insufficient_scope")
        );
        assert_eq!(Refusal::KeysUnavailable.status(), 503);
    }

    #[test]
    fn dpop_refusals_use_the_rfc_9449_codes() {
        assert_eq!(
            Refusal::DpopReplayed.error_code(),
            Some("invalid_dpop_proof")
        );
        assert_eq!(Refusal::DpopReplayed.status(), 401);
        assert_eq!(
            Refusal::DpopProofMissing.error_code(),
            Some("invalid_dpop_proof")
        );
        assert_eq!(Refusal::DpopMultipleProofs.status(), 400);
        assert_eq!(
            Refusal::DpopMultipleProofs.error_code(),
            Some("invalid_request")
        );
        for r in [
            Refusal::BoundTokenAsBearer,
            Refusal::CertificateBoundToken,
            Refusal::BearerNotAccepted,
            Refusal::DpopUnboundToken,
        ] {
            assert_eq!(
                (r.status(), r.error_code()),
                (401, Some("invalid_token")),
                "{r:?}"
            );
            assert!(r.concerns_dpop(), "{r:?}");
        }
        assert!(!Refusal::Expired.concerns_dpop());
        assert_eq!(
            (
                Refusal::DpopNonceRequired.status(),
                Refusal::DpopNonceRequired.error_code()
            ),
            (401, Some("use_dpop_nonce"))
        );
    }
}
