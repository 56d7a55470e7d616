//! The token attack battery, end to end through a running gate.
//!
//! Every attack here asserts three things: the exact status, the exact `WWW-Authenticate` challenge
//! (RFC 6750 §3), and that the upstream received nothing. The forged tokens are built byte by byte
//! (header and payload JSON as raw strings, signatures as raw bytes) so that no JOSE library can tidy
//! an attack away before it reaches the gate. Requests an HTTP client refuses to send (NUL bytes,
//! absolute-form targets) go over a raw TCP connection.

use std::time::Duration;

use crate::support::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::Method;
use serde_json::{json, Value};

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

#[tokio::test]
async fn unsigned_tokens_are_refused_whatever_the_alg_spelling() {
    let s = battery(&[]).await;
    let payload = s.claims().to_string();
    let real = signature_of(&s.rsa.token(&s.claims()));
    for alg in [
        r#""none""#,
        r#""None""#,
        r#""NONE""#,
        r#""nOnE""#,
        r#""""#,
        r#"" RS256""#,
        r#""RS256 ""#,
        r#""rs256""#,
        "null",
        "0",
        r#"["RS256"]"#,
        r#"{"name":"RS256"}"#,
    ] {
        let header = format!(r#"{{"alg":{alg},"typ":"at+jwt","kid":"k1"}}"#);
        let unsigned = forge(&header, &payload, b"");
        s.token_refused(&format!("alg {alg}, empty signature"), &unsigned, INVALID)
            .await;
        // With the signature of a genuine token over other bytes attached.
        let signed = forge(&header, &payload, &real);
        s.token_refused(&format!("alg {alg}, a real signature"), &signed, INVALID)
            .await;
    }
    let no_alg = forge(r#"{"typ":"at+jwt","kid":"k1"}"#, &payload, b"");
    s.token_refused("no alg at all", &no_alg, INVALID).await;
    // Signed for real by the right key, but claiming to be unsigned.
    let sneaky = s.rsa.sign(r#"{"alg":"none","kid":"k1"}"#, &payload);
    s.token_refused("alg none over a valid RS256 signature", &sneaky, INVALID)
        .await;
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

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

#[tokio::test]
async fn hmac_keyed_with_the_rsa_public_key_is_refused_in_every_encoding() {
    let s = battery(&[]).await;
    let pkcs1 = s.rsa.public_der();
    // SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { 0, PKCS#1 } }.
    let algorithm = der(
        0x30,
        &[
            der(
                0x06,
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
            ),
            vec![0x05, 0x00],
        ]
        .concat(),
    );
    let spki = der(
        0x30,
        &[algorithm, der(0x03, &[&[0u8][..], &pkcs1].concat())].concat(),
    );
    let jwk = s.rsa.jwk();
    let n_b64 = jwk["n"].as_str().unwrap().to_string();
    let n = URL_SAFE_NO_PAD.decode(&n_b64).unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("SPKI PEM", pem("PUBLIC KEY", &spki).into_bytes()),
        (
            "SPKI PEM without final newline",
            pem("PUBLIC KEY", &spki).trim_end().as_bytes().to_vec(),
        ),
        ("PKCS#1 PEM", pem("RSA PUBLIC KEY", &pkcs1).into_bytes()),
        ("SPKI DER", spki.clone()),
        ("PKCS#1 DER", pkcs1.clone()),
        ("JWK n bytes", n),
        ("JWK n text", n_b64.into_bytes()),
        ("JWK JSON", jwk.to_string().into_bytes()),
    ];
    let payload = s.claims().to_string();
    for (hs, algorithm) in [
        ("HS256", aws_lc_rs::hmac::HMAC_SHA256),
        ("HS384", aws_lc_rs::hmac::HMAC_SHA384),
        ("HS512", aws_lc_rs::hmac::HMAC_SHA512),
    ] {
        for (what, secret) in &secrets {
            for header in [
                format!(r#"{{"alg":"{hs}","typ":"at+jwt","kid":"k1"}}"#),
                format!(r#"{{"alg":"{hs}","typ":"at+jwt"}}"#),
            ] {
                let input = format!("{}.{}", b64(&header), b64(&payload));
                let key = aws_lc_rs::hmac::Key::new(algorithm, secret);
                let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
                let token = format!("{input}.{}", b64(tag.as_ref()));
                s.token_refused(
                    &format!("{hs} keyed with {what}: {header}"),
                    &token,
                    INVALID,
                )
                .await;
            }
        }
    }
}

#[tokio::test]
async fn a_known_kid_with_another_keys_signature_is_refused() {
    let s = battery(&[]).await;
    let c = s.claims();
    let impostors = [
        TestKey::rsa("k1", 2048),
        TestKey::ec("e1", "ES256"),
        TestKey::ec("e2", "ES384"),
        TestKey::ed25519("d1"),
    ];
    for key in &impostors {
        s.token_refused(
            &format!("impostor {} {}", key.kid, key.alg),
            &key.token(&c),
            INVALID,
        )
        .await;
    }
    // A genuine signature transplanted onto other claims.
    let genuine = s.rsa.token(&c);
    let mut greedy = c.clone();
    greedy["scope"] = json!("mcp:tools admin");
    let transplanted = with_signature(&s.rsa.token(&greedy), &signature_of(&genuine));
    s.token_refused("transplanted signature", &transplanted, INVALID)
        .await;
    // A genuine ES256 signature presented under the RSA kid and the other way round.
    let es = s.ec.token(&c);
    let header = r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#;
    let moved = forge(header, &c.to_string(), &signature_of(&es));
    s.token_refused("EC signature under the RSA kid", &moved, INVALID)
        .await;
}

#[tokio::test]
async fn hostile_kid_values_are_refused() {
    let s = battery(&[]).await;
    let payload = s.claims().to_string();
    let long = "k".repeat(10 * 1024);
    let kids = [
        json!("../../../../etc/passwd"),
        json!("..%2F..%2Fjwks"),
        json!("/dev/zero"),
        json!("k1' OR '1'='1"),
        json!("k1\"; DROP TABLE keys; --"),
        json!("k1\u{0}"),
        json!("k1 "),
        json!("K1"),
        json!("k1\n"),
        json!("кл1"),
        json!(long),
        json!(""),
    ];
    for kid in &kids {
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": kid}).to_string();
        let token = s.rsa.sign(&header, &payload);
        let shown: String = kid.to_string().chars().take(40).collect();
        s.token_refused(&format!("kid {shown}"), &token, INVALID)
            .await;
    }
    for kid in ["1", "true", "null", r#"["k1"]"#, r#"{"kid":"k1"}"#, "1e3"] {
        let header = format!(r#"{{"alg":"RS256","typ":"at+jwt","kid":{kid}}}"#);
        let token = s.rsa.sign(&header, &payload);
        s.token_refused(&format!("kid {kid}"), &token, INVALID)
            .await;
    }
}

#[tokio::test]
async fn duplicate_kids_in_the_jwks_admit_only_the_published_keys() {
    // Two different keys under one kid (an IdP mid-rotation that reused the id). Both are the IdP's
    // own keys, so tokens from either verify; a third key claiming the kid does not.
    let a = TestKey::rsa("dup", 2048);
    let b = TestKey::rsa("dup", 2048);
    let idp = TestIdp::start(JwksBehaviour::Serve(jwks(&[&a, &b]))).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(&idp, &upstream, &[]).await;
    gate.wait_ready().await;
    let c = claims(&idp.issuer, &gate.resource());
    for (key, status) in [(&a, 200), (&b, 200), (&TestKey::rsa("dup", 2048), 401)] {
        let answer = post(
            &gate.resource(),
            &[("authorization", &bearer(&key.token(&c)))],
            "",
        )
        .await;
        assert_eq!(answer.status, status);
    }
    assert_eq!(
        upstream.count(),
        2,
        "only the two published keys got through"
    );
    // Without a kid, two fitting keys is ambiguous: refused rather than guessed.
    let no_kid = a.sign(r#"{"alg":"RS256","typ":"at+jwt"}"#, &c.to_string());
    let answer = post(&gate.resource(), &[("authorization", &bearer(&no_kid))], "").await;
    assert_eq!(answer.status, 401);
    assert_eq!(upstream.count(), 2);
}

#[tokio::test]
async fn key_pointing_headers_never_supply_the_key() {
    let s = battery(&[]).await;
    let attacker = TestKey::rsa("attacker", 2048);
    let attacker_ec = TestKey::ec("attacker-ec", "ES256");
    let payload = s.claims().to_string();
    let spki_like = STANDARD.encode(attacker.public_der());
    let pointers = [
        r#""jku":"https://attacker.example/jwks.json""#.to_string(),
        format!(r#""jku":"{}/jwks""#, s.idp.issuer),
        r#""x5u":"https://attacker.example/cert.pem""#.to_string(),
        format!(r#""x5c":["{spki_like}"]"#),
        format!(r#""jwk":{}"#, attacker.jwk()),
        format!(r#""jwk":{}"#, attacker_ec.jwk()),
    ];
    for pointer in &pointers {
        for (key, alg, kid) in [
            (&attacker, "RS256", Some("attacker")),
            (&attacker, "RS256", Some("k1")),
            (&attacker, "RS256", None),
            (&attacker_ec, "ES256", Some("attacker-ec")),
            (&attacker_ec, "ES256", Some("e1")),
        ] {
            let kid = kid.map(|k| format!(r#","kid":"{k}""#)).unwrap_or_default();
            let header = format!(r#"{{"alg":"{alg}","typ":"at+jwt"{kid},{pointer}}}"#);
            let token = key.sign(&header, &payload);
            let shown: String = header.chars().take(120).collect();
            s.token_refused(&shown, &token, INVALID).await;
        }
    }
}

/// Big-endian `a - b` for equal-length unsigned integers with `a >= b`.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

/// Little-endian `a + b` (Ed25519 scalars are little-endian).
fn add_le(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in 0..a.len() {
        let s = a[i] as u16 + b[i] as u16 + carry;
        out[i] = s as u8;
        carry = s >> 8;
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const P256_ORDER: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
const P384_ORDER: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973";
/// The order of the Ed25519 group, little-endian.
const ED25519_ORDER_LE: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

/// DER `ECDSA-Sig-Value` of a fixed-length `r || s` (the form JWS forbids, RFC 7518 §3.4).
fn ecdsa_der(fixed: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let v = if v.first().is_some_and(|b| b & 0x80 != 0) {
            [vec![0], v].concat()
        } else {
            v
        };
        der(0x02, &v)
    };
    let (r, s) = fixed.split_at(fixed.len() / 2);
    der(0x30, &[int(r), int(s)].concat())
}

#[tokio::test]
async fn psychic_and_malformed_ecdsa_signatures_are_refused() {
    let s = battery(&[]).await;
    let c = s.claims();
    for (key, order) in [(&s.ec, hex(P256_ORDER)), (&s.ec384, hex(P384_ORDER))] {
        let size = order.len();
        let token = key.token(&c);
        let genuine = signature_of(&token);
        let (r, sig_s) = genuine.split_at(size);
        let zero = vec![0u8; size];
        let mut one = vec![0u8; size];
        one[size - 1] = 1;
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("r=0, s=0", [&zero[..], &zero].concat()),
            ("r=0, s genuine", [&zero[..], sig_s].concat()),
            ("r genuine, s=0", [r, &zero[..]].concat()),
            ("r=n, s=n", [&order[..], &order].concat()),
            ("r=n, s genuine", [&order[..], sig_s].concat()),
            ("r genuine, s=n", [r, &order[..]].concat()),
            ("r=1, s=1", [&one[..], &one].concat()),
            ("all ones", vec![0xff; 2 * size]),
            ("one byte short", genuine[..2 * size - 1].to_vec()),
            ("one byte long", [&genuine[..], &[0]].concat()),
            ("leading zero added", [&[0u8][..], &genuine].concat()),
            ("empty", vec![]),
            ("DER-encoded genuine signature", ecdsa_der(&genuine)),
            (
                "high-S twin of a forged signature",
                [&[7u8; 1][..], &r[1..], &sub_be(&order, sig_s)].concat(),
            ),
        ];
        for (what, sig) in bad {
            s.token_refused(
                &format!("{} {what}", key.alg),
                &with_signature(&token, &sig),
                INVALID,
            )
            .await;
        }
    }
    // Ed25519: the all-zero signature, S pushed out of range by adding the group order (the classic
    // malleability), and wrong lengths.
    let token = s.ed.token(&c);
    let genuine = signature_of(&token);
    let (big_r, small_s) = genuine.split_at(32);
    let s_plus_l = add_le(small_s, &hex(ED25519_ORDER_LE));
    for (what, sig) in [
        ("all zero", vec![0u8; 64]),
        ("S + L", [big_r, &s_plus_l].concat()),
        ("63 bytes", genuine[..63].to_vec()),
        ("65 bytes", [&genuine[..], &[0]].concat()),
    ] {
        s.token_refused(
            &format!("EdDSA {what}"),
            &with_signature(&token, &sig),
            INVALID,
        )
        .await;
    }
    // RSA: zero, one, the modulus itself, wrong lengths, longer than any allowed key.
    let token = s.rsa.token(&c);
    let genuine = signature_of(&token);
    let n = URL_SAFE_NO_PAD
        .decode(s.rsa.jwk()["n"].as_str().unwrap())
        .unwrap();
    let mut one = vec![0u8; 256];
    one[255] = 1;
    for (what, sig) in [
        ("zero", vec![0u8; 256]),
        ("one", one),
        ("the modulus", n.clone()),
        ("modulus minus genuine", sub_be(&n, &genuine)),
        ("255 bytes", genuine[1..].to_vec()),
        ("257 bytes", [&[0u8][..], &genuine].concat()),
        ("empty", vec![]),
        ("2 KiB", vec![0x5a; 2048]),
    ] {
        s.token_refused(
            &format!("RS256 {what}"),
            &with_signature(&token, &sig),
            INVALID,
        )
        .await;
    }
}

/// ECDSA signatures are malleable: if `(r, s)` verifies, so does `(r, n - s)`. The high-S twin of a
/// genuine signature is therefore still a signature by the IdP's key over the very same bytes — not
/// a forgery — and the gate, which keeps no replay cache keyed on signature bytes, accepts it like
/// the original. What must never pass is a high-S form of anything the IdP did not sign (see
/// `psychic_and_malformed_ecdsa_signatures_are_refused`).
#[tokio::test]
async fn the_high_s_twin_of_a_genuine_ecdsa_signature_is_accepted_as_no_forgery() {
    let s = battery(&[]).await;
    for (key, order) in [(&s.ec, hex(P256_ORDER)), (&s.ec384, hex(P384_ORDER))] {
        let token = key.token(&s.claims());
        let genuine = signature_of(&token);
        let (r, low) = genuine.split_at(order.len());
        let twin = with_signature(&token, &[r, &sub_be(&order, low)].concat());
        assert_ne!(twin, token);
        for t in [&token, &twin] {
            let a = post(&s.gate.resource(), &[("authorization", &bearer(t))], "").await;
            assert_eq!(a.status, 200, "{}", key.alg);
        }
    }
    assert_eq!(s.upstream.count(), 4);
}

#[tokio::test]
async fn an_algorithm_that_does_not_fit_the_named_key_is_refused() {
    let s = battery(&[]).await;
    let payload = s.claims().to_string();
    let cases = [
        // (signer, header): real signatures by the right key, under a header naming another family.
        (&s.ec, r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#),
        (&s.rsa, r#"{"alg":"RS256","typ":"at+jwt","kid":"e1"}"#),
        (&s.rsa, r#"{"alg":"RS256","typ":"at+jwt","kid":"d1"}"#),
        (&s.ed, r#"{"alg":"EdDSA","typ":"at+jwt","kid":"e1"}"#),
        (&s.ec384, r#"{"alg":"ES384","typ":"at+jwt","kid":"e1"}"#),
        (&s.ec, r#"{"alg":"ES256","typ":"at+jwt","kid":"e2"}"#),
        (&s.ec, r#"{"alg":"ES512","typ":"at+jwt","kid":"e1"}"#),
        (&s.ed, r#"{"alg":"Ed25519","typ":"at+jwt","kid":"d1"}"#),
        (&s.ed, r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#),
    ];
    for (key, header) in cases {
        let token = key.sign(header, &payload);
        s.token_refused(&format!("{} key, {header}", key.alg), &token, INVALID)
            .await;
    }
    // RS256 and PS256 signatures are not interchangeable.
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"PS256","typ":"at+jwt","kid":"k1"}"#),
        b64(&payload)
    );
    let pkcs1 = s.rsa.raw_signature("RS256", input.as_bytes());
    s.token_refused(
        "PKCS#1 v1.5 signature under PS256",
        &format!("{input}.{}", b64(pkcs1)),
        INVALID,
    )
    .await;
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"RS256","typ":"at+jwt","kid":"k1"}"#),
        b64(&payload)
    );
    let pss = s.rsa.raw_signature("PS256", input.as_bytes());
    s.token_refused(
        "PSS signature under RS256",
        &format!("{input}.{}", b64(pss)),
        INVALID,
    )
    .await;
}

/// A 1024-bit RSA key, made once with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`
/// (aws-lc refuses to generate or load one), and a token it signed with `openssl dgst -sha256 -sign`:
/// header `{"alg":"RS256","typ":"at+jwt","kid":"weak-1024"}`, claims `iss` https://idp.example.com,
/// `aud` https://mcp.example.com/mcp, `exp` 4102444800 (2100). The private key was thrown away.
const WEAK_N: &str = "0fmXF2KeRm9_47pflZaflg3JZlhBN-uZ6HlBkWae1vNIXIAjcBkRHQUG20j1sssHqEkJXxX3qkcjmuD8EAJWd-Eoe9EWT6MbHbX_bpjJhcA688RHgTFXCkxbn3GHtixVesJRlMH97aHBb-ll0-SQ11Cqne9Z5bPUo-Mil9y7ty8";
const WEAK_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IndlYWstMTAyNCJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsImF1ZCI6Imh0dHBzOi8vbWNwLmV4YW1wbGUuY29tL21jcCIsInN1YiI6Im1hbGxvcnkiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.dakzTYxWvb_-xasaXhzowrDPxXekTnE0mJIxaa2m2Ju5R580M9Dto40Ig0cVtZTuVVI2vFci6Utysf21w2j1QNvOI5BtGW723gD48KMLHXImhGgWuwUlz7kovTuRHjBvZZU7DXg6iBp8C-CCVKthtrSkKMUkQChsnt9c73wUxiQ";

#[tokio::test]
async fn an_rsa_key_under_2048_bits_in_the_jwks_is_never_used() {
    // The fixture really is a valid signature by the weak key (checked with aws-lc's legacy verifier).
    let n = URL_SAFE_NO_PAD.decode(WEAK_N).unwrap();
    assert_eq!(n.len() * 8, 1024);
    let weak_public = aws_lc_rs::signature::RsaPublicKeyComponents {
        n: &n[..],
        e: &[1u8, 0, 1][..],
    };
    weak_public
        .verify(
            &aws_lc_rs::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            signing_input(WEAK_TOKEN).as_bytes(),
            &signature_of(WEAK_TOKEN),
        )
        .expect("the fixture token is validly signed by the 1024-bit key");

    let weak_jwk =
        json!({"kty": "RSA", "kid": "weak-1024", "use": "sig", "n": WEAK_N, "e": "AQAB"});
    let strong = TestKey::rsa("k1", 2048);
    let doc = json!({"keys": [weak_jwk, strong.jwk()]}).to_string();
    let idp = TestIdp::start(JwksBehaviour::Serve(doc)).await;
    let upstream = TestUpstream::start().await;
    let fixed = [
        ("EXPECTED_ISSUER", "https://idp.example.com"),
        ("JWKS_URI", &format!("{}/jwks", idp.issuer)),
    ];
    let gate = TestGate::start(
        &idp,
        &upstream,
        &[
            fixed[0],
            fixed[1],
            ("EXPECTED_AUDIENCE", "https://mcp.example.com/mcp"),
        ],
    )
    .await;
    gate.wait_ready().await;
    let a = post(
        &gate.resource(),
        &[("authorization", &bearer(WEAK_TOKEN))],
        "",
    )
    .await;
    assert_eq!(a.status, 401);
    assert!(a
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer error=\"invalid_token\""));
    assert_eq!(upstream.count(), 0);
    // Control: the same claims signed by the 2048-bit key pass, so only the key size refused it.
    let claims = json!({"iss": "https://idp.example.com", "aud": "https://mcp.example.com/mcp",
                        "sub": "mallory", "exp": 4102444800u64, "iat": 1700000000});
    let ok = strong.token(&claims);
    let a = post(&gate.resource(), &[("authorization", &bearer(&ok))], "").await;
    assert_eq!(a.status, 200);
    assert_eq!(upstream.count(), 1);

    // A JWKS holding only the weak key holds no usable key: the gate stays unready and answers 503.
    let only_weak = json!({"keys": [weak_jwk]}).to_string();
    let idp = TestIdp::start(JwksBehaviour::Serve(only_weak)).await;
    let upstream = TestUpstream::start().await;
    let gate = TestGate::start(
        &idp,
        &upstream,
        &[
            ("EXPECTED_ISSUER", "https://idp.example.com"),
            ("JWKS_URI", &format!("{}/jwks", idp.issuer)),
            ("EXPECTED_AUDIENCE", "https://mcp.example.com/mcp"),
        ],
    )
    .await;
    let a = post(
        &gate.resource(),
        &[("authorization", &bearer(WEAK_TOKEN))],
        "",
    )
    .await;
    assert_eq!(a.status, 503);
    assert_eq!(get(&gate.url("/readyz"), &[]).await.status, 503);
    assert_eq!(upstream.count(), 0);
}

#[tokio::test]
async fn time_claims_are_enforced_and_must_be_numbers() {
    let s = battery(&[]).await;
    let t = now();
    let cases: Vec<(&str, Value, Expect)> = vec![
        ("expired an hour ago", json!(t - 3600), EXPIRED),
        ("expired beyond the skew", json!(t - 61), EXPIRED),
        ("expired, as a float", json!(t as f64 - 100.5), EXPIRED),
        ("exp 0", json!(0), EXPIRED),
        ("exp as a string", json!((t + 300).to_string()), INVALID),
        ("exp as an ISO date", json!("2100-01-01T00:00:00Z"), INVALID),
        ("exp negative", json!(-1), INVALID),
        ("exp negative float", json!(-0.5), INVALID),
        ("exp true", json!(true), INVALID),
        ("exp array", json!([t + 300]), INVALID),
        ("exp object", json!({"$date": t + 300}), INVALID),
        ("exp null", Value::Null, INVALID),
    ];
    for (case, exp, expect) in cases {
        let payload = s.claims_with(|c| {
            c.insert("exp".into(), exp.clone());
        });
        s.token_refused(
            case,
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            expect,
        )
        .await;
    }
    let missing = s.claims_with(|c| {
        c.remove("exp");
    });
    s.token_refused(
        "exp missing",
        &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &missing),
        INVALID,
    )
    .await;
    // Numbers too large for an f64 are not JSON numbers serde accepts: malformed, not "forever".
    let huge = s
        .claims_with(|c| {
            c.insert("exp".into(), json!(98765432109u64));
        })
        .replacen("98765432109", "1e400", 1);
    assert!(huge.contains("1e400"));
    s.token_refused(
        "exp 1e400",
        &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &huge),
        INVALID,
    )
    .await;
    for (case, claim, value, expect) in [
        ("nbf in an hour", "nbf", json!(t + 3600), NOT_YET_VALID),
        ("iat in an hour", "iat", json!(t + 3600), NOT_YET_VALID),
        ("nbf as a string", "nbf", json!("0"), INVALID),
        ("iat as a string", "iat", json!("0"), INVALID),
    ] {
        let payload = s.claims_with(|c| {
            c.insert(claim.into(), value.clone());
        });
        s.token_refused(
            case,
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            expect,
        )
        .await;
    }
}

/// RFC 7519 §2: a NumericDate may be fractional, and the IdP decides lifetimes. These are valid.
#[tokio::test]
async fn fractional_and_far_future_expiry_are_accepted_as_the_idp_signed_them() {
    let s = battery(&[]).await;
    let t = now();
    for exp in [json!(t as f64 + 300.25), json!(1e300), json!(u64::MAX)] {
        let payload = s.claims_with(|c| {
            c.insert("exp".into(), exp.clone());
        });
        let token = s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload);
        let a = post(
            &s.gate.resource(),
            &[("authorization", &bearer(&token))],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "exp={exp}");
    }
}

#[tokio::test]
async fn issuer_variants_are_refused() {
    let s = battery(&[]).await;
    let iss = s.idp.issuer.clone();
    let port = s.idp.addr.port();
    for value in [
        json!(format!("{iss}/")),
        json!(iss.to_uppercase()),
        json!(iss.replace("http://", "HTTP://")),
        json!(iss.replace("http://", "https://")),
        json!(format!("http://localhost:{port}")),
        json!(format!(" {iss}")),
        json!(format!("{iss}#")),
        json!(format!("{iss}/realms/other")),
        json!([iss]),
        json!(null),
        json!(""),
    ] {
        let payload = s.claims_with(|c| {
            c.insert("iss".into(), value.clone());
        });
        s.token_refused(
            &format!("iss {value}"),
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            BAD_ISSUER,
        )
        .await;
    }
    let payload = s.claims_with(|c| {
        c.remove("iss");
    });
    s.token_refused(
        "iss missing",
        &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
        BAD_ISSUER,
    )
    .await;
}

#[tokio::test]
async fn audience_variants_are_refused() {
    let s = battery(&[]).await;
    let resource = s.gate.resource();
    let cases: Vec<(Value, Expect)> = vec![
        (json!(format!("{resource}/")), BAD_AUDIENCE),
        (json!(resource.replace("http://", "HTTP://")), BAD_AUDIENCE),
        (json!(format!("{resource}?x=1")), BAD_AUDIENCE),
        (json!(resource.trim_end_matches("/mcp")), BAD_AUDIENCE),
        (json!(format!("{resource}/other")), BAD_AUDIENCE),
        (json!("https://other.example/mcp"), BAD_AUDIENCE),
        (
            json!(["https://a.example", format!("{resource}/")]),
            BAD_AUDIENCE,
        ),
        (json!([]), BAD_AUDIENCE),
        (json!(""), BAD_AUDIENCE),
        (Value::Null, BAD_AUDIENCE),
        (json!([[resource.clone()]]), INVALID),
        (json!({"aud": resource.clone()}), INVALID),
        (json!(1), INVALID),
    ];
    for (aud, expect) in cases {
        let payload = s.claims_with(|c| {
            if aud.is_null() {
                c.remove("aud");
            } else {
                c.insert("aud".into(), aud.clone());
            }
        });
        s.token_refused(
            &format!("aud {aud}"),
            &s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload),
            expect,
        )
        .await;
    }
}

#[tokio::test]
async fn an_id_token_is_not_an_access_token() {
    let s = battery(&[]).await;
    let t = now();
    let id_token = json!({"iss": s.idp.issuer, "aud": "client-1", "azp": "client-1", "sub": "alice",
                          "nonce": "n-0S6_WzA2Mj", "auth_time": t, "exp": t + 300, "iat": t});
    for header in [
        r#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#,
        r#"{"alg":"RS256","kid":"k1"}"#,
    ] {
        let token = s.rsa.sign(header, &id_token.to_string());
        s.token_refused(&format!("ID token {header}"), &token, BAD_AUDIENCE)
            .await;
    }
}

#[tokio::test]
async fn only_at_jwt_passes_when_access_token_type_is_at_jwt() {
    let s = battery(&[("ACCESS_TOKEN_TYPE", "at+jwt")]).await;
    let payload = s.claims().to_string();
    for typ in [
        Some(r#""JWT""#),
        Some(r#""jwt""#),
        None,
        Some(r#""""#),
        Some(r#""JOSE""#),
        Some(r#""application/jwt""#),
        Some(r#""at+jwt; v=1""#),
        Some(r#""at+jwt ""#),
        Some(r#""application/at+jwt+x""#),
        Some(r#""id_token+jwt""#),
        Some(r#""logout+jwt""#),
        Some(r#""at_jwt""#),
        Some("null"),
        Some(r#"["at+jwt"]"#),
        Some("1"),
    ] {
        let header = match typ {
            Some(t) => format!(r#"{{"alg":"RS256","kid":"k1","typ":{t}}}"#),
            None => r#"{"alg":"RS256","kid":"k1"}"#.to_string(),
        };
        s.token_refused(
            &format!("typ {typ:?}"),
            &s.rsa.sign(&header, &payload),
            INVALID,
        )
        .await;
    }
    for ok in ["at+jwt", "application/at+jwt", "AT+JWT"] {
        let header = format!(r#"{{"alg":"RS256","kid":"k1","typ":"{ok}"}}"#);
        let a = post(
            &s.gate.resource(),
            &[("authorization", &bearer(&s.rsa.sign(&header, &payload)))],
            "",
        )
        .await;
        assert_eq!(a.status, 200, "{ok}");
    }
}

#[tokio::test]
async fn unknown_crit_duplicate_members_and_non_object_json_are_refused() {
    let s = battery(&[]).await;
    let payload = s.claims().to_string();
    for crit in [
        r#"["exp"]"#,
        r#"["b64"],"b64":false"#,
        "[]",
        r#""kid""#,
        "null",
        r#"["http://x"]"#,
    ] {
        let header = format!(r#"{{"alg":"RS256","kid":"k1","crit":{crit}}}"#);
        s.token_refused(
            &format!("crit {crit}"),
            &s.rsa.sign(&header, &payload),
            INVALID,
        )
        .await;
    }
    // Duplicate names, in either order, in the header and in the claims.
    let t = now();
    let iss = &s.idp.issuer;
    let aud = s.gate.resource();
    let good_claims =
        |dup: &str| format!(r#"{{"iss":"{iss}","aud":"{aud}","exp":{},{dup}}}"#, t + 300);
    let headers_twice = [
        r#"{"alg":"RS256","kid":"k1","alg":"none"}"#,
        r#"{"alg":"none","kid":"k1","alg":"RS256"}"#,
        r#"{"alg":"RS256","kid":"k1","kid":"k1"}"#,
        r#"{"alg":"RS256","kid":"nope","kid":"k1"}"#,
        r#"{"alg":"RS256","kid":"k1","typ":"at+jwt","typ":"JWT"}"#,
    ];
    for header in headers_twice {
        s.token_refused(header, &s.rsa.sign(header, &payload), INVALID)
            .await;
    }
    let claims_twice = [
        good_claims(r#""aud":"https://evil.example""#),
        format!(
            r#"{{"aud":"https://evil.example","iss":"{iss}","aud":"{aud}","exp":{}}}"#,
            t + 300
        ),
        good_claims(&format!(r#""iss":"{iss}""#)),
        good_claims(&format!(r#""exp":{}"#, t - 3600)),
        format!(
            r#"{{"iss":"{iss}","aud":"{aud}","exp":{},"exp":{}}}"#,
            t - 3600,
            t + 300
        ),
        good_claims(r#""scope":"a","scope":"b""#),
        good_claims(r#""realm_access":{"roles":["x"],"roles":["mcp-user"]}"#),
        good_claims(r#""a\u0075d":"https://evil.example""#),
    ];
    for claims in &claims_twice {
        let token = s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, claims);
        s.token_refused(claims, &token, INVALID).await;
    }
    let valid = s.claims().to_string();
    for payload in [
        "[]".to_string(),
        r#""claims""#.to_string(),
        "42".to_string(),
        "null".to_string(),
        "true".to_string(),
        "not json".to_string(),
        String::new(),
        format!("{valid} trailing"),
        format!("{valid}{valid}"),
        format!("\u{feff}{valid}"),
        valid.replacen('{', "{/* comment */", 1),
        valid.replacen(':', "=", 1),
        format!("[{valid}]"),
        valid.replacen(&format!("{}", t + 300), "NaN", 1),
    ] {
        let token = s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &payload);
        let shown: String = payload.chars().take(60).collect();
        s.token_refused(&format!("payload {shown:?}"), &token, INVALID)
            .await;
    }
    // Invalid UTF-8 inside the JSON.
    let input = format!(
        "{}.{}",
        b64(r#"{"alg":"RS256","kid":"k1"}"#),
        b64(b"{\"iss\":\"\xff\xfe\"}")
    );
    let sig = s.rsa.raw_signature("RS256", input.as_bytes());
    s.token_refused(
        "claims with invalid UTF-8",
        &format!("{input}.{}", b64(sig)),
        INVALID,
    )
    .await;
    // A header that is not an object.
    for header in ["[]", r#""RS256""#, "null", "{"] {
        let token = s.rsa.sign(header, &valid);
        s.token_refused(&format!("header {header}"), &token, INVALID)
            .await;
    }
}

#[tokio::test]
async fn bad_base64url_and_wrong_segment_counts_are_refused() {
    let s = battery(&[]).await;
    // A valid token each of whose segments holds a '-' or '_', so that re-encoding it in the
    // standard alphabet really changes it.
    let has_url_chars = |seg: &str| seg.contains(['-', '_']);
    let good = (0..64)
        .map(|pad| {
            let header = format!(
                r#"{{"alg":"RS256","kid":"k1","x":"{}"}}"#,
                "?".repeat(pad % 8)
            );
            let payload = s.claims_with(|c| {
                c.insert("x".into(), json!("?~".repeat(pad / 8 + 1)));
            });
            s.rsa.sign(&header, &payload)
        })
        .find(|t| t.split('.').all(has_url_chars))
        .unwrap();
    let control = post(&s.gate.resource(), &[("authorization", &bearer(&good))], "").await;
    assert_eq!(control.status, 200);
    s.upstream.forget();
    let parts: Vec<&str> = good.split('.').collect();
    let (h, p, sig) = (parts[0], parts[1], parts[2]);
    let padded = |seg: &str| {
        let pad = (4 - seg.len() % 4) % 4;
        format!("{seg}{}", "=".repeat(if pad == 0 { 4 } else { pad }))
    };
    let std_b64 = |seg: &str| STANDARD.encode(URL_SAFE_NO_PAD.decode(seg).unwrap());
    // Still b64token-shaped (RFC 6750 §2.1), so they reach the token check and fail there.
    let invalid_token = [
        ("padded signature", format!("{h}.{p}.{}", padded(sig))),
        (
            "standard alphabet header",
            format!("{}.{p}.{sig}", std_b64(h).trim_end_matches('=')),
        ),
        (
            "standard alphabet everywhere",
            format!(
                "{}.{}.{}",
                std_b64(h).trim_end_matches('='),
                std_b64(p).trim_end_matches('='),
                std_b64(sig).trim_end_matches('=')
            ),
        ),
        ("'+' in the payload", format!("{h}.+{}.{sig}", &p[1..])),
        ("'/' in the signature", format!("{h}.{p}./{}", &sig[1..])),
        ("'~' in the header", format!("~{}.{p}.{sig}", &h[1..])),
        ("non-canonical last character of the signature", {
            // 256 bytes encode to 342 characters: the last one carries 4 unused bits; set one.
            let last = sig.as_bytes()[sig.len() - 1];
            let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let index = alphabet.iter().position(|c| *c == last).unwrap();
            let twin = alphabet[index ^ 1] as char;
            format!("{h}.{p}.{}{twin}", &sig[..sig.len() - 1])
        }),
        ("two segments", format!("{h}.{p}")),
        ("one segment", h.to_string()),
        ("four segments", format!("{h}.{p}.{sig}.{sig}")),
        ("JWE: five segments", format!("{h}.{p}.{sig}.{p}.{sig}")),
        ("six segments", format!("{h}.{p}.{sig}.{p}.{sig}.{h}")),
        ("empty header", format!(".{p}.{sig}")),
        ("empty payload", format!("{h}..{sig}")),
        ("only dots", "..".to_string()),
        ("trailing dot", format!("{h}.{p}.{sig}.")),
        ("leading dot", format!(".{h}.{p}.{sig}")),
    ];
    for (case, token) in &invalid_token {
        s.token_refused(case, token, INVALID).await;
    }
    // Not b64token-shaped: the Authorization header itself is malformed.
    let malformed = [
        ("padding inside", format!("{}.{p}.{sig}", padded(h))),
        ("space inside", format!("{h}. {p}.{sig}")),
        ("tab inside", format!("{h}.\t{p}.{sig}")),
        ("comma", format!("{h},{p}.{sig}")),
        ("quoted", format!("\"{good}\"")),
        ("percent-encoded", good.replace('.', "%2E")),
        ("only padding", "===".to_string()),
    ];
    for (case, token) in &malformed {
        s.token_refused(case, token, MALFORMED_HEADER).await;
    }
}

#[tokio::test]
async fn oversized_tokens_are_refused_before_any_parsing() {
    let s = battery(&[("MAX_HEADER_SIZE", "2MiB")]).await;
    let claims = s.claims_with(|c| {
        c.insert("pad".into(), json!("x".repeat(20 * 1024)));
    });
    // Over MAX_TOKEN_SIZE (16 KiB), validly signed: refused unread.
    let signed = s.rsa.sign(r#"{"alg":"RS256","kid":"k1"}"#, &claims);
    s.token_refused("validly signed 27 KiB token", &signed, INVALID)
        .await;
    let huge = format!(
        "{}.{}.{}",
        "A".repeat(1 << 19),
        "B".repeat(1 << 19),
        "C".repeat(64)
    );
    s.token_refused("1 MB token", &huge, INVALID).await;
    assert_eq!(
        s.idp.jwks_fetches(),
        1,
        "no oversized token caused a key fetch"
    );
}

#[tokio::test]
async fn a_1_mb_authorization_header_is_refused_with_431_by_default() {
    let s = battery(&[]).await;
    let huge = format!(
        "{}.{}.{}",
        "A".repeat(1 << 19),
        "B".repeat(1 << 19),
        "C".repeat(64)
    );
    let a = s
        .raw(
            RESOURCE_PATH,
            &[("Authorization", format!("Bearer {huge}").as_bytes())],
        )
        .await;
    assert_eq!(
        a.status(),
        Some(431),
        "{:?}",
        a.text().chars().take(200).collect::<String>()
    );
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn nul_control_and_non_ascii_bytes_in_the_token_are_refused() {
    let s = battery(&[]).await;
    let good = s.rsa.token(&s.claims());
    // Bytes HTTP forbids in a field value (NUL, other controls): the request is rejected by the HTTP
    // parser with a bare 400 before the gate sees it.
    for (case, value) in [
        ("NUL bytes", [b"Bearer ".as_slice(), &[0u8; 64]].concat()),
        (
            "NUL inside a valid token",
            format!("Bearer {good}").replacen('.', "\0", 1).into_bytes(),
        ),
        (
            "control character",
            format!("Bearer {good}\x01").into_bytes(),
        ),
        ("DEL", format!("Bearer \x7f{good}").into_bytes()),
        (
            "bare CR",
            format!("Bearer {good}\rX-Injected: 1").into_bytes(),
        ),
    ] {
        let a = s.raw(RESOURCE_PATH, &[("Authorization", &value)]).await;
        assert_eq!(a.status(), Some(400), "{case}: {}", a.text());
        assert_eq!(s.upstream.count(), 0, "{case}");
    }
    // obs-text (0x80–0xFF) is legal in a field value but not in a b64token: the gate's 400.
    for (case, value) in [
        (
            "Latin-1 bytes",
            [b"Bearer ".as_slice(), &[0xe9u8; 32]].concat(),
        ),
        ("UTF-8 token", "Bearer ééé.ñ.ü".as_bytes().to_vec()),
        (
            "valid token with a trailing UTF-8 BOM",
            [format!("Bearer {good}").as_bytes(), "\u{feff}".as_bytes()].concat(),
        ),
        (
            "high bytes everywhere",
            (0x80u8..=0xff).collect::<Vec<u8>>(),
        ),
    ] {
        let a = s.raw(RESOURCE_PATH, &[("Authorization", &value)]).await;
        // A field value that is not visible ASCII cannot even be read for its scheme.
        s.assert_raw(case, &a, MALFORMED_HEADER);
    }
}

/// Header fields of one request, by name.
type Headers = Vec<(&'static str, String)>;

#[tokio::test]
async fn tokens_outside_a_single_authorization_bearer_header_are_refused() {
    let s = battery(&[]).await;
    let good = s.rsa.token(&s.claims());
    let forged = TestKey::rsa("k1", 2048).token(&s.claims());
    s.refused_at(
        "valid token in the query",
        &format!("/mcp?access_token={good}"),
        &[],
        "",
        TOKEN_IN_URL,
    )
    .await;
    s.refused_at(
        "valid token in the query, percent-encoded name",
        &format!("/mcp?access%5Ftoken={good}"),
        &[],
        "",
        TOKEN_IN_URL,
    )
    .await;
    s.refused_at(
        "valid token in the header and the query",
        &format!("/mcp?access_token={good}"),
        &[("authorization", &bearer(&good))],
        "",
        TWO_TOKENS,
    )
    .await;
    s.refused_at(
        "valid token in a form body",
        RESOURCE_PATH,
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("access_token={good}"),
        Expect::NoToken,
    )
    .await;
    let cases: Vec<(&str, Headers, Expect)> = vec![
        (
            "two Authorization headers",
            vec![
                ("authorization", bearer(&good)),
                ("authorization", bearer(&good)),
            ],
            TWO_TOKENS,
        ),
        (
            "a forged and a valid token in two headers",
            vec![
                ("authorization", bearer(&forged)),
                ("authorization", bearer(&good)),
            ],
            TWO_TOKENS,
        ),
        (
            "Basic and Bearer headers",
            vec![
                ("authorization", "Basic dXNlcjpwYXNz".into()),
                ("authorization", bearer(&good)),
            ],
            TWO_TOKENS,
        ),
        (
            "Basic",
            vec![("authorization", "Basic dXNlcjpwYXNz".into())],
            Expect::NoToken,
        ),
        // `DPoP <token>` without a proof is a DPoP refusal now (RFC 9449 §7.1): tests/it/dpop.rs.
        (
            "Bearer without a space",
            vec![("authorization", format!("Bearer{good}"))],
            Expect::NoToken,
        ),
        (
            "Bearer with a tab",
            vec![("authorization", format!("Bearer\t{good}"))],
            Expect::NoToken,
        ),
        (
            "token without a scheme",
            vec![("authorization", good.clone())],
            Expect::NoToken,
        ),
        (
            "Bearer twice",
            vec![("authorization", format!("Bearer Bearer {good}"))],
            MALFORMED_HEADER,
        ),
        (
            "two tokens in one header",
            vec![("authorization", format!("Bearer {good}, Bearer {good}"))],
            MALFORMED_HEADER,
        ),
        (
            "two tokens separated by a space",
            vec![("authorization", format!("Bearer {good} {good}"))],
            MALFORMED_HEADER,
        ),
        (
            "empty Bearer",
            vec![("authorization", "Bearer".into())],
            MALFORMED_HEADER,
        ),
        (
            "auth-param form",
            vec![("authorization", format!("Bearer token=\"{good}\""))],
            MALFORMED_HEADER,
        ),
        (
            "empty header",
            vec![("authorization", String::new())],
            MALFORMED_HEADER,
        ),
        (
            "extra spaces around a forged token",
            vec![("authorization", format!("Bearer    {forged}   "))],
            INVALID,
        ),
        (
            "lower-case scheme, forged token",
            vec![("authorization", format!("bearer {forged}"))],
            INVALID,
        ),
        (
            "valid token as a cookie",
            vec![("cookie", format!("access_token={good}"))],
            Expect::NoToken,
        ),
        (
            "valid token in Proxy-Authorization",
            vec![("proxy-authorization", bearer(&good))],
            Expect::NoToken,
        ),
        (
            "valid token in X-Access-Token",
            vec![("x-access-token", good.clone())],
            Expect::NoToken,
        ),
    ];
    for (case, headers, expect) in &cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.refused(case, &h, *expect).await;
    }
    // Extra spaces between the scheme and a valid token are tolerated (RFC 6750 §2.1 grammar is
    // 1*SP in spirit; clients differ): that is not a bypass, the token is still checked.
    let a = post(
        &s.gate.resource(),
        &[("authorization", &format!("Bearer   {good}  "))],
        "",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 1);
}

#[tokio::test]
async fn path_tricks_never_reach_the_upstream_through_the_public_routes() {
    let s = battery(&[]).await;
    let metadata = get(&s.metadata_url(), &[]).await.body;
    let tricks = [
        "/.well-known/oauth-protected-resource/../mcp",
        "/.well-known/oauth-protected-resource/mcp/../../../mcp",
        "/.well-known/oauth-protected-resource/..%2fmcp",
        "/.well-known/oauth-protected-resource/%2e%2e/mcp",
        "/.well-known/oauth-protected-resource%2F..%2F..%2Fmcp",
        "/.well-known/oauth-protected-resource/mcp%00",
        "/.well-known/oauth-protected-resource/mcp/",
        "/.well-known/oauth-protected-resource/mcp;/../x",
        "/.well-known/oauth-protected-resource%2fmcp",
        "/.well-known/./oauth-protected-resource",
        "/./.well-known/oauth-protected-resource",
        "//.well-known/oauth-protected-resource",
        "/.well-known//oauth-protected-resource",
        "/.WELL-KNOWN/OAUTH-PROTECTED-RESOURCE",
        "/.well-known/OAuth-Protected-Resource/mcp",
        "/%2Ewell-known/oauth-protected-resource",
        "/healthz/../mcp",
        "/healthz/",
        "/healthz/x",
        "/HEALTHZ",
        "/healthz%2F..%2Fmcp",
        "/healthz;/mcp",
        "/readyz/..%2Fmcp",
        "//healthz",
        "//mcp",
        "/./mcp",
        "/mcp/.",
        "/%6Dcp",
        "/MCP",
        "/",
        "/*",
    ];
    for path in tricks {
        for method in [Method::GET, Method::POST] {
            let a = send(method.clone(), &s.gate.url(path), &[], "{}").await;
            assert_eq!(a.status, 401, "{method} {path}");
            assert_eq!(
                a.header("www-authenticate").unwrap(),
                s.challenge(Expect::NoToken),
                "{method} {path}"
            );
        }
    }
    // The public routes answer themselves and only with their own documents, whatever follows.
    for (path, body) in [
        (
            "/.well-known/oauth-protected-resource?/../../mcp",
            metadata.clone(),
        ),
        (
            "/.well-known/oauth-protected-resource/mcp?x=/mcp",
            metadata.clone(),
        ),
        (
            "/healthz?/../mcp",
            bytes::Bytes::from_static(br#"{"status":"ok"}"#),
        ),
    ] {
        let a = get(&s.gate.url(path), &[]).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, body, "{path}");
    }
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let a = send(method.clone(), &s.metadata_url(), &[], "{}").await;
        assert_eq!(a.status, 405, "{method}");
    }
    assert_eq!(s.upstream.count(), 0);
}

#[tokio::test]
async fn absolute_form_targets_and_foreign_hosts_change_neither_routing_nor_metadata() {
    let s = battery(&[]).await;
    let metadata = get(&s.metadata_url(), &[]).await.body;
    let upstream = s.upstream.addr;
    let request = |line: String, host: &str| {
        format!("{line}\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    // The metadata is the same whatever the request names as its authority.
    for (line, host) in [
        (
            "GET http://evil.example/.well-known/oauth-protected-resource/mcp HTTP/1.1".to_string(),
            "evil.example",
        ),
        (
            format!("GET http://{upstream}/.well-known/oauth-protected-resource/mcp HTTP/1.1"),
            "evil.example",
        ),
        (
            "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1".to_string(),
            "evil.example:8443",
        ),
    ] {
        let a = raw(
            s.gate.addr,
            request(line.clone(), host).as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(a.status(), Some(200), "{line}");
        assert!(a.bytes.ends_with(&metadata), "{line}: {}", a.text());
    }
    // Absolute-form, authority-form and asterisk-form targets aimed at the upstream need a token too.
    for (line, host) in [
        (
            format!("POST http://{upstream}/mcp HTTP/1.1"),
            upstream.to_string(),
        ),
        (
            "POST http://evil.example/mcp HTTP/1.1".to_string(),
            "evil.example".to_string(),
        ),
        (
            format!("GET http://{upstream}/healthz/../mcp HTTP/1.1"),
            s.gate.addr.to_string(),
        ),
        (format!("CONNECT {upstream} HTTP/1.1"), upstream.to_string()),
        ("OPTIONS * HTTP/1.1".to_string(), s.gate.addr.to_string()),
    ] {
        let a = raw(
            s.gate.addr,
            request(line.clone(), &host).as_bytes(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(a.status(), Some(401), "{line}: {}", a.text());
        assert_eq!(
            a.header("www-authenticate").as_deref(),
            Some(s.challenge(Expect::NoToken).as_str()),
            "{line}: the challenge names the configured metadata URL, not the Host"
        );
    }
    // A foreign Host header does not move the challenge's metadata URL either.
    let a = post(&s.gate.resource(), &[("host", "evil.example")], "").await;
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        s.challenge(Expect::NoToken)
    );
    assert_eq!(s.upstream.count(), 0);
}
