//! Finding the bearer token in a request (RFC 6750 §2), or saying why the request is malformed.
//!
//! Only the `Authorization` header is accepted: MCP forbids tokens in the URL, and the gate never
//! reads request bodies. Pure: headers and query in, token slice or refusal out.

use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::refusal::Refusal;

/// How the access token was presented (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

impl Scheme {
    /// The access-log name of the scheme.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Bearer => "bearer",
            Scheme::Dpop => "dpop",
        }
    }
}

/// The access token, how it was presented, and the DPoP proof that came with it, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub token: &'a str,
    pub scheme: Scheme,
    /// The single `DPoP` header's value (RFC 9449 §4.1).
    pub proof: Option<&'a str>,
}

/// The `DPoP` request header (RFC 9449 §4.1).
pub const DPOP: &str = "dpop";

/// The `DPoP-Nonce` response header (RFC 9449 §8–9).
pub const DPOP_NONCE: &str = "dpop-nonce";

/// Returns the token of the single `Authorization: Bearer` or `Authorization: DPoP` header and the
/// single `DPoP` proof header beside it. Two proofs are refused (RFC 9449 §4.3 item 1), and so is the
/// DPoP scheme without a proof; whether a proof beside a Bearer token is acceptable depends on the
/// token, so that is decided after it is verified ([`super::binding::demand`]).
pub fn credentials<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
) -> Result<Credentials<'a>, Refusal> {
    let (scheme, rest) = authorization(headers, query)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(other_scheme(scheme));
    };
    let token = b64token(rest)?;
    let mut proofs = headers.get_all(DPOP).iter();
    let proof = match (proofs.next(), proofs.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(Refusal::DpopMultipleProofs),
        (Some(v), None) => Some(v.to_str().map_err(|_| Refusal::DpopMalformedProof)?.trim()),
    };
    if scheme == Scheme::Dpop && proof.is_none() {
        return Err(Refusal::DpopProofMissing);
    }
    Ok(Credentials {
        token,
        scheme,
        proof,
    })
}

/// Returns the token of the single `Authorization: Bearer` header.
pub fn extract<'a>(headers: &'a HeaderMap, query: Option<&str>) -> Result<&'a str, Refusal> {
    let (scheme, rest) = authorization(headers, query)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(other_scheme(scheme));
    }
    b64token(rest)
}

/// The scheme of the single `Authorization` header, when it is Bearer or DPoP (for the access log).
pub fn scheme(headers: &HeaderMap) -> Option<Scheme> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let word = value.as_bytes().split(|b| *b == b' ').next()?;
    if word.eq_ignore_ascii_case(b"bearer") {
        Some(Scheme::Bearer)
    } else if word.eq_ignore_ascii_case(b"dpop") {
        Some(Scheme::Dpop)
    } else {
        None
    }
}

/// Whether the request speaks DPoP at all (the scheme, or a `DPoP` header): such a request is
/// answered with the `DPoP` challenge first (RFC 9449 §7.1). Cheap; decides nothing.
pub fn speaks_dpop(headers: &HeaderMap) -> bool {
    headers.contains_key(DPOP) || scheme(headers) == Some(Scheme::Dpop)
}

/// The scheme and the rest of the single `Authorization` header.
fn authorization<'a>(
    headers: &'a HeaderMap,
    query: Option<&str>,
) -> Result<(&'a str, &'a str), Refusal> {
    let in_query = query.is_some_and(has_access_token);
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) if in_query => return Err(Refusal::TokenInQuery),
        (None, _) => return Err(Refusal::MissingToken),
        (Some(_), Some(_)) => return Err(Refusal::MultipleTokens),
        (Some(_), None) if in_query => return Err(Refusal::MultipleTokens),
        (Some(v), None) => v,
    };
    let value = value
        .to_str()
        .map_err(|_| Refusal::MalformedAuthorization)?;
    Ok(value.split_once(' ').unwrap_or((value, "")))
}

/// Another scheme (Basic, …) carries no token the gate takes: answer with the plain challenge so the
/// client learns how to get one (RFC 6750 §3).
fn other_scheme(scheme: &str) -> Refusal {
    if scheme.is_empty() {
        Refusal::MalformedAuthorization
    } else {
        Refusal::MissingToken
    }
}

/// credentials = scheme 1*SP b64token (RFC 6750 §2.1; the same token68 for DPoP, RFC 9449 §7.1).
fn b64token(rest: &str) -> Result<&str, Refusal> {
    let token = rest.trim_start_matches(' ').trim_end_matches([' ', '\t']);
    if is_b64token(token) {
        Ok(token)
    } else {
        Err(Refusal::MalformedAuthorization)
    }
}

/// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    // This runs over every byte of every token on every request (about 1 KiB): a branch-free test
    // over 64-byte blocks lets the compiler use vector compares; stopping at the first bad byte
    // (or a table lookup per byte) does not, and cost several times more.
    !body.is_empty()
        && body
            .as_bytes()
            .chunks(64)
            .all(|block| block.iter().fold(true, |ok, &b| ok & b64token_byte(b)))
}

/// Whether `b` may appear in a b64token before its `=` padding.
#[inline(always)]
fn b64token_byte(b: u8) -> bool {
    let lower = b | 0x20;
    (lower.wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

fn has_access_token(query: &str) -> bool {
    !query.is_empty()
        && url::form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "access_token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn run(values: &[&[u8]], query: Option<&str>) -> Result<String, Refusal> {
        extract(&headers(values), query).map(str::to_string)
    }

    #[test]
    fn b64token_bytes_are_exactly_rfc_6750s() {
        for b in 0..=255u8 {
            let expected =
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
            assert_eq!(b64token_byte(b), expected, "byte {b:#04x}");
        }
        // A bad byte anywhere in a long token, in any 64-byte block, is found.
        let good = "aZ09-._~+/".repeat(30);
        assert!(is_b64token(&good));
        assert!(is_b64token(&format!("{good}==")));
        for at in [0, 1, 63, 64, 65, 150, good.len() - 1] {
            for bad in [b' ', b'=', b'"', b',', 0x7f, 0x80] {
                if bad == b'=' && at == good.len() - 1 {
                    continue; // trailing `=` is padding
                }
                let mut token = good.clone().into_bytes();
                token[at] = bad;
                let token = String::from_utf8_lossy(&token).into_owned();
                assert!(!is_b64token(&token), "{bad:#04x} at {at}");
            }
        }
        assert!(!is_b64token("=="));
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        for v in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER abc.def.ghi",
            "bEaReR abc.def.ghi",
        ] {
            assert_eq!(run(&[v.as_bytes()], None).unwrap(), "abc.def.ghi", "{v}");
        }
    }

    #[test]
    fn token_characters_follow_b64token() {
        assert_eq!(
            run(&[b"Bearer a-b_c~d+e/f.g=="], None).unwrap(),
            "a-b_c~d+e/f.g=="
        );
        assert_eq!(run(&[b"Bearer   spaced"], None).unwrap(), "spaced");
        for v in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer a b",
            b"Bearer Bearer x",
            b"Bearer a\"b",
            b"Bearer ===",
            b"Bearer a,b",
            b"Bearer \xc3\xa9",
            b" Bearer x",
        ] {
            assert_eq!(
                run(&[v], None),
                Err(Refusal::MalformedAuthorization),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn no_token_is_missing_and_other_schemes_carry_none() {
        assert_eq!(run(&[], None), Err(Refusal::MissingToken));
        assert_eq!(
            run(&[b"Basic dXNlcjpwYXNz"], None),
            Err(Refusal::MissingToken)
        );
        assert_eq!(run(&[b"DPoP abc"], None), Err(Refusal::MissingToken));
        assert_eq!(run(&[b"Bearerabc"], None), Err(Refusal::MissingToken));
    }

    fn creds(
        auth: &[&[u8]],
        proofs: &[&[u8]],
    ) -> Result<(Scheme, String, Option<String>), Refusal> {
        let mut h = headers(auth);
        for p in proofs {
            h.append(DPOP, HeaderValue::from_bytes(p).unwrap());
        }
        credentials(&h, None).map(|c| (c.scheme, c.token.to_string(), c.proof.map(str::to_string)))
    }

    #[test]
    fn the_dpop_scheme_is_case_insensitive_and_takes_exactly_one_proof() {
        for v in ["DPoP a.b.c", "dpop a.b.c", "DPOP a.b.c"] {
            assert_eq!(
                creds(&[v.as_bytes()], &[b"p.q.r"]),
                Ok((Scheme::Dpop, "a.b.c".into(), Some("p.q.r".into()))),
                "{v}"
            );
        }
        assert_eq!(creds(&[b"DPoP a.b.c"], &[]), Err(Refusal::DpopProofMissing));
        assert_eq!(
            creds(&[b"DPoP a.b.c"], &[b"p.q.r", b"p.q.r"]),
            Err(Refusal::DpopMultipleProofs)
        );
        assert_eq!(
            creds(&[b"Bearer a.b.c"], &[b"p", b"q"]),
            Err(Refusal::DpopMultipleProofs)
        );
        assert_eq!(
            creds(&[b"DPoP a b"], &[b"p"]),
            Err(Refusal::MalformedAuthorization)
        );
        assert_eq!(creds(&[b"Basic x"], &[b"p"]), Err(Refusal::MissingToken));
    }

    #[test]
    fn a_bearer_token_may_carry_a_proof_for_the_binding_check_to_judge() {
        assert_eq!(
            creds(&[b"Bearer a.b.c"], &[b"p.q.r"]),
            Ok((Scheme::Bearer, "a.b.c".into(), Some("p.q.r".into())))
        );
        assert_eq!(
            creds(&[b"Bearer a.b.c"], &[]),
            Ok((Scheme::Bearer, "a.b.c".into(), None))
        );
    }

    #[test]
    fn a_request_speaks_dpop_by_scheme_or_by_proof() {
        assert!(speaks_dpop(&headers(&[b"dpop x"])));
        let mut h = headers(&[b"Bearer x"]);
        assert!(!speaks_dpop(&h));
        h.append(DPOP, HeaderValue::from_static("p"));
        assert!(speaks_dpop(&h));
        assert!(!speaks_dpop(&headers(&[b"DPoPx"])));
        assert_eq!(scheme(&headers(&[b"bearer x"])), Some(Scheme::Bearer));
        assert_eq!(scheme(&headers(&[b"Basic x"])), None);
        assert_eq!(scheme(&headers(&[b"DPoP x", b"DPoP y"])), None);
    }

    #[test]
    fn a_token_sent_twice_or_in_the_url_is_an_invalid_request() {
        assert_eq!(
            run(&[b"Bearer a", b"Bearer b"], None),
            Err(Refusal::MultipleTokens)
        );
        assert_eq!(
            run(&[b"Bearer a", b"Basic b"], None),
            Err(Refusal::MultipleTokens)
        );
        assert_eq!(
            run(&[], Some("access_token=abc")),
            Err(Refusal::TokenInQuery)
        );
        assert_eq!(
            run(&[], Some("x=1&access%5Ftoken=abc")),
            Err(Refusal::TokenInQuery)
        );
        assert_eq!(
            run(&[b"Bearer a"], Some("access_token=abc")),
            Err(Refusal::MultipleTokens)
        );
        assert_eq!(
            run(&[b"Bearer a"], Some("my_access_token=1&x=access_token")).unwrap(),
            "a"
        );
    }
}
