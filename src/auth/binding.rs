//! Sender-constrained tokens: what a token's `cnf` claim binds it to (RFC 7800 §3.1, RFC 9449 §6.1,
//! RFC 8705 §3.1), and whether the way the token was presented honours that binding (RFC 9449 §7.1,
//! §7.2). Pure: the credentials and the binding in, "check this proof against this key" or a refusal out.
//!
//! The rule that matters most is the downgrade: a token bound to a key is refused when it arrives as
//! a plain `Bearer` token, always — otherwise stealing a DPoP-bound token would be as good as stealing
//! a Bearer one. Certificate-bound tokens (`cnf.x5t#S256`) are refused as Bearer too: the gate does not
//! verify client certificates, so it cannot honour that binding.

use serde_json::{Map, Value};

use super::bearer::{Credentials, Scheme};
use super::refusal::Refusal;

/// What an accepted token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// `cnf.jkt`: the RFC 7638 thumbprint of the only key that may sign DPoP proofs for the token.
    Dpop(String),
    /// A confirmation method the gate cannot verify (`x5t#S256`, `jwk`, …): never accepted.
    Unverifiable,
}

/// Reads `cnf`. No `cnf` (or an empty one) is an unbound token; `cnf` with anything but a single
/// string `jkt` is bound to something the gate cannot check; a `cnf` that is not an object, or a
/// `jkt` that is not a non-empty string, is malformed.
pub fn from_claims(claims: &Map<String, Value>) -> Result<Option<Binding>, Refusal> {
    let cnf = match claims.get("cnf") {
        None => return Ok(None),
        Some(Value::Object(cnf)) => cnf,
        Some(_) => return Err(Refusal::MalformedClaims),
    };
    match cnf.get("jkt") {
        Some(Value::String(jkt)) if !jkt.is_empty() && cnf.len() == 1 => {
            Ok(Some(Binding::Dpop(jkt.clone())))
        }
        Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(Binding::Unverifiable)),
        Some(_) => Err(Refusal::MalformedClaims),
        None if cnf.is_empty() => Ok(None),
        None => Ok(Some(Binding::Unverifiable)),
    }
}

/// The proof a request still has to pass: the proof JWT and the thumbprint its key must have.
#[derive(Debug, PartialEq, Eq)]
pub struct ProofDemand<'a> {
    pub proof: &'a str,
    pub jkt: &'a str,
}

/// Decides whether the presentation fits the binding: `Ok(None)` for a Bearer token that may be used
/// as one, `Ok(Some(_))` for a DPoP-bound token whose proof must now be checked — on every request,
/// whatever the verified-token cache remembers about the token itself.
pub fn demand<'a>(
    credentials: &Credentials<'a>,
    binding: Option<&'a Binding>,
    bearer_accepted: bool,
) -> Result<Option<ProofDemand<'a>>, Refusal> {
    match (credentials.scheme, binding) {
        (Scheme::Bearer, Some(Binding::Dpop(_))) => Err(Refusal::BoundTokenAsBearer),
        (Scheme::Bearer, Some(Binding::Unverifiable)) => Err(Refusal::CertificateBoundToken),
        (Scheme::Bearer, None) if credentials.proof.is_some() => {
            Err(Refusal::DpopProofWithoutScheme)
        }
        (Scheme::Bearer, None) if !bearer_accepted => Err(Refusal::BearerNotAccepted),
        (Scheme::Bearer, None) => Ok(None),
        (Scheme::Dpop, Some(Binding::Dpop(jkt))) => Ok(Some(ProofDemand {
            proof: credentials.proof.ok_or(Refusal::DpopProofMissing)?,
            jkt,
        })),
        (Scheme::Dpop, _) => Err(Refusal::DpopUnboundToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn binding(claims: Value) -> Result<Option<Binding>, Refusal> {
        from_claims(claims.as_object().unwrap())
    }

    #[test]
    fn cnf_jkt_binds_to_a_dpop_key_and_anything_else_is_unverifiable() {
        assert_eq!(binding(json!({})), Ok(None));
        assert_eq!(binding(json!({"cnf": {}})), Ok(None));
        assert_eq!(
            binding(json!({"cnf": {"jkt": "abc"}})),
            Ok(Some(Binding::Dpop("abc".into())))
        );
        for cnf in [
            json!({"x5t#S256": "abc"}),
            json!({"jwk": {"kty": "EC"}}),
            json!({"jkt": "abc", "x5t#S256": "def"}),
        ] {
            assert_eq!(
                binding(json!({ "cnf": cnf })),
                Ok(Some(Binding::Unverifiable)),
                "{cnf}"
            );
        }
        for bad in [
            json!("abc"),
            json!(1),
            json!({"jkt": 1}),
            json!({"jkt": ""}),
        ] {
            assert_eq!(
                binding(json!({ "cnf": bad })),
                Err(Refusal::MalformedClaims),
                "{bad}"
            );
        }
    }

    fn creds(scheme: Scheme, proof: Option<&'static str>) -> Credentials<'static> {
        Credentials {
            token: "t",
            scheme,
            proof,
        }
    }

    #[test]
    fn a_bound_token_is_never_accepted_as_bearer() {
        let dpop = Binding::Dpop("k".into());
        for bearer_accepted in [true, false] {
            for proof in [None, Some("p")] {
                assert_eq!(
                    demand(&creds(Scheme::Bearer, proof), Some(&dpop), bearer_accepted),
                    Err(Refusal::BoundTokenAsBearer)
                );
                assert_eq!(
                    demand(
                        &creds(Scheme::Bearer, proof),
                        Some(&Binding::Unverifiable),
                        bearer_accepted
                    ),
                    Err(Refusal::CertificateBoundToken)
                );
            }
        }
    }

    #[test]
    fn the_dpop_scheme_demands_a_proof_from_the_bound_key() {
        let dpop = Binding::Dpop("k".into());
        assert_eq!(
            demand(&creds(Scheme::Dpop, Some("p")), Some(&dpop), true),
            Ok(Some(ProofDemand {
                proof: "p",
                jkt: "k"
            }))
        );
        assert_eq!(
            demand(&creds(Scheme::Dpop, None), Some(&dpop), true),
            Err(Refusal::DpopProofMissing)
        );
        for b in [None, Some(&Binding::Unverifiable)] {
            assert_eq!(
                demand(&creds(Scheme::Dpop, Some("p")), b, true),
                Err(Refusal::DpopUnboundToken)
            );
        }
    }

    #[test]
    fn an_unbound_bearer_token_passes_unless_dpop_is_required_or_a_proof_rides_along() {
        assert_eq!(demand(&creds(Scheme::Bearer, None), None, true), Ok(None));
        assert_eq!(
            demand(&creds(Scheme::Bearer, None), None, false),
            Err(Refusal::BearerNotAccepted)
        );
        assert_eq!(
            demand(&creds(Scheme::Bearer, Some("p")), None, true),
            Err(Refusal::DpopProofWithoutScheme)
        );
    }
}
