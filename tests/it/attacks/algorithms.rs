//! `alg` confusion (RFC 8725 §2.1, §3.1; RFC 7518 §3): a token must be refused unless it is signed
//! with an algorithm the gate allows *and* the named key is bound to. `none` in any spelling, HMAC
//! keyed with the RSA public key in every encoding, a real signature under another family's name,
//! and a key too weak to use.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;

use super::*;

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
