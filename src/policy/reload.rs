//! `POLICY_FILE` re-read while serving, as the TLS certificate is (`server/tls.rs`): the file is
//! polled every `POLICY_RELOAD_INTERVAL`; a changed text that parses replaces the rules for the
//! requests that arrive from then on (requests in flight keep the version they started with). A
//! version that fails keeps the old rules in force, is logged with the rule, line and reason, and
//! counted in `mcp_gate_policy_reloads_total{result="error"}`: a typo in a ConfigMap must never
//! open the gate or close it.
//!
//! Contents are compared, not only modification times: Kubernetes replaces a ConfigMap by swapping
//! a symlink, and a copy can keep its mtime.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::enforce::Enforcer;
use super::file::parse_toml;
use crate::metrics::Metrics;

/// Watches one policy file for one gate.
pub struct Reloader {
    enforcer: Arc<Enforcer>,
    path: PathBuf,
    /// `rules.base_scopes` for every new version (`REQUIRED_SCOPES` as challenges name them).
    base_scopes: Vec<String>,
    every: Duration,
    metrics: Arc<Metrics>,
}

impl Reloader {
    pub fn new(
        enforcer: Arc<Enforcer>,
        path: PathBuf,
        base_scopes: Vec<String>,
        every: Duration,
        metrics: Arc<Metrics>,
    ) -> Reloader {
        Reloader {
            enforcer,
            path,
            base_scopes,
            every,
            metrics,
        }
    }

    /// Polls until `stop` resolves.
    pub async fn watch(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        // The text last looked at (loaded or refused), or the last read error: each is acted on once.
        let mut seen: Option<Result<String, String>> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = &mut stop => return,
            }
            let now = crate::config::mcp_policy::read(&self.path).map_err(|e| e.to_string());
            if seen.as_ref() == Some(&now) {
                continue;
            }
            seen = Some(now.clone());
            match now.map(|text| parse_toml(&text).map_err(|e| e.to_string())) {
                Ok(Ok(mut rules)) => {
                    rules.base_scopes = self.base_scopes.clone();
                    if *self.enforcer.rules() == rules {
                        continue;
                    }
                    self.enforcer.replace(rules);
                    self.metrics.policy_reload(true);
                    tracing::info!(file = %self.path.display(), "reloaded the authorization rules");
                }
                Ok(Err(e)) | Err(e) => {
                    self.metrics.policy_reload(false);
                    tracing::error!(error = %e, "POLICY_FILE changed but cannot be used; keeping the previous rules");
                }
            }
        }
    }
}
