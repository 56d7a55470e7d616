//! DPoP (RFC 9449) end to end: a DPoP-bound token with a valid proof reaches the upstream; every
//! way of getting the proof or the binding wrong is refused with its exact status and challenge,
//! and nothing reaches the upstream.
//!
//! Proofs are made here with an independent JOSE implementation (jsonwebtoken signs; the JWK and its
//! RFC 7638 thumbprint are built by hand from rcgen's key), never with the code under test.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{crypto::sign, Algorithm, EncodingKey};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};

use crate::support::*;

pub(crate) const ALGS: &str = "ES256 ES384 EdDSA PS256 RS256";

/// A DPoP client: a P-256 key pair, its public JWK and thumbprint.
pub(crate) struct Client {
    key: EncodingKey,
    pub jwk: Value,
    pub jkt: String,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Client {
    pub fn new() -> Client {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        assert_eq!(point.len(), 65, "uncompressed P-256 point");
        let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
        // RFC 7638 §3: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let jkt = b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        Client {
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            jkt,
        }
    }

    fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    fn claims(htm: &str, htu: &str, token: &str) -> Value {
        let ath = b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ));
        json!({"jti": unique(), "htm": htm, "htu": htu, "iat": now(), "ath": ath})
    }

    /// A proof for `POST` to `htu` with `token`.
    pub fn proof(&self, htu: &str, token: &str) -> String {
        self.proof_with(htu, token, |_| {}, |_| {})
    }

    /// A proof whose header and claims are edited before signing with ES256.
    pub fn proof_with(
        &self,
        htu: &str,
        token: &str,
        header: impl FnOnce(&mut Value),
        claims: impl FnOnce(&mut Value),
    ) -> String {
        let mut h = self.header();
        header(&mut h);
        let mut c = Client::claims("POST", htu, token);
        claims(&mut c);
        let input = format!("{}.{}", b64(h.to_string()), b64(c.to_string()));
        let signature = sign(input.as_bytes(), &self.key, Algorithm::ES256).unwrap();
        format!("{input}.{signature}")
    }
}

/// A `jti` never used before in this test binary.
fn unique() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "jti-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

pub(crate) fn bound_token(s: &Stack, jkt: &str) -> String {
    s.token_with(|c| c["cnf"] = json!({ "jkt": jkt }))
}

pub(crate) async fn post_dpop(s: &Stack, token: &str, proofs: &[&str]) -> Answer {
    let auth = format!("DPoP {token}");
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    post(&s.gate.resource(), &headers, "{}").await
}

pub(crate) fn challenges(a: &Answer) -> Vec<String> {
    a.headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The refusal's exact status, body code and challenges — DPoP first with the error, then a bare
/// Bearer one — and an untouched upstream.
fn assert_refused(s: &Stack, case: &str, a: &Answer, status: u16, error: &str, description: &str) {
    assert_eq!(a.status, status, "{case}: {:?}", a.body);
    let metadata = format!(
        "resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"",
        s.gate.addr
    );
    assert_eq!(
        challenges(a),
        [
            format!("DPoP algs=\"{ALGS}\", error=\"{error}\", error_description=\"{description}\", {metadata}"),
            format!("Bearer {metadata}"),
        ],
        "{case}"
    );
    assert_eq!(a.json()["error"], error, "{case}");
    assert_eq!(s.upstream.count(), 0, "{case}: reached the upstream");
}

const BAD_PROOF: &str = "The DPoP proof is invalid";

#[tokio::test]
async fn a_bound_token_with_a_fresh_proof_on_every_request_reaches_the_upstream_and_a_replay_does_not(
) {
    let s = stack(&[]).await;
    let client = Client::new();
    let token = bound_token(&s, &client.jkt);
    let htu = s.gate.resource();

    let first = client.proof(&htu, &token);
    let a = post_dpop(&s, &token, &[&first]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    // Like the token, the proof is not passed on (FORWARD_TOKEN is off).
    let seen = &s.upstream.seen()[0];
    assert!(!seen.headers.contains_key("dpop"), "{:?}", seen.headers);
    assert!(!seen.headers.contains_key("authorization"));
    // Served from the verified-token cache this time; the proof is still checked.
    let a = post_dpop(&s, &token, &[&client.proof(&htu, &token)]).await;
    assert_eq!(a.status, 200);
    assert_eq!(s.upstream.count(), 2);

    s.upstream.forget();
    let replay = post_dpop(&s, &token, &[&first]).await;
    assert_refused(
        &s,
        "replayed proof",
        &replay,
        401,
        "invalid_dpop_proof",
        BAD_PROOF,
    );
}

#[tokio::test]
async fn every_wrong_proof_is_refused_with_invalid_dpop_proof_and_never_reaches_the_upstream() {
    let s = stack(&[]).await;
    let client = Client::new();
    let token = bound_token(&s, &client.jkt);
    let htu = s.gate.resource();
    let other_path = s.gate.url("/other");
    let stranger = Client::new();
    let hs256 = {
        let h = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": client.jwk});
        let input = format!(
            "{}.{}",
            b64(h.to_string()),
            b64(Client::claims("POST", &htu, &token).to_string())
        );
        let key = EncodingKey::from_secret(client.jkt.as_bytes());
        format!(
            "{input}.{}",
            sign(input.as_bytes(), &key, Algorithm::HS256).unwrap()
        )
    };
    let none = {
        let h = json!({"typ": "dpop+jwt", "alg": "none", "jwk": client.jwk});
        format!(
            "{}.{}.c2ln",
            b64(h.to_string()),
            b64(Client::claims("POST", &htu, &token).to_string())
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong htm",
            client.proof_with(&htu, &token, |_| {}, |c| c["htm"] = json!("GET")),
        ),
        ("wrong htu", client.proof(&other_path, &token)),
        (
            "stale iat",
            client.proof_with(&htu, &token, |_| {}, |c| c["iat"] = json!(now() - 400)),
        ),
        (
            "future iat",
            client.proof_with(&htu, &token, |_| {}, |c| c["iat"] = json!(now() + 400)),
        ),
        ("wrong ath", client.proof(&htu, "another-token")),
        ("proof key is not cnf.jkt", stranger.proof(&htu, &token)),
        (
            "private key in jwk",
            client.proof_with(
                &htu,
                &token,
                |h| h["jwk"]["d"] = json!(b64([7u8; 32])),
                |_| {},
            ),
        ),
        (
            "typ JWT",
            client.proof_with(&htu, &token, |h| h["typ"] = json!("JWT"), |_| {}),
        ),
        ("alg none", none),
        ("alg HS256", hs256),
    ];
    for (case, proof) in cases {
        let a = post_dpop(&s, &token, &[&proof]).await;
        assert_refused(&s, case, &a, 401, "invalid_dpop_proof", BAD_PROOF);
    }
    let a = post_dpop(&s, &token, &[]).await;
    assert_refused(
        &s,
        "DPoP scheme without a proof",
        &a,
        401,
        "invalid_dpop_proof",
        BAD_PROOF,
    );
    let (p1, p2) = (client.proof(&htu, &token), client.proof(&htu, &token));
    let a = post_dpop(&s, &token, &[&p1, &p2]).await;
    assert_refused(
        &s,
        "two DPoP headers",
        &a,
        400,
        "invalid_request",
        "The request carries more than one DPoP proof",
    );
}

#[tokio::test]
async fn a_bound_token_is_never_accepted_as_bearer_and_an_unbound_one_never_as_dpop() {
    let s = stack(&[]).await;
    let client = Client::new();
    let token = bound_token(&s, &client.jkt);
    let htu = s.gate.resource();
    let as_bearer = "The access token is DPoP-bound: send it with the DPoP scheme and a proof";

    let a = s.post_bearer(&token).await;
    assert_refused(
        &s,
        "bound token as Bearer",
        &a,
        401,
        "invalid_token",
        as_bearer,
    );
    let proof = client.proof(&htu, &token);
    let auth = bearer(&token);
    let a = post(
        &s.gate.resource(),
        &[("authorization", &auth), ("dpop", &proof)],
        "{}",
    )
    .await;
    assert_refused(
        &s,
        "bound token as Bearer with a proof",
        &a,
        401,
        "invalid_token",
        as_bearer,
    );

    let mtls = s.token_with(|c| c["cnf"] = json!({"x5t#S256": b64([1u8; 32])}));
    let a = s.post_bearer(&mtls).await;
    assert_refused(
        &s,
        "certificate-bound token as Bearer",
        &a,
        401,
        "invalid_token",
        "The access token is bound to a client certificate, which this resource does not verify",
    );

    let plain = s.token();
    let a = post_dpop(&s, &plain, &[&client.proof(&htu, &plain)]).await;
    assert_refused(
        &s,
        "unbound token with the DPoP scheme",
        &a,
        401,
        "invalid_token",
        "The access token is not bound to a DPoP key",
    );
    let auth = bearer(&plain);
    let proof = client.proof(&htu, &plain);
    let a = post(
        &s.gate.resource(),
        &[("authorization", &auth), ("dpop", &proof)],
        "{}",
    )
    .await;
    assert_refused(
        &s,
        "proof beside an unbound Bearer token",
        &a,
        400,
        "invalid_request",
        "A DPoP proof must be sent with the DPoP authorization scheme",
    );
    // The unbound token alone is still a Bearer token.
    assert_eq!(s.post_bearer(&plain).await.status, 200);
}

#[tokio::test]
async fn the_token_cache_never_lets_a_bound_token_skip_its_proof() {
    let s = stack(&[]).await;
    let client = Client::new();
    let token = bound_token(&s, &client.jkt);
    let htu = s.gate.resource();
    assert_eq!(
        post_dpop(&s, &token, &[&client.proof(&htu, &token)])
            .await
            .status,
        200
    );
    s.upstream.forget();
    let stranger = Client::new();
    for (case, a) in [
        ("no proof", post_dpop(&s, &token, &[]).await),
        (
            "proof by another key",
            post_dpop(&s, &token, &[&stranger.proof(&htu, &token)]).await,
        ),
        ("as Bearer", s.post_bearer(&token).await),
    ] {
        assert_eq!(a.status, 401, "{case}");
        assert_eq!(s.upstream.count(), 0, "{case}");
    }
}

#[tokio::test]
async fn dpop_required_refuses_every_bearer_token_and_says_so_in_the_metadata() {
    let s = stack(&[("DPOP_REQUIRED", "true")]).await;
    let a = s.post_bearer(&s.token()).await;
    assert_eq!(a.status, 401);
    let metadata = format!(
        "resource_metadata=\"http://{}/.well-known/oauth-protected-resource/mcp\"",
        s.gate.addr
    );
    assert_eq!(
        challenges(&a),
        [format!("DPoP algs=\"{ALGS}\", error=\"invalid_token\", error_description=\"This resource accepts DPoP-bound access tokens only\", {metadata}")]
    );
    // Without a token: the DPoP challenge alone, no error code.
    let a = post(&s.gate.resource(), &[], "{}").await;
    assert_eq!(
        challenges(&a),
        [format!("DPoP algs=\"{ALGS}\", {metadata}")]
    );
    assert_eq!(s.upstream.count(), 0);

    let client = Client::new();
    let token = bound_token(&s, &client.jkt);
    let a = post_dpop(&s, &token, &[&client.proof(&s.gate.resource(), &token)]).await;
    assert_eq!(a.status, 200);

    let doc = get(
        &s.gate.url("/.well-known/oauth-protected-resource/mcp"),
        &[],
    )
    .await
    .json();
    assert_eq!(doc["dpop_bound_access_tokens_required"], json!(true));
    assert_eq!(
        doc["dpop_signing_alg_values_supported"],
        json!(["ES256", "ES384", "EdDSA", "PS256", "RS256"])
    );
}

#[tokio::test]
async fn cors_lets_browsers_send_dpop_and_read_dpop_nonce() {
    let s = stack(&[("CORS_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let a = send(
        http::Method::OPTIONS,
        &s.gate.resource(),
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization, dpop"),
        ],
        "",
    )
    .await;
    assert_eq!(a.status, 204);
    let allowed = a.header("access-control-allow-headers").unwrap();
    assert!(allowed.split(", ").any(|h| h == "DPoP"), "{allowed}");
    let a = post(
        &s.gate.resource(),
        &[("origin", "https://app.example.com")],
        "{}",
    )
    .await;
    let exposed = a.header("access-control-expose-headers").unwrap();
    assert!(exposed.split(", ").any(|h| h == "DPoP-Nonce"), "{exposed}");
}

/// A bit flipped anywhere in a valid proof, or in the token it is bound to, is refused by the proof
/// check (the pure core the gate runs on every request), whatever the position.
#[test]
fn a_bit_flip_anywhere_in_the_proof_or_token_is_refused() {
    use mcp_gate::auth::dpop::{check, normalize_htu, ProofPolicy, ProofTarget};
    use mcp_gate::auth::keys::Alg;

    let client = Client::new();
    let htu = "https://mcp.example.com/mcp";
    let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    let policy = ProofPolicy {
        algorithms: vec![Alg::ES256],
        iat_window_secs: 300,
    };
    let normalized = normalize_htu(htu).unwrap();
    let decide = |proof: &str, token: &str| {
        let target = ProofTarget {
            method: "POST",
            htu: &normalized,
            access_token: token,
            jkt: &client.jkt,
        };
        check(proof, &target, &policy, now())
    };
    let proof = client.proof(htu, token);
    assert!(decide(&proof, token).is_ok());

    let mut runner = TestRunner::new(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(any::<prop::sample::Index>(), 0u8..8, any::<bool>()),
            |(at, bit, in_token)| {
                let original = if in_token { token } else { proof.as_str() };
                let mut bytes = original.as_bytes().to_vec();
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
                // A flip that leaves UTF-8 could never arrive in a header value either.
                let Ok(flipped) = String::from_utf8(bytes) else {
                    return Ok(());
                };
                let outcome = if in_token {
                    decide(&proof, &flipped)
                } else {
                    decide(&flipped, token)
                };
                prop_assert!(outcome.is_err(), "flip at {i} bit {bit} accepted");
                Ok(())
            },
        )
        .unwrap();
}
