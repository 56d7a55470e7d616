//! The audit record of one inspected MCP request, and the bounded metric labels for it.
//!
//! One record per request the gate inspected: who (`sub`, `client_id`, `iss`), what (JSON-RPC
//! `method`, MCP `name`, `id`), the decision and the rule that made it, the HTTP status and the
//! duration. Tool arguments are never part of it: they are not even read into the record's types.
//! Client-chosen strings (name, id) are cut to a bound so one request cannot write a huge line.
//! Metric labels take only values from a fixed list or from the policy itself, never from the
//! request, so their cardinality is bounded by the configuration.

use serde::Serialize;

use super::decide::{Decision, DenyReason};
use super::jsonrpc::Call;
use super::rules::{RuleRef, Rules};

/// Longest `name` or `id` text kept in a record, in bytes (cut at a character boundary).
pub const MAX_FIELD: usize = 256;

/// What the gate did with the request, for the record and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    /// 403 `insufficient_scope`.
    StepUp,
    /// 403 by a deny rule or the default.
    Denied,
    /// 403: a claim condition did not hold.
    ClaimFailed,
    /// 400 -32700: a rule needed the method and the body had none.
    BadBody,
    /// 400 -32020.
    HeaderMismatch,
    /// 429: the rules allowed it and `RATE_LIMIT_TOOL` did not.
    RateLimited,
}

impl Outcome {
    /// The decision's outcome.
    pub fn of(decision: &Decision) -> Outcome {
        match decision {
            Decision::Allow { .. } => Outcome::Allowed,
            Decision::StepUp { .. } => Outcome::StepUp,
            Decision::Deny {
                why: DenyReason::DenyRule,
                ..
            } => Outcome::Denied,
            Decision::Deny {
                why: DenyReason::ClaimFailed,
                ..
            } => Outcome::ClaimFailed,
            Decision::BadBody(_) => Outcome::BadBody,
        }
    }

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::StepUp => "step_up",
            Outcome::Denied => "denied",
            Outcome::ClaimFailed => "claim_failed",
            Outcome::BadBody => "bad_body",
            Outcome::HeaderMismatch => "header_mismatch",
            Outcome::RateLimited => "rate_limited",
        }
    }
}

/// One audit line; serialize it with serde_json. Field order is the order of reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub iss: Option<String>,
    /// The JSON-RPC method (the first refused element's for a refused batch, else the first's).
    pub method: Option<String>,
    pub name: Option<String>,
    /// The JSON-RPC `id` as JSON text.
    pub id: Option<String>,
    /// How many messages the body held (1, or the batch length).
    pub messages: usize,
    pub decision: Outcome,
    /// `rule 3` or `default`; `None` when no rule was consulted (header mismatch).
    pub rule: Option<String>,
    pub status: u16,
    pub duration_us: u64,
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_FIELD {
        let mut cut = MAX_FIELD;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

impl AuditRecord {
    /// The what-part of a record from the call that decided (identity, status and duration are
    /// filled in by the request path, which knows them).
    pub fn for_call(
        call: Option<&Call>,
        messages: usize,
        decision: Outcome,
        rule: Option<RuleRef>,
    ) -> AuditRecord {
        AuditRecord {
            sub: None,
            client_id: None,
            iss: None,
            method: call.map(|c| bounded(c.method.clone())),
            name: call.and_then(|c| c.name.clone()).map(bounded),
            id: call
                .and_then(|c| c.id.as_ref())
                .map(|id| bounded(id.to_string())),
            messages,
            decision,
            rule: rule.map(|r| r.to_string()),
            status: 0,
            duration_us: 0,
        }
    }
}

/// The MCP methods that get their own metric label; anything else is `other`.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "subscriptions/listen",
    "notifications/initialized",
    "notifications/cancelled",
];

/// A bounded label for a JSON-RPC method.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// A bounded label for the MCP name: the name pattern of the rule that matched it (for a rule
/// naming one tool, that is the tool's name), else `other`. The value always comes from the policy.
pub fn name_label<'r>(rules: &'r Rules, method: &str, name: Option<&str>) -> &'r str {
    match rules.first_match(method, name) {
        Some((_, rule)) => rule.name.as_ref().map_or("other", |g| g.as_str()),
        None => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::file::parse_tool_scopes;
    use serde_json::json;

    #[test]
    fn labels_come_only_from_a_fixed_list_or_the_policy() {
        let rules = parse_tool_scopes("delete_note=mcp:admin;export_*=mcp:export").unwrap();
        assert_eq!(
            name_label(&rules, "tools/call", Some("delete_note")),
            "delete_note"
        );
        assert_eq!(
            name_label(&rules, "tools/call", Some("export_csv")),
            "export_*"
        );
        assert_eq!(
            name_label(&rules, "tools/call", Some("random_tool_42")),
            "other"
        );
        assert_eq!(name_label(&rules, "tools/list", None), "other");
        assert_eq!(method_label("tools/call"), "tools/call");
        assert_eq!(method_label("x/attacker-chosen"), "other");
    }

    #[test]
    fn a_record_never_holds_arguments_and_bounds_client_strings() {
        let call = Call {
            method: "tools/call".into(),
            id: Some(json!("i".repeat(1000))),
            name: Some("é".repeat(300)),
            protocol_version: None,
            trace_context: None,
        };
        let r = AuditRecord::for_call(Some(&call), 1, Outcome::StepUp, Some(RuleRef::Index(0)));
        assert!(r.id.as_ref().unwrap().len() <= MAX_FIELD);
        assert!(r.name.as_ref().unwrap().len() <= MAX_FIELD);
        let line = serde_json::to_value(&r).unwrap();
        assert_eq!(line["decision"], "step_up");
        assert_eq!(line["rule"], "rule 1");
        let keys: Vec<_> = line.as_object().unwrap().keys().cloned().collect();
        assert!(!keys.iter().any(|k| k.contains("arg")), "{keys:?}");
    }
}
