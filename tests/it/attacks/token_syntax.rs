//! How a token is written: unknown `crit` (RFC 7515 §4.1.11), duplicate JSON members, non-object
//! JSON, invalid base64url and wrong segment counts (RFC 7515 §7.1), and tokens over
//! `MAX_TOKEN_SIZE`, which are refused before any parsing or key fetch.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;

use super::*;

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
    let valid_claims = s.claims();
    let valid = valid_claims.to_string();
    // The NaN case replaces this payload's own `exp` (not `t + 300`: a second may have passed since).
    let exp = format!("\"exp\":{}", valid_claims["exp"]);
    assert!(valid.contains(&exp), "{valid}");
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
        valid.replacen(&exp, "\"exp\":NaN", 1),
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
