//! The MCP authorization settings (issue #10): `POLICY_FILE` or `TOOL_SCOPES`, `FILTER_TOOLS_LIST`
//! and `POLICY_RELOAD_INTERVAL`, read once at start into [`McpPolicy`].
//!
//! The file is read here, at start, so that a policy that cannot be used stops the gate with the
//! same exit status and one-line message as any other bad setting (the rule, its line and the
//! reason, from [`crate::policy::file::PolicyError`]). Later versions of the file are the server's
//! business (`policy::reload`), which keeps the old rules when a new version fails.

use std::path::PathBuf;
use std::time::Duration;

use super::vars::{Var, Vars};
use super::{invalid, ConfigError};
use crate::policy::rules::Rules;

/// What the request path needs to enforce the MCP authorization rules.
#[derive(Debug, Clone, PartialEq)]
pub struct McpPolicy {
    /// The rules in force at start; `base_scopes` are the challenge scopes every request needs.
    pub rules: Rules,
    /// The file the rules came from, re-read while serving; `None` for `TOOL_SCOPES` or no policy.
    pub file: Option<PathBuf>,
    /// Remove the tools the caller may not call from `tools/list` results.
    pub filter_tools_list: bool,
    /// How often `file` is checked for a new version.
    pub reload_interval: Duration,
}

impl McpPolicy {
    /// Whether the request path must look at request bodies at all. False for a gate without a
    /// policy: then requests stream exactly as they did before this module existed.
    pub fn is_active(&self) -> bool {
        self.file.is_some() || self.filter_tools_list || self.rules.inspects_requests()
    }
}

/// Reads the policy settings; `base_scopes` are the scopes every request needs, as challenges
/// name them.
pub(super) fn mcp_policy(v: &Vars, base_scopes: &[String]) -> Result<McpPolicy, ConfigError> {
    let file = v.get(Var::POLICY_FILE).map(PathBuf::from);
    let text = match &file {
        Some(path) => Some(read(path)?),
        None => None,
    };
    let mut rules = crate::policy::file::from_settings(text.as_deref(), v.get(Var::TOOL_SCOPES))?;
    rules.base_scopes = base_scopes.to_vec();
    Ok(McpPolicy {
        rules,
        file,
        filter_tools_list: v.bool(Var::FILTER_TOOLS_LIST)?,
        reload_interval: v.positive(Var::POLICY_RELOAD_INTERVAL)?,
    })
}

/// The text of the policy file, bounded: a policy is a few kilobytes, and a wrong path (a device,
/// a log file) must not be read whole into memory.
pub fn read(path: &std::path::Path) -> Result<String, ConfigError> {
    const MAX: u64 = 1 << 20;
    let shown = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|e| invalid(Var::POLICY_FILE, &shown, format!("a readable file ({e})")))?
        .len();
    if len > MAX {
        return Err(invalid(Var::POLICY_FILE, &shown, "a file of at most 1 MiB"));
    }
    std::fs::read_to_string(path).map_err(|e| {
        invalid(
            Var::POLICY_FILE,
            &shown,
            format!("a readable UTF-8 file ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<McpPolicy, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        mcp_policy(&Vars::new(&map), &["mcp:base".to_string()])
    }

    /// A policy file in the temp directory, removed when dropped.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn policy_file(text: &str) -> TempFile {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("mcp-gate-policy-{}-{n}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }

    #[test]
    fn no_policy_is_inactive_and_allows_everything() {
        let p = with(&[]).unwrap();
        assert!(!p.is_active());
        assert!(!p.filter_tools_list);
        assert_eq!(p.reload_interval, Duration::from_secs(5));
    }

    #[test]
    fn tool_scopes_become_rules_with_the_base_scopes() {
        let p = with(&[("TOOL_SCOPES", "delete_*=mcp:admin")]).unwrap();
        assert!(p.is_active());
        assert_eq!(p.rules.rules.len(), 1);
        assert_eq!(p.rules.base_scopes, ["mcp:base"]);
        assert!(p.file.is_none());
    }

    #[test]
    fn filtering_alone_makes_the_policy_active() {
        assert!(with(&[("FILTER_TOOLS_LIST", "true")]).unwrap().is_active());
    }

    #[test]
    fn a_policy_file_and_tool_scopes_together_are_refused() {
        let f = policy_file("");
        let path = f.0.to_str().unwrap();
        let e = with(&[("POLICY_FILE", path), ("TOOL_SCOPES", "a=b")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("POLICY_FILE and TOOL_SCOPES are both set"),
            "{e}"
        );
    }

    #[test]
    fn a_bad_policy_file_names_the_rule_line_and_reason() {
        let f = policy_file("[[rule]]\nmethod = \"tools/call\"\nall_of = [\"offline_access\"]\n");
        let e = with(&[("POLICY_FILE", f.0.to_str().unwrap())])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("POLICY_FILE rule 1 (line 1)"), "{e}");
        assert!(e.contains("offline_access"), "{e}");
    }

    #[test]
    fn a_missing_policy_file_is_named() {
        let e = with(&[("POLICY_FILE", "/nonexistent/policy.toml")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("POLICY_FILE=\"/nonexistent/policy.toml\""),
            "{e}"
        );
    }

    #[test]
    fn every_policy_example_in_the_readme_parses() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("## Authorization rules")
            .nth(1)
            .and_then(|s| s.split("\n## ").next())
            .unwrap();
        let examples: Vec<&str> = section
            .split("```toml\n")
            .skip(1)
            .map(|block| block.split("```").next().unwrap())
            .collect();
        assert_eq!(examples.len(), 4);
        for example in examples {
            crate::policy::file::parse_toml(example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        }
    }
}
