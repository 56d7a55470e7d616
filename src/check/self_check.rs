//! The gate's start-up self-check: the checks a gate can run on its own configuration (the transport
//! of RESOURCE_URI, EXPECTED_AUDIENCE against it, each authorization server and its keys), logged as
//! warnings, never a reason to stop.

use std::future::Future;

use super::endpoint::evaluate_transport;
use super::probe::Prober;
use super::report::{Check, Status};
use super::run::check_server;
use super::url_diff::describe_difference;
use crate::config::Config;

/// The checks a gate can run on its own configuration: the transport of RESOURCE_URI, the
/// authorization servers (metadata, issuer, PKCE, registration, JWKS with ALLOWED_ALGORITHMS) and
/// EXPECTED_AUDIENCE against RESOURCE_URI.
pub async fn self_check(config: &Config) -> Vec<Check> {
    let prober = Prober::new(config.jwks_fetch_timeout);
    let mut checks = vec![
        evaluate_transport(&config.resource),
        evaluate_audiences(&config.resource_uri, &config.policy.audiences),
    ];
    for trusted in &config.issuers {
        // A JWKS_URI entry replaces the discovered key location of its server, as in the gate.
        let found = check_server(
            &prober,
            &trusted.server,
            trusted.jwks_uri.as_ref().map(url::Url::as_str),
            &config.policy.algorithms,
        )
        .await;
        checks.extend(found.checks);
    }
    checks
}

/// [`self_check`] as the gate runs it at start: every warning and failure becomes a `warn!` line,
/// never a reason to stop. The future owns what it needs, so it can be spawned.
pub fn startup_self_check(config: &Config) -> impl Future<Output = ()> + Send + 'static {
    let config = config.clone();
    async move {
        let checks = self_check(&config).await;
        let mut clean = true;
        for c in checks.iter().filter(|c| c.status != Status::Ok) {
            clean = false;
            tracing::warn!(
                check = c.id,
                hint = c.hint.as_deref().unwrap_or_default(),
                "start-up self-check: {}",
                c.message
            );
        }
        if clean {
            tracing::info!(
                checks = checks.len(),
                "start-up self-check: the authorization server and the configuration look right"
            );
        }
    }
}

/// The gate's audiences must include its resource URI: that is the `aud` spec clients ask for.
pub fn evaluate_audiences(resource_uri: &str, audiences: &[String]) -> Check {
    const ID: &str = "config.audience";
    if audiences.iter().any(|a| a == resource_uri) {
        return Check::ok(ID, format!("EXPECTED_AUDIENCE includes {resource_uri}"));
    }
    let near: Vec<String> = audiences
        .iter()
        .filter(|a| {
            a.eq_ignore_ascii_case(resource_uri)
                || a.trim_end_matches('/') == resource_uri.trim_end_matches('/')
        })
        .map(|a| {
            format!(
                "{a:?} ({})",
                describe_difference(resource_uri, a).join(", ")
            )
        })
        .collect();
    let message = if near.is_empty() {
        format!(
            "EXPECTED_AUDIENCE [{}] does not include RESOURCE_URI {resource_uri}",
            audiences.join(", ")
        )
    } else {
        format!(
            "EXPECTED_AUDIENCE has {} but not RESOURCE_URI {resource_uri}",
            near.join(", ")
        )
    };
    Check::warn(
        ID,
        message,
        "Spec clients ask the IdP for tokens whose aud is the metadata's resource (RFC 8707). Unless the IdP is known to put something else in aud, add RESOURCE_URI to EXPECTED_AUDIENCE.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::fixtures::{ISS, RESOURCE};

    #[test]
    fn audiences_must_include_the_resource() {
        let r = "https://mcp.example.com/mcp";
        assert_eq!(evaluate_audiences(r, &[r.to_string()]).status, Status::Ok);
        let slash = evaluate_audiences(r, &[format!("{r}/")]);
        assert_eq!(slash.status, Status::Warn);
        assert!(slash.message.contains("trailing slash"), "{slash:?}");
        assert_eq!(
            evaluate_audiences(r, &["api://mcp".to_string()]).status,
            Status::Warn
        );
    }

    #[test]
    fn the_start_up_self_check_can_be_spawned() {
        fn spawnable<T: Send + 'static>(_: T) {}
        let vars = [
            ("UPSTREAM_URL", "http://127.0.0.1:3000"),
            ("RESOURCE_URI", RESOURCE),
            ("AUTHORIZATION_SERVER", ISS),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::from_vars(&vars).unwrap().0;
        spawnable(startup_self_check(&config));
    }
}
