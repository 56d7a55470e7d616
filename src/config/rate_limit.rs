//! `RATE_LIMIT_*`: the quotas per level and the optional shared store. The quota syntax and the
//! algorithm are [`crate::limits::gcra`]'s; here each value is tied to the variable that names it.

use crate::limits::{FailureMode, Quota, RedisSettings, Settings};

use super::vars::{Var, Vars};
use super::{invalid, ConfigError};

pub(super) fn settings(v: &Vars) -> Result<Settings, ConfigError> {
    let ip = quota(v, Var::RATE_LIMIT_IP)?;
    let subject = quota(v, Var::RATE_LIMIT_SUBJECT)?;
    let tool = quota(v, Var::RATE_LIMIT_TOOL)?;
    let redis = match v.get(Var::RATE_LIMIT_REDIS_URL) {
        None => None,
        Some(url) => Some(RedisSettings {
            url: redis_url(url)?,
            timeout: v.positive(Var::RATE_LIMIT_REDIS_TIMEOUT)?,
            on_failure: failure_mode(v)?,
        }),
    };
    Ok(Settings {
        ip,
        subject,
        tool,
        redis,
    })
}

fn quota(v: &Vars, var: Var) -> Result<Option<Quota>, ConfigError> {
    v.get(var)
        .map(|raw| Quota::parse(raw).map_err(|e| invalid(var, raw, e.to_string())))
        .transpose()
}

/// Parsed by the client that will use it; the message never repeats the URL (it may hold a password).
fn redis_url(raw: &str) -> Result<String, ConfigError> {
    const VAR: Var = Var::RATE_LIMIT_REDIS_URL;
    let scheme_ok = raw.starts_with("redis://") || raw.starts_with("rediss://");
    if !scheme_ok || redis::Client::open(raw).is_err() {
        return Err(invalid(
            VAR,
            "<not shown>",
            "a URL such as redis://redis:6379/0 or rediss://:password@redis:6380",
        ));
    }
    Ok(raw.to_string())
}

fn failure_mode(v: &Vars) -> Result<FailureMode, ConfigError> {
    const VAR: Var = Var::RATE_LIMIT_REDIS_FAILURE;
    let raw = v.required(VAR, "local, open or closed")?;
    match raw.to_ascii_lowercase().as_str() {
        "local" => Ok(FailureMode::Local),
        "open" => Ok(FailureMode::Open),
        "closed" => Ok(FailureMode::Closed),
        _ => Err(invalid(VAR, raw, "local, open or closed")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::*;

    fn parsed(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(&Vars::new(&m))
    }

    #[test]
    fn every_limit_is_off_by_default() {
        let s = parsed(&[]).unwrap();
        assert!(s.ip.is_none() && s.subject.is_none() && s.tool.is_none() && s.redis.is_none());
    }

    #[test]
    fn quotas_and_redis_settings_are_read_with_their_defaults() {
        let s = parsed(&[
            ("RATE_LIMIT_IP", "100/1m"),
            ("RATE_LIMIT_SUBJECT", "5/1s,burst=10"),
            ("RATE_LIMIT_TOOL", "10/1m,burst=2"),
            ("RATE_LIMIT_REDIS_URL", "redis://:pw@127.0.0.1:6379/0"),
        ])
        .unwrap();
        assert_eq!(s.tool, Some(Quota::parse("10/1m,burst=2").unwrap()));
        assert_eq!(s.ip, Some(Quota::parse("100/1m").unwrap()));
        assert_eq!(s.subject.map(|q| q.burst), Some(10));
        let redis = s.redis.unwrap();
        assert_eq!(redis.timeout, Duration::from_millis(5));
        assert_eq!(redis.on_failure, FailureMode::Local);
        assert!(!format!("{redis:?}").contains("pw"), "{redis:?}");
    }

    #[test]
    fn a_bad_value_stops_start_up_naming_the_variable() {
        for (var, value) in [
            ("RATE_LIMIT_IP", "100"),
            ("RATE_LIMIT_IP", "0/1s"),
            ("RATE_LIMIT_SUBJECT", "5/1s,burst=x"),
            ("RATE_LIMIT_TOOL", "10 per minute"),
            ("RATE_LIMIT_REDIS_URL", "http://redis:6379"),
        ] {
            let e = parsed(&[(var, value)]).unwrap_err().to_string();
            assert!(e.starts_with(&format!("{var}=")), "{e}");
        }
        let e = parsed(&[
            ("RATE_LIMIT_REDIS_URL", "redis://:s3cret@redis:6379"),
            ("RATE_LIMIT_REDIS_FAILURE", "maybe"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("RATE_LIMIT_REDIS_FAILURE="), "{e}");
        let e = parsed(&[("RATE_LIMIT_REDIS_URL", "redis://:s3cret@redis:port")])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
