//! The decision for one inspected body: allow, step up (403 `insufficient_scope` with every scope
//! the operation needs), or deny. Pure.
//!
//! Step-up follows MCP 2025-11-25 SEP-835 and 2026-07-28 SEP-2350 (authorization, "Scope Challenge
//! Handling"): the challenge lists all scopes required for the operation in one `scope` parameter
//! (RFC 6750 §3), never `offline_access` (SEP-2207). A batch is decided element by element and
//! refused whole when any element is refused: a denial wins over a step-up (new scopes would not
//! help), and step-ups are merged into one challenge with the union of their scopes.

use serde_json::{Map, Value};

use super::jsonrpc::{Body, Call, Unparsable};
use super::rules::{Action, DefaultAction, RuleRef, Rules};
use crate::auth::claims::{GrantedScopes, MalformedScopes};

/// Never offered in a challenge nor advertised (SEP-2207).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The verified token, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    scopes: GrantedScopes<'a>,
    claims: &'a Map<String, Value>,
}

impl<'a> Caller<'a> {
    /// From the verified token's claims (`scope` / `scp` read as the token check reads them).
    pub fn new(claims: &'a Map<String, Value>) -> Result<Caller<'a>, MalformedScopes> {
        Ok(Caller {
            scopes: GrantedScopes::read(claims)?,
            claims,
        })
    }

    fn has(&self, rules: &Rules, wanted: &str) -> bool {
        self.scopes
            .iter()
            .any(|g| rules.hierarchy.satisfies(g, wanted))
    }
}

/// Why a request is refused without a scope to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The matching rule says `deny` (or the default is deny).
    DenyRule,
    /// A claim condition of the matching rule does not hold.
    ClaimFailed,
}

/// The outcome for a body. `call` is the element that decided a refusal (the first refused one
/// of a batch), for the error body's `id` and message and for the audit line.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Forward the request. `rule` decided the last call of the body (`Default` for an empty one).
    Allow { rule: RuleRef },
    /// `403`, `WWW-Authenticate: Bearer error="insufficient_scope", scope="<scopes joined by space>"`.
    StepUp {
        scopes: Vec<String>,
        rule: RuleRef,
        call: Call,
    },
    /// `403` with no scope to offer; the body says why.
    Deny {
        rule: RuleRef,
        why: DenyReason,
        call: Call,
    },
    /// `400` with a JSON-RPC parse error (-32700, id null): a rule needs the method and the body
    /// does not say it.
    BadBody(Unparsable),
}

/// One call against the rules.
fn decide_call(rules: &Rules, caller: &Caller, call: &Call) -> Decision {
    let (rule, action) = match rules.first_match(&call.method, call.name.as_deref()) {
        Some((i, r)) => (RuleRef::Index(i), &r.action),
        None => match rules.default {
            DefaultAction::Allow => {
                return Decision::Allow {
                    rule: RuleRef::Default,
                }
            }
            DefaultAction::Deny => (RuleRef::Default, &Action::Deny),
        },
    };
    let deny = |why| Decision::Deny {
        rule,
        why,
        call: call.clone(),
    };
    let req = match action {
        Action::Allow => return Decision::Allow { rule },
        Action::Deny => return deny(DenyReason::DenyRule),
        Action::Require(req) => req,
    };
    if !req.claims.iter().all(|c| c.holds(caller.claims)) {
        return deny(DenyReason::ClaimFailed);
    }
    let all_ok = req.all_of.iter().all(|s| caller.has(rules, s));
    let any_ok = req.any_of.is_empty() || req.any_of.iter().any(|s| caller.has(rules, s));
    if all_ok && any_ok {
        return Decision::Allow { rule };
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in rules
        .base_scopes
        .iter()
        .chain(&req.all_of)
        .chain(req.any_of.first())
    {
        if s != OFFLINE_ACCESS && !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    Decision::StepUp {
        scopes,
        rule,
        call: call.clone(),
    }
}

/// Decides a whole body. An unparsable body is allowed when the policy inspects nothing, and a
/// [`Decision::BadBody`] otherwise (a rule might have needed its method).
pub fn decide(rules: &Rules, caller: &Caller, body: &Body) -> Decision {
    if let Body::Unparsable(why) = body {
        return if rules.inspects_requests() {
            Decision::BadBody(*why)
        } else {
            Decision::Allow {
                rule: RuleRef::Default,
            }
        };
    }
    let mut outcome = Decision::Allow {
        rule: RuleRef::Default,
    };
    for call in body.calls() {
        match (decide_call(rules, caller, call), &mut outcome) {
            (deny @ Decision::Deny { .. }, _) => return deny,
            (Decision::StepUp { scopes, .. }, Decision::StepUp { scopes: all, .. }) => {
                for s in scopes {
                    if !all.contains(&s) {
                        all.push(s);
                    }
                }
            }
            (step_up @ Decision::StepUp { .. }, _) => outcome = step_up,
            (allow, Decision::Allow { .. }) => outcome = allow,
            (_, _) => {}
        }
    }
    outcome
}

/// Whether `tool` would be allowed for `caller` in a `tools/call` (for filtering `tools/list`).
pub fn may_call(rules: &Rules, tool: &str, caller: &Caller) -> bool {
    let call = Call {
        method: "tools/call".into(),
        id: None,
        name: Some(tool.to_string()),
        protocol_version: None,
        trace_context: None,
    };
    matches!(decide_call(rules, caller, &call), Decision::Allow { .. })
}

/// Every scope the policy can require or that implies one, sorted, for the metadata's
/// `scopes_supported` (RFC 9728 §2): clients that register once should ask for them up front.
pub fn scopes_used(rules: &Rules) -> Vec<String> {
    let mut out: Vec<String> = rules
        .rules
        .iter()
        .filter_map(|r| match &r.action {
            Action::Require(req) => Some(req.all_of.iter().chain(&req.any_of)),
            _ => None,
        })
        .flatten()
        .map(String::as_str)
        .chain(rules.hierarchy.scopes())
        .filter(|s| *s != OFFLINE_ACCESS)
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::file::parse_toml;
    use crate::policy::jsonrpc::inspect;
    use serde_json::json;

    const POLICY: &str = r#"
default = "allow"
[hierarchy]
"mcp:admin" = ["mcp:tools"]

[[rule]]
method = "tools/call"
name = "delete_*"
all_of = ["mcp:admin"]

[[rule]]
method = "tools/call"
name = "tenant_*"
all_of = ["mcp:tools"]
claims = ["tenant=acme"]

[[rule]]
method = "tools/call"
name = "drop_everything"
deny = true

[[rule]]
method = "tools/call"
name = "export_*"
all_of = ["mcp:export"]
any_of = ["mcp:admin", "mcp:tools"]

[[rule]]
method = "tools/call"
all_of = ["mcp:tools"]

[[rule]]
method = "resources/read"
name = "file:///secret/*"
deny = true
"#;

    fn rules() -> Rules {
        parse_toml(POLICY).unwrap()
    }

    fn tool(name: &str) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}"}}}}"#)
    }

    fn outcome(claims: Value, body: &str) -> Decision {
        let claims = claims.as_object().unwrap().clone();
        decide(
            &rules(),
            &Caller::new(&claims).unwrap(),
            &inspect(body.as_bytes()),
        )
    }

    fn summary(d: &Decision) -> String {
        match d {
            Decision::Allow { rule } => format!("allow {rule}"),
            Decision::StepUp { scopes, rule, .. } => format!("step-up {rule} {}", scopes.join(" ")),
            Decision::Deny { rule, why, .. } => format!("deny {rule} {why:?}"),
            Decision::BadBody(why) => format!("bad {why:?}"),
        }
    }

    #[test]
    fn rules_decide_in_order_with_the_hierarchy_claims_and_default() {
        let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let secret = r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///secret/k"}}"#;
        let cases = [
            (json!({"scope": "mcp:tools"}), tool("echo"), "allow rule 5"),
            (
                json!({"scope": "mcp:read"}),
                tool("echo"),
                "step-up rule 5 mcp:tools",
            ),
            (
                json!({"scope": "mcp:tools"}),
                tool("delete_note"),
                "step-up rule 1 mcp:admin",
            ),
            (
                json!({"scp": ["mcp:admin"]}),
                tool("delete_note"),
                "allow rule 1",
            ),
            (json!({"scp": "mcp:admin"}), tool("echo"), "allow rule 5"),
            (
                json!({"scope": "mcp:tools", "tenant": "acme"}),
                tool("tenant_x"),
                "allow rule 2",
            ),
            (
                json!({"scope": "mcp:tools", "tenant": "other"}),
                tool("tenant_x"),
                "deny rule 2 ClaimFailed",
            ),
            (
                json!({"scope": "", "tenant": "other"}),
                tool("tenant_x"),
                "deny rule 2 ClaimFailed",
            ),
            (
                json!({"scope": "mcp:admin"}),
                tool("drop_everything"),
                "deny rule 3 DenyRule",
            ),
            (
                json!({"scope": "mcp:read"}),
                tool("export_csv"),
                "step-up rule 4 mcp:export mcp:admin",
            ),
            (
                json!({"scope": "mcp:export mcp:tools offline_access"}),
                tool("export_csv"),
                "allow rule 4",
            ),
            (json!({}), list.to_string(), "allow default"),
            (json!({}), secret.to_string(), "deny rule 6 DenyRule"),
            (json!({}), "garbage".to_string(), "bad NotJson"),
        ];
        for (claims, body, want) in cases {
            assert_eq!(
                summary(&outcome(claims.clone(), &body)),
                want,
                "{claims} {body}"
            );
        }
    }

    #[test]
    fn a_batch_is_refused_whole_with_one_challenge_for_all_its_scopes() {
        let batch = |names: &[&str]| {
            format!(
                "[{}]",
                names.iter().map(|n| tool(n)).collect::<Vec<_>>().join(",")
            )
        };
        let read = json!({"scope": "mcp:read"});
        assert_eq!(
            summary(&outcome(
                read.clone(),
                &batch(&["echo", "delete_x", "export_y"])
            )),
            "step-up rule 5 mcp:tools mcp:admin mcp:export"
        );
        assert_eq!(
            summary(&outcome(
                read,
                &batch(&["echo", "drop_everything", "delete_x"])
            )),
            "deny rule 3 DenyRule"
        );
        assert_eq!(
            summary(&outcome(
                json!({"scope": "mcp:tools"}),
                &batch(&["echo", "echo"])
            )),
            "allow rule 5"
        );
    }

    #[test]
    fn default_deny_refuses_unmatched_requests_and_an_empty_policy_allows_all() {
        let mut r = rules();
        r.default = DefaultAction::Deny;
        let claims = json!({}).as_object().unwrap().clone();
        let caller = Caller::new(&claims).unwrap();
        let list = inspect(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
        assert!(matches!(
            decide(&r, &caller, &list),
            Decision::Deny {
                rule: RuleRef::Default,
                ..
            }
        ));
        let empty = Rules::default();
        assert!(!empty.inspects_requests());
        assert_eq!(
            decide(&empty, &caller, &inspect(b"garbage")),
            Decision::Allow {
                rule: RuleRef::Default
            }
        );
    }

    #[test]
    fn may_call_and_scopes_used_follow_the_rules() {
        let claims = json!({"scope": "mcp:tools"}).as_object().unwrap().clone();
        let caller = Caller::new(&claims).unwrap();
        assert!(may_call(&rules(), "echo", &caller));
        assert!(!may_call(&rules(), "delete_note", &caller));
        assert!(!may_call(&rules(), "drop_everything", &caller));
        assert_eq!(
            scopes_used(&rules()),
            ["mcp:admin", "mcp:export", "mcp:tools"]
        );
    }

    #[test]
    fn a_challenge_also_names_the_scopes_every_request_needs_but_never_offline_access() {
        let mut r = rules();
        r.base_scopes = vec![
            "mcp:basic".into(),
            "offline_access".into(),
            "mcp:admin".into(),
        ];
        let claims = json!({"scope": "mcp:basic"}).as_object().unwrap().clone();
        let d = decide(
            &r,
            &Caller::new(&claims).unwrap(),
            &inspect(tool("delete_x").as_bytes()),
        );
        assert_eq!(summary(&d), "step-up rule 1 mcp:basic mcp:admin");
    }
}
