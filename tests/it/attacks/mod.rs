//! The token attack battery, end to end through a running gate.
//!
//! Every attack here asserts three things: the exact status, the exact `WWW-Authenticate` challenge
//! (RFC 6750 §3), and that the upstream received nothing. The forged tokens are built byte by byte
//! (header and payload JSON as raw strings, signatures as raw bytes) so that no JOSE library can tidy
//! an attack away before it reaches the gate. Requests an HTTP client refuses to send (NUL bytes,
//! absolute-form targets) go over a raw TCP connection.
//!
//! This module holds what every family shares: the [`Battery`] arrangement, the expected answers
//! ([`Expect`]) and the byte-level forging helpers. The attacks, one file per family:
//! - `algorithms`: `alg` confusion (RFC 8725 §2.1, §3.1): `none`, HMAC keyed with the public key,
//!   an algorithm that does not fit the key, an RSA key under 2048 bits;
//! - `key_selection`: which key a token gets checked with: `kid` tricks, duplicate `kid`s,
//!   key-pointing headers (`jku`, `jwk`, `x5u`, ...);
//! - `signatures`: the signature bytes themselves: psychic and malleable ECDSA, EdDSA and RSA values;
//! - `claims`: `exp`/`nbf`/`iat`, `iss`, `aud` and the token type (RFC 9068, RFC 7519 §4.1);
//! - `token_syntax`: how the token is written: `crit`, duplicate members, base64url, segment
//!   counts, size;
//! - `transport`: how it is carried: bytes HTTP forbids, the query or body instead of one
//!   `Authorization: Bearer` header, path tricks and absolute-form targets.

mod algorithms;
mod claims;
mod key_selection;
mod signatures;
mod token_syntax;
mod transport;

use std::time::Duration;

use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact JWS from raw header JSON, raw payload JSON and raw signature bytes.
fn forge(header: &str, payload: &str, signature: &[u8]) -> String {
    format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
}

/// The same token with another signature.
fn with_signature(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", b64(signature))
}

fn signature_of(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.rsplit_once('.').unwrap().1)
        .unwrap()
}

fn signing_input(token: &str) -> &str {
    token.rsplit_once('.').unwrap().0
}

/// What the gate must answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 401 with a bare challenge: no bearer token was found (RFC 6750 §3.1).
    NoToken,
    /// 401 `invalid_token` with this description.
    InvalidToken(&'static str),
    /// 400 `invalid_request` with this description.
    InvalidRequest(&'static str),
}

const INVALID: Expect = Expect::InvalidToken("The access token is invalid");
const EXPIRED: Expect = Expect::InvalidToken("The access token expired");
const NOT_YET_VALID: Expect = Expect::InvalidToken("The access token is not valid yet");
const BAD_AUDIENCE: Expect =
    Expect::InvalidToken("The access token was not issued for this resource");
const BAD_ISSUER: Expect =
    Expect::InvalidToken("The access token was not issued by a trusted authorization server");
const MALFORMED_HEADER: Expect = Expect::InvalidRequest("The Authorization header is malformed");
const TWO_TOKENS: Expect = Expect::InvalidRequest("The request carries more than one access token");
const TOKEN_IN_URL: Expect =
    Expect::InvalidRequest("Access tokens must be sent in the Authorization header, not the URL");

/// The battery's arrangement: one IdP publishing an RSA, two EC and an Ed25519 key; a recording
/// upstream; a gate. (Support's `Stack` has one RSA key only.)
struct Battery {
    idp: TestIdp,
    upstream: TestUpstream,
    gate: TestGate,
    rsa: TestKey,
    ec: TestKey,
    ec384: TestKey,
    ed: TestKey,
}

async fn battery(extra: &[(&str, &str)]) -> Battery {
    let rsa = TestKey::rsa("k1", 2048);
    let ec = TestKey::ec("e1", "ES256");
    let ec384 = TestKey::ec("e2", "ES384");
    let ed = TestKey::ed25519("d1");
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&rsa, &ec, &ec384, &ed]))).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &upstream, extra).await;
    gate.wait_ready().await;
    Battery {
        idp,
        upstream,
        gate,
        rsa,
        ec,
        ec384,
        ed,
    }
}

impl Battery {
    fn claims(&self) -> Value {
        claims(&self.idp.issuer, &self.gate.resource())
    }

    fn claims_with(&self, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut c = self.claims();
        change(c.as_object_mut().unwrap());
        c.to_string()
    }

    fn metadata_url(&self) -> String {
        self.gate.url("/.well-known/oauth-protected-resource/mcp")
    }

    /// The exact challenge the gate must send for `expect`.
    fn challenge(&self, expect: Expect) -> String {
        let metadata = format!("resource_metadata=\"{}\"", self.metadata_url());
        match expect {
            Expect::NoToken => format!("Bearer {metadata}"),
            Expect::InvalidToken(d) => {
                format!("Bearer error=\"invalid_token\", error_description=\"{d}\", {metadata}")
            }
            Expect::InvalidRequest(d) => {
                format!("Bearer error=\"invalid_request\", error_description=\"{d}\", {metadata}")
            }
        }
    }

    /// Sends a POST to the resource with `headers` and asserts the refusal and an untouched upstream.
    async fn refused(&self, case: &str, headers: &[(&str, &str)], expect: Expect) {
        self.refused_at(case, RESOURCE_PATH, headers, "", expect)
            .await
    }

    async fn refused_at(
        &self,
        case: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        expect: Expect,
    ) {
        let a = post(&self.gate.url(path), headers, body).await;
        self.assert_answer(case, a.status, &a.headers, &a.body, expect);
    }

    fn assert_answer(
        &self,
        case: &str,
        status: u16,
        headers: &http::HeaderMap,
        body: &[u8],
        expect: Expect,
    ) {
        // Without a token the challenge has no error code (RFC 6750 §3.1), and the body agrees.
        let (want_status, want_error) = match expect {
            Expect::NoToken => (401, None),
            Expect::InvalidToken(_) => (401, Some("invalid_token")),
            Expect::InvalidRequest(_) => (400, Some("invalid_request")),
        };
        assert_eq!(status, want_status, "{case}");
        let challenges: Vec<_> = headers.get_all("www-authenticate").iter().collect();
        assert_eq!(challenges.len(), 1, "{case}: exactly one challenge");
        assert_eq!(
            challenges[0].to_str().unwrap(),
            self.challenge(expect),
            "{case}"
        );
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["error"].as_str(), want_error, "{case}");
        assert_eq!(self.upstream.count(), 0, "{case}: reached the upstream");
    }

    /// Sends `token` as a bearer token and asserts the refusal.
    async fn token_refused(&self, case: &str, token: &str, expect: Expect) {
        self.refused(case, &[("authorization", &bearer(token))], expect)
            .await
    }

    /// A raw HTTP/1.1 request with `Connection: close`; returns what came back.
    async fn raw(&self, target: &str, headers: &[(&str, &[u8])]) -> RawAnswer {
        let mut request =
            format!("POST {target} HTTP/1.1\r\nHost: {}\r\n", self.gate.addr).into_bytes();
        for (name, value) in headers {
            request.extend_from_slice(name.as_bytes());
            request.extend_from_slice(b": ");
            request.extend_from_slice(value);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"Content-Length: 0\r\nConnection: close\r\n\r\n");
        raw(self.gate.addr, &request, Duration::from_secs(5)).await
    }

    fn assert_raw(&self, case: &str, a: &RawAnswer, expect: Expect) {
        let text = a.text();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("{case}: no response: {text:?}"));
        let mut headers = http::HeaderMap::new();
        for line in head.lines().skip(1) {
            let (k, v) = line.split_once(':').unwrap();
            headers.append(
                http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                v.trim().parse().unwrap(),
            );
        }
        self.assert_answer(case, a.status().unwrap(), &headers, body.as_bytes(), expect);
    }
}

/// DER of `len` for a TLV.
fn der_len(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    [vec![tag], der_len(content.len()), content.to_vec()].concat()
}
