//! Each listed authorization server, as a client and the gate see it: https (OAuth 2.1 §1.5), its
//! metadata (RFC 8414 §2–3: exact `issuer`, the code grant, PKCE `S256`, a way to register) and the
//! signing keys at its `jwks_uri` (RFC 7517) that the gate can verify tokens with.

use serde_json::Value;

use super::endpoint::preview;
use super::probe::{fetch_hint, Answer};
use super::report::Check;
use super::url_diff::describe_difference;
use crate::auth::fetch::FetchError;
use crate::auth::keys::{parse_jwks, Alg, KeySet};
use crate::config::is_loopback_host;

/// An authorization server's issuer must be https; loopback http is a local test.
pub fn evaluate_issuer_transport(issuer: &str) -> Check {
    const ID: &str = "as.https";
    match url::Url::parse(issuer) {
        Ok(u) if u.scheme() == "https" => Check::ok(ID, format!("{issuer} is https")),
        Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => Check::warn(
            ID,
            format!("{issuer} is plain http on loopback"),
            "Fine for a local test. Clients talk to the authorization server over the internet and require https.",
        ),
        Ok(_) => Check::fail(
            ID,
            format!("{issuer} is not https"),
            "OAuth 2.1 requires TLS for every authorization server endpoint; clients refuse plain http. Serve the IdP over https and list its https issuer.",
        ),
        Err(_) => Check::fail(
            ID,
            format!("{issuer:?} is not a URL"),
            "authorization_servers lists issuer URLs.",
        ),
    }
}

pub(super) fn strings(doc: &Value, field: &str) -> Option<Vec<String>> {
    doc.get(field)?.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// The authorization server metadata found at `url` for the listed `issuer`: exact issuer, the code
/// grant with PKCE S256, a way to register. Returns the `jwks_uri` when there is one.
pub fn evaluate_as_metadata(issuer: &str, url: &str, doc: &Value) -> (Vec<Check>, Option<String>) {
    let mut checks = Vec::new();
    match doc.get("issuer").and_then(Value::as_str) {
        Some(found) if found == issuer => checks.push(Check::ok(
            "as.metadata",
            format!("{issuer}: metadata at {url}, issuer matches"),
        )),
        Some(found) => checks.push(Check::fail(
            "as.metadata",
            format!(
                "{issuer}: the metadata at {url} says issuer {found:?}: {}",
                describe_difference(issuer, found).join(", ")
            ),
            format!(
                "authorization_servers must list the issuer exactly as its metadata spells it (RFC 8414 §3.3); the SDKs reject the server otherwise. List {found} (mcp-gate: AUTHORIZATION_SERVER={found}), or fix the IdP's public URL (e.g. Keycloak's hostname setting)."
            ),
        )),
        None => checks.push(Check::fail(
            "as.metadata",
            format!("{issuer}: the metadata at {url} has no issuer"),
            "Authorization server metadata must carry its issuer (RFC 8414 §2).",
        )),
    }

    match strings(doc, "grant_types_supported") {
        Some(grants) if !grants.iter().any(|g| g == "authorization_code") => {
            checks.push(Check::fail(
                "as.grant_types",
                format!(
                    "{issuer}: grant_types_supported is [{}], without authorization_code",
                    grants.join(", ")
                ),
                "MCP clients log users in with the authorization code grant. Enable it for the clients they register.",
            ))
        }
        Some(_) => checks.push(Check::ok(
            "as.grant_types",
            format!("{issuer}: offers the authorization_code grant"),
        )),
        None => checks.push(Check::ok(
            "as.grant_types",
            format!("{issuer}: no grant_types_supported, so authorization_code by default (RFC 8414 §2)"),
        )),
    }

    match strings(doc, "code_challenge_methods_supported") {
        Some(methods) if methods.iter().any(|m| m == "S256") => checks.push(Check::ok(
            "as.pkce",
            format!("{issuer}: PKCE with S256"),
        )),
        Some(methods) => checks.push(Check::fail(
            "as.pkce",
            format!(
                "{issuer}: code_challenge_methods_supported is [{}], without S256",
                methods.join(", ")
            ),
            "MCP clients must use PKCE with S256 and refuse to proceed otherwise. Enable S256 on the IdP.",
        )),
        None => checks.push(Check::fail(
            "as.pkce",
            format!("{issuer}: the metadata has no code_challenge_methods_supported"),
            "MCP clients must refuse to proceed when the authorization server does not advertise PKCE. Enable PKCE (S256) so the metadata lists code_challenge_methods_supported: [\"S256\"].",
        )),
    }

    let registration = doc.get("registration_endpoint").and_then(Value::as_str);
    let cimd = doc.get("client_id_metadata_document_supported") == Some(&Value::Bool(true));
    match (registration, cimd) {
        (Some(endpoint), _) => checks.push(Check::ok(
            "as.registration",
            format!("{issuer}: dynamic client registration at {endpoint}"),
        )),
        (None, true) => {
            let public = strings(doc, "token_endpoint_auth_methods_supported")
                .is_some_and(|m| m.iter().any(|x| x == "none"));
            if public {
                checks.push(Check::ok(
                    "as.registration",
                    format!("{issuer}: client ID metadata documents"),
                ));
            } else {
                checks.push(Check::warn(
                    "as.registration",
                    format!("{issuer}: client ID metadata documents, but token_endpoint_auth_methods_supported lacks \"none\""),
                    "Claude.ai uses client ID metadata documents only when the server also accepts public clients (\"none\").",
                ));
            }
        }
        (None, false) => checks.push(Check::warn(
            "as.registration",
            format!("{issuer}: neither a registration_endpoint nor client_id_metadata_document_supported"),
            "Clients cannot register themselves: users must enter a client ID (and secret) by hand in the connector's advanced settings. Enable anonymous dynamic client registration or client ID metadata documents.",
        )),
    }

    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_string);
    if jwks_uri.is_none() {
        checks.push(Check::fail(
            "as.jwks",
            format!("{issuer}: the metadata has no jwks_uri"),
            "A resource server checks JWT access tokens with the keys at jwks_uri. Without one, set mcp-gate's JWKS_URI.",
        ));
    }
    (checks, jwks_uri)
}

/// The JWKS at `jwks_uri`: a 200 document with at least one key the gate can verify with.
pub fn evaluate_jwks(
    jwks_uri: &str,
    answer: &Result<Answer, FetchError>,
    algorithms: &[Alg],
) -> (Check, Option<KeySet>) {
    const ID: &str = "as.jwks";
    let answer = match answer {
        Ok(a) if a.status == 200 => a,
        Ok(a) => return (
            Check::fail(
                ID,
                format!("the JWKS at {jwks_uri} answers {}", a.status),
                "The keys must be served at jwks_uri with 200, without authentication or redirect.",
            ),
            None,
        ),
        Err(e) => {
            return (
                Check::fail(
                    ID,
                    format!("the JWKS at {jwks_uri}: {e}"),
                    fetch_hint(e, "The resource server must be able to fetch the keys."),
                ),
                None,
            )
        }
    };
    match parse_jwks(&answer.body, algorithms) {
        Ok((keys, skipped)) => {
            let kids: Vec<&str> = keys.keys.iter().filter_map(|k| k.kid.as_deref()).collect();
            let mut message = format!(
                "the JWKS at {jwks_uri} has {} usable signing key(s)",
                keys.len()
            );
            if !kids.is_empty() {
                message.push_str(&format!(" ({})", kids.join(", ")));
            }
            if !skipped.is_empty() {
                message.push_str(&format!("; skipped: {}", skipped.join("; ")));
            }
            (Check::ok(ID, message), Some(keys))
        }
        Err(e) => (
            Check::fail(
                ID,
                format!("the JWKS at {jwks_uri}: {e}: {}", describe_jwks(&answer.body)),
                "Tokens can only be checked with asymmetric signing keys (RSA of 2048 bits or more, P-256, P-384, Ed25519). Symmetric (oct/HS256) and encryption keys are never used: give the IdP an RSA or EC signing key.",
            ),
            None,
        ),
    }
}

/// A short description of each key in a JWKS document, for a set with no usable key.
fn describe_jwks(body: &[u8]) -> String {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return format!("not JSON (it starts with {:?})", preview(body));
    };
    let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
        return "no keys array".into();
    };
    if keys.is_empty() {
        return "keys is empty".into();
    }
    let described: Vec<String> = keys
        .iter()
        .map(|k| {
            let field = |name: &str| k.get(name).and_then(Value::as_str).unwrap_or("-");
            format!(
                "kid {} (kty {}, alg {}, use {})",
                field("kid"),
                field("kty"),
                field("alg"),
                field("use")
            )
        })
        .collect();
    described.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{answer, key, statuses, ISS};
    use crate::check::report::Status;
    use crate::test_support::jwks;
    use serde_json::json;

    fn as_doc(change: impl FnOnce(&mut Value)) -> Value {
        let mut doc = json!({
            "issuer": ISS,
            "jwks_uri": format!("{ISS}/certs"),
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["plain", "S256"],
            "registration_endpoint": format!("{ISS}/register"),
        });
        change(&mut doc);
        doc
    }

    #[test]
    fn a_complete_authorization_server_passes() {
        let (checks, jwks_uri) = evaluate_as_metadata(ISS, "u", &as_doc(|_| {}));
        assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:?}");
        assert_eq!(jwks_uri, Some(format!("{ISS}/certs")));
    }

    #[test]
    fn authorization_server_faults_each_fail_or_warn_their_rule() {
        let remove = |field: &'static str| {
            move |d: &mut Value| {
                d.as_object_mut().unwrap().remove(field);
            }
        };
        let cases: Vec<(Value, &str, Status, &str)> = vec![
            (
                as_doc(|d| d["issuer"] = json!(format!("{ISS}/"))),
                "as.metadata",
                Status::Fail,
                "a trailing slash",
            ),
            (
                as_doc(|d| d["issuer"] = json!("https://IDP.example.com/realms/mcp")),
                "as.metadata",
                Status::Fail,
                "host case",
            ),
            (
                as_doc(remove("issuer")),
                "as.metadata",
                Status::Fail,
                "no issuer",
            ),
            (
                as_doc(|d| d["grant_types_supported"] = json!(["client_credentials"])),
                "as.grant_types",
                Status::Fail,
                "without authorization_code",
            ),
            (
                as_doc(|d| d["code_challenge_methods_supported"] = json!(["plain"])),
                "as.pkce",
                Status::Fail,
                "without S256",
            ),
            (
                as_doc(remove("code_challenge_methods_supported")),
                "as.pkce",
                Status::Fail,
                "no code_challenge_methods_supported",
            ),
            (
                as_doc(remove("registration_endpoint")),
                "as.registration",
                Status::Warn,
                "neither",
            ),
            (
                as_doc(|d| {
                    d.as_object_mut().unwrap().remove("registration_endpoint");
                    d["client_id_metadata_document_supported"] = json!(true);
                }),
                "as.registration",
                Status::Warn,
                "lacks \"none\"",
            ),
            (
                as_doc(remove("jwks_uri")),
                "as.jwks",
                Status::Fail,
                "no jwks_uri",
            ),
        ];
        for (doc, id, status, words) in cases {
            let (checks, _) = evaluate_as_metadata(ISS, "u", &doc);
            let c = checks
                .iter()
                .find(|c| c.id == id)
                .unwrap_or_else(|| panic!("no {id} in {checks:?}"));
            assert_eq!(c.status, status, "{c:?}");
            assert!(c.message.contains(words), "{c:?}");
        }
        let cimd = as_doc(|d| {
            d.as_object_mut().unwrap().remove("registration_endpoint");
            d["client_id_metadata_document_supported"] = json!(true);
            d["token_endpoint_auth_methods_supported"] = json!(["none", "private_key_jwt"]);
        });
        let (checks, _) = evaluate_as_metadata(ISS, "u", &cimd);
        assert!(statuses(&checks).contains(&("as.registration", Status::Ok)));
    }

    #[test]
    fn issuer_transport_is_https_or_loopback() {
        assert_eq!(evaluate_issuer_transport(ISS).status, Status::Ok);
        assert_eq!(
            evaluate_issuer_transport("http://127.0.0.1:9000").status,
            Status::Warn
        );
        assert_eq!(
            evaluate_issuer_transport("http://idp.example.com").status,
            Status::Fail
        );
        assert_eq!(evaluate_issuer_transport("idp").status, Status::Fail);
    }

    #[test]
    fn a_jwks_needs_one_usable_signing_key() {
        let uri = "https://idp/certs";
        let (ok, keys) = evaluate_jwks(
            uri,
            &answer(200, "application/json", &jwks(&[key()])),
            &Alg::ALL,
        );
        assert_eq!(ok.status, Status::Ok);
        assert!(ok.message.contains("(k1)"), "{ok:?}");
        assert_eq!(keys.unwrap().len(), 1);
        let hmac = r#"{"keys":[{"kty":"oct","kid":"h1","alg":"HS256","k":"c2VjcmV0"}]}"#;
        let (fail, keys) = evaluate_jwks(uri, &answer(200, "application/json", hmac), &Alg::ALL);
        assert_eq!(fail.status, Status::Fail);
        assert!(
            fail.message.contains("kid h1 (kty oct, alg HS256"),
            "{fail:?}"
        );
        assert!(keys.is_none());
        for a in [
            answer(200, "application/json", r#"{"keys":[]}"#),
            answer(200, "text/html", "<html>"),
            answer(500, "text/plain", ""),
        ] {
            assert_eq!(evaluate_jwks(uri, &a, &Alg::ALL).0.status, Status::Fail);
        }
    }
}
