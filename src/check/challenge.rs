//! The `WWW-Authenticate` header of the 401: a general parser of challenges (RFC 9110 §11.6.1) and
//! the checks a client depends on — exactly one `Bearer` challenge (RFC 6750 §3), quoted values, no
//! parameter twice, an absolute `resource_metadata` (RFC 9728 §5.1).

use super::report::Check;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth scheme as sent (`Bearer`, `bearer`, `Basic`…).
    pub scheme: String,
    /// Its auth-params in order, duplicates kept (a token68 is not kept).
    pub params: Vec<AuthParam>,
}

/// One `name=value` of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam {
    pub name: String,
    /// The value, unescaped when it was quoted.
    pub value: String,
    /// Sent as a quoted-string.
    pub quoted: bool,
    /// Whitespace around `=`: allowed (BWS), but the regexes of the SDKs then miss the parameter.
    pub spaced: bool,
}

impl Challenge {
    /// The first value of `name` (names are case-insensitive).
    pub fn param(&self, name: &str) -> Option<&AuthParam> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }
}

/// Parses a `WWW-Authenticate` value (several header lines joined with `, `) into its challenges.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, String> {
    let mut p = ChallengeParser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.skip_separators();
        if p.done() {
            return Ok(out);
        }
        let start = p.i;
        let scheme = p.token();
        if scheme.is_empty() {
            return Err(format!("expected an auth scheme at byte {start}"));
        }
        let mut challenge = Challenge {
            scheme,
            params: Vec::new(),
        };
        // `1*SP`, then a token68 or the first auth-param.
        if p.skip_ows() && !p.done() && p.peek() != Some(b',') {
            match p.param()? {
                Some(param) => challenge.params.push(param),
                None => p.token68()?,
            }
        }
        loop {
            p.skip_ows();
            if p.done() {
                break;
            }
            if p.peek() != Some(b',') {
                return Err(format!(
                    "unexpected {:?} at byte {}",
                    char::from(p.s[p.i]),
                    p.i
                ));
            }
            // A comma separates auth-params and challenges alike: `name=` continues this challenge.
            p.skip_separators();
            match p.param()? {
                Some(param) => challenge.params.push(param),
                None => break,
            }
        }
        out.push(challenge);
    }
}

struct ChallengeParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl ChallengeParser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips spaces and tabs; whether there were any.
    fn skip_ows(&mut self) -> bool {
        let start = self.i;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
        self.i > start
    }

    /// Skips whitespace and the commas of empty list elements.
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }

    /// `name BWS "=" BWS value`, or `None` (position unchanged) when the input is not shaped so.
    fn param(&mut self) -> Result<Option<AuthParam>, String> {
        let start = self.i;
        let name = self.token();
        let before = self.skip_ows();
        if name.is_empty() || self.peek() != Some(b'=') {
            self.i = start;
            return Ok(None);
        }
        self.i += 1;
        let after = self.skip_ows();
        let (value, quoted) = match self.peek() {
            // `name=` with nothing after it, or `==`: token68 padding, not a parameter.
            None | Some(b'=' | b',') => {
                self.i = start;
                return Ok(None);
            }
            Some(b'"') => (self.quoted()?, true),
            Some(_) => {
                let from = self.i;
                while !matches!(self.peek(), None | Some(b' ' | b'\t' | b',')) {
                    self.i += 1;
                }
                (
                    String::from_utf8_lossy(&self.s[from..self.i]).into_owned(),
                    false,
                )
            }
        };
        Ok(Some(AuthParam {
            name,
            value,
            quoted,
            spaced: before || after,
        }))
    }

    fn quoted(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated quoted string at byte {start}")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&value).into_owned());
                }
                Some(b'\\') => {
                    let escaped = self
                        .s
                        .get(self.i + 1)
                        .copied()
                        .ok_or_else(|| format!("unterminated quoted string at byte {start}"))?;
                    value.push(escaped);
                    self.i += 2;
                }
                Some(b) => {
                    value.push(b);
                    self.i += 1;
                }
            }
        }
    }

    fn token68(&mut self) -> Result<(), String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
        {
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("expected a parameter at byte {start}"));
        }
        while self.peek() == Some(b'=') {
            self.i += 1;
        }
        Ok(())
    }
}

/// What the challenge tells a client, with the checks on it.
#[derive(Debug, Clone, Default)]
pub struct ChallengeFindings {
    pub checks: Vec<Check>,
    /// The absolute `resource_metadata` URL, when there is a usable one.
    pub resource_metadata: Option<String>,
    /// The `scope` parameter, split.
    pub scope: Option<Vec<String>>,
}

/// Checks the `WWW-Authenticate` header lines of the 401: exactly one `Bearer` challenge, parseable,
/// quoted values, no parameter twice, an absolute `resource_metadata` (RFC 6750 §3, RFC 9728 §5.1).
pub fn evaluate_challenge(values: &[&str]) -> ChallengeFindings {
    let mut found = ChallengeFindings::default();
    if values.is_empty() {
        found.checks.push(Check::fail(
            "challenge.header",
            "the 401 has no WWW-Authenticate header",
            "Clients find the metadata through the challenge's resource_metadata (RFC 9728 §5.1); without it many fall back to legacy discovery on the MCP host and fail. Answer with WWW-Authenticate: Bearer resource_metadata=\"<absolute metadata URL>\". Something in front of the server may be dropping the header.",
        ));
        return found;
    }
    let joined = values.join(", ");
    let challenges = match parse_challenges(&joined) {
        Ok(c) => c,
        Err(e) => {
            found.checks.push(Check::fail(
                "challenge.syntax",
                format!("WWW-Authenticate does not parse ({e}): {joined}"),
                "Use the RFC 6750 form: Bearer name=\"value\", name=\"value\" — every value quoted, a comma between parameters.",
            ));
            return found;
        }
    };
    let bearers: Vec<&Challenge> = challenges
        .iter()
        .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .collect();
    let others: Vec<&str> = challenges
        .iter()
        .filter(|c| !c.scheme.eq_ignore_ascii_case("bearer"))
        .map(|c| c.scheme.as_str())
        .collect();
    let bearer = match bearers.as_slice() {
        [] => {
            found.checks.push(Check::fail(
                "challenge.bearer",
                format!(
                    "WWW-Authenticate has no Bearer challenge (schemes: {})",
                    others.join(", ")
                ),
                "MCP clients look for a Bearer challenge. Answer with WWW-Authenticate: Bearer resource_metadata=\"<absolute metadata URL>\".",
            ));
            return found;
        }
        [one] => {
            let mut message = "exactly one Bearer challenge".to_string();
            if !others.is_empty() {
                message.push_str(&format!(" (also: {})", others.join(", ")));
            }
            found.checks.push(Check::ok("challenge.bearer", message));
            *one
        }
        many => {
            found.checks.push(Check::fail(
                "challenge.bearer",
                format!(
                    "{} Bearer challenges in {} WWW-Authenticate line(s)",
                    many.len(),
                    values.len()
                ),
                "Send exactly one Bearer challenge: clients read only one, and which one differs. Two layers (a proxy and the server) each adding a challenge is the usual cause.",
            ));
            many[0]
        }
    };

    let mut problems = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for p in &bearer.params {
        let lower = p.name.to_ascii_lowercase();
        if seen.contains(&lower) {
            if !problems.iter().any(|m: &String| m.starts_with(&p.name)) {
                problems.push(format!("{} appears more than once", p.name));
            }
        } else {
            seen.push(lower);
        }
        if !p.quoted {
            problems.push(format!("{}={} is not quoted", p.name, p.value));
        }
        if p.spaced {
            problems.push(format!("whitespace around = after {}", p.name));
        }
    }
    if problems.is_empty() {
        found.checks.push(Check::ok(
            "challenge.syntax",
            "the challenge is well-formed: every value quoted, no parameter twice",
        ));
    } else {
        found.checks.push(Check::fail(
            "challenge.syntax",
            format!("the challenge is malformed: {}", problems.join("; ")),
            "Each parameter at most once, every value in double quotes, no spaces around '=': the SDKs read resource_metadata with a regex like resource_metadata=\"([^\"]*)\", and a duplicate broke the Rust client.",
        ));
    }

    match bearer.param("resource_metadata") {
        None => found.checks.push(Check::fail(
            "challenge.resource_metadata",
            "the challenge has no resource_metadata",
            "Clients learn where the metadata is from resource_metadata (RFC 9728 §5.1). Without it some probe the well-known URLs, others (and older SDKs) assume the MCP host is the authorization server and fail. Add resource_metadata=\"https://<host>/.well-known/oauth-protected-resource<path>\".",
        )),
        Some(p) => match url::Url::parse(&p.value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                found.checks.push(Check::ok(
                    "challenge.resource_metadata",
                    format!("resource_metadata is {}", p.value),
                ));
                found.resource_metadata = Some(p.value.clone());
            }
            Ok(_) => found.checks.push(Check::fail(
                "challenge.resource_metadata",
                format!("resource_metadata {:?} is not an http(s) URL", p.value),
                "Use the absolute https URL of the metadata document.",
            )),
            Err(_) => found.checks.push(Check::fail(
                "challenge.resource_metadata",
                format!("resource_metadata {:?} is not an absolute URL", p.value),
                "Clients do not resolve a relative resource_metadata. Use the absolute URL, e.g. https://<host>/.well-known/oauth-protected-resource/mcp (behind a proxy, configure the public URL rather than deriving it from the request).",
            )),
        },
    }

    if let Some(error) = bearer.param("error") {
        found.checks.push(Check::warn(
            "challenge.error",
            format!(
                "the challenge to a request without a token carries error=\"{}\"",
                error.value
            ),
            "RFC 6750 §3: a request without credentials SHOULD get no error code. Clients tolerate it.",
        ));
    }
    found.scope = bearer.param("scope").map(|p| {
        p.value
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect()
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{failing, statuses};
    use crate::check::report::Status;

    #[test]
    fn challenges_parse_per_rfc_9110() {
        let parsed = parse_challenges(
            r#"Bearer resource_metadata="https://h/.well-known/x", scope="a b", Basic realm="r\"q", Negotiate abc=="#,
        )
        .unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0].scheme, "Bearer");
        assert_eq!(
            parsed[0].param("RESOURCE_METADATA").unwrap().value,
            "https://h/.well-known/x"
        );
        assert_eq!(parsed[0].param("scope").unwrap().value, "a b");
        assert_eq!(parsed[1].param("realm").unwrap().value, "r\"q");
        assert_eq!(parsed[2].scheme, "Negotiate");
        assert!(parsed[2].params.is_empty());

        let bare = parse_challenges("Bearer scope=mcp:tools , error = \"x\"").unwrap();
        assert_eq!(bare.len(), 1);
        let scope = bare[0].param("scope").unwrap();
        assert!(!scope.quoted && !scope.spaced);
        assert!(bare[0].param("error").unwrap().spaced);

        assert_eq!(parse_challenges("Bearer").unwrap()[0].params, vec![]);
        for bad in [
            r#"Bearer resource_metadata="https://h"#,
            r#"Bearer a="1" b="2""#,
            "=x",
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_well_formed_challenge_passes_and_yields_its_metadata_url_and_scope() {
        let found = evaluate_challenge(&[
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:read""#,
        ]);
        assert!(failing(&found.checks).is_empty(), "{:?}", found.checks);
        assert_eq!(
            found.resource_metadata.as_deref(),
            Some("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            found.scope,
            Some(vec!["mcp:tools".to_string(), "mcp:read".to_string()])
        );
    }

    #[test]
    fn challenge_faults_each_fail_their_rule() {
        let prm = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
        let dup = format!(r#"Bearer resource_metadata="{prm}", resource_metadata="{prm}""#);
        let two = format!(r#"Bearer resource_metadata="{prm}""#);
        let cases: Vec<(Vec<&str>, &str, &str)> = vec![
            (vec![], "challenge.header", "no WWW-Authenticate"),
            (vec![r#"Basic realm="x""#], "challenge.bearer", "no Bearer"),
            (vec![&two, &two], "challenge.bearer", "2 Bearer challenges"),
            (vec![&dup], "challenge.syntax", "more than once"),
            (
                vec![r#"Bearer resource_metadata=https://mcp.example.com/x"#],
                "challenge.syntax",
                "not quoted",
            ),
            (
                vec![r#"Bearer resource_metadata = "https://mcp.example.com/x""#],
                "challenge.syntax",
                "whitespace",
            ),
            (
                vec![r#"Bearer resource_metadata="/.well-known/oauth-protected-resource/mcp""#],
                "challenge.resource_metadata",
                "not an absolute URL",
            ),
            (
                vec![r#"Bearer scope="mcp:tools""#],
                "challenge.resource_metadata",
                "no resource_metadata",
            ),
            (
                vec![r#"Bearer resource_metadata="https://h"#],
                "challenge.syntax",
                "does not parse",
            ),
        ];
        for (values, id, words) in cases {
            let found = evaluate_challenge(&values);
            let fail = found
                .checks
                .iter()
                .find(|c| c.id == id && c.status == Status::Fail)
                .unwrap_or_else(|| panic!("{values:?}: no failing {id}: {:?}", found.checks));
            assert!(fail.message.contains(words), "{values:?}: {fail:?}");
            assert!(fail.hint.is_some());
        }
    }

    #[test]
    fn an_error_code_without_a_token_is_only_a_warning() {
        let found = evaluate_challenge(&[
            r#"Bearer error="invalid_token", resource_metadata="https://h/.well-known/oauth-protected-resource""#,
        ]);
        assert!(failing(&found.checks).is_empty());
        assert!(statuses(&found.checks).contains(&("challenge.error", Status::Warn)));
    }
}
