//! Finding the bearer token in a request (RFC 6750 §2), or saying why the request is malformed.
//!
//! Only the `Authorization` header is accepted: MCP forbids tokens in the URL, and the gate never
//! reads request bodies. Pure: headers and query in, token slice or refusal out.

use http::header::AUTHORIZATION;
use http::HeaderMap;

use super::refusal::Refusal;

/// Returns the token of the single `Authorization: Bearer` header.
pub fn extract<'a>(headers: &'a HeaderMap, query: Option<&str>) -> Result<&'a str, Refusal> {
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
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, DPoP, …) carries no bearer token: answer with the plain challenge
        // so the client learns how to get one (RFC 6750 §3).
        return Err(if scheme.is_empty() {
            Refusal::MalformedAuthorization
        } else {
            Refusal::MissingToken
        });
    }
    // credentials = "Bearer" 1*SP b64token (RFC 6750 §2.1).
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
    // One table lookup per byte: this runs over every byte of every token on every request.
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[b as usize])
}

/// The bytes allowed in a b64token before its `=` padding.
static B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

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
    fn the_table_admits_exactly_the_b64token_characters() {
        let allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/";
        for b in 0..=255u8 {
            assert_eq!(
                B64TOKEN[b as usize],
                allowed.as_bytes().contains(&b),
                "byte {b}"
            );
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
