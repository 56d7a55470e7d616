//! The two ways to write a policy: `POLICY_FILE` (TOML) and the one-variable `TOOL_SCOPES`; both
//! parse into the same [`Rules`]. Pure: the caller reads the file and passes its text.
//!
//! TOML because Kubernetes ConfigMaps and humans both handle it without indentation traps. The
//! file:
//!
//! ```toml
//! default = "allow"            # or "deny"; what applies when no rule matches (default: allow)
//!
//! [hierarchy]                  # broader scope = the narrower scopes it implies
//! "mcp:admin" = ["mcp:tools"]
//!
//! [[rule]]                     # rules are matched in order; the first match decides
//! method = "tools/call"        # a JSON-RPC method; `*` and `?` are wildcards (`*` = any method)
//! name = "delete_*"            # optional: tool/prompt name or resource URI pattern
//! all_of = ["mcp:admin"]       # optional: every one of these scopes
//! any_of = ["a", "b"]          # optional: at least one of these
//! claims = ["tenant=acme"]     # optional: REQUIRED_CLAIMS grammar, all must hold
//! # deny = true                # instead of requirements: always refused
//! ```
//!
//! A rule with no requirement and no `deny` allows. `TOOL_SCOPES="delete_*=mcp:admin;export_*=mcp:admin
//! mcp:export"` is the shorthand for `tools/call` rules with `all_of` scopes. Setting both is refused
//! at start-up ([`PolicyError::BothSet`]): two sources of rules would need an order nobody can guess.
//! `offline_access` is refused in any rule: it is not an operation scope, and a challenge never
//! offers it (SEP-2207), so a rule requiring it could never be satisfied by stepping up.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::decide::OFFLINE_ACCESS;
use super::jsonrpc::name_member;
use super::rules::{Action, DefaultAction, Glob, Requirement, Rule, Rules, ScopeHierarchy};
use crate::auth::claims::ClaimRule;

/// A policy that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("POLICY_FILE: {0}")]
    Toml(String),
    #[error("POLICY_FILE rule {index} (line {line}): {reason}")]
    Rule {
        index: usize,
        line: usize,
        reason: String,
    },
    #[error("POLICY_FILE [hierarchy]: {0}")]
    Hierarchy(String),
    #[error("TOOL_SCOPES rule {index} ({item:?}): {reason}")]
    ToolScopes {
        index: usize,
        item: String,
        reason: String,
    },
    #[error("POLICY_FILE and TOOL_SCOPES are both set: use one (TOOL_SCOPES is a shorthand for tools/call rules of a policy file)")]
    BothSet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    default: DefaultDoc,
    #[serde(default)]
    hierarchy: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleDoc>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum DefaultDoc {
    #[default]
    Allow,
    Deny,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    method: String,
    name: Option<String>,
    #[serde(default)]
    all_of: Vec<String>,
    #[serde(default)]
    any_of: Vec<String>,
    #[serde(default)]
    claims: Vec<String>,
    #[serde(default)]
    deny: bool,
}

/// A scope as RFC 6749 §3.3 allows it (`scope-token`), and not `offline_access`.
fn check_scope(scope: &str) -> Result<(), String> {
    let token_char = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    if scope.is_empty() || !scope.bytes().all(token_char) {
        return Err(format!(
            "{scope:?} is not a scope (RFC 6749 §3.3 scope-token)"
        ));
    }
    if scope == OFFLINE_ACCESS {
        return Err("offline_access is not an operation scope and is never challenged".into());
    }
    Ok(())
}

fn rule(doc: &RuleDoc, origin: String) -> Result<Rule, String> {
    if doc.method.is_empty() {
        return Err("method is empty (use \"*\" for any method)".into());
    }
    let method = Glob::new(&doc.method);
    if let Some(name) = &doc.name {
        if name.is_empty() {
            return Err("name is empty (leave it out to match every name)".into());
        }
        if method.is_literal() && name_member(&doc.method).is_none() {
            return Err(format!(
                "{} has no name; a name applies to tools/call, prompts/get and resources/read",
                doc.method
            ));
        }
    }
    for s in doc.all_of.iter().chain(&doc.any_of) {
        check_scope(s)?;
    }
    let claims = doc
        .claims
        .iter()
        .map(|c| ClaimRule::parse(c).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let action = if doc.deny {
        if !doc.all_of.is_empty() || !doc.any_of.is_empty() || !claims.is_empty() {
            return Err("deny = true cannot be combined with scopes or claims".into());
        }
        Action::Deny
    } else if doc.all_of.is_empty() && doc.any_of.is_empty() && claims.is_empty() {
        Action::Allow
    } else {
        Action::Require(Requirement {
            all_of: doc.all_of.clone(),
            any_of: doc.any_of.clone(),
            claims,
        })
    };
    Ok(Rule {
        method,
        name: doc.name.as_deref().map(Glob::new),
        action,
        origin,
    })
}

/// Parses a `POLICY_FILE`'s text.
pub fn parse_toml(text: &str) -> Result<Rules, PolicyError> {
    let doc: Document = toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string()))?;
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let mut rules = Vec::with_capacity(doc.rule.len());
    for (i, spanned) in doc.rule.iter().enumerate() {
        let line = line_of(spanned.span().start);
        let r = rule(spanned.get_ref(), format!("POLICY_FILE line {line}")).map_err(|reason| {
            PolicyError::Rule {
                index: i + 1,
                line,
                reason,
            }
        })?;
        rules.push(r);
    }
    for (broader, narrower) in &doc.hierarchy {
        for s in std::iter::once(broader).chain(narrower) {
            check_scope(s).map_err(PolicyError::Hierarchy)?;
        }
    }
    Ok(Rules {
        rules,
        default: match doc.default {
            DefaultDoc::Allow => DefaultAction::Allow,
            DefaultDoc::Deny => DefaultAction::Deny,
        },
        hierarchy: ScopeHierarchy::new(&doc.hierarchy),
        base_scopes: Vec::new(),
    })
}

/// Parses `TOOL_SCOPES`: `glob=scope scope;glob=scope,scope;…`.
pub fn parse_tool_scopes(raw: &str) -> Result<Rules, PolicyError> {
    let mut rules = Vec::new();
    for (i, item) in raw
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
    {
        let fail = |reason: &str| PolicyError::ToolScopes {
            index: i + 1,
            item: item.to_string(),
            reason: reason.to_string(),
        };
        let (glob, scopes) = item
            .split_once('=')
            .ok_or_else(|| fail("expected tool_glob=scope [scope…]"))?;
        let doc = RuleDoc {
            method: "tools/call".into(),
            name: Some(glob.trim().to_string()),
            all_of: scopes
                .split([' ', ',', '\t'])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            any_of: vec![],
            claims: vec![],
            deny: false,
        };
        if doc.all_of.is_empty() {
            return Err(fail("no scope after ="));
        }
        rules.push(rule(&doc, format!("TOOL_SCOPES rule {}", i + 1)).map_err(|r| fail(&r))?);
    }
    Ok(Rules {
        rules,
        ..Rules::default()
    })
}

/// The policy from the settings: the file's text, `TOOL_SCOPES`, or neither (allow everything).
pub fn from_settings(file: Option<&str>, tool_scopes: Option<&str>) -> Result<Rules, PolicyError> {
    match (file, tool_scopes) {
        (Some(_), Some(_)) => Err(PolicyError::BothSet),
        (Some(text), None) => parse_toml(text),
        (None, Some(raw)) => parse_tool_scopes(raw),
        (None, None) => Ok(Rules::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_scopes_become_tools_call_rules_in_order() {
        let r =
            parse_tool_scopes("delete_*=mcp:admin; export_*=mcp:admin mcp:export,mcp:x;;").unwrap();
        assert_eq!(r.rules.len(), 2);
        assert_eq!(r.rules[1].method.as_str(), "tools/call");
        assert_eq!(r.rules[1].name.as_ref().unwrap().as_str(), "export_*");
        let Action::Require(req) = &r.rules[1].action else {
            panic!()
        };
        assert_eq!(req.all_of, ["mcp:admin", "mcp:export", "mcp:x"]);
        assert_eq!(r.first_match("tools/call", Some("delete_a")).unwrap().0, 0);
        assert!(r.first_match("tools/call", Some("echo")).is_none());
        assert_eq!(r.default, DefaultAction::Allow);
    }

    #[test]
    fn bad_tool_scopes_name_the_rule_and_the_reason() {
        for (raw, index) in [
            ("a=x;nothing", 2),
            ("a=", 1),
            ("=x", 1),
            ("a=x;b=offline_access", 2),
            ("a=caf\u{e9}", 1),
            ("a=\"q\"", 1),
        ] {
            match parse_tool_scopes(raw) {
                Err(PolicyError::ToolScopes { index: i, .. }) => assert_eq!(i, index, "{raw}"),
                other => panic!("{raw}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_policy_files_name_the_rule_line_and_reason() {
        let cases = [
            ("[[rule]]\nmethod = \"tools/call\"\nbogus = 1\n", "unknown field"),
            ("defaults = \"deny\"\n", "unknown field"),
            ("default = \"maybe\"\n", "unknown variant"),
            ("[[rule]]\nmethod = \"x\"\n\n[[rule]]\nmethod = \"tools/call\"\ndeny = true\nall_of = [\"a\"]\n", "rule 2 (line 4)"),
            ("[[rule]]\nmethod = \"tools/list\"\nname = \"x\"\n", "has no name"),
            ("[[rule]]\nmethod = \"\"\n", "method is empty"),
            ("[[rule]]\nmethod = \"*\"\nclaims = [\"noequals\"]\n", "claim=value"),
            ("[[rule]]\nmethod = \"*\"\nany_of = [\"offline_access\"]\n", "offline_access"),
            ("[hierarchy]\n\"a b\" = [\"c\"]\n", "hierarchy"),
            ("[[rule]]\nname = \"x\"\n", "missing field"),
            ("[[rule]\n", "line 1"),
        ];
        for (text, needle) in cases {
            let err = parse_toml(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_rule_without_requirements_allows_and_both_settings_are_refused() {
        let r = parse_toml("default = \"deny\"\n[[rule]]\nmethod = \"tools/list\"\n").unwrap();
        assert_eq!(r.rules[0].action, Action::Allow);
        assert_eq!(r.default, DefaultAction::Deny);
        assert_eq!(
            from_settings(Some(""), Some("a=b")),
            Err(PolicyError::BothSet)
        );
        assert_eq!(from_settings(None, None), Ok(Rules::default()));
    }
}
