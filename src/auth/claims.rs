//! The two questions asked of a verified token's claims by more than one caller: which scopes does
//! it grant, and does a claim rule hold.
//!
//! Shared by the token check ([`super::token`], `REQUIRED_SCOPES` / `REQUIRED_CLAIMS`) and the MCP
//! authorization rules (`crate::policy`), so that a scope or a claim condition means exactly the same
//! thing in both places. Scopes are read as RFC 9068 §2.2.3 (`scope`, space-separated, RFC 6749 §3.3)
//! and as Entra / Keycloak emit them (`scp`, a string or an array).

use serde_json::{Map, Value};

/// A claim condition: the claim at `path` equals `value`, or, for an array, contains it.
///
/// Grammar (`REQUIRED_CLAIMS` and policy rules): `claim=value` or `nested.claim=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// The dotted path, split; never empty, no empty segment.
    pub path: Vec<String>,
    pub value: String,
}

/// Why a claim-rule list did not parse; `item` is the offending rule as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item:?}: {expected}")]
pub struct ClaimRuleError {
    pub item: String,
    pub expected: &'static str,
}

impl ClaimRule {
    /// Parses one `path=value` rule.
    pub fn parse(item: &str) -> Result<ClaimRule, ClaimRuleError> {
        let item = item.trim();
        let (path, value) = item.split_once('=').ok_or_else(|| ClaimRuleError {
            item: item.to_string(),
            expected: "rules like claim=value or nested.claim=value, comma-separated",
        })?;
        let path: Vec<String> = path.trim().split('.').map(str::to_string).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ClaimRuleError {
                item: item.to_string(),
                expected: "a dotted claim path such as realm_access.roles",
            });
        }
        Ok(ClaimRule {
            path,
            value: value.trim().to_string(),
        })
    }

    /// Parses a comma-separated list of rules (empty items are skipped), as `REQUIRED_CLAIMS` holds.
    pub fn parse_list(raw: &str) -> Result<Vec<ClaimRule>, ClaimRuleError> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(ClaimRule::parse)
            .collect()
    }

    /// Whether the rule holds for these claims. Strings compare exactly, booleans as `true`/`false`,
    /// numbers by their JSON text; an array holds when any element matches; objects never match.
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        let mut node = claims.get(&self.path[0]);
        for segment in &self.path[1..] {
            node = node.and_then(|n| n.get(segment));
        }
        let scalar_matches = |v: &Value| match v {
            Value::String(s) => *s == self.value,
            Value::Bool(b) => self.value == if *b { "true" } else { "false" },
            Value::Number(n) => n.to_string() == self.value,
            _ => false,
        };
        match node {
            Some(Value::Array(items)) => items.iter().any(scalar_matches),
            Some(v) => scalar_matches(v),
            None => false,
        }
    }
}

/// The scopes a token grants, borrowed from its claims.
#[derive(Debug, Clone, Copy)]
pub struct GrantedScopes<'a> {
    scope: Option<&'a str>,
    scp: Option<&'a Value>,
}

/// `scope` is not a string, or `scp` is neither a string nor an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("scope must be a string and scp a string or an array")]
pub struct MalformedScopes;

impl<'a> GrantedScopes<'a> {
    /// Reads `scope` and `scp`; a token with neither grants nothing.
    pub fn read(claims: &'a Map<String, Value>) -> Result<GrantedScopes<'a>, MalformedScopes> {
        let scope = match claims.get("scope") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(MalformedScopes),
        };
        let scp = claims.get("scp");
        if !matches!(scp, None | Some(Value::String(_)) | Some(Value::Array(_))) {
            return Err(MalformedScopes);
        }
        Ok(GrantedScopes { scope, scp })
    }

    /// Whether `wanted` is granted, exactly (no hierarchy here: that is the policy's business).
    pub fn contains(&self, wanted: &str) -> bool {
        self.scope
            .is_some_and(|s| s.split_ascii_whitespace().any(|g| g == wanted))
            || match self.scp {
                Some(Value::String(s)) => s.split_ascii_whitespace().any(|g| g == wanted),
                Some(Value::Array(items)) => items.iter().any(|g| g.as_str() == Some(wanted)),
                _ => false,
            }
    }

    /// Every granted scope, in claim order (duplicates possible).
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let from_scope = self.scope.into_iter().flat_map(str::split_ascii_whitespace);
        let from_scp: Box<dyn Iterator<Item = &'a str> + 'a> = match self.scp {
            Some(Value::String(s)) => Box::new(s.split_ascii_whitespace()),
            Some(Value::Array(items)) => Box::new(items.iter().filter_map(Value::as_str)),
            _ => Box::new(std::iter::empty()),
        };
        from_scope.chain(from_scp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn claim_rule_lists_parse_dotted_paths_and_skip_empty_items() {
        let rules = ClaimRule::parse_list(" tenant = acme ,, realm_access.roles=mcp-user").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].path, vec!["tenant"]);
        assert_eq!(rules[0].value, "acme");
        assert_eq!(rules[1].path, vec!["realm_access", "roles"]);
        for bad in ["no_equals_sign", "a..b=c", ".a=b", "=x"] {
            assert!(ClaimRule::parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn claim_rules_match_scalars_exactly_and_arrays_by_membership() {
        let claims = obj(json!({
            "tenant": "acme", "admin": true, "level": 3,
            "groups": ["a", "b"], "realm": {"roles": ["mcp-user"]}, "obj": {"x": 1}
        }));
        for (rule, holds) in [
            ("tenant=acme", true),
            ("tenant=Acme", false),
            ("admin=true", true),
            ("level=3", true),
            ("groups=b", true),
            ("groups=c", false),
            ("realm.roles=mcp-user", true),
            ("obj=x", false),
            ("missing=x", false),
        ] {
            assert_eq!(
                ClaimRule::parse(rule).unwrap().holds(&claims),
                holds,
                "{rule}"
            );
        }
    }

    #[test]
    fn scopes_come_from_scope_or_scp_and_malformed_types_are_refused() {
        let c = obj(json!({"scope": "a b", "scp": ["c", 7, "d"]}));
        let g = GrantedScopes::read(&c).unwrap();
        assert!(g.contains("a") && g.contains("c") && g.contains("d"));
        assert!(!g.contains("7") && !g.contains("a b"));
        assert_eq!(g.iter().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
        let none = obj(json!({}));
        assert_eq!(GrantedScopes::read(&none).unwrap().iter().count(), 0);
        for bad in [
            json!({"scope": ["a"]}),
            json!({"scp": 1}),
            json!({"scp": {}}),
        ] {
            assert!(GrantedScopes::read(&obj(bad.clone())).is_err(), "{bad}");
        }
    }
}
