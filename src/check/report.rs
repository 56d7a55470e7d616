//! The report of `mcp-gate check`: one [`Check`] per rule, in the order a client meets them, rendered
//! as a ✓ / ! / ✗ checklist or as JSON. Owns the vocabulary every other stage reports in.

use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Probably fine, or fine for a local test, but worth knowing.
    Warn,
    /// A client following the specification will fail here.
    Fail,
}

impl Status {
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name of the rule, e.g. `metadata.resource`.
    pub id: &'static str,
    pub status: Status,
    /// What was observed, in one sentence.
    pub message: String,
    /// For a warning or a failure: the likely cause and the fix.
    pub hint: Option<String>,
}

impl Check {
    pub(crate) fn ok(id: &'static str, message: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn warn(
        id: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            id,
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub(crate) fn fail(
        id: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            id,
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

/// Every check run against one URL, in the order a client meets them.
#[derive(Debug, Clone)]
pub struct Report {
    /// The URL checked, as given.
    pub url: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether any check failed (the exit status of `mcp-gate check`).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The human checklist.
    pub fn to_text(&self) -> String {
        let mut out = format!("mcp-gate check {}\n\n", self.url);
        for c in &self.checks {
            out.push_str(&format!("{} {}\n", c.status.symbol(), c.message));
            if let Some(hint) = &c.hint {
                out.push_str(&format!("    → {hint}\n"));
            }
        }
        let (fails, warns) = (self.count(Status::Fail), self.count(Status::Warn));
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        out.push('\n');
        out.push_str(&match fails {
            0 => format!("No problems found ({}).\n", plural(warns, "warning")),
            _ => format!(
                "{} ({}).\n",
                plural(fails, "problem"),
                plural(warns, "warning")
            ),
        });
        out
    }

    /// The checks as a JSON array of `{id, status, message, hint}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.checks).unwrap_or_else(|_| "[]".into())
    }
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const RESOURCE: &str = "https://mcp.example.com/mcp";

    #[test]
    fn the_report_exits_on_failures_and_renders_both_forms() {
        let report = Report {
            url: RESOURCE.into(),
            checks: vec![
                Check::ok("transport", "https on port 443"),
                Check::warn("as.registration", "neither", "enter a client ID"),
                Check::fail("metadata.resource", "resource differs", "fix it"),
            ],
        };
        assert!(report.failed());
        let text = report.to_text();
        assert!(text.contains("✓ https on port 443\n"), "{text}");
        assert!(
            text.contains("✗ resource differs\n    → fix it\n"),
            "{text}"
        );
        assert!(text.contains("1 problem (1 warning)."), "{text}");
        let json: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json[2],
            json!({"id": "metadata.resource", "status": "fail", "message": "resource differs", "hint": "fix it"})
        );
        assert_eq!(json[0]["hint"], Value::Null);
        let clean = Report {
            url: RESOURCE.into(),
            checks: vec![Check::ok("transport", "https on port 443")],
        };
        assert!(!clean.failed());
        assert!(clean.to_text().contains("No problems found (0 warnings)."));
    }
}
