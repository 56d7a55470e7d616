//! Request framing the gate refuses before routing: the shapes of `Content-Length` and
//! `Transfer-Encoding` that two HTTP parsers on one path may delimit differently (RFC 9112 §6), which
//! is what request smuggling between a front proxy and the gate feeds on.

use http::header::{self, HeaderMap};

/// Why a request's body framing is ambiguous, if it is (RFC 9112 §6): the shapes two HTTP parsers on
/// one path may delimit differently, which is what request smuggling between a front proxy and the
/// gate feeds on. hyper refuses malformed or conflicting lengths and a last coding other than
/// `chunked`; it lets through, and this refuses, a `Transfer-Encoding` that is not exactly one
/// `chunked` coding (`identity, chunked`, `gzip, chunked`, two fields): the gate decodes only
/// `chunked` and would forward the rest re-framed. hyper also resolves `Transfer-Encoding` with
/// `Content-Length` (chunked wins, the length is dropped, the connection closes after the answer)
/// and merges equal duplicate lengths before the gate sees them; the length checks here are defence
/// in depth should that ever change.
pub fn ambiguous_framing(headers: &HeaderMap) -> Option<&'static str> {
    let lengths = headers.get_all(header::CONTENT_LENGTH).iter().count();
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    let coding = codings.next();
    if coding.is_some() && lengths > 0 {
        return Some("both Transfer-Encoding and Content-Length");
    }
    if lengths > 1 {
        return Some("more than one Content-Length");
    }
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        if length.is_empty() || !length.as_bytes().iter().all(u8::is_ascii_digit) {
            return Some("a Content-Length that is not a single number");
        }
    }
    match (coding, codings.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => Some("more than one Transfer-Encoding"),
        (Some(te), None) if te.as_bytes().eq_ignore_ascii_case(b"chunked") => None,
        (Some(_), None) => Some("a Transfer-Encoding other than chunked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    #[test]
    fn framing_is_ambiguous_unless_it_is_one_length_or_one_chunked_coding() {
        let framing = |fields: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in fields {
                h.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            ambiguous_framing(&h)
        };
        for fine in [
            &[][..],
            &[("content-length", "0")],
            &[("content-length", "1024")],
            &[("transfer-encoding", "chunked")],
            &[("transfer-encoding", "Chunked")],
        ] {
            assert_eq!(framing(fine), None, "{fine:?}");
        }
        for ambiguous in [
            &[("content-length", "5"), ("transfer-encoding", "chunked")][..],
            &[("transfer-encoding", "chunked"), ("content-length", "5")],
            &[("content-length", "5"), ("content-length", "5")],
            &[("content-length", "5, 5")],
            &[("content-length", "+5")],
            &[("content-length", "")],
            &[("transfer-encoding", "identity, chunked")],
            &[("transfer-encoding", "gzip, chunked")],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
            &[("transfer-encoding", "identity")],
        ] {
            assert!(framing(ambiguous).is_some(), "{ambiguous:?}");
        }
    }
}
