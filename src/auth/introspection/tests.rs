use super::*;

const ISS: &str = "https://idp.example.com";

#[test]
fn an_answer_is_active_only_when_active_is_true() {
    let active = read_answer(
        200,
        br#"{"active":true,"sub":"alice","aud":"x","exp":1}"#,
        ISS,
    );
    let Answer::Active(claims) = active else {
        panic!("{active:?}")
    };
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], ISS, "a missing iss speaks for the issuer");
    assert!(!claims.contains_key("active"));
    let cases: [(u16, &[u8], Answer); 8] = [
        (200, br#"{"active":false}"#, Answer::Inactive),
        (200, br#"{"active":"true"}"#, Answer::Unavailable),
        (200, br#"{"sub":"alice"}"#, Answer::Unavailable),
        (200, br#"[true]"#, Answer::Unavailable),
        (200, b"<html>", Answer::Unavailable),
        (
            200,
            br#"{"active":true,"active":false}"#,
            Answer::Unavailable,
        ),
        (500, br#"{"active":true}"#, Answer::Unavailable),
        (401, br#"{"active":false}"#, Answer::Unavailable),
    ];
    for (status, body, expected) in cases {
        assert_eq!(
            read_answer(status, body, ISS),
            expected,
            "{status} {}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn an_answer_keeps_its_own_iss_for_the_policy_to_judge() {
    let Answer::Active(claims) = read_answer(200, br#"{"active":true,"iss":"https://evil"}"#, ISS)
    else {
        panic!()
    };
    assert_eq!(claims["iss"], "https://evil");
}

#[test]
fn only_jws_shaped_tokens_count_as_jwts() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    assert!(looks_like_jwt(&format!("{header}.e30.sig")));
    for opaque in [
        "2YotnFZFEjr1zCsicMWpAA",
        "a.b.c",
        "ory_at_abc.def",
        &format!("{header}.e30"),
        &format!("{header}.e30.s.x.y"),
    ] {
        assert!(!looks_like_jwt(opaque), "{opaque}");
    }
}

fn introspector(max_age: u64) -> Introspector {
    Introspector::new(
        IntrospectionSettings {
            validation: Validation::Auto,
            endpoint: None,
            client_id: "gate".into(),
            client_secret: Secret("s".into()),
            auth: ClientAuth::Basic,
            cache_max_age: Duration::from_secs(max_age),
            cache_size: 8,
        },
        ISS.into(),
        false,
        Duration::from_secs(1),
        Arc::new(crate::metrics::Metrics::new()),
    )
}

#[test]
fn an_answer_is_reused_at_most_max_age_and_never_past_exp() {
    const NOW: u64 = 1_800_000_000;
    let active = |exp: Value| {
        let mut m = Map::new();
        m.insert("exp".into(), exp);
        Answer::Active(Arc::new(m))
    };
    let secs = Duration::from_secs;
    let cases = [
        (60, active(serde_json::json!(NOW + 10)), secs(10)),
        (5, active(serde_json::json!(NOW + 10)), secs(5)),
        (60, active(serde_json::json!(NOW - 10)), Duration::ZERO),
        (60, active(serde_json::json!("soon")), Duration::ZERO),
        (60, Answer::Inactive, NEGATIVE_TTL),
        (60, Answer::Unavailable, UNAVAILABLE_TTL),
    ];
    for (max_age, answer, expected) in cases {
        assert_eq!(
            introspector(max_age).ttl(&answer, NOW),
            expected,
            "{answer:?}"
        );
    }
}

#[test]
fn client_credentials_are_form_encoded() {
    assert_eq!(form_encode("a b+c:d/é"), "a+b%2Bc%3Ad%2F%C3%A9");
}
