//! The authorization rules: what they match (an MCP method and an optional name pattern) and what
//! they require (scopes, claims, or nothing: allow / deny), with the scope hierarchy.
//!
//! Built once at start-up (or on reload) by [`super::file`]; read by [`super::decide`]. The
//! hierarchy exists because MCP 2026-07-28 (authorization, "Scope Challenge Handling", SEP-2350)
//! says servers "MUST account for scope hierarchies, where a broader scope implies narrower ones".

use std::collections::{BTreeMap, BTreeSet};

use crate::auth::claims::ClaimRule;

/// A `*` / `?` pattern: `*` matches any run of characters (`/` included), `?` exactly one; every
/// other character matches itself, case-sensitively. `*` alone matches everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.to_string())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern has no wildcard (it names exactly one thing).
    pub fn is_literal(&self) -> bool {
        !self.0.contains(['*', '?'])
    }

    /// Iterative matching with one backtrack point: O(len(pattern) × len(text)) at worst, no
    /// recursion, so a hostile name cannot blow the stack or take exponential time.
    pub fn matches(&self, text: &str) -> bool {
        let p: Vec<char> = self.0.chars().collect();
        let t: Vec<char> = text.chars().collect();
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
                pi += 1;
                ti += 1;
            } else if pi < p.len() && p[pi] == '*' {
                star = Some((pi, ti));
                pi += 1;
            } else if let Some((sp, st)) = star {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|c| *c == '*')
    }
}

/// What a matching rule demands of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Let it through (no further requirement than the token check's).
    Allow,
    /// Refuse, whatever the token holds.
    Deny,
    /// Let it through when the token has these.
    Require(Requirement),
}

/// Scopes and claims a rule requires; every part that is non-empty must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    /// Every one of these must be granted (directly or through the hierarchy).
    pub all_of: Vec<String>,
    /// At least one of these must be granted; the first is the one offered in a step-up challenge.
    pub any_of: Vec<String>,
    /// Claim conditions, the grammar of `REQUIRED_CLAIMS`; all must hold.
    pub claims: Vec<ClaimRule>,
}

/// One rule: the first rule whose method and name match a request decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The JSON-RPC method (`tools/call`, `notifications/*`, `*` for any).
    pub method: Glob,
    /// For `tools/call` and `prompts/get` the tool or prompt name, for `resources/read` the URI (a
    /// prefix is written `file:///public/*`). A rule with a name never matches a nameless method.
    pub name: Option<Glob>,
    pub action: Action,
    /// Where the rule was written (policy file line, or position in `TOOL_SCOPES`), for messages.
    pub origin: String,
}

impl Rule {
    pub fn matches(&self, method: &str, name: Option<&str>) -> bool {
        self.method.matches(method)
            && match (&self.name, name) {
                (None, _) => true,
                (Some(pattern), Some(name)) => pattern.matches(name),
                (Some(_), None) => false,
            }
    }
}

/// Which rule decided: an index into [`Rules::rules`], or the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleRef {
    Index(usize),
    Default,
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            RuleRef::Index(i) => write!(f, "rule {}", i + 1),
            RuleRef::Default => f.write_str("default"),
        }
    }
}

/// "Broader scope implies narrower ones", closed transitively at construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeHierarchy {
    /// broader → every scope it implies, directly or through others.
    implied: BTreeMap<String, BTreeSet<String>>,
}

impl ScopeHierarchy {
    /// From `broader → [narrower, …]` edges; cycles are harmless (they make scopes equivalent).
    pub fn new(edges: &BTreeMap<String, Vec<String>>) -> ScopeHierarchy {
        let mut implied = BTreeMap::new();
        for start in edges.keys() {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&String> = edges[start].iter().collect();
            while let Some(s) = todo.pop() {
                if seen.insert(s.clone()) {
                    todo.extend(edges.get(s).into_iter().flatten());
                }
            }
            implied.insert(start.clone(), seen);
        }
        ScopeHierarchy { implied }
    }

    /// Whether holding `granted` is as good as holding `wanted`.
    pub fn satisfies(&self, granted: &str, wanted: &str) -> bool {
        granted == wanted
            || self
                .implied
                .get(granted)
                .is_some_and(|s| s.contains(wanted))
    }

    /// Every scope named in the hierarchy.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.implied
            .iter()
            .flat_map(|(k, v)| std::iter::once(k.as_str()).chain(v.iter().map(String::as_str)))
    }
}

/// What applies when no rule matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DefaultAction {
    /// The default: a gate with no policy behaves exactly as without this module.
    #[default]
    Allow,
    Deny,
}

/// The whole policy: ordered rules, the default, the hierarchy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub rules: Vec<Rule>,
    pub default: DefaultAction,
    pub hierarchy: ScopeHierarchy,
    /// The scopes every request needs anyway (`REQUIRED_SCOPES`), set by the caller: a step-up
    /// challenge lists them too, since it must name all scopes the operation requires (SEP-2350)
    /// and a client may replace its token with one holding only the challenged scopes.
    pub base_scopes: Vec<String>,
}

impl Rules {
    /// The first rule matching `method` and `name`, or `None` for the default.
    pub fn first_match(&self, method: &str, name: Option<&str>) -> Option<(usize, &Rule)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(method, name))
    }

    /// Whether any request could be decided other than "allow": when false, the request path need
    /// not read bodies at all.
    pub fn inspects_requests(&self) -> bool {
        self.default == DefaultAction::Deny || self.rules.iter().any(|r| r.action != Action::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_star_and_question_mark_and_nothing_else() {
        for (pattern, text, want) in [
            ("*", "", true),
            ("*", "anything/at all", true),
            ("delete_*", "delete_note", true),
            ("delete_*", "delete_", true),
            ("delete_*", "undelete_note", false),
            ("delete_*", "Delete_note", false),
            ("*_note", "delete_note", true),
            ("file:///public/*", "file:///public/a/b.txt", true),
            ("file:///public/*", "file:///private/a", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "aéc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**", "x", true),
        ] {
            assert_eq!(Glob::new(pattern).matches(text), want, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn a_pathological_glob_finishes_quickly() {
        let g = Glob::new(&"*a".repeat(50));
        assert!(!g.matches(&"a".repeat(49)));
    }

    #[test]
    fn a_rule_with_a_name_never_matches_a_nameless_method() {
        let rule = Rule {
            method: Glob::new("*"),
            name: Some(Glob::new("*")),
            action: Action::Deny,
            origin: String::new(),
        };
        assert!(rule.matches("tools/call", Some("x")));
        assert!(!rule.matches("tools/list", None));
    }

    #[test]
    fn the_hierarchy_is_transitive_and_survives_cycles() {
        let edges = BTreeMap::from([
            ("mcp:admin".to_string(), vec!["mcp:tools".to_string()]),
            ("mcp:tools".to_string(), vec!["mcp:read".to_string()]),
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec!["a".to_string()]),
        ]);
        let h = ScopeHierarchy::new(&edges);
        assert!(h.satisfies("mcp:admin", "mcp:tools"));
        assert!(h.satisfies("mcp:admin", "mcp:read"));
        assert!(h.satisfies("mcp:tools", "mcp:tools"));
        assert!(!h.satisfies("mcp:tools", "mcp:admin"));
        assert!(!h.satisfies("mcp:read", "mcp:tools"));
        assert!(h.satisfies("a", "b") && h.satisfies("b", "a"));
    }
}
