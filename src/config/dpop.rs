//! The DPoP settings (RFC 9449): which proof algorithms are accepted, how old a proof may be, how
//! many proofs the replay cache remembers, and whether plain Bearer tokens are refused altogether.

use std::time::Duration;

use super::vars::{Var, Vars};
use super::{invalid, ConfigError, Warnings};
use crate::auth::dpop_nonce::NonceKeys;
use crate::auth::dpop_replay_shared::{ReplayFailure, SharedReplaySettings};
use crate::auth::keys::Alg;

/// How sender-constrained tokens are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DpopSettings {
    /// Accepted proof algorithms (`DPOP_ALGORITHMS`), advertised in challenges and metadata.
    pub algorithms: Vec<Alg>,
    /// How far a proof's `iat` may be from the gate's clock, either way (`DPOP_IAT_WINDOW`).
    pub iat_window: Duration,
    /// Refuse every token that is not DPoP-bound (`DPOP_REQUIRED`).
    pub required: bool,
    /// Proofs remembered to refuse replays within the window (`DPOP_REPLAY_CACHE_SIZE`).
    pub replay_cache_size: usize,
    /// With `DPOP_NONCE=true`, the nonce keys (`DPOP_NONCE_KEYS`, the sealing one first).
    pub nonce_keys: Option<NonceKeyList>,
    /// With `DPOP_REPLAY_STORE=redis`, the store shared by the replicas.
    pub shared_replay: Option<SharedReplaySettings>,
}

/// Nonce keys, validated; secret, so never printed.
#[derive(Clone, PartialEq)]
pub struct NonceKeyList(Vec<String>);

impl NonceKeyList {
    pub fn keys(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Debug for NonceKeyList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NonceKeyList({} keys, redacted)", self.0.len())
    }
}

/// Reads the DPoP settings.
pub(super) fn dpop_settings(
    v: &Vars,
    warnings: &mut Warnings,
) -> Result<DpopSettings, ConfigError> {
    let iat_window = v.positive(Var::DPOP_IAT_WINDOW)?;
    if iat_window > Duration::from_secs(3600) {
        warnings.push(
            "DPOP_IAT_WINDOW is over an hour: a captured proof stays usable (on another replica) that long"
                .to_string(),
        );
    }
    let raw = v.required(Var::DPOP_REPLAY_CACHE_SIZE, "a number of proofs")?;
    let replay_cache_size = raw.parse().ok().filter(|n: &usize| *n > 0).ok_or_else(|| {
        invalid(
            Var::DPOP_REPLAY_CACHE_SIZE,
            raw,
            "a whole number of proofs above zero (replays are always refused)",
        )
    })?;
    let nonce_keys = if v.bool(Var::DPOP_NONCE)? {
        let raw = v.required(
            Var::DPOP_NONCE_KEYS,
            "with DPOP_NONCE=true, one or more 32-byte base64url keys (openssl rand 32 | basenc --base64url)",
        )?;
        let keys = super::parse::split_list(raw);
        NonceKeys::new(&keys, iat_window.as_secs())
            .map_err(|e| invalid(Var::DPOP_NONCE_KEYS, "(redacted)", e.to_string()))?;
        Some(NonceKeyList(keys))
    } else {
        None
    };
    Ok(DpopSettings {
        algorithms: algorithms(v)?,
        iat_window,
        required: v.bool(Var::DPOP_REQUIRED)?,
        replay_cache_size,
        nonce_keys,
        shared_replay: shared_replay(v)?,
    })
}

/// `DPOP_REPLAY_STORE=redis` uses the one Redis the gate already knows (`RATE_LIMIT_REDIS_URL`,
/// validated there) and its wait bound, so replicas need one connection string, not two.
fn shared_replay(v: &Vars) -> Result<Option<SharedReplaySettings>, ConfigError> {
    let store = v.required(Var::DPOP_REPLAY_STORE, "local or redis")?;
    match store.to_ascii_lowercase().as_str() {
        "local" => return Ok(None),
        "redis" => {}
        _ => return Err(invalid(Var::DPOP_REPLAY_STORE, store, "local or redis")),
    }
    let Some(url) = v.get(Var::RATE_LIMIT_REDIS_URL) else {
        return Err(invalid(
            Var::DPOP_REPLAY_STORE,
            store,
            "redis needs RATE_LIMIT_REDIS_URL (the Redis the replicas share)",
        ));
    };
    let raw = v.required(Var::DPOP_REPLAY_REDIS_FAILURE, "local or closed")?;
    let on_failure = match raw.to_ascii_lowercase().as_str() {
        "local" => ReplayFailure::Local,
        "closed" => ReplayFailure::Closed,
        _ => {
            return Err(invalid(
                Var::DPOP_REPLAY_REDIS_FAILURE,
                raw,
                "local or closed",
            ))
        }
    };
    Ok(Some(SharedReplaySettings {
        url: url.to_string(),
        timeout: v.positive(Var::RATE_LIMIT_REDIS_TIMEOUT)?,
        on_failure,
    }))
}

fn algorithms(v: &Vars) -> Result<Vec<Alg>, ConfigError> {
    super::policy::algorithm_list(v, Var::DPOP_ALGORITHMS)
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut m: HashMap<String, String> = [
            ("UPSTREAM_URL", "http://127.0.0.1:3000"),
            ("RESOURCE_URI", "https://mcp.example.com/mcp"),
            ("AUTHORIZATION_SERVER", "https://idp.example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in pairs {
            m.insert(k.to_string(), v.to_string());
        }
        Config::from_vars(&m).map(|(c, _)| c)
    }

    #[test]
    fn defaults_accept_the_common_proof_algorithms_for_five_minutes() {
        let c = config(&[]).unwrap();
        let names: Vec<_> = c.dpop.algorithms.iter().map(|a| a.name()).collect();
        assert_eq!(names, ["ES256", "ES384", "EdDSA", "PS256", "RS256"]);
        assert_eq!(c.dpop.iat_window, Duration::from_secs(300));
        assert!(!c.dpop.required);
        assert!(c.dpop.replay_cache_size > 0);
    }

    #[test]
    fn symmetric_or_unknown_proof_algorithms_and_a_zero_window_are_refused() {
        for (var, value) in [
            ("DPOP_ALGORITHMS", "HS256"),
            ("DPOP_ALGORITHMS", "none"),
            ("DPOP_ALGORITHMS", ","),
            ("DPOP_IAT_WINDOW", "0s"),
            ("DPOP_REPLAY_CACHE_SIZE", "0"),
            ("DPOP_REQUIRED", "maybe"),
        ] {
            let e = config(&[(var, value)]).unwrap_err().to_string();
            assert!(e.starts_with(var), "{var}={value}: {e}");
        }
        assert!(config(&[("DPOP_REQUIRED", "true")]).unwrap().dpop.required);
    }

    #[test]
    fn nonces_need_valid_keys_which_are_never_printed() {
        let e = config(&[("DPOP_NONCE", "true")]).unwrap_err().to_string();
        assert!(e.starts_with("DPOP_NONCE_KEYS"), "{e}");
        let e = config(&[("DPOP_NONCE", "true"), ("DPOP_NONCE_KEYS", "c2hvcnQ")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("DPOP_NONCE_KEYS") && !e.contains("c2hvcnQ"),
            "{e}"
        );
        let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
        let c = config(&[("DPOP_NONCE", "true"), ("DPOP_NONCE_KEYS", key)]).unwrap();
        assert_eq!(c.dpop.nonce_keys.as_ref().unwrap().keys(), [key]);
        assert!(!format!("{c:?}").contains(key));
        assert!(config(&[]).unwrap().dpop.nonce_keys.is_none());
    }

    #[test]
    fn the_shared_replay_store_needs_the_redis_url_and_never_prints_it() {
        assert!(config(&[]).unwrap().dpop.shared_replay.is_none());
        let e = config(&[("DPOP_REPLAY_STORE", "redis")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("DPOP_REPLAY_STORE") && e.contains("RATE_LIMIT_REDIS_URL"),
            "{e}"
        );
        let e = config(&[("DPOP_REPLAY_STORE", "memcached")])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("DPOP_REPLAY_STORE"), "{e}");
        let url = ("RATE_LIMIT_REDIS_URL", "redis://:s3cret@redis:6379");
        let e = config(&[
            ("DPOP_REPLAY_STORE", "redis"),
            url,
            ("DPOP_REPLAY_REDIS_FAILURE", "open"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("DPOP_REPLAY_REDIS_FAILURE"), "{e}");
        let c = config(&[
            ("DPOP_REPLAY_STORE", "Redis"),
            url,
            ("DPOP_REPLAY_REDIS_FAILURE", "closed"),
        ])
        .unwrap();
        let shared = c.dpop.shared_replay.as_ref().unwrap();
        assert_eq!(shared.on_failure, ReplayFailure::Closed);
        assert_eq!(shared.url, url.1);
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
