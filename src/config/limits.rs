//! The bounds on what one client may send or hold: sizes and counts (the timeouts are plain
//! durations read in [`super::Config::from_vars`]).
//!
//! Every size and wait is bounded: a limit of zero is refused where it would disable the gate.

use super::vars::{Var, Vars};
use super::{invalid, ConfigError};

/// `MAX_TOKEN_SIZE`: a gate-wide bound, checked before a token picks its issuer.
pub(super) fn max_token_size(v: &Vars) -> Result<usize, ConfigError> {
    Ok(usize::try_from(v.size(Var::MAX_TOKEN_SIZE)?).unwrap_or(usize::MAX))
}

/// `MAX_HEADER_SIZE`: between 8 KiB (below that, ordinary browsers' requests fail) and 16 MiB.
pub(super) fn max_header_size(v: &Vars) -> Result<usize, ConfigError> {
    const VAR: Var = Var::MAX_HEADER_SIZE;
    let size = v.size(VAR)?;
    if !(8192..=16 << 20).contains(&size) {
        return Err(invalid(
            VAR,
            v.get(VAR).unwrap_or_default(),
            "a size between 8KiB and 16MiB",
        ));
    }
    Ok(size as usize)
}

/// `TOKEN_CACHE_SIZE`: a number of tokens; 0 disables the cache.
pub(super) fn token_cache_size(v: &Vars) -> Result<usize, ConfigError> {
    const VAR: Var = Var::TOKEN_CACHE_SIZE;
    let raw = v.required(VAR, "a number of tokens")?;
    raw.parse()
        .map_err(|_| invalid(VAR, raw, "a whole number of tokens (0 disables the cache)"))
}

/// `MAX_CONNECTIONS`: above zero (zero would accept nothing, ever).
pub(super) fn max_connections(v: &Vars) -> Result<usize, ConfigError> {
    const VAR: Var = Var::MAX_CONNECTIONS;
    let raw = v.required(VAR, "a number of connections")?;
    raw.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(VAR, raw, "a whole number of connections above zero"))
}

/// `MAX_CONNECTIONS_PER_IP`: a whole number, `0` switching the cap off.
pub(super) fn max_connections_per_ip(v: &Vars) -> Result<Option<usize>, ConfigError> {
    const VAR: Var = Var::MAX_CONNECTIONS_PER_IP;
    let raw = v.required(VAR, "a number of connections")?;
    let n: usize = raw.parse().map_err(|_| {
        invalid(
            VAR,
            raw,
            "a whole number of connections (0 switches the cap off)",
        )
    })?;
    Ok((n > 0).then_some(n))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn with(var: &str, value: &str) -> HashMap<String, String> {
        HashMap::from([(var.to_string(), value.to_string())])
    }

    #[test]
    fn header_block_limit_stays_between_8kib_and_16mib() {
        for (value, ok) in [
            ("8KiB", true),
            ("16MiB", true),
            ("8191", false),
            ("17MiB", false),
        ] {
            let m = with("MAX_HEADER_SIZE", value);
            assert_eq!(max_header_size(&Vars::new(&m)).is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn max_connections_per_ip_zero_switches_the_cap_off() {
        for (raw, expect) in [("0", None), ("1", Some(1)), ("256", Some(256))] {
            let m = with("MAX_CONNECTIONS_PER_IP", raw);
            assert_eq!(
                max_connections_per_ip(&Vars::new(&m)).unwrap(),
                expect,
                "{raw}"
            );
        }
        for bad in ["-1", "many"] {
            let m = with("MAX_CONNECTIONS_PER_IP", bad);
            assert!(max_connections_per_ip(&Vars::new(&m)).is_err(), "{bad}");
        }
    }

    #[test]
    fn zero_connections_is_refused_and_zero_cache_disables_it() {
        let m = with("MAX_CONNECTIONS", "0");
        assert!(max_connections(&Vars::new(&m)).is_err());
        let m = with("TOKEN_CACHE_SIZE", "0");
        assert_eq!(token_cache_size(&Vars::new(&m)).unwrap(), 0);
        let m = HashMap::new();
        assert_eq!(max_token_size(&Vars::new(&m)).unwrap(), 16 * 1024);
    }
}
